"""The scan flow end to end, with a hand-set model whose answer depends on the audio."""

from __future__ import annotations

import shutil
from pathlib import Path

import audiogen
import mutagen
import pytest

from mgctag import tags
from mgctag.decode import audio_digest
from mgctag.genremap import GenreMap
from mgctag.scanner import ScanOptions, scan

LOW, HIGH = 150.0, 5000.0
EXT = {"alac.m4a": "m4a"}


def make_library(root, formats=("mp3", "flac", "ogg", "opus", "m4a", "wav", "aiff", "wma", "alac.m4a")):
    """One file per format; low tones in even positions, high tones in odd ones."""
    expected = {}
    for i, fmt in enumerate(formats):
        freq = LOW if i % 2 == 0 else HIGH
        p = root / f"{i:02d}-{fmt.replace('.', '_')}.{EXT.get(fmt, fmt)}"
        audiogen.make(p, seconds=2.5, sr=22050, freq=freq, fmt=fmt, seed=i)
        expected[p] = "Low" if freq == LOW else "High"
    return expected


def run(root, model, **kw):
    kw.setdefault("workers", 0)
    return {r.path: r for r in scan([root], ScanOptions(model=str(model), **kw))}


def test_dry_run_predicts_every_format_and_changes_nothing(tmp_path, band_model):
    expected = make_library(tmp_path)
    before = {p: p.read_bytes() for p in expected}
    results = run(tmp_path, band_model)
    assert set(results) == set(expected)
    for p, genre in expected.items():
        assert results[p].status == "would-tag", (p, results[p])
        assert results[p].genre == genre, p
        assert 0.5 < results[p].confidence <= 1.0
        assert p.read_bytes() == before[p]


def test_write_tags_then_rerun_is_unchanged(tmp_path, band_model):
    expected = make_library(tmp_path)
    digests = {p: audio_digest(p) for p in expected}
    results = run(tmp_path, band_model, write_tags=True)
    for p, genre in expected.items():
        assert results[p].status == "tagged", results[p]
        state = tags.read(p)
        assert state.genres == (genre,) and state.model == "band"
        assert audio_digest(p) == digests[p]
        assert mutagen.File(p) is not None
    mtimes = {p: p.stat().st_mtime_ns for p in expected}
    again = run(tmp_path, band_model, write_tags=True)
    assert {r.status for r in again.values()} == {"unchanged"}
    assert {p: p.stat().st_mtime_ns for p in expected} == mtimes


def test_keep_existing_overwrite_and_mgctag_own_genres(tmp_path, band_model):
    p = audiogen.make(tmp_path / "a.flac", seconds=2.5, freq=LOW)
    tags.write(p, genres=["Polka"], confidences=None, model_id=None)
    assert run(tmp_path, band_model, write_tags=True)[p].status == "kept"
    assert tags.read(p).genres == ("Polka",)
    r = run(tmp_path, band_model, write_tags=True, keep_existing=False)[p]
    assert r.status == "tagged" and r.existing_genre == "Polka" and tags.read(p).genres == ("Low",)
    # a genre mgctag wrote is refreshed even with keep-existing (here: a different top-k)
    r = run(tmp_path, band_model, write_tags=True, top_k=2)[p]
    assert r.status == "tagged" and tags.read(p).genres == ("Low", "High")


def test_min_confidence_top_k_and_genre_map(tmp_path, band_model):
    p = audiogen.make(tmp_path / "a.wav", seconds=2.5, freq=HIGH)
    r = run(tmp_path, band_model, min_confidence=0.999999)[p]
    assert r.status == "skipped" and "min-confidence" in r.note
    r = run(tmp_path, band_model, top_k=2, genre_map=GenreMap.parse("High: Treble\nLow: -"))[p]
    assert [g for g, _ in r.genres] == ["Treble"]


def test_broken_files_are_reported_and_good_ones_still_tagged(tmp_path, band_model):
    good = make_library(tmp_path, formats=("mp3", "flac"))
    (tmp_path / "empty.mp3").write_bytes(b"")
    (tmp_path / "noise.flac").write_bytes(b"\x00\x01garbage" * 100)
    (tmp_path / "notes.ogg").write_text("this is text, not audio")
    trunc = audiogen.make(tmp_path / "trunc.flac", seconds=2.5, freq=LOW)
    trunc.write_bytes(trunc.read_bytes()[:200])
    results = run(tmp_path, band_model, write_tags=True)
    for name in ("empty.mp3", "noise.flac", "notes.ogg", "trunc.flac"):
        r = results[tmp_path / name]
        assert r.status == "error" and r.error and "\n" not in r.error, r
    for p, genre in good.items():
        assert results[p].status == "tagged" and tags.read(p).genres == (genre,)


def test_worker_pool_gives_the_same_answers(tmp_path, band_model):
    make_library(tmp_path, formats=("mp3", "flac", "wav", "m4a"))
    inline = run(tmp_path, band_model)
    pooled = run(tmp_path, band_model, workers=2, batch_size=4)
    assert {p: (r.genre, round(r.confidence, 5)) for p, r in inline.items()} == {
        p: (r.genre, round(r.confidence, 5)) for p, r in pooled.items()
    }


def test_majority_vote_and_segment_count(tmp_path, band_model):
    # first half low, second half high: the vote follows the segments that are heard
    import numpy as np

    a = audiogen.tone(6.0, 22050, LOW)
    b = audiogen.tone(6.0, 22050, HIGH)
    p = audiogen.write_audio(tmp_path / "mix.flac", np.concatenate([a, a, b]), 22050)
    r = run(tmp_path, band_model, segments=3, vote="majority")[p]
    assert r.genre == "Low" and r.confidence == pytest.approx(2 / 3, abs=1e-3)
    r = run(tmp_path, band_model, segments=1)[p]  # the one middle segment is low
    assert r.genre == "Low"


def test_symlinked_file_writes_through_to_target(tmp_path, band_model):
    music = tmp_path / "music"
    music.mkdir()
    target = audiogen.make(tmp_path / "real.flac", seconds=2.5, freq=LOW)
    (music / "link.flac").symlink_to(target)
    shutil.copy(target, music / "copy.flac")
    results = run(music, band_model, write_tags=True)
    assert all(r.status == "tagged" for r in results.values())
    assert (music / "link.flac").is_symlink() and tags.read(target).genres == ("Low",)


def test_a_genre_the_user_edited_after_mgctag_wrote_it_is_kept(tmp_path, band_model):
    """A tag editor that keeps mgctag's own fields does not make the user's genre mgctag's."""
    db = tmp_path / "state.sqlite"
    p = audiogen.make(tmp_path / "song.flac", seconds=2.5, freq=HIGH)
    other = audiogen.make(tmp_path / "other.flac", seconds=2.5, freq=LOW)
    assert run(tmp_path, band_model, write_tags=True, state=db)[p].status == "tagged"
    f = mutagen.File(p)
    f["GENRE"] = ["Blues"]  # the user's fix; MGCTAG_MODEL and MGCTAG_CONFIDENCE stay
    f.save()
    assert tags.read(p).model == "band"
    again = run(tmp_path, band_model, write_tags=True, state=db, rescan=True)
    assert again[p].status == "kept" and tags.read(p).genres == ("Blues",)
    assert again[other].status == "unchanged"  # mgctag's own genre is still mgctag's
    # what mgctag wrote itself is refreshed when its decision changes
    assert run(tmp_path, band_model, write_tags=True, state=db, top_k=2)[other].status == "tagged"
    assert tags.read(other).genres == ("Low", "High")


def test_an_unexpected_failure_while_writing_is_that_files_error(tmp_path, band_model, monkeypatch):
    from mgctag import safe, state

    files = [audiogen.make(tmp_path / f"{i}.wav", seconds=2.5, freq=LOW) for i in range(3)]
    real = safe.write_safely

    def flaky(path, **kw):
        if path.name == "1.wav":
            raise KeyError("TXXX")  # as an unexpected mutagen error would
        return real(path, **kw)

    monkeypatch.setattr(safe, "write_safely", flaky)
    db = tmp_path / "state.sqlite"
    results = run(tmp_path, band_model, write_tags=True, state=db)
    assert results[files[1]].status == "error" and "unexpected KeyError" in results[files[1]].error
    assert results[files[0]].status == results[files[2]].status == "tagged"
    s = state.State(db)
    assert [e.path.name for e in s.journal(s.runs()[0].id)] == ["0.wav", "2.wav"]  # no row left pending
    s.close()


def test_below_the_minimum_the_note_names_the_best_guess(tmp_path, band_model):
    p = audiogen.make(tmp_path / "a.wav", seconds=2.5, freq=HIGH)
    r = run(tmp_path, band_model, min_confidence=0.999999)[p]
    assert r.status == "skipped" and r.genre == "High"
    assert "best guess High (0.999)" in r.note and "--min-confidence 0.999999" in r.note


def test_the_models_own_minimum_applies_unless_one_is_given(tmp_path):
    from conftest import make_band_model

    m = make_band_model(tmp_path / "m.safetensors", defaults={"min_confidence": 0.9999})
    lib = tmp_path / "lib"
    lib.mkdir()
    p = audiogen.make(lib / "a.wav", seconds=2.5, freq=HIGH)
    assert run(lib, m)[p].status == "skipped"
    assert run(lib, m, min_confidence=0.0)[p].status == "would-tag"


def test_default_model_is_the_most_accurate_installed(tmp_path, monkeypatch):
    from mgctag import weights

    monkeypatch.setattr(weights, "user_dir", lambda: tmp_path)
    assert weights.default_model() == weights.SHIPPED_DEFAULT == "musicnn-gtzan-mini"
    shutil.copy(weights.shipped_dir() / "cnn-gtzan-mini.safetensors", tmp_path / "efficientat-mn04.safetensors")
    assert weights.default_model() == "efficientat-mn04"
    shutil.copy(weights.shipped_dir() / "cnn-gtzan-mini.safetensors", tmp_path / "efficientat-mn10.safetensors")
    assert weights.default_model() == "efficientat-mn10"
    assert weights.resolve(None) == tmp_path / "efficientat-mn10.safetensors"


def test_usable_cpus_follow_the_affinity_mask(monkeypatch):
    import os

    from mgctag import pool

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert pool.usable_cpus() == 1
    assert ScanOptions().workers is None


def test_torch_gets_the_cores_the_decoders_leave(monkeypatch):
    import torch

    from mgctag import listen
    from mgctag.pool import Decoded

    clock = [0.0]
    monkeypatch.setattr(listen, "usable_cpus", lambda: 4)
    monkeypatch.setattr(listen.time, "perf_counter", lambda: clock[0])
    before = torch.get_num_threads()
    seen = []

    def files(cpu_per_second):  # one file per second of the run, each costing that much decoding
        for _ in range(4):
            clock[0] += 1.0
            yield Decoded(Path("x.flac"), cpu_s=cpu_per_second)

    with listen._ThreadShare(workers=2) as share:
        assert torch.get_num_threads() == 2  # before any measurement
        for cost in (2.0, 0.1, 1.0, 3.8):
            for d in files(cost):
                share.add(d.cpu_s)
            seen.append(torch.get_num_threads())
    assert seen == [2, 4, 3, 1]
    assert torch.get_num_threads() == before


def test_without_decoding_workers_torch_keeps_every_core(monkeypatch):
    import torch

    from mgctag import listen
    from mgctag.pool import Decoded

    monkeypatch.setattr(listen, "usable_cpus", lambda: 3)
    with listen._ThreadShare(workers=0) as share:
        for d in [Decoded(Path("x.flac"), cpu_s=50.0)] * 3:
            share.add(d.cpu_s)
        assert torch.get_num_threads() == 3


def test_a_decoded_file_says_what_its_decoding_cost(tmp_path):
    from mgctag.pool import DecodeJob, WindowSpec

    song = audiogen.write_audio(tmp_path / "song.flac", audiogen.tone(6.0, 22050, 440.0), 22050)
    d = DecodeJob(WindowSpec(22050, 22050, 3))(song)
    assert not d.error and 0.0 < d.cpu_s < 30.0


def test_a_kept_file_shows_the_genre_kept_and_the_guess_in_the_note(tmp_path, band_model):
    users = {"blues.flac": "Blues", "low.flac": "Low"}
    for name, genre in users.items():
        p = audiogen.make(tmp_path / name, seconds=2.5, sr=22050, freq=LOW)
        f = mutagen.File(p)
        f["genre"] = [genre]
        f.save()
    results = {p.name: r for p, r in run(tmp_path, band_model, albums="off").items()}
    blues, low = results["blues.flac"], results["low.flac"]
    assert (blues.status, blues.genre, blues.confidence) == ("kept", "Blues", None)  # the model cannot name Blues
    assert blues.note == "a genre mgctag did not write; it hears Low (1.00) (--overwrite replaces it)"
    assert (low.status, low.genre) == ("kept", "Low") and low.confidence > 0.9
    assert low.note.startswith("mgctag hears the same: Low") and "--overwrite" not in low.note


def test_top_k_says_why_a_genre_was_not_written(tmp_path, band_model):
    p = audiogen.make(tmp_path / "a.flac", seconds=2.5, sr=22050, freq=LOW)
    r = run(tmp_path, band_model, top_k=2, min_confidence=0.3)[p]
    assert r.status == "would-tag" and [g for g, _ in r.genres] == ["Low", "High"]  # the report lists both
    assert r.note == "not written: High (0.000) and below, under --min-confidence 0.3"
    assert run(tmp_path, band_model, top_k=2, min_confidence=0.0)[p].note == ""
