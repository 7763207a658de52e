"""Write tags so a user's file is never half-written, truncated or silently replaced by a stranger.

The write goes to a hidden temporary copy in the same folder; the copy is flushed, fsynced and
verified (tags read back, audio identical to the original's) before one atomic rename puts it in
place. The audio is compared by what the decoder is fed (packets, or payload bytes: see
mgctag.decode.compare), and by decoding both files only when that cannot tell. Any failure deletes
the copy and leaves the original untouched, as a TagError
with a one-line reason. Choices:

- hard links: writing would give this name a new inode and leave the other names on the old
  content, so by default the file is skipped ("skip"); "break" accepts exactly that.
- symlinks: the link's target is written and the link itself is kept.
- undo: `keep(original, copy)` is called just before the rename, so the state can keep what the
  write replaces (mgctag.delta); `put_back` puts those exact bytes back the same safe way.
- read-only files and folders are respected even when running as root (no write bit -> error).
- temporary files carry the writer's pid; `cleanup_temps` removes those whose process is gone
  (a killed run) or that are older than STALE_AFTER (a run on another machine).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mgctag import decode, delta, tags
from mgctag.errors import MgctagError, TagError

HARDLINK_POLICIES = ("skip", "break")
TEMP_PATTERN = re.compile(r"^\..+\.mgctag-(?P<pid>\d+)-[a-z0-9_]{8}\.tmp(\.[^.]*)?$", re.DOTALL)
STALE_AFTER = 3600.0  # seconds: a temp this old is stale whatever its pid says
NAME_MAX = 255  # bytes in one file name on common file systems
_REASONS = {
    "ENOSPC": "disk full",
    "EDQUOT": "disk quota exceeded",
    "EROFS": "read-only file system",
    "EACCES": "permission denied",
    "EPERM": "permission denied",
    "ENOENT": "file not found",
    "ELOOP": "symlink loop",
    "ENAMETOOLONG": "file name too long",
    "EIO": "input/output error",
}
ERRNO_REASONS = {getattr(errno, name): reason for name, reason in _REASONS.items() if hasattr(errno, name)}
Keep = Callable[[Path, Path], None]  # keep(original, written copy): see write_safely


def write_safely(
    path: str | os.PathLike,
    *,
    genres: Sequence[str],
    confidences: Sequence[float] | None,
    model_id: str | None,
    id3v23: bool = False,
    keep_mtime: bool = False,
    expect: tuple[int, int] | None = None,
    hardlinks: str = "skip",
    witness: decode.Witness | None = None,
    keep: Keep | None = None,
) -> bool:
    """Set the genre and mgctag fields of `path` atomically; False when nothing would change.

    `expect` is (st_size, st_mtime_ns) seen when the file was analysed; a file that differs
    now is not written. `witness` is the file's decode.witness taken then (else taken here): the
    copy's audio must match it, so one that no longer fits the file can only refuse a write.
    `hardlinks` is "skip" (TagError) or "break" (rewrite this name only). `keep(original, copy)`
    is called with the real file and its verified copy before the rename (undo keeps what changes).
    Raises TagError with a one-line reason; the original is then untouched.
    """
    values = dict(genres=genres, confidences=confidences, model_id=model_id)

    def verify(state: tags.TagState) -> None:
        if tags.would_change(state, **values):
            raise TagError("verification failed: tags did not read back as written")

    return _rewrite(
        path,
        lambda state: tags.would_change(state, **values),
        lambda tmp: tags.write(tmp, **values, id3v23=id3v23),
        verify,
        keep_mtime=keep_mtime,
        expect=expect,
        hardlinks=hardlinks,
        witness=witness,
        keep=keep,
    )


def restore_safely(
    path: str | os.PathLike,
    raw: str,
    *,
    id3v23: bool = False,
    keep_mtime: bool = False,
    expect: tuple[int, int] | None = None,
    hardlinks: str = "skip",
) -> bool:
    """Put back the values of an exact snapshot (TagState.raw), atomically, as write_safely does;
    a tag the snapshot says was not there and that holds nothing else is removed."""

    def verify(state: tags.TagState) -> None:
        if state.raw is None or not tags.same_values(state.raw, raw):
            raise TagError("verification failed: tags did not read back as written")

    return _rewrite(
        path,
        lambda state: state.raw is None or not tags.same_values(state.raw, raw),
        lambda tmp: tags.restore(tmp, raw, id3v23=id3v23),
        verify,
        keep_mtime=keep_mtime,
        expect=expect,
        hardlinks=hardlinks,
    )


def put_back(
    path: str | os.PathLike,
    patch: delta.Patch,
    *,
    keep_mtime: bool = False,
    expect: tuple[int, int] | None = None,
    hardlinks: str = "skip",
) -> bool:
    """Give `path` back the original bytes a write replaced (undo), rebuilt from `path` and the kept
    `patch` into the temporary copy, which must hash as the original did and pass a write's checks
    (tags readable, audio identical) before the rename. TagError (the file untouched) otherwise."""

    def rebuild(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            delta.apply(path, patch, out)

    return _rewrite(
        path, lambda state: True, rebuild, lambda state: None, keep_mtime=keep_mtime, expect=expect, hardlinks=hardlinks
    )


def _rewrite(
    path,
    changes,
    edit,
    verify,
    *,
    keep_mtime: bool,
    expect: tuple[int, int] | None,
    hardlinks: str,
    witness: decode.Witness | None = None,
    keep: Keep | None = None,
) -> bool:
    """The safe write: `changes(state)` says whether to write at all, `edit(tmp)` changes the
    temporary copy, `verify(state)` raises unless the copy reads back as asked, `keep` (if given)
    sees the original and the finished copy last."""
    if hardlinks not in HARDLINK_POLICIES:
        raise ValueError(f"hardlinks must be one of {HARDLINK_POLICIES}, not {hardlinks!r}")
    try:
        target = Path(path).resolve(strict=True)
        seen = _check(target, expect=expect, hardlinks=hardlinks)
        if not changes(tags.read(target)):
            return False
        tmp = _temp_for(target)
    except RuntimeError as e:  # Path.resolve on a symlink loop before Python 3.13
        raise TagError("symlink loop") from e
    except OSError as e:
        raise TagError(_reason(e)) from e
    try:
        shutil.copyfile(target, tmp)
        original = witness if witness is not None else decode.witness(target)
        edit(tmp)
        _fsync(tmp)
        _verify(tmp, verify, original)
        _copy_metadata(seen, target, tmp, keep_mtime=keep_mtime)
        if keep is not None:
            keep(target, tmp)
        _check_unchanged(target, seen)  # nothing touched the file since `_check`
        os.replace(tmp, target)
    except tags.Unwritable:  # a refusal with its own reason (the copy would read differently elsewhere)
        _remove(tmp)
        raise
    except (MgctagError, OSError) as e:
        _remove(tmp)
        raise TagError(_reason(e)) from e
    except BaseException:
        _remove(tmp)
        raise
    _fsync_folder(target.parent)
    return True


def cleanup_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files a killed run left in `folder` (not below it); return what was removed.

    Only names mgctag makes are considered, and of those only the stale ones: a temp whose
    writer is still running here, and is younger than STALE_AFTER, belongs to a live write.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_PATTERN.match(entry.name)
        if not match:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or not _stale(int(match["pid"]), st):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


# --- before the write --------------------------------------------------------------------------


def _check(target: Path, *, expect: tuple[int, int] | None, hardlinks: str) -> os.stat_result:
    """Refuse what must not be written; return the stat every later check compares against."""
    st = os.stat(target)
    if not stat.S_ISREG(st.st_mode):
        raise TagError("not a regular file")
    if expect is not None and (st.st_size, st.st_mtime_ns) != tuple(expect):
        raise TagError("file changed since it was analysed")
    if st.st_nlink > 1 and hardlinks == "skip":
        raise TagError(f"hard-linked file ({st.st_nlink} names); writing would split the link, skipped")
    if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise TagError("read-only file")
    folder = target.parent
    if not os.stat(folder).st_mode & 0o222 or not os.access(folder, os.W_OK | os.X_OK):
        raise TagError("read-only folder")
    return st


def _temp_for(target: Path) -> Path:
    """An empty, exclusive, hidden temp file beside `target`, named `.<name>.mgctag-<pid>-<random>.tmp<ext>`.

    The extension stays last because mutagen and the decoders sniff some formats by it.
    """
    ext = target.suffix if len(target.suffix) <= 16 else ""
    prefix, suffix = f".mgctag-{os.getpid()}-", f".tmp{ext}"
    budget = NAME_MAX - len(os.fsencode(f".{prefix}{suffix}")) - 8  # 8: mkstemp's random part
    name = os.fsdecode(os.fsencode(target.name)[:budget])
    fd, tmp = tempfile.mkstemp(prefix=f".{name}{prefix}", suffix=suffix, dir=target.parent)
    os.close(fd)
    return Path(tmp)


# --- the temp copy -----------------------------------------------------------------------------


def _verify(tmp: Path, verify, original: decode.Witness) -> None:
    """The copy must read back the requested values and hold the original's audio: the same
    decoder input, or else the same decoded samples (a refusal is always a decode's)."""
    verify(tags.read(tmp))
    try:
        same, by = decode.same_audio(original, tmp)
    except MgctagError as e:
        raise TagError(f"verification failed: {e}") from e
    if same:
        return
    if by in decode.compare.CHECKS:
        raise TagError("verification failed: audio differs")
    raise tags.Unwritable(
        f"not written: {by} would read the tagged copy differently (its tag would change how another player decodes it)"
    )


def _copy_metadata(st: os.stat_result, original: Path, tmp: Path, *, keep_mtime: bool) -> None:
    """Owner (where allowed), permissions, extended attributes and, if asked, the timestamps."""
    for uid in (st.st_uid, -1):  # the group alone is allowed to a member who is not the owner
        try:
            os.chown(tmp, uid, st.st_gid)
            break
        except OSError:
            continue
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    _copy_xattrs(original, tmp)
    if keep_mtime:
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_xattrs(src: Path, dst: Path) -> None:
    """Best effort (Linux): labels, ACLs and user attributes that a plain copy would lose."""
    if not hasattr(os, "listxattr"):
        return
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for name in names:
        try:
            os.setxattr(dst, name, os.getxattr(src, name))
        except OSError:
            continue


def _check_unchanged(target: Path, seen: os.stat_result) -> None:
    try:
        st = os.stat(target)
    except FileNotFoundError:
        raise TagError("file deleted since it was analysed") from None
    key = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
    if any(getattr(st, k) != getattr(seen, k) for k in key):
        raise TagError("file changed since it was analysed")


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; some systems cannot fsync a folder, which is not an error."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# --- reasons and staleness ---------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    """One line for a user: the OS error behind `exc` by errno when there is one, else its message."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in ERRNO_REASONS:
            return ERRNO_REASONS[seen.errno]
        seen = seen.__cause__ if seen.__cause__ is not None or seen.__suppress_context__ else seen.__context__
    if isinstance(exc, OSError):
        return (exc.strerror or str(exc)).lower()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _stale(pid: int, st: os.stat_result) -> bool:
    return time.time() - st.st_ctime > STALE_AFTER or not _running(pid)


def _running(pid: int) -> bool:
    """Whether `pid` is a live process on this machine (True when it cannot be told)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
