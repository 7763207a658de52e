"""Safe writes: a user's file is either fully rewritten and verified, or left byte-identical."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest
from audiogen import make

from mgctag import safe, tags
from mgctag.decode import audio_digest
from mgctag.errors import TagError

GENRES, CONFS, MODEL = ["Rock", "Jazz"], [0.8234, 0.1], "musicnn-msd"
VALUES = dict(genres=GENRES, confidences=CONFS, model_id=MODEL)


@pytest.fixture
def song(tmp_path):
    """A FLAC with a tag of its own, in a folder of its own."""
    folder = tmp_path / "music"
    folder.mkdir()
    path = make(folder / "Motörhead — Ærø 東京.flac", seconds=1.0)
    tags.write(path, genres=["Old Genre"], confidences=None, model_id=None)
    return path


def _expect(path):
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if safe.TEMP_PATTERN.match(p.name) or ".mgctag-" in p.name)


def _fails(path, match, **kwargs):
    """write_safely must raise a one-line TagError, leave `path` byte-identical and no temp behind."""
    data = path.read_bytes() if path.exists() else None
    with pytest.raises(TagError, match=match) as err:
        safe.write_safely(path, **{**VALUES, **kwargs})
    assert "\n" not in str(err.value)
    if data is not None:
        assert path.read_bytes() == data
    assert _temps(path.parent) == []


# --- the write itself ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mp3", "m4a", "wav"])
def test_writes_verifies_and_keeps_audio(tmp_path, fmt):
    path = make(tmp_path / f"a.{fmt}", seconds=1.0)
    digest = audio_digest(path)
    assert safe.write_safely(path, **VALUES, expect=_expect(path)) is True
    state = tags.read(path)
    assert (state.genres, state.confidences, state.model) == (tuple(GENRES), ("0.823", "0.100"), MODEL)
    assert audio_digest(path) == digest
    assert _temps(tmp_path) == []


def test_no_write_when_nothing_would_change(song):
    safe.write_safely(song, **VALUES)
    data, st = song.read_bytes(), os.stat(song)
    assert safe.write_safely(song, **VALUES) is False
    assert song.read_bytes() == data
    assert (os.stat(song).st_ino, os.stat(song).st_mtime_ns) == (st.st_ino, st.st_mtime_ns)


def test_keeps_permissions_and_replaces_atomically(song):
    os.chmod(song, 0o640)
    ino = os.stat(song).st_ino
    safe.write_safely(song, **VALUES)
    st = os.stat(song)
    assert st.st_mode & 0o777 == 0o640
    assert st.st_ino != ino  # a new file renamed over the old name, never rewritten in place


def test_keep_mtime(song):
    old = 1_000_000_000_000_000_000  # 2001-09-09, in ns
    os.utime(song, ns=(old, old))
    safe.write_safely(song, **VALUES, keep_mtime=True)
    assert os.stat(song).st_mtime_ns == old
    safe.write_safely(song, genres=["Pop"], confidences=[0.5], model_id=MODEL)
    assert os.stat(song).st_mtime_ns != old


def test_id3v23_passes_through(tmp_path):
    path = make(tmp_path / "a.mp3", seconds=1.0)
    safe.write_safely(path, **VALUES, id3v23=True)
    assert path.read_bytes()[:4] == b"ID3\x03"


# --- refusals --------------------------------------------------------------------------------


def test_read_only_file(song):
    os.chmod(song, 0o444)
    _fails(song, "read-only file")


def test_read_only_folder(song):
    os.chmod(song.parent, 0o555)
    try:
        _fails(song, "read-only folder")
    finally:
        os.chmod(song.parent, 0o755)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bite as root")
def test_folder_without_write_access(song):
    os.chmod(song.parent, 0o500)  # owner may list and enter, not create
    try:
        _fails(song, "read-only folder")
    finally:
        os.chmod(song.parent, 0o755)


def test_changed_since_analysis(song):
    size, mtime = _expect(song)
    _fails(song, "changed since it was analysed", expect=(size, mtime - 1))
    _fails(song, "changed since it was analysed", expect=(size + 1, mtime))


def test_changed_during_the_write(song, monkeypatch):
    """Another program edits the file while mgctag tags its copy: the edit wins, nothing is lost."""
    real_write = tags.write

    def edit_then_write(path, **kwargs):
        with open(song, "ab") as fh:
            fh.write(b"\0")
        real_write(path, **kwargs)

    monkeypatch.setattr(tags, "write", edit_then_write)
    with pytest.raises(TagError, match="changed since it was analysed"):
        safe.write_safely(song, **VALUES, expect=_expect(song))
    assert song.read_bytes().endswith(b"\0") and tags.read(song).genres == ("Old Genre",)
    assert _temps(song.parent) == []


def test_deleted_during_the_write(song, monkeypatch):
    real_write = tags.write

    def delete_then_write(path, **kwargs):
        song.unlink()
        real_write(path, **kwargs)

    monkeypatch.setattr(tags, "write", delete_then_write)
    with pytest.raises(TagError, match="deleted since it was analysed"):
        safe.write_safely(song, **VALUES)
    assert not song.exists() and list(song.parent.iterdir()) == []


def test_missing_file(tmp_path):
    _fails(tmp_path / "gone.flac", "file not found")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_not_a_regular_file(tmp_path):
    fifo = tmp_path / "pipe.flac"
    os.mkfifo(fifo)
    with pytest.raises(TagError, match="not a regular file"):
        safe.write_safely(fifo, **VALUES)


def test_unsupported_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not audio")
    _fails(path, "unsupported")


def test_unknown_hardlink_policy(song):
    with pytest.raises(ValueError):
        safe.write_safely(song, **VALUES, hardlinks="follow")


# --- links -----------------------------------------------------------------------------------


def test_hard_link_skipped_by_default(song):
    other = song.parent / "other name.flac"
    os.link(song, other)
    _fails(song, "hard-linked")
    assert os.stat(song).st_ino == os.stat(other).st_ino


def test_hard_link_break_rewrites_this_name_only(song):
    other = song.parent / "other name.flac"
    os.link(song, other)
    old = other.read_bytes()
    safe.write_safely(song, **VALUES, hardlinks="break")
    assert tags.read(song).genres == tuple(GENRES)
    assert other.read_bytes() == old and tags.read(other).genres == ("Old Genre",)
    assert os.stat(song).st_nlink == 1 and os.stat(other).st_nlink == 1


def test_symlink_writes_the_target_and_keeps_the_link(song, tmp_path):
    link = tmp_path / "link.flac"
    link.symlink_to(song)
    safe.write_safely(link, **VALUES)
    assert link.is_symlink() and os.readlink(link) == str(song)
    assert tags.read(song).genres == tuple(GENRES)
    assert _temps(tmp_path) == [] and _temps(song.parent) == []


# --- failures mid-write ----------------------------------------------------------------------


def test_failure_mid_write_leaves_original_and_no_temp(song, monkeypatch):
    seen = []

    def half_write(path, **kwargs):
        seen.append(path)
        with open(path, "r+b") as fh:  # damage the copy, as a crash half-way would
            fh.truncate(100)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(tags, "write", half_write)
    _fails(song, "input/output error")
    assert seen and seen[0].parent == song.parent  # the write went to a temp in the same folder
    assert seen[0].name.startswith(".") and safe.TEMP_PATTERN.match(seen[0].name)


def test_interrupt_mid_write_leaves_no_temp(song, monkeypatch):
    def interrupted(path, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tags, "write", interrupted)
    data = song.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        safe.write_safely(song, **VALUES)
    assert song.read_bytes() == data and _temps(song.parent) == []


def test_disk_full(song, monkeypatch):
    def full(src, dst):
        with open(dst, "wb") as fh:
            fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safe.shutil, "copyfile", full)
    _fails(song, "disk full")


def test_verification_catches_changed_audio(tmp_path, monkeypatch):
    """A tag writer that damaged the samples must never reach the user's file."""
    path = make(tmp_path / "a.wav", seconds=1.0)
    real_write = tags.write

    def write_and_damage(p, **kwargs):
        real_write(p, **kwargs)
        with open(p, "r+b") as fh:  # flip some samples in the middle of the data chunk
            fh.seek(os.path.getsize(p) // 2)
            chunk = fh.read(64)
            fh.seek(-64, os.SEEK_CUR)
            fh.write(bytes(b ^ 0x55 for b in chunk))

    monkeypatch.setattr(tags, "write", write_and_damage)
    _fails(path, "verification failed: audio differs")


def test_verification_catches_tags_that_do_not_read_back(song, monkeypatch):
    real_write = tags.write
    monkeypatch.setattr(tags, "write", lambda p, **kw: real_write(p, **{**kw, "genres": ["Pop", "Jazz"]}))
    _fails(song, "verification failed: tags")


def test_long_file_name(tmp_path):
    path = make(tmp_path / ("é" * 120 + ".flac"), seconds=0.5)  # 245 bytes: no room for a longer temp name
    safe.write_safely(path, **VALUES)
    assert tags.read(path).genres == tuple(GENRES) and _temps(tmp_path) == []


# --- temps a killed run left -----------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_cleanup_removes_stale_temps_only(tmp_path, monkeypatch):
    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f".song.flac.mgctag-{dead}-abcd1234.tmp.flac"
    live = tmp_path / f".song.flac.mgctag-{alive}-abcd1234.tmp.flac"
    keep = [
        "song.flac",
        ".hidden",
        f"song.flac.mgctag-{dead}-abcd1234.tmp.flac",  # not hidden
        f".song.flac.mgctag-{dead}-abc.tmp.flac",
        ".song.flac.mgctag-x-abcd1234.tmp.flac",
    ]
    for p in [stale, live, *(tmp_path / k for k in keep)]:
        p.write_bytes(b"x")
    (tmp_path / f".dir.mgctag-{dead}-abcd1234.tmp").mkdir()

    assert safe.cleanup_temps(tmp_path) == [stale]
    assert live.exists() and all((tmp_path / k).exists() for k in keep)

    monkeypatch.setattr(safe, "STALE_AFTER", -1.0)  # an old temp is stale whoever wrote it
    assert safe.cleanup_temps(tmp_path) == [live]
    assert all((tmp_path / k).exists() for k in keep)


def test_temp_of_a_killed_run_is_cleaned_by_the_next(song, monkeypatch):
    """Kill a write right after the copy (as SIGKILL would), rename its temp to a dead pid, clean up."""

    def killed(path, **kwargs):
        os.link(path, path.with_name(path.name.replace(f"-{os.getpid()}-", f"-{dead}-")))
        raise KeyboardInterrupt

    dead = _dead_pid()
    monkeypatch.setattr(tags, "write", killed)
    with pytest.raises(KeyboardInterrupt):
        safe.write_safely(song, **VALUES)
    left = [p for p in song.parent.iterdir() if p != song]
    assert len(left) == 1 and safe.TEMP_PATTERN.match(left[0].name)
    assert safe.cleanup_temps(song.parent) == left
    assert [p.name for p in song.parent.iterdir()] == [song.name]


def test_cleanup_of_missing_folder(tmp_path):
    assert safe.cleanup_temps(tmp_path / "nope") == []


def test_stale_age_uses_change_time(tmp_path):
    """keep_mtime back-dates a live temp's mtime; staleness must not be fooled by it."""
    live = tmp_path / f".a.flac.mgctag-{os.getpid()}-abcd1234.tmp.flac"
    live.write_bytes(b"x")
    os.utime(live, (time.time() - 10 * safe.STALE_AFTER,) * 2)
    assert safe.cleanup_temps(tmp_path) == [] and live.exists()
