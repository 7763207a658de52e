"""Incremental state: a re-run skips unchanged files by stat alone; changes, moves and deletions are seen."""

from __future__ import annotations

import os
import shutil

import audiogen
import pytest

from mgctag import tags
from mgctag.analyser import Analyser
from mgctag.decide import UNCHANGED_NOTE
from mgctag.scanner import ScanOptions, _settings, scan
from mgctag.state import State, Values, key, settings_key

LOW, HIGH = 150.0, 5000.0


def library(root, n=4):
    root.mkdir(parents=True, exist_ok=True)
    fmts = ("flac", "mp3", "wav", "ogg")
    return [audiogen.make(root / f"{i}.{fmts[i % 4]}", seconds=2.5, freq=(LOW, HIGH)[i % 2], seed=i) for i in range(n)]


def run(root, model, state, **kw):
    kw.setdefault("workers", 0)
    return {r.path: r for r in scan([root], ScanOptions(model=str(model), state=state, **kw))}


def test_rerun_skips_unchanged_files_without_decoding_or_writing(tmp_path, band_model, decoded):
    files = library(tmp_path / "lib")
    db = tmp_path / "state.sqlite"
    first = run(tmp_path / "lib", band_model, db, write_tags=True)
    assert {r.status for r in first.values()} == {"tagged"} and sorted(decoded) == sorted(files)
    stats = {p: p.stat() for p in files}
    decoded.clear()
    again = run(tmp_path / "lib", band_model, db, write_tags=True)
    assert decoded == []
    for p in files:
        r = again[p]
        assert (r.status, r.note) == ("unchanged", UNCHANGED_NOTE)  # what the last run wrote, not heard again
        assert r.genres == first[p].genres and r.model == "band"
        assert (p.stat().st_mtime_ns, p.stat().st_ino) == (stats[p].st_mtime_ns, stats[p].st_ino)


def test_changed_moved_and_deleted_files(tmp_path, band_model, decoded):
    lib = tmp_path / "lib"
    a, b, c, d = library(lib)
    db = tmp_path / "state.sqlite"
    run(lib, band_model, db, write_tags=True)
    decoded.clear()
    st = a.stat()
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched: analysed again
    (lib / "sub").mkdir()
    moved = lib / "sub" / b.name
    b.rename(moved)  # moved: analysed at its new path
    c.unlink()  # deleted: its row goes
    results = run(lib, band_model, db, write_tags=True)
    assert sorted(decoded) == sorted([a, moved])
    assert results[a].status == "unchanged" and results[moved].status == "unchanged"
    assert results[d].status == "unchanged"
    state = State(db)
    rows = {bytes(p) for (p,) in state.db.execute("SELECT path FROM files")}
    state.close()
    assert rows == {key(a), key(moved), key(d)}


def test_prune_only_touches_the_scanned_roots(tmp_path, band_model):
    one, two = library(tmp_path / "one", 2), library(tmp_path / "two", 2)
    db = tmp_path / "state.sqlite"
    run(tmp_path / "one", band_model, db)
    run(tmp_path / "two", band_model, db)
    one[0].unlink()
    run(tmp_path / "two", band_model, db)  # a scan of two/ leaves one/'s rows alone, even a stale one
    state = State(db)
    assert state.prune([tmp_path / "one"], [one[1]]) == 1
    assert state.prune([tmp_path / "one"], [one[1]]) == 0
    rows = {bytes(p) for (p,) in state.db.execute("SELECT path FROM files")}
    assert rows == {key(one[1]), key(two[0]), key(two[1])}
    state.close()


def test_rescan_and_changed_settings_analyse_again(tmp_path, band_model, decoded):
    files = library(tmp_path / "lib", 2)
    db = tmp_path / "state.sqlite"
    run(tmp_path / "lib", band_model, db)
    for kw in ({"rescan": True}, {"top_k": 2}, {"min_confidence": 0.5}, {"segments": 1}, {"vote": "majority"}):
        decoded.clear()
        run(tmp_path / "lib", band_model, db, **kw)
        assert sorted(decoded) == sorted(files), kw
    decoded.clear()
    run(tmp_path / "lib", band_model, db, vote="majority")
    assert decoded == []


def test_weights_are_fingerprinted_by_content_not_name(tmp_path, band_model):
    opts = dict(top_k=1, vote="mean")
    before = settings_key(band_model, **opts)
    assert settings_key(band_model, **opts) == before
    assert settings_key(band_model, **{**opts, "top_k": 2}) != before
    with open(band_model, "ab") as f:  # same name, other bytes (retrained weights)
        f.write(b" ")
    assert settings_key(band_model, **opts) != before


def test_dry_run_does_not_excuse_a_writing_run(tmp_path, band_model, decoded):
    files = library(tmp_path / "lib", 2)
    db = tmp_path / "state.sqlite"
    assert {r.status for r in run(tmp_path / "lib", band_model, db).values()} == {"would-tag"}
    decoded.clear()
    again = run(tmp_path / "lib", band_model, db).values()  # a second dry run shows the answer it stored
    assert {(r.status, r.note) for r in again} == {("would-tag", UNCHANGED_NOTE)} and all(r.genre for r in again)
    assert decoded == []
    results = run(tmp_path / "lib", band_model, db, write_tags=True)
    assert {r.status for r in results.values()} == {"tagged"} and sorted(decoded) == sorted(files)
    assert all(tags.read(p).model == "band" for p in files)


def test_errors_are_retried_and_kept_rows_are_not(tmp_path, band_model, decoded):
    lib = tmp_path / "lib"
    (good,) = library(lib, 1)
    kept = audiogen.make(lib / "kept.flac", seconds=2.5, freq=LOW)
    tags.write(kept, genres=["Polka"], confidences=None, model_id=None)
    bad = lib / "bad.mp3"
    bad.write_bytes(b"\xff\xfb" + bytes(500))
    db = tmp_path / "state.sqlite"
    first = run(lib, band_model, db, write_tags=True)
    assert (first[good].status, first[kept].status, first[bad].status) == ("tagged", "kept", "error")
    decoded.clear()
    again = run(lib, band_model, db, write_tags=True)
    assert decoded == [bad] and again[bad].status == "error"
    assert again[kept].status == "kept" and tags.read(kept).genres == ("Polka",)
    assert again[kept].note == first[kept].note  # the reason is kept with the answer


def test_state_survives_reopening_and_takes_any_file_name(tmp_path, band_model):
    lib = tmp_path / "lib"
    lib.mkdir()
    odd = lib / os.fsdecode(b"caf\xe9 \xff.flac")
    audiogen.make(lib / "plain.flac", seconds=2.5, freq=HIGH).rename(odd)  # libsndfile cannot create it
    db = tmp_path / "deeper" / "state.sqlite"  # its folder is created
    assert run(lib, band_model, db, write_tags=True)[odd].status == "tagged"
    assert run(lib, band_model, db, write_tags=True)[odd].status == "unchanged"
    state = State(db)
    (run_row,) = [r for r in state.runs() if r.id == 1]
    assert run_row.outcome == "done" and run_row.counts == {"tagged": 1} and run_row.changed == 1
    (entry,) = state.journal(1)
    assert entry.path == odd and entry.before == Values() and entry.after.genres == ("High",)
    assert entry.state == "done"
    state.close()


def test_many_unchanged_files_cost_one_stat_each(tmp_path, band_model, decoded):
    """2,000 files known to the state: all answered from it, none sent to the decoder."""
    lib = tmp_path / "lib"
    lib.mkdir()
    db = tmp_path / "state.sqlite"
    options = ScanOptions(model=str(band_model), state=db, workers=0)
    settings = _settings(Analyser.load(str(band_model)), options)
    state = State(db)
    run_id = state.start_run(roots=[lib], model="band", settings=settings, write_tags=False, writing={})
    from mgctag.result import FileResult

    paths = []
    for i in range(2000):
        p = lib / f"{i:04d}.wav"
        p.write_bytes(b"")  # not even audio: decoding it would fail
        st = p.stat()
        state.record(
            FileResult(p, "unchanged", [("Low", 0.9)], model="band"),
            (st.st_size, st.st_mtime_ns),
            run_id=run_id,
            settings=settings,
        )
        paths.append(p)
    state.close()
    results = list(scan([lib], options))
    assert decoded == [] and len(results) == 2000
    assert {(r.status, r.note, r.genre) for r in results} == {("unchanged", UNCHANGED_NOTE, "Low")}


def test_library_use_without_a_state_file_keeps_nothing(tmp_path, band_model, decoded):
    files = library(tmp_path / "lib", 2)
    run(tmp_path / "lib", band_model, None, write_tags=True)
    decoded.clear()
    again = run(tmp_path / "lib", band_model, None, write_tags=True)
    assert {r.status for r in again.values()} == {"unchanged"} and sorted(decoded) == sorted(files)
    assert not list(tmp_path.glob("*.sqlite*"))


def test_state_database_from_a_newer_mgctag_is_refused(tmp_path):
    import sqlite3

    from mgctag.errors import MgctagError

    db = tmp_path / "state.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version=99")
    con.close()
    with pytest.raises(MgctagError, match="newer mgctag"):
        State(db)


def test_copy_of_a_tagged_file_is_new_to_the_state(tmp_path, band_model, decoded):
    (a,) = library(tmp_path / "lib", 1)
    db = tmp_path / "state.sqlite"
    run(tmp_path / "lib", band_model, db, write_tags=True)
    shutil.copy2(a, tmp_path / "lib" / "copy.flac")  # same size and mtime, other path
    decoded.clear()
    results = run(tmp_path / "lib", band_model, db, write_tags=True)
    # the copy joins a's folder album, so a is decided again from its kept evidence, not heard again
    assert decoded == [tmp_path / "lib" / "copy.flac"] and results[a].status == "unchanged"


def test_a_schema_1_database_gains_the_evidence_column_and_keeps_its_rows(tmp_path, band_model, decoded):
    """Rows from before the evidence column still skip their files; a new run fills it in."""
    import sqlite3

    files = library(tmp_path / "lib", 2)
    db = tmp_path / "state.sqlite"
    run(tmp_path / "lib", band_model, db, write_tags=True)
    con = sqlite3.connect(db)  # make it the database an mgctag of schema 1 left
    con.execute("ALTER TABLE files DROP COLUMN evidence")
    con.execute("ALTER TABLE files DROP COLUMN note")
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()
    decoded.clear()
    again = run(tmp_path / "lib", band_model, db, write_tags=True)
    assert decoded == [] and {r.status for r in again.values()} == {"unchanged"}
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM files WHERE evidence IS NULL").fetchone()[0] == len(files)
    con.close()
