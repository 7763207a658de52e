"""Training really learns, and only from what it should: sources, splits, cache, normalisation, the loop.

The data is made here: three classes of tones in distinct frequency bands with noise, eight
6-s clips each (two 3-s segments per clip for the MFCC architectures), in the genre-folder
layout. Any working loop separates them; a loop with a bug must not (see the broken-loop test).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import audiogen
import mutagen
import numpy as np
import pytest
import torch

from mgctag import cache, dataset, loop, splits, tags, train, weights
from mgctag.dataset import Track
from mgctag.errors import DataError, MgctagError
from mgctag.evaluate import evaluate
from mgctag.genremap import GenreMap
from mgctag.models import get_architecture

BANDS = {"low": 180.0, "mid": 1100.0, "high": 4500.0}
PER_CLASS = 8
SECONDS = 6.0
FAST = ("cnn", "mlp", "lstm")


def make_clip(path: Path, band: float, i: int, noise: float = 0.05) -> Path:
    """A tone near `band` (each clip its own pitch and harmonic mix) plus white noise."""
    sr = 22050
    t = np.arange(int(SECONDS * sr)) / sr
    rng = np.random.default_rng(1000 + i + int(band))
    f = band * (1 + 0.04 * (i - PER_CLASS / 2))
    y = 0.25 * np.sin(2 * np.pi * f * t) + rng.uniform(0.02, 0.12) * np.sin(2 * np.pi * 2 * f * t)
    y += noise * rng.standard_normal(len(t))
    return audiogen.write_audio(path, y.astype(np.float32), sr)


@pytest.fixture(scope="module")
def separable(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("separable")
    for genre, band in BANDS.items():
        (root / genre).mkdir()
        for i in range(PER_CLASS):
            make_clip(root / genre / f"{genre}.{i:05d}.wav", band, i)
    return root


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("features")


def options(cache_dir: Path, **kw) -> train.TrainOptions:
    kw = {"max_epochs": 12, "seed": 0, "patience": 4, **kw}
    return train.TrainOptions(batch_size=16, cache_dir=cache_dir, device="cpu", **kw)


def three_way(root: Path) -> dict[str, list[Track]]:
    tracks = splits.random_split(dataset.load_tracks(root).tracks, valid=0.25, test=0.25, seed=1)
    return splits.by_split(tracks)


# --- the loop learns, and a broken one does not ---------------------------------------------------


@pytest.mark.parametrize("arch", FAST)
def test_learns_separable_classes_and_evaluate_agrees(arch, separable, feature_cache):
    parts = three_way(separable)
    assert all(parts.values()) and not {t.path for t in parts["train"]} & {t.path for t in parts["test"]}
    result = train.train(parts["train"], arch, options(feature_cache), valid=parts["valid"])
    first, best = result.history[0], result.history[result.best_epoch - 1]
    assert best["train_loss"] < first["train_loss"]
    assert result.valid.track_accuracy >= 0.9, result.history
    assert result.meta.metrics["valid_track_accuracy"] == result.valid.track_accuracy
    # evaluate() hears the files as scan does; on the validation tracks it must agree with the loop's figure
    on_valid = evaluate((result.model, result.meta), parts["valid"])
    assert on_valid.track_accuracy == pytest.approx(result.valid.track_accuracy)
    assert [p["predicted"] for p in on_valid.predictions] == [p["predicted"] for p in result.valid.predictions]
    on_test = evaluate((result.model, result.meta), parts["test"])
    assert on_test.n_tracks == len(parts["test"]) and on_test.track_accuracy >= 0.9


def _shuffled_targets(monkeypatch):
    real = loop._loss
    gen = torch.Generator().manual_seed(0)
    monkeypatch.setattr(
        loop, "_loss", lambda logits, y, net: real(logits, y[torch.randperm(len(y), generator=gen)], net)
    )


def _no_step(monkeypatch):
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, closure=None: None)


@pytest.mark.parametrize("bug", [_shuffled_targets, _no_step], ids=["shuffled-targets", "no-optimiser-step"])
def test_a_broken_loop_does_not_reach_the_bar(bug, monkeypatch, separable, feature_cache):
    parts = three_way(separable)
    bug(monkeypatch)
    result = train.train(parts["train"], "cnn", options(feature_cache), valid=parts["valid"])
    assert result.valid.track_accuracy < 0.9
    assert evaluate((result.model, result.meta), parts["test"]).track_accuracy < 0.9


def test_same_seed_same_run(separable, feature_cache):
    parts = three_way(separable)
    runs = [
        train.train(parts["train"], "cnn", options(feature_cache, max_epochs=2, seed=s), valid=parts["valid"])
        for s in (3, 3, 4)
    ]
    losses = [[r["train_loss"] for r in run.history] for run in runs]
    assert losses[0] == losses[1] and losses[0] != losses[2]


# --- normalisation comes from the training tracks only --------------------------------------------


def test_normalisation_statistics_come_from_training_tracks_only(separable, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(separable, root)
    parts = three_way(root)
    opts = options(tmp_path / "cache", max_epochs=1)

    def stats():
        r = train.train(parts["train"], "cnn", opts, valid=parts["valid"])
        return r.model.norm_mean.clone(), r.model.norm_std.clone()

    mean, std = stats()
    spec = get_architecture("cnn").frontend
    expected = train.bin_stats(cache.features(parts["train"], spec, cache_dir=tmp_path / "cache").x)
    assert np.allclose(mean.numpy(), expected[0], rtol=1e-5) and np.allclose(std.numpy(), expected[1], rtol=1e-5)
    make_clip(parts["valid"][0].path, 9000.0, 3, noise=0.4)  # a valid-only track changes
    mean2, std2 = stats()
    assert torch.equal(mean, mean2) and torch.equal(std, std2)
    make_clip(parts["train"][0].path, 9000.0, 3, noise=0.4)  # a training track changes: so do the stats
    mean3, _ = stats()
    assert not torch.equal(mean, mean3)


# --- splits ----------------------------------------------------------------------------------------


def fake_tracks(n_artists: int = 12, per_artist: int = 3, loners: int = 12) -> list[Track]:
    genres = ["a", "b", "c"]
    out = [
        Track(Path(f"/x/{g}/art{k}-{j}.wav"), g, artist=f"Artist {k}")
        for k in range(n_artists)
        for g in [genres[k % 3]]
        for j in range(per_artist)
    ]
    out += [Track(Path(f"/x/{genres[i % 3]}/solo{i}.wav"), genres[i % 3]) for i in range(loners)]
    return out


def test_random_split_keeps_artists_together_stratified_and_seeded():
    tracks = fake_tracks()
    parted = splits.random_split(tracks, valid=0.25, test=0.25, seed=0)  # 2 groups of each genre per part
    assert [t.path for t in parted] == [t.path for t in tracks]
    by_artist: dict[str, set] = {}
    for t in parted:
        if t.artist:
            by_artist.setdefault(t.artist, set()).add(t.split)
    assert all(len(s) == 1 for s in by_artist.values()), by_artist
    parts = splits.by_split(parted)
    assert all(parts[s] for s in ("train", "valid", "test"))
    assert {t.label for t in parts["test"]} == {"a", "b", "c"}  # stratified
    assert [len(parts[s]) for s in ("train", "valid", "test")] == [24, 12, 12]
    assert splits.random_split(tracks, valid=0.25, test=0.25, seed=0) == parted
    assert any(splits.random_split(tracks, valid=0.25, test=0.25, seed=s) != parted for s in range(1, 4))


def test_kfold_partitions_tracks_and_keeps_artists_together():
    tracks = fake_tracks()
    folds = splits.kfold(tracks, 4, seed=0)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(len(tracks)))  # every track tested exactly once
    for train_idx, test_idx in folds:
        assert not set(train_idx) & set(test_idx)
        test_artists = {tracks[i].artist for i in test_idx} - {None}
        assert not test_artists & {tracks[i].artist for i in train_idx}
    with pytest.raises(DataError, match="at most"):
        splits.kfold(tracks[:6], 5)


def test_feature_subset_keeps_all_and_only_a_tracks_segments():
    owner = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    fs = cache.FeatureSet([Track(Path(f"/t{i}"), "g") for i in range(4)], np.arange(8)[:, None, None], owner)
    sub = fs.subset([3, 1])
    assert [t.path.name for t in sub.tracks] == ["t3", "t1"]
    assert sub.x.ravel().tolist() == [6, 7, 2, 3, 4] and sub.owner.tolist() == [0, 0, 1, 1, 1]


def test_split_files_match_by_genre_and_stem(tmp_path):
    for g in ("blues", "jazz"):
        (tmp_path / "data" / g).mkdir(parents=True)
        for i in range(3):
            audiogen.make(tmp_path / "data" / g / f"{g}.{i:05d}.ogg", seconds=0.5)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train_filtered.txt").write_text("blues/blues.00000.wav\njazz/jazz.00000.wav\njazz/jazz.00001.wav\n")
    (lists / "valid_filtered.txt").write_text("blues/blues.00001.wav\nblues/blues.00099.wav\n")
    (lists / "test_filtered.txt").write_text("jazz/jazz.00002.wav\n")
    tracks = dataset.load_tracks(tmp_path / "data").tracks
    named, notes = splits.apply_split_files(tracks, lists)
    assert {t.path.name: t.split for t in named} == {
        "blues.00000.ogg": "train",
        "jazz.00000.ogg": "train",
        "jazz.00001.ogg": "train",
        "blues.00001.ogg": "valid",
        "jazz.00002.ogg": "test",
    }
    assert any("1 track(s) not named" in n for n in notes) and any("1 name(s)" in n for n in notes)
    (lists / "test_filtered.txt").write_text("polka/polka.00001.wav\n")
    with pytest.raises(DataError, match="polka"):
        splits.apply_split_files(tracks, lists)


def test_gtzan_split_files_against_gtzan_mini(gtzan_mini):
    split_dir = gtzan_mini.parent / "gtzan-splits"
    if not split_dir.is_dir():
        pytest.skip(f"{split_dir} not found")
    named, _ = splits.apply_split_files(dataset.load_tracks(gtzan_mini).tracks, split_dir)
    assert 0 < len(named) < 100
    valid = {t.path.name for t in named if t.split == "valid"}
    assert "blues.00000.ogg" in valid  # the filtered lists put blues 00000-00002 in valid


# --- the feature cache -------------------------------------------------------------------------------


def test_cache_is_reused_and_misses_on_change(separable, tmp_path, monkeypatch):
    root = tmp_path / "data"
    shutil.copytree(separable / "low", root / "low")
    (root / "low" / "broken.wav").write_bytes(b"RIFF not really")
    tracks = list(dataset.load_tracks(root).tracks)
    spec = get_architecture("cnn").frontend
    first = cache.features(tracks, spec, cache_dir=tmp_path / "c")
    assert first.computed == PER_CLASS and first.reused == 0
    assert [t.path.name for t, _ in first.skipped] == ["broken.wav"] and first.skipped[0][1]
    assert first.x.dtype == np.float16 and first.x.shape == (2 * PER_CLASS, spec.n_features, spec.n_frames)

    from mgctag.frontends import Frontend

    calls = []
    real_forward = Frontend.forward
    monkeypatch.setattr(Frontend, "forward", lambda self, w: calls.append(len(w)) or real_forward(self, w))
    second = cache.features(tracks, spec, cache_dir=tmp_path / "c")
    assert second.computed == 0 and second.reused == PER_CLASS and not calls
    assert np.array_equal(first.x, second.x) and np.array_equal(first.owner, second.owner)
    good = [t for t in tracks if t.path.name != "broken.wav"]
    make_clip(good[0].path, 700.0, 1)  # an edited file misses
    third = cache.features(tracks, spec, cache_dir=tmp_path / "c")
    assert third.computed == 1 and calls
    other = get_architecture("crnn-mfcc").frontend  # another front-end misses too
    assert cache.features(good[:1], other, cache_dir=tmp_path / "c").computed == 1


# --- sources ----------------------------------------------------------------------------------------


def test_folder_source_errors(tmp_path):
    with pytest.raises(DataError, match="no audio files"):
        dataset.load_tracks(tmp_path)
    with pytest.raises(DataError, match="no such"):
        dataset.load_tracks(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="folder of genre folders or a .csv"):
        dataset.load_tracks(tmp_path / "notes.txt")


def test_manifest_source(separable, tmp_path, feature_cache):
    rows = [["path", "genre", "split", "artist"]]
    for genre in BANDS:
        for i in range(PER_CLASS):
            split = "test" if i == 0 else "valid" if i == 1 else "train"
            path = separable / genre / f"{genre}.{i:05d}.wav"
            rows.append([os.path.relpath(path, tmp_path / "lists"), genre.upper(), split, ""])
    manifest = tmp_path / "lists" / "m.csv"
    manifest.parent.mkdir()
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    ts = dataset.load_tracks(manifest, genre_map=GenreMap.parse("HIGH: treble"))
    assert ts.labels == ["LOW", "MID", "treble"] and ts.source == "manifest:m.csv"
    assert all(t.path.is_file() for t in ts.tracks)
    assert sum(t.split == "test" for t in ts.tracks) == 3
    result = train.fit(ts, "mlp", options(feature_cache, max_epochs=3))
    assert result.meta.provenance["split"] == "manifest split column"
    assert result.meta.provenance["tracks"] == {"train": 18, "valid": 3}
    assert result.test.n_tracks == 3 and result.meta.metrics["test_tracks"] == 3

    manifest.write_text("path,genre,split\nnope.wav,LOW,\n")
    with pytest.raises(DataError, match="row 2: no such file"):
        dataset.load_tracks(manifest)
    manifest.write_text(f"{rows[1][0]},LOW,holdout\n")
    with pytest.raises(DataError, match="holdout"):
        dataset.load_tracks(manifest)


def test_from_tags_source(tmp_path):
    lib = tmp_path / "library"
    lib.mkdir()
    plan = [
        ("Rock", "A"),
        ("rock", "A"),
        ("Rock", "B"),
        ("Hip Hop", "C"),
        ("hip-hop", "D"),
        ("Hiphop", "D"),
        ("Polka", "E"),
        (None, "F"),
    ]
    for i, (genre, artist) in enumerate(plan):
        p = audiogen.make(lib / f"{i}.flac", seconds=0.5)
        if genre:
            tags.write(p, genres=[genre], confidences=None, model_id=None)
        f = mutagen.File(p)
        f["artist"] = artist
        f.save()
    own = audiogen.make(lib / "own.flac", seconds=0.5)
    tags.write(own, genres=["Rock"], confidences=[0.9], model_id="cnn-gtzan")
    gmap = GenreMap.parse("rock: Rock\nhip hop: Hip-Hop\nhip-hop: Hip-Hop\nhiphop: Hip-Hop")
    ts = dataset.load_tracks(tag_roots=[lib], genre_map=gmap, min_count=2)
    assert ts.counts() == {"Rock": 3, "Hip-Hop": 3}
    assert {t.path.name: t.artist for t in ts.tracks if t.label == "Rock"} == {
        "0.flac": "A",
        "1.flac": "A",
        "2.flac": "B",
    }
    warnings = " | ".join(ts.warnings)
    assert (
        "'Polka' dropped" in warnings and "1 file(s) without" in warnings and "1 file(s) whose genre mgctag" in warnings
    )
    with pytest.raises(DataError, match="at least 5"):
        dataset.load_tracks(tag_roots=[lib], genre_map=gmap, min_count=5)
    # artist tags group the split: A's two tracks land on one side
    parted = splits.random_split(list(ts.tracks), valid=0.0, test=0.3, seed=0)
    assert len({t.split for t in parted if t.artist == "A"}) == 1


# --- the full run: CV, final model, saved files -------------------------------------------------


def test_fit_with_folds_saves_cv_metrics_history_and_curves(separable, feature_cache, tmp_path):
    ts = dataset.load_tracks(separable)
    result = train.fit(ts, "cnn", options(feature_cache, max_epochs=6), folds=3, command="mgctag train test")
    cv = result.cv
    assert cv["folds"] == 3 and len(cv["per_fold"]) == 3
    assert sum(f["test_tracks"] for f in cv["per_fold"]) == 3 * PER_CLASS
    assert cv["track_accuracy_mean"] >= 0.9 and np.sum(cv["confusion"]) == 3 * PER_CLASS
    m = result.meta.metrics
    assert m["cv_folds"] == 3 and m["cv_track_accuracy_mean"] == cv["track_accuracy_mean"] and "cv_macro_f1_std" in m
    assert result.meta.provenance["tracks"]["train"] + result.meta.provenance["tracks"]["valid"] == 3 * PER_CLASS

    paths = train.save_run(result, tmp_path / "cnn-synth.safetensors")
    assert paths["history"].name == "cnn-synth.history.json" and paths["curves"].name == "cnn-synth.curves.png"
    assert paths["curves"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads(paths["history"].read_text())
    assert history["epochs"] == result.history and history["cv"]["folds"] == 3
    model, meta = weights.load(paths["weights"])
    prov = meta.provenance
    for key in ("data", "split", "seed", "epochs", "date", "machine", "command", "tracks"):
        assert key in prov, key
    assert prov["command"] == "mgctag train test" and prov["data"] == f"folders:{separable.name}"
    assert meta.metrics == result.meta.metrics
    assert torch.equal(model.norm_mean, result.model.norm_mean)
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal((2, model.spec.segment_samples)).astype("f4"))
    with torch.no_grad():
        assert torch.allclose(model(wave), result.model(wave))


def test_frozen_trunk_trains_only_the_head(separable, feature_cache):
    try:
        get_architecture("musicnn-head")
        weights.resolve("musicnn-msd")
    except Exception as e:  # noqa: BLE001 - any reason the shipped trunk is missing
        pytest.skip(f"musicnn-msd trunk not available: {e}")
    parts = three_way(separable)
    small = {g: [t for t in parts[g] if int(t.path.stem.split(".")[1]) % 2 == 0] or parts[g] for g in parts}
    result = train.train(
        small["train"],
        "musicnn-head",
        options(feature_cache, max_epochs=60, patience=60, lr=1e-2),
        valid=small["valid"],
    )
    trunk, _ = weights.load(weights.resolve("musicnn-msd"))
    got = result.model.backbone.trunk.state_dict()
    assert all(torch.equal(v, got[k]) for k, v in trunk.backbone.state_dict().items())
    assert torch.count_nonzero(result.model.norm_mean) == 0 and torch.all(result.model.norm_std == 1)
    assert "Pompeu Fabra" in result.meta.licence  # the trunk's licence travels with the head
    assert result.valid.track_accuracy >= 0.9, result.history


# --- a loop that diverges, settings that do not exist, data that cannot be learnt ----------------


class _Epochs(train.Progress):
    def __init__(self):
        self.done, self.notes = 0, []

    def epoch(self, record):
        self.done = record["epoch"]

    def note(self, text):
        self.notes.append(text)


def _nan_from(monkeypatch, progress: _Epochs, epoch: int):
    """The loss turns NaN (and with it, after backward and the step, every weight) from `epoch` on."""
    real = loop._loss

    def loss(logits, y, net):
        total, ce = real(logits, y, net)
        return (total * np.nan, ce * np.nan) if progress.done + 1 >= epoch else (total, ce)

    monkeypatch.setattr(loop, "_loss", loss)


@pytest.mark.parametrize("with_valid", [True, False], ids=["valid", "no-valid"])
def test_a_nan_loss_in_the_first_epoch_is_a_clear_error(with_valid, monkeypatch, separable, feature_cache):
    parts = three_way(separable)
    progress = _Epochs()
    _nan_from(monkeypatch, progress, 1)
    with pytest.raises(MgctagError, match="diverged"):  # TrainError; before: a crash in load_state_dict
        train.train(
            parts["train"],
            "cnn",
            options(feature_cache, max_epochs=3),
            valid=parts["valid"] if with_valid else [],
            progress=progress,
        )


def test_a_loss_that_turns_nan_keeps_the_best_finite_epoch(monkeypatch, separable, feature_cache):
    parts = three_way(separable)
    progress = _Epochs()
    _nan_from(monkeypatch, progress, 3)
    result = train.train(
        parts["train"], "cnn", options(feature_cache, max_epochs=6, patience=6), valid=[], progress=progress
    )
    assert result.best_epoch == 2 and len(result.history) == 3 and progress.done == 3
    assert all(torch.isfinite(v).all() for v in result.model.state_dict().values() if v.is_floating_point())
    assert any("epoch 3" in n and "epoch 2 kept" in n for n in progress.notes), progress.notes


def test_a_nan_validation_loss_stops_and_keeps_the_best_epoch(monkeypatch, separable, feature_cache):
    parts = three_way(separable)
    real = train.validate
    calls = []

    def validate(*a, **kw):
        loss, rep = real(*a, **kw)
        calls.append(loss)
        return (loss if len(calls) < 2 else float("nan")), rep

    monkeypatch.setattr(loop, "validate", validate)
    progress = _Epochs()
    result = train.train(
        parts["train"], "cnn", options(feature_cache, max_epochs=6, patience=6), valid=parts["valid"], progress=progress
    )
    assert result.best_epoch == 1 and len(result.history) == 2
    assert any("valid loss is nan" in n for n in progress.notes), progress.notes


def test_unknown_architecture_settings_name_the_valid_ones(separable, feature_cache):
    parts = three_way(separable)
    with pytest.raises(DataError, match=r"cnn has no setting bogus .*dropout=0\.3"):
        train.train(parts["train"], "cnn", options(feature_cache, arch_params={"bogus": 1}))
    with pytest.raises(DataError, match='cannot be built with dropout="abc"'):
        train.fit(dataset.load_tracks(separable), "cnn", options(feature_cache, arch_params={"dropout": "abc"}))


def test_one_genre_is_not_enough(separable, tmp_path, feature_cache):
    root = tmp_path / "data"
    shutil.copytree(separable / "low", root / "low")
    with pytest.raises(DataError, match="only one genre"):
        train.fit(dataset.load_tracks(root), "cnn", options(feature_cache, max_epochs=1))
    (root / "high").mkdir()
    for i in range(3):  # a second genre, but nothing in it can be read
        (root / "high" / f"h{i}.wav").write_bytes(b"RIFF not really")
    with pytest.raises(
        DataError, match=f"only one genre has tracks that could be read .*high 0 of 3, low {PER_CLASS} of"
    ):
        train.fit(dataset.load_tracks(root), "cnn", options(feature_cache, max_epochs=1))
    with pytest.raises(DataError, match="only one genre"):
        train.train(dataset.load_tracks(root).tracks, "cnn", options(feature_cache, max_epochs=1), valid=[])


def test_left_out_files_are_counted_per_genre(separable, tmp_path):
    root = tmp_path / "data"
    for g in ("low", "mid"):
        shutil.copytree(separable / g, root / g)
    (root / "low" / "cover.jpg").write_bytes(b"\xff\xd8")
    (root / "low" / ".hidden.txt").write_text("x")  # hidden: not the user's audio, not mentioned
    (root / "mid" / "sub").mkdir()
    (root / "mid" / "sub" / "notes.txt").write_text("x")
    ts = dataset.load_tracks(root)
    assert sorted((g, p.name, r) for g, p, r in ts.left_out) == [
        ("low", "cover.jpg", "not an audio file name"),
        ("mid", "notes.txt", "not an audio file name"),
    ]
    lines = dataset.left_out_summary([(g, r) for g, _, r in ts.left_out] + [("mid", "truncated")] * 2)
    assert lines == [
        "low: 1 file(s) left out (not an audio file name 1)",
        "mid: 3 file(s) left out (truncated 2, not an audio file name 1)",
    ]


def test_metrics_and_figures_leave_no_library_warnings(tmp_path):
    import warnings

    from mgctag.evaluate import report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        one = report(["Polka"], np.array([[1.0], [1.0]]), np.array([0, 1]), [0, 0])  # a one-label model
        two = report(["民谣", "Rock"], np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1]), [0, 1])
        two.save_confusion_png(tmp_path / "c.png")  # glyphs the font lacks
        train.save_curves([{"epoch": 1, "train_loss": 1.0}], tmp_path / "h.png", title="cnn on 音乐")
    assert one.track_accuracy == 1.0 and two.track_accuracy == 1.0
    assert not [str(w.message) for w in caught]
