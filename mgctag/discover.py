"""Find the audio files under the folders (and the files) a user names.

Only the file type is looked at here, never the contents: a FIFO named song.mp3 would block
whoever opened it, so it is reported, not opened. What cannot be used comes back as a Found with
a one-line `problem`, so a scan reports it and goes on.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mgctag import formats
from mgctag.decode.common import file_kind

AUDIO_EXTENSIONS: frozenset[str] = formats.EXTENSIONS  # lower-case, with dot: the format table's


@dataclass(frozen=True)
class Found:
    path: Path  # as found (absolute), not resolved through symlinks
    problem: str | None = None  # one-line reason when it cannot be used


def is_audio_name(name: str | bytes) -> bool:
    """Whether a file name has an audio extension (case-insensitive)."""
    return os.path.splitext(os.fsdecode(name))[1].lower() in AUDIO_EXTENSIONS


def discover(
    roots: Sequence[str | Path], *, include_hidden: bool = False, follow_symlinks: bool = False
) -> Iterator[Found]:
    """Audio files under `roots`, depth first, each folder's entries sorted by name.

    A root that is a file is yielded whatever its name (the user named it); a root that does not
    exist raises FileNotFoundError before anything is yielded. Hidden entries (".name") are
    skipped and symlinked folders are not entered unless asked; symlinks to files are yielded.
    A file reached twice (links, overlapping roots) is yielded once, and a folder is walked once,
    which also stops loops (bind mounts, followed symlinks).
    """
    paths = [Path(os.path.abspath(os.fsdecode(r))) for r in roots]
    for p in paths:
        if not os.path.lexists(p):
            raise FileNotFoundError(errno.ENOENT, "no such file or folder", str(p))
    walk = _Walk(include_hidden=include_hidden, follow_symlinks=follow_symlinks)
    for p in paths:
        yield from walk.root(p)


class _Walk:
    """One discovery run: the folders and files already seen, shared across roots."""

    def __init__(self, *, include_hidden: bool, follow_symlinks: bool):
        self.include_hidden, self.follow_symlinks = include_hidden, follow_symlinks
        self.folders: set[tuple[int, int]] = set()  # (st_dev, st_ino) of folders walked
        self.files: set[tuple[int, int]] = set()  # ... and of files yielded

    def root(self, path: Path) -> Iterator[Found]:
        try:
            st = os.stat(path)
        except OSError as e:
            yield Found(path, _stat_problem(e, path))
            return
        if stat.S_ISDIR(st.st_mode):
            yield from self._folder(path, st, frozenset())
        else:
            yield from self._file(path, st)

    def _file(self, path: Path, st: os.stat_result) -> Iterator[Found]:
        if not stat.S_ISREG(st.st_mode):
            yield Found(path, f"not a regular file ({file_kind(st.st_mode)})")
            return
        key = (st.st_dev, st.st_ino)
        if key in self.files:
            return
        self.files.add(key)
        yield Found(path, None if os.access(path, os.R_OK) else "permission denied")

    def _folder(self, path: Path, st: os.stat_result, parents: frozenset) -> Iterator[Found]:
        key = (st.st_dev, st.st_ino)
        if key in parents:
            yield Found(path, "folder loop (leads back to a folder above it)")
            return
        if key in self.folders:
            return
        self.folders.add(key)
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except PermissionError:
            yield Found(path, "permission denied reading folder")
            return
        except OSError as e:
            yield Found(path, f"cannot read folder ({e.strerror})")
            return
        parents = parents | {key}
        for entry in entries:
            if entry.name.startswith(".") and not self.include_hidden:
                continue
            audio = is_audio_name(entry.name)
            if not audio and not entry.is_dir():  # skip covers, playlists... without a stat
                continue
            child = path / entry.name
            try:
                st = entry.stat()  # follows symlinks; never opens the file
            except OSError as e:
                if audio:
                    yield Found(child, _stat_problem(e, child))
                continue
            if stat.S_ISDIR(st.st_mode):
                if self.follow_symlinks or not entry.is_symlink():
                    yield from self._folder(child, st, parents)
            elif audio:
                yield from self._file(child, st)


def _stat_problem(e: OSError, path: Path) -> str:
    if e.errno == errno.ENOENT:
        return "broken symlink" if os.path.islink(path) else "vanished while scanning"
    if e.errno == errno.ELOOP:
        return "symlink loop"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return f"cannot read ({e.strerror})"
