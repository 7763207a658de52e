"""undo: a run's changes come back out, exactly, and only where nothing else changed them since."""

from __future__ import annotations

import audiogen
import pytest
from typer.testing import CliRunner

from mgctag import tags
from mgctag.cli import app
from mgctag.decode import audio_digest
from mgctag.errors import MgctagError
from mgctag.scanner import ScanOptions, scan
from mgctag.state import State, Values
from mgctag.undo import pick_run, undo

LOW, HIGH = 150.0, 5000.0


def values(p):
    return Values.of(tags.read(p))


@pytest.fixture
def lib(tmp_path):
    """Files with different starting points: no tags, a user's genre, an earlier mgctag result."""
    root = tmp_path / "lib"
    root.mkdir()
    audiogen.make(root / "bare.mp3", seconds=2.5, freq=LOW)
    users = audiogen.make(root / "users.flac", seconds=2.5, freq=HIGH)
    tags.write(users, genres=["Polka", "Ska"], confidences=None, model_id=None)
    ours = audiogen.make(root / "ours.m4a", seconds=2.5, freq=LOW)
    tags.write(ours, genres=["High"], confidences=[0.4], model_id="older-model")
    return root


def scan_all(root, model, db, **kw):
    kw.setdefault("workers", 0)
    return {r.path: r for r in scan([root], ScanOptions(model=str(model), state=db, write_tags=True, **kw))}


def undo_all(db, run_id=None, **kw):
    state = State(db)
    try:
        return {r.path: r for r in undo(state, pick_run(state, run_id), **kw)}
    finally:
        state.close()


def test_undo_restores_the_values_before_and_removes_added_fields(tmp_path, lib, band_model):
    files = sorted(lib.iterdir())
    before = {p: values(p) for p in files}
    digests = {p: audio_digest(p) for p in files}
    db = tmp_path / "state.sqlite"
    results = scan_all(lib, band_model, db, keep_existing=False)
    assert {r.status for r in results.values()} == {"tagged"}
    assert all(values(p) != before[p] for p in files)
    undone = undo_all(db)
    assert {r.status for r in undone.values()} == {"restored"} and set(undone) == set(files)
    for p in files:
        assert values(p) == before[p], p
        assert audio_digest(p) == digests[p]
    assert values(lib / "bare.mp3") == Values()  # no genre, no confidence, no model left behind
    # nothing is left to undo, and the next scan looks at the files again
    with pytest.raises(MgctagError, match="no run has changes left"):
        undo_all(db)
    assert {r.status for r in scan_all(lib, band_model, db, keep_existing=False).values()} == {"tagged"}


def test_files_changed_since_are_refused_unless_forced(tmp_path, lib, band_model):
    db = tmp_path / "state.sqlite"
    scan_all(lib, band_model, db, keep_existing=False)
    edited = lib / "bare.mp3"
    tags.write(edited, genres=["Jazz"], confidences=None, model_id=None)  # a tag editor, after the run
    undone = undo_all(db)
    assert undone[edited].status == "refused" and "--force" in undone[edited].reason
    assert values(edited).genres == ("Jazz",)
    assert {undone[p].status for p in undone if p != edited} == {"restored"}
    again = undo_all(db, force=True)  # only the refused file is left in the journal
    assert set(again) == {edited} and again[edited].status == "restored"
    assert values(edited) == Values()


def test_runs_undo_in_order_and_a_later_run_blocks_an_earlier_one(tmp_path, lib, band_model):
    db = tmp_path / "state.sqlite"
    original = {p: values(p) for p in lib.iterdir()}
    scan_all(lib, band_model, db, keep_existing=False)  # run 1
    after_one = {p: values(p) for p in lib.iterdir()}
    scan_all(lib, band_model, db, keep_existing=False, top_k=2)  # run 2 rewrites every file
    assert {r.status for r in undo_all(db, 1).values()} == {"refused"}
    assert {r.status for r in undo_all(db).values()} == {"restored"}  # newest first: run 2
    assert {p: values(p) for p in lib.iterdir()} == after_one
    assert {r.status for r in undo_all(db, 1).values()} == {"restored"}
    assert {p: values(p) for p in lib.iterdir()} == original


def test_a_file_already_back_to_its_values_is_not_rewritten(tmp_path, lib, band_model):
    db = tmp_path / "state.sqlite"
    scan_all(lib, band_model, db, keep_existing=False)
    p = lib / "users.flac"
    tags.write(p, genres=["Polka", "Ska"], confidences=None, model_id=None)  # put back by hand
    mtime = p.stat().st_mtime_ns
    assert undo_all(db)[p].status == "already"
    assert p.stat().st_mtime_ns == mtime


def test_missing_file_is_an_error_and_stays_in_the_journal(tmp_path, lib, band_model):
    db = tmp_path / "state.sqlite"
    scan_all(lib, band_model, db, keep_existing=False)
    (lib / "ours.m4a").unlink()
    undone = undo_all(db)
    assert (undone[lib / "ours.m4a"].status, undone[lib / "ours.m4a"].reason) == ("error", "file not found")
    assert set(undo_all(db)) == {lib / "ours.m4a"}


def test_cli_undo_list_and_exit_codes(tmp_path, lib, band_model):
    db = tmp_path / "state.sqlite"
    runner = CliRunner()

    def mgctag(*args):
        return runner.invoke(app, [str(a) for a in args])

    r = mgctag("undo", "--state", db)
    assert r.exit_code == 2 and "no state database at" in r.output and not db.exists()
    r = mgctag("scan", lib, "--model", band_model, "--workers", 0, "--state", db, "--write-tags", "--overwrite")
    assert r.exit_code == 0, r.output
    assert "(run 1)" in r.output
    r = mgctag("undo", "--state", db, "--list")
    assert r.exit_code == 0 and " 1  " in r.output and "3 seen" in r.output
    assert mgctag("undo", "--state", db, "--run", 7).exit_code == 2
    tags.write(lib / "bare.mp3", genres=["Jazz"], confidences=None, model_id=None)
    r = mgctag("undo", "--state", db)
    assert r.exit_code == 1 and "refused" in r.output and "2 restored" in r.output
    r = mgctag("undo", "--state", db, "--force")
    assert r.exit_code == 0 and "1 restored" in r.output
    assert values(lib / "bare.mp3") == Values()
    r = mgctag("undo", "--state", db)
    assert r.exit_code == 0 and "no run has changes left" in r.output


@pytest.mark.parametrize("args", [(), ("--list",), ("--run", 1)], ids=["undo", "list", "run"])
@pytest.mark.parametrize("how", ["option", "env"])
def test_undo_never_creates_a_state_database(args, how, tmp_path, monkeypatch):
    db = tmp_path / "no" / "such" / "state.sqlite"
    if how == "env":
        monkeypatch.setenv("MGCTAG_STATE", str(db))
    r = CliRunner().invoke(app, ["undo", *map(str, args)] + (["--state", str(db)] if how == "option" else []))
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: no state database at {db}") and "Traceback" not in r.output
    assert not (tmp_path / "no").exists()


def test_undo_refuses_files_that_are_not_its_database(tmp_path):
    import sqlite3

    other = tmp_path / "photos.sqlite"  # another program's database: left as it was
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE albums (name TEXT)")
    con.close()
    before = other.read_bytes()
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database\n" * 100)
    for path, message in ((other, "is not an mgctag state database"), (text, "file is not a database")):
        for args in ((), ("--list",)):
            r = CliRunner().invoke(app, ["undo", "--state", str(path), *args])
            assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
    assert other.read_bytes() == before and not (tmp_path / "photos.sqlite-wal").exists()
    assert text.read_text() == "not a database\n" * 100
    with pytest.raises(MgctagError, match="no state database"):
        State(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_an_unexpected_failure_costs_one_file_not_the_undo(tmp_path, lib, band_model, monkeypatch):
    db = tmp_path / "state.sqlite"
    scan_all(lib, band_model, db, keep_existing=False)
    from mgctag import safe

    real = safe.put_back

    def put_back(path, *args, **kw):
        if path.name == "users.flac":
            raise KeyError("a mutagen bug")
        return real(path, *args, **kw)

    monkeypatch.setattr(safe, "put_back", put_back)
    r = CliRunner().invoke(app, ["undo", "--state", str(db)])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert (
        "unexpected KeyError: 'a mutagen bug'" in r.output and "2 restored, 0 already, 0 refused, 1 error" in r.output
    )


# --- exactly what was there ----------------------------------------------------------------------


def _syncsafe(n: int) -> bytes:
    return bytes((n >> s) & 0x7F for s in (21, 14, 7, 0))


def with_v23_tag(path, frames: list[tuple[bytes, bytes]]):
    """Prepend an ID3v2.3 tag written byte by byte (mutagen would not write an empty TCON)."""
    body = b"".join(fid + len(data).to_bytes(4, "big") + b"\0\0" + data for fid, data in frames)
    path.write_bytes(b"ID3\x03\x00\x00" + _syncsafe(len(body) + 64) + body + bytes(64) + path.read_bytes())


@pytest.mark.parametrize("tcon", [b"\x0035", b"\x00(3)Dance", b"\x00\x00"])
def test_undo_restores_the_frames_own_text(tmp_path, band_model, tcon):
    """mutagen reads TCON "35" as "House" and "(3)Dance" as "Dance", and drops an empty TCON when
    it saves. Undo puts back the frame's own text and encoding, the empty frame too."""
    from mutagen.id3 import ID3

    root = tmp_path / "lib"
    root.mkdir()
    p = audiogen.make(root / "song.mp3", seconds=2.5, freq=LOW)
    with_v23_tag(p, [(b"TIT2", b"\x00Title"), (b"TCON", tcon)])
    before = {k: repr(v) for k, v in ID3(p, translate=False).items()}
    assert "TCON" in before
    db = tmp_path / "state.sqlite"
    assert [r.status for r in scan_all(root, band_model, db, keep_existing=False).values()] == ["tagged"]
    assert ID3(p, translate=False)["TCON"].text == ["Low"]
    assert [r.status for r in undo_all(db).values()] == ["restored"]
    after = ID3(p, translate=False)
    assert after.version == (2, 3, 0)
    assert {k: repr(v) for k, v in after.items()} == before  # TCON(encoding=LATIN1, text=[...]) included


def test_undo_keeps_a_vorbis_keys_spelling(tmp_path, band_model):
    import mutagen

    root = tmp_path / "lib"
    root.mkdir()
    p = audiogen.make(root / "song.flac", seconds=2.5, freq=LOW)
    f = mutagen.File(p)
    f["Genre"] = ["Polka", "Ska"]
    f.save()
    db = tmp_path / "state.sqlite"
    scan_all(root, band_model, db, keep_existing=False)
    undo_all(db)
    assert [(k, v) for k, v in mutagen.File(p).tags if k.lower() == "genre"] == [("Genre", "Polka"), ("Genre", "Ska")]


def test_rows_journalled_without_a_snapshot_still_undo(tmp_path, lib, band_model):
    """Journals from older versions hold only the values as mgctag read them: those come back."""
    import sqlite3

    files = sorted(lib.iterdir())
    before = {p: values(p) for p in files}
    db = tmp_path / "state.sqlite"
    scan_all(lib, band_model, db, keep_existing=False)
    con = sqlite3.connect(db)
    for path, text in con.execute("SELECT path, before FROM journal").fetchall():
        old = {k: v for k, v in __import__("json").loads(text).items() if k != "raw"}
        con.execute("UPDATE journal SET before = ? WHERE path = ?", (__import__("json").dumps(old), path))
    con.execute("DELETE FROM originals")  # nor did they keep the original bytes
    con.commit()
    con.close()
    assert {r.status for r in undo_all(db).values()} == {"restored"}
    assert {p: values(p) for p in files} == before
