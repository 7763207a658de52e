"""Discovery: what is found, in what order, and what is reported instead of opened."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mgctag import discover as discover_mod
from mgctag.discover import AUDIO_EXTENSIONS, Found, discover


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def names(found, root: Path) -> list[str]:
    return [os.path.relpath(f.path, root) for f in found]


def test_extensions_cover_the_issue_list():
    for ext in ".mp3 .flac .ogg .oga .opus .m4a .mp4 .aac .wav .aif .aiff .wma".split():
        assert ext in AUDIO_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in AUDIO_EXTENSIONS)
    assert ".txt" not in AUDIO_EXTENSIONS and ".jpg" not in AUDIO_EXTENSIONS


def test_recursive_sorted_case_insensitive_and_only_audio(tmp_path):
    for rel in ["b/2.FLAC", "b/1.mp3", "a.Mp3", "c/d/e.OgG", "c/cover.jpg", "notes.txt", "z.wav", "c/d/x.m4a"]:
        touch(tmp_path / rel)
    found = list(discover([tmp_path]))
    assert all(f.problem is None and f.path.is_absolute() for f in found)
    assert names(found, tmp_path) == ["a.Mp3", "b/1.mp3", "b/2.FLAC", "c/d/e.OgG", "c/d/x.m4a", "z.wav"]


def test_hidden_files_and_folders_skipped_unless_asked(tmp_path):
    touch(tmp_path / ".hidden.mp3")
    touch(tmp_path / ".cache" / "a.mp3")
    touch(tmp_path / "shown.mp3")
    assert names(discover([tmp_path]), tmp_path) == ["shown.mp3"]
    assert sorted(names(discover([tmp_path], include_hidden=True), tmp_path)) == [
        ".cache/a.mp3",
        ".hidden.mp3",
        "shown.mp3",
    ]


def test_root_file_yielded_even_hidden_or_odd_extension(tmp_path):
    odd = touch(tmp_path / ".secret.bin")
    assert list(discover([odd])) == [Found(odd)]


def test_missing_root_raises_before_anything(tmp_path):
    touch(tmp_path / "a.mp3")
    with pytest.raises(FileNotFoundError):
        list(discover([tmp_path, tmp_path / "nope"]))


def test_relative_root_gives_absolute_paths(tmp_path, monkeypatch):
    touch(tmp_path / "m" / "a.mp3")
    monkeypatch.chdir(tmp_path)
    assert [f.path for f in discover(["m"])] == [tmp_path / "m" / "a.mp3"]


def test_symlinked_folder_followed_only_when_asked(tmp_path):
    touch(tmp_path / "elsewhere" / "x.mp3")
    lib = tmp_path / "lib"
    touch(lib / "own.mp3")
    (lib / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert names(discover([lib]), lib) == ["own.mp3"]
    found = list(discover([lib], follow_symlinks=True))
    assert names(found, lib) == ["link/x.mp3", "own.mp3"]
    assert found[0].path == lib / "link" / "x.mp3"  # as found, not resolved


def test_symlink_to_file_yielded_once_with_its_target(tmp_path):
    real = touch(tmp_path / "a.mp3")
    (tmp_path / "b.mp3").symlink_to(real)
    (tmp_path / "c.flac").symlink_to(tmp_path / "nothing-here.flac")  # broken
    found = list(discover([tmp_path]))
    assert found == [Found(real), Found(tmp_path / "c.flac", "broken symlink")]
    # the link alone is yielded (not resolved)
    assert list(discover([tmp_path / "b.mp3"])) == [Found(tmp_path / "b.mp3")]


def test_same_file_through_overlapping_roots_yielded_once(tmp_path):
    f = touch(tmp_path / "sub" / "a.mp3")
    os.link(f, tmp_path / "sub" / "b.mp3")  # a hard link is the same real file too
    assert list(discover([tmp_path, tmp_path / "sub", f])) == [Found(f)]


def test_root_that_is_a_broken_or_looping_symlink(tmp_path):
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert list(discover([tmp_path / "gone", tmp_path / "loop"])) == [
        Found(tmp_path / "gone", "broken symlink"),
        Found(tmp_path / "loop", "symlink loop"),
    ]


def test_root_symlink_to_folder_is_walked(tmp_path):
    touch(tmp_path / "real" / "a.flac")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert list(discover([tmp_path / "link"])) == [Found(tmp_path / "link" / "a.flac")]


def test_symlink_loop_file_and_folder_loops(tmp_path):
    (tmp_path / "self.mp3").symlink_to(tmp_path / "self.mp3")
    touch(tmp_path / "d" / "a.mp3")
    (tmp_path / "d" / "up").symlink_to(tmp_path, target_is_directory=True)  # back to the top
    (tmp_path / "d" / "again").symlink_to(tmp_path / "d", target_is_directory=True)
    plain = list(discover([tmp_path]))
    assert plain == [Found(tmp_path / "d" / "a.mp3"), Found(tmp_path / "self.mp3", "symlink loop")]
    followed = list(discover([tmp_path], follow_symlinks=True))  # terminates; loops reported once each
    assert Found(tmp_path / "d" / "a.mp3") in followed
    loops = [f for f in followed if f.problem and "loop" in f.problem]
    assert {f.path.name for f in loops} == {"up", "again", "self.mp3"}
    assert len(followed) == 4


def test_folder_named_like_audio_is_walked(tmp_path):
    touch(tmp_path / "album.flac" / "01.flac")
    assert list(discover([tmp_path])) == [Found(tmp_path / "album.flac" / "01.flac")]


def test_non_utf8_names(tmp_path):
    root = os.fsencode(tmp_path)
    folder = os.path.join(root, b"caf\xe9")
    os.mkdir(folder)
    with open(os.path.join(folder, b"\xff\xfesong.mp3"), "wb") as f:
        f.write(b"x")
    found = list(discover([tmp_path]))
    assert len(found) == 1 and found[0].problem is None
    assert os.fsencode(found[0].path) == os.path.join(folder, b"\xff\xfesong.mp3")
    assert os.path.isfile(found[0].path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_reported_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.mp3")  # opening it for reading would block forever
    os.mkfifo(tmp_path / "pipe.txt")
    touch(tmp_path / "z.mp3")
    assert list(discover([tmp_path])) == [
        Found(tmp_path / "pipe.mp3", "not a regular file (FIFO)"),
        Found(tmp_path / "z.mp3"),
    ]
    assert list(discover([tmp_path / "pipe.txt"])) == [Found(tmp_path / "pipe.txt", "not a regular file (FIFO)")]


def test_unreadable_folder_reported_and_walk_goes_on(tmp_path, monkeypatch):
    touch(tmp_path / "a" / "1.mp3")
    touch(tmp_path / "locked" / "2.mp3")
    touch(tmp_path / "z" / "3.mp3")
    real_scandir = os.scandir

    def scandir(path):  # chmod 000 does not stop root, so deny the way the OS would
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(discover_mod.os, "scandir", scandir)
    found = list(discover([tmp_path]))
    assert found == [
        Found(tmp_path / "a" / "1.mp3"),
        Found(tmp_path / "locked", "permission denied reading folder"),
        Found(tmp_path / "z" / "3.mp3"),
    ]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_folder_and_file_for_real(tmp_path):
    locked = touch(tmp_path / "locked" / "2.mp3").parent
    secret = touch(tmp_path / "secret.mp3")
    locked.chmod(0)
    secret.chmod(0)
    try:
        found = list(discover([tmp_path]))
    finally:
        locked.chmod(0o755)
    assert Found(locked, "permission denied reading folder") in found
    assert Found(secret, "permission denied") in found


def test_unreadable_file_flagged(tmp_path, monkeypatch):
    f = touch(tmp_path / "secret.mp3")
    monkeypatch.setattr(discover_mod.os, "access", lambda p, mode: Path(p) != f)
    assert list(discover([tmp_path])) == [Found(f, "permission denied")]
