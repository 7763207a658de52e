"""Undo a run: give each file back the bytes a scan replaced, or at least the genre-related values.

A file still exactly as the run wrote it gets its original bytes back, rebuilt from what the state
kept (mgctag.delta) and checked against the original's sha256: cmp-equal, however the format's
writer re-laid the file. Otherwise (something changed the file since, or the run kept nothing)
the values come back, and the result says so. For those the journal holds, for every file a
run wrote, the values before and after (genres, mgctag's confidences and model id), and of
"before" the exact snapshot of what the tag stored (ID3's "35", not "House"; whether there was a
tag at all): that is what comes back, and a tag the run created goes again. Rows journalled by
older versions, without a snapshot, get their values written back.

A file is restored only while it still holds the "after" values, whatever else changed in it:
other values mean something else (a tag editor, a later run) changed its genre since, and it is
refused unless `force`. A "pending" row (the run was killed around the rename) is handled alike:
the file's current tags say whether the write happened. Restoring goes through mgctag.safe like
any write, with the options the run wrote with (ID3 version, mtime, hard links).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import delta, safe, tags
from .errors import MgctagError
from .state import Run, State, Values

CHANGED_SINCE = "values restored, not the bytes: the file changed since that run"
NOT_KEPT = "values restored, not the bytes: that run kept no copy of them"

STATUSES = ("restored", "already", "refused", "error")


class NothingToUndo(MgctagError):
    """No run has changes left to undo: not a failure."""


@dataclass(frozen=True)
class UndoResult:
    path: Path
    status: str  # restored | already (holds the earlier values) | refused | error
    reason: str = ""  # one line, for refused and error, and a restore of values only


def pick_run(db: State, run_id: int | None = None) -> Run:
    """The run to undo: `run_id`, or the newest run with changes not undone yet."""
    runs = db.runs()
    if run_id is not None:
        for run in runs:
            if run.id == run_id:
                return run
        raise MgctagError(f"no run {run_id} in this state database")
    for run in runs:
        if run.changed:
            return run
    raise NothingToUndo("no run has changes left to undo")


def undo(db: State, run: Run, *, force: bool = False) -> Iterator[UndoResult]:
    """Restore the files `run` changed; yields one UndoResult per journal row not undone yet."""
    for entry in db.journal(run.id):
        if entry.state == "undone":
            continue
        result = _restore(
            entry.path,
            entry.before,
            entry.after,
            force=force,
            writing=run.writing,
            original=lambda: db.original(run.id, entry.path),
        )
        if result.status in ("restored", "already"):
            db.journal_set(run.id, entry.path, "undone")
            db.forget([entry.path, *filter(None, [entry.seen_as])])  # rows of the tagged file: look again
        yield result


def _restore(
    path: Path, before: Values, after: Values, *, force: bool, writing: dict, original: Callable[[], delta.Patch | None]
) -> UndoResult:
    try:
        return _restore_file(path, before, after, force=force, writing=writing, original=original)
    except Exception as e:  # noqa: BLE001 - a bug in one file's restore costs that file, not the undo
        return UndoResult(path, "error", f"unexpected {type(e).__name__}: {_one_line(e)}")


def _restore_file(
    path: Path, before: Values, after: Values, *, force: bool, writing: dict, original: Callable[[], delta.Patch | None]
) -> UndoResult:
    try:
        st = os.stat(path)
        state = tags.read(path)
    except (OSError, MgctagError) as e:
        return UndoResult(path, "error", _one_line(e))
    current = Values.of(state)
    exact = before.raw is not None and state.raw is not None  # rows from older versions hold no snapshot
    if tags.same_values(state.raw, before.raw) if exact else current == before:
        return UndoResult(path, "already")
    if current != after and not force:
        return UndoResult(path, "refused", "genre changed since that run (--force restores it anyway)")
    expect = (st.st_size, st.st_mtime_ns)
    patch = original()
    if patch is not None and delta.holds_written(path, patch):
        try:
            safe.put_back(
                path,
                patch,
                keep_mtime=writing.get("keep_mtime", False),
                hardlinks=writing.get("hardlinks", "skip"),
                expect=expect,
            )
        except MgctagError as e:
            return UndoResult(path, "error", str(e))
        return UndoResult(path, "restored")
    try:
        if exact:
            safe.restore_safely(path, before.raw, **writing, expect=expect)
        else:
            safe.write_safely(path, **_write_values(before), **writing, expect=expect)
    except (MgctagError, ValueError) as e:  # ValueError: values no tag can hold (an empty genre)
        return UndoResult(path, "error", str(e))
    return UndoResult(path, "restored", NOT_KEPT if patch is None else CHANGED_SINCE)


def _write_values(v: Values) -> dict:
    """write_safely's keywords that reproduce `v` exactly, or MgctagError when none can."""
    confidences = None
    if v.confidences:
        try:
            confidences = [float(c) for c in v.confidences]
        except ValueError:
            confidences = None
        if (
            confidences is None
            or len(confidences) != len(v.genres)
            or tags.format_confidences(confidences) != v.confidences
        ):
            raise MgctagError("the earlier confidence values cannot be written back exactly")
    return dict(genres=list(v.genres), confidences=confidences, model_id=v.model)


def _one_line(e: BaseException) -> str:
    if isinstance(e, FileNotFoundError):
        return "file not found"
    if isinstance(e, OSError):
        return (e.strerror or str(e)).lower()
    return (str(e).splitlines() or [""])[0]
