"""`--segments auto`: the order windows are heard in, the test that ends a track's rounds, and the
scan that uses them (locally; tests/test_ray.py compares Ray with it)."""

from __future__ import annotations

import audiogen
import numpy as np
import pytest
from conftest import make_band_model
from test_scan import HIGH, LOW

from mgctag import sure
from mgctag.scanner import ScanOptions, scan
from mgctag.segment import segment_starts, spread_order

RULE = sure.Rule(top_k=1, floor=0.0)


@pytest.mark.parametrize("n", range(1, 13))
def test_the_spread_order_hears_every_window_once_across_the_track_first(n):
    order = spread_order(n)
    assert sorted(order) == list(range(n))
    if n >= 4:  # the first two windows are not both in one half, and the ends come last
        assert min(order[:2]) < n / 2 <= max(order[:2]) + 0.5
    if n >= 5:
        assert set(order[-2:]) == {0, n - 1}


def test_rounds_add_a_window_at_a_time_up_to_the_plan():
    rounds, heard = [], 0
    while (part := sure.next_round(heard, 10)) is not None:
        rounds.append(part)
        heard = part[1]
    assert rounds == [(0, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 9), (9, 10)]
    assert sure.next_round(0, 1) == (0, 2)  # a one-window plan: the round just comes back shorter


def windows(rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


def test_windows_that_agree_settle_the_genre_and_ones_that_disagree_do_not():
    agree = windows([[0.9, 0.1], [0.85, 0.15]])
    assert sure.settled(agree, 6, RULE)
    split = windows([[0.9, 0.1], [0.2, 0.8]])  # one window each way: the rest decide
    assert not sure.settled(split, 6, RULE)
    close = windows([[0.52, 0.48], [0.53, 0.47]])  # the same winner, by a hair
    assert not sure.settled(close, 6, RULE)
    assert sure.settled(split, 2, RULE)  # every window heard: nothing left to change it


def test_more_agreeing_windows_make_a_closer_margin_sure():
    row = [0.6, 0.4]
    assert not sure.settled(windows([row, [0.58, 0.42]]), 10, RULE)
    assert sure.settled(windows([row, [0.58, 0.42]] * 4), 10, RULE)


def test_the_test_is_the_z_it_states():
    """Margin mean m, spread s (shrunk), k of n heard: z = m / s * sqrt(n k / (n - k))."""
    x = windows([[0.7, 0.3], [0.6, 0.4], [0.65, 0.35], [0.55, 0.45]])
    margin = x[:, 0] - x[:, 1]
    k, n = len(x), 8
    var = (((margin - margin.mean()) ** 2).sum() + sure.PRIOR_WEIGHT * (sure.PRIOR_SPREAD * 1.0) ** 2) / (
        k - 1 + sure.PRIOR_WEIGHT
    )
    z = margin.mean() / np.sqrt(var) * np.sqrt(n * k / (n - k))
    assert sure.settled(x, n, sure.Rule(1, 0.0, level=z - 1e-6))
    assert not sure.settled(x, n, sure.Rule(1, 0.0, level=z + 1e-6))


def test_a_share_near_the_minimum_confidence_is_not_sure():
    x = windows([[0.36, 0.34, 0.30], [0.37, 0.33, 0.30]])
    assert not sure.settled(x, 6, sure.Rule(1, 0.35))  # written or skipped: the rest decide
    assert sure.settled(x, 6, sure.Rule(1, 0.9))  # a skip far below the line is sure: nothing nears 0.9


def test_the_second_genre_of_top_k_must_be_sure_too():
    x = windows([[0.8, 0.1, 0.1], [0.82, 0.1, 0.08]])
    assert sure.settled(x, 6, sure.Rule(1, 0.0))
    assert not sure.settled(x, 6, sure.Rule(2, 0.0))  # which of the other two comes second is open


def test_a_majority_vote_counts_top_genres():
    x = windows([[0.6, 0.4], [0.4, 0.6]])
    assert not sure.settled(x, 6, sure.Rule(1, 0.0, vote="majority"))
    y = windows([[0.6, 0.4]] * 4)
    assert sure.settled(y, 6, sure.Rule(1, 0.0, vote="majority"))


# --- the scan ---------------------------------------------------------------------------------------


def long_track(path, parts):
    """A file of 1-s windows' worth of tones, one (seconds, freq) part after another."""
    sr = 22050
    y = np.concatenate([audiogen.tone(s, sr, f, seed=i) for i, (s, f) in enumerate(parts)])
    return audiogen.write_audio(path, y, sr)


def test_auto_stops_early_on_a_clear_track_and_hears_a_mixed_one_out(tmp_path):
    model = make_band_model(tmp_path / "band10.safetensors", defaults={"segments": 10})
    root = tmp_path / "music"
    root.mkdir()
    steady = long_track(root / "steady.flac", [(12.0, LOW)])
    mixed = long_track(root / "mixed.flac", [(6.0, LOW), (6.0, HIGH)])

    def run(**kw):
        return {r.path: r for r in scan([root], ScanOptions(model=str(model), workers=0, albums="off", **kw))}

    auto, fixed = run(), run(segments=10)
    assert auto[steady].windows == 2 and fixed[steady].windows == 10
    assert auto[mixed].windows > 2 and fixed[mixed].windows == 10
    for p in (steady, mixed):
        assert auto[p].genre == fixed[p].genre and auto[p].status == fixed[p].status
    assert len(segment_starts(12.0, 1.0, 10)) == 10


def test_auto_and_fixed_windows_are_remembered_apart(tmp_path):
    """A re-run with other --segments hears again; the same one shows the stored windows."""
    model = make_band_model(tmp_path / "band10.safetensors", defaults={"segments": 10})
    root = tmp_path / "music"
    root.mkdir()
    steady = long_track(root / "steady.flac", [(12.0, LOW)])
    state = tmp_path / "state.sqlite"

    def run(**kw):
        opts = ScanOptions(model=str(model), workers=0, albums="off", state=state, **kw)
        return next(r for r in scan([root], opts) if r.path == steady)

    first = run()
    again = run()
    assert (first.status, first.windows) == ("would-tag", 2)
    assert again.windows == 2 and again.note  # from the state, not heard
    assert run(segments=10).windows == 10


def test_workers_give_the_same_rounds_as_decoding_inline(tmp_path):
    model = make_band_model(tmp_path / "band10.safetensors", defaults={"segments": 10})
    root = tmp_path / "music"
    root.mkdir()
    for i in range(6):
        long_track(root / f"{i}.flac", [(6.0, LOW if i % 2 else HIGH), (6.0, LOW if i % 3 else HIGH)])

    def run(workers):
        opts = ScanOptions(model=str(model), workers=workers, albums="off")
        return [(r.path.name, r.genre, r.windows, round(r.confidence, 6)) for r in scan([root], opts)]

    inline = run(0)
    assert run(2) == inline  # in input order, with the same windows heard
    assert [name for name, *_ in inline] == sorted(name for name, *_ in inline)
