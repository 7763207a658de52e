"""Incremental state: what each file looked like when mgctag last analysed it, and an undo journal.

One SQLite database in WAL mode: runs, the files seen, the undo journal and what writes replaced
(its tables, and how an older file is brought up to them: mgctag.state_schema).

Every change is committed at once: rows come only from files that were decoded, each of which
costs far more than a WAL commit, so there is nothing to gain from batching.

A file's row also keeps its evidence (its scores over the genres, the windows heard, its album
tags), so a run that finds a new track in a known album decides the album again from all its
tracks without hearing the old ones (mgctag.albums).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import platformdirs

from . import originals, state_schema
from .errors import MgctagError

if TYPE_CHECKING:
    from .delta import Patch
    from .result import FileResult
    from .tags import TagState

FILE_NAME = "state.sqlite"
# results a re-run with the same file, model and settings would only repeat
SETTLED = frozenset({"tagged", "unchanged", "kept", "skipped"})


def default_path() -> Path:
    """Where the CLI keeps its state unless told otherwise (`--state`, MGCTAG_STATE)."""
    return Path(platformdirs.user_data_dir("mgctag")) / FILE_NAME


def settings_key(weights_files: str | os.PathLike | Sequence[str | os.PathLike], **decision) -> str:
    """A short fingerprint of the weights' bytes and every option that changes a file's result.

    The weights are hashed, not named: retrained weights saved under the same name must not
    count as "unchanged". An ensemble passes its models' files in order.
    """
    h = hashlib.sha256()
    files = [weights_files] if isinstance(weights_files, (str, os.PathLike)) else list(weights_files)
    for path in files:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    h.update(json.dumps(decision, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Values:
    """The genre-related values of one file: what undo compares and restores.

    `raw` is the tags' exact snapshot (TagState.raw: the stored text, "35" rather than "House",
    and whether the file had a tag at all), so undo can put back exactly what was there. Rows
    written before it existed have none (undo then writes the interpreted values back); it is
    left out of ==, which compares the values as mgctag reads them.
    """

    genres: tuple[str, ...] = ()
    confidences: tuple[str, ...] = ()  # as stored: text with three decimals
    model: str | None = None
    raw: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, state: "TagState") -> "Values":
        return cls(tuple(state.genres), tuple(state.confidences), state.model, state.raw)

    def to_json(self) -> str:
        d = {"genres": self.genres, "confidences": self.confidences, "model": self.model}
        if self.raw is not None:
            d["raw"] = json.loads(self.raw)
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> "Values":
        d = json.loads(text)
        raw = json.dumps(d["raw"], sort_keys=True) if d.get("raw") is not None else None
        return cls(tuple(d["genres"]), tuple(d["confidences"]), d["model"], raw)


@dataclass(frozen=True)
class Seen:
    """A settled result from an earlier run, shown again for a file that is skipped."""

    status: str
    genres: list[tuple[str, float]]
    existing_genre: str
    evidence: dict | None = None  # what record() was given as evidence; None for rows from before it
    note: str = ""


@dataclass(frozen=True)
class Run:
    id: int
    started: float
    finished: float | None
    outcome: str
    roots: list[str]
    model: str
    write_tags: bool
    writing: dict  # write_safely's options the run used: hardlinks, id3v23, keep_mtime
    counts: dict[str, int]
    changed: int  # journal rows not yet undone


@dataclass(frozen=True)
class JournalEntry:
    path: Path
    before: Values
    after: Values
    state: str  # pending | done | undone
    seen_as: Path | None = None  # the name the run wrote it by (a symlink), when not `path`


def key(path: str | os.PathLike) -> bytes:
    """The files/journal key of a path: its absolute form as bytes (valid for any file name)."""
    return os.fsencode(os.path.abspath(path))


class State:
    """The state database. `path=None` keeps it in memory (library use without a state file).

    `create=False` (undo, listing runs) opens only an existing mgctag database: nothing is
    created, neither the file nor its folder, and another program's SQLite file is refused
    before anything is written to it.
    """

    def __init__(self, path: str | os.PathLike | None, *, create: bool = True):
        self.path = None if path is None else Path(path)
        self.db = state_schema.connect(self.path, create=create)

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction (rolled back if the block fails)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- runs --------------------------------------------------------------------------------

    def start_run(
        self, *, roots: Sequence[str | os.PathLike], model: str, settings: str, write_tags: bool, writing: dict
    ) -> int:
        """A new run id; `writing` holds write_safely's options (hardlinks, id3v23, keep_mtime)."""
        roots_json = json.dumps([os.fsdecode(os.path.abspath(r)) for r in roots])
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO runs (started, roots, model, settings, write_tags, writing) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), roots_json, model, settings, int(write_tags), json.dumps(writing)),
            )
        return cur.lastrowid

    def finish_run(self, run_id: int, *, counts: dict[str, int], outcome: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET finished = ?, outcome = ?, counts = ? WHERE id = ?",
                (time.time(), outcome, json.dumps(counts), run_id),
            )

    def runs(self) -> list[Run]:
        """Every run, newest first, with how many of its changes are not undone yet."""
        rows = self.db.execute(
            "SELECT r.id, r.started, r.finished, r.outcome, r.roots, r.model, r.write_tags, r.writing, "
            "r.counts, (SELECT count(*) FROM journal j WHERE j.run_id = r.id AND j.state != 'undone') "
            "FROM runs r ORDER BY r.id DESC"
        ).fetchall()
        return [
            Run(i, s, f, o, json.loads(roots), m, bool(w), json.loads(wr), json.loads(c or "{}"), n)
            for i, s, f, o, roots, m, w, wr, c, n in rows
        ]

    # --- files -------------------------------------------------------------------------------

    def lookup(self, path: Path, st: os.stat_result, *, model: str, settings: str, write_tags: bool) -> Seen | None:
        """The earlier result when `path` need not be analysed again, else None.

        Errors are always retried (a full disk or a permission may have been fixed), and a dry
        run's "would-tag" does not excuse a run that writes.
        """
        row = self.db.execute(
            "SELECT size, mtime_ns, model, settings, status, genres, existing_genre, evidence, "
            "note FROM files WHERE path = ?",
            (key(path),),
        ).fetchone()
        if row is None:
            return None
        size, mtime_ns, row_model, row_settings, status, genres, existing, evidence, note = row
        if (size, mtime_ns, row_model, row_settings) != (st.st_size, st.st_mtime_ns, model, settings):
            return None
        if status not in SETTLED and not (status == "would-tag" and not write_tags):
            return None
        return Seen(
            status, [(g, p) for g, p in json.loads(genres)], existing, json.loads(evidence) if evidence else None, note
        )

    def record(
        self,
        result: "FileResult",
        stat: tuple[int, int] | None,
        *,
        run_id: int,
        settings: str,
        written: Values | None = None,
        evidence: dict | None = None,
    ) -> None:
        """Remember one file's result; without a stat (the file is gone) its row is dropped.
        `evidence` (JSON-able) is what its album is decided from in a later run."""
        with self._tx() as db:
            if stat is None:
                db.execute("DELETE FROM files WHERE path = ?", (key(result.path),))
                return
            db.execute(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, model, settings, status, genres, "
                "existing_genre, error, written, run_id, evidence, note) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key(result.path),
                    *stat,
                    result.model,
                    settings,
                    result.status,
                    json.dumps(result.genres),
                    result.existing_genre,
                    result.error,
                    written.to_json() if written else None,
                    run_id,
                    json.dumps(evidence) if evidence is not None else None,
                    result.note,
                ),
            )

    def forget(self, paths: Iterable[str | os.PathLike]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM files WHERE path = ?", ((key(p),) for p in paths))

    def prune(self, roots: Sequence[str | os.PathLike], found: Iterable[str | os.PathLike]) -> int:
        """Drop the rows of files under `roots` that this run did not find (moved or deleted)."""
        prefixes = [key(r) for r in roots]
        under = tuple(p.rstrip(b"/") + b"/" for p in prefixes)
        present = {key(p) for p in found}
        stale = [
            p
            for (p,) in self.db.execute("SELECT path FROM files")
            if (p in prefixes or p.startswith(under)) and p not in present
        ]
        with self._tx() as db:
            db.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in stale))
        return len(stale)

    def wrote(self, path: Path, genres: Sequence[str]) -> bool:
        """Whether `genres` are what mgctag last wrote into `path`, so they are mgctag's to refresh.

        A genre someone changed after mgctag wrote it (a tag editor that kept mgctag's fields) is
        the user's. The newest write not undone is looked up in the journal, then in the file's
        row; a file this database has no record of (tagged with another state database) is taken
        to be mgctag's by its fields alone, as before there was a journal.
        """
        row = self.db.execute(
            "SELECT after FROM journal WHERE path IN (?, ?) AND state = 'done' ORDER BY run_id DESC LIMIT 1",
            (key(os.path.realpath(path)), key(path)),
        ).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT written FROM files WHERE path = ? AND written IS NOT NULL", (key(path),)
            ).fetchone()
        if row is None:
            return True
        return Values.from_json(row[0]).genres == tuple(genres)

    # --- journal -----------------------------------------------------------------------------

    def journal_pending(
        self, run_id: int, path: Path, *, before: Values, after: Values, seen_as: Path | None = None
    ) -> None:
        """Called before a write, committed before the file is touched. `path` is the real file;
        `seen_as` the name the run found it by, when that is a symlink to it."""
        seen = None if seen_as is None or key(seen_as) == key(path) else key(seen_as)
        with self._tx() as db:
            originals.drop(db, run_id, key(path))
            db.execute(
                "INSERT OR REPLACE INTO journal (run_id, path, before, after, state) VALUES (?, ?, ?, ?, 'pending')",
                (run_id, key(path), before.to_json(), after.to_json()),
            )
            db.execute("INSERT INTO originals (run_id, path, seen_as) VALUES (?, ?, ?)", (run_id, key(path), seen))

    def journal_set(self, run_id: int, path: Path, state: str | None) -> None:
        """Mark a journal row done or undone; None removes it (the write did not happen). Its kept
        original goes with undone or None: nothing will be rebuilt from it."""
        with self._tx() as db:
            if state in (None, "undone"):
                originals.drop(db, run_id, key(path))
            if state is None:
                db.execute("DELETE FROM journal WHERE run_id = ? AND path = ?", (run_id, key(path)))
            else:
                db.execute("UPDATE journal SET state = ? WHERE run_id = ? AND path = ?", (state, run_id, key(path)))

    def journal(self, run_id: int) -> list[JournalEntry]:
        rows = self.db.execute(
            "SELECT j.path, j.before, j.after, j.state, o.seen_as FROM journal j "
            "LEFT JOIN originals o ON o.run_id = j.run_id AND o.path = j.path "
            "WHERE j.run_id = ? ORDER BY j.path",
            (run_id,),
        ).fetchall()
        return [
            JournalEntry(
                Path(os.fsdecode(p)),
                Values.from_json(b),
                Values.from_json(a),
                s,
                Path(os.fsdecode(seen)) if seen else None,
            )
            for p, b, a, s, seen in rows
        ]

    # --- originals: what a write replaced (mgctag.originals) -------------------------------------

    def keeper(self, run_id: int, path: Path) -> Callable[[Path, Path], None]:
        """write_safely's `keep` for a journal row: keep_original with the row's run and path."""
        return lambda original, written: self.keep_original(run_id, path, original, written)

    def keep_original(self, run_id: int, path: Path, original: Path, written: Path) -> None:
        """Called with the original and its written copy just before the rename: keep how to
        rebuild the original (mgctag.delta), for a byte-exact undo. A write that changed more than
        delta.KEEP_LIMIT bytes keeps nothing (its undo restores the values)."""
        from . import delta

        patch = delta.diff(original, written)
        try:
            with self._tx() as db:
                originals.store(db, run_id, key(path), patch)
        except sqlite3.Error as e:
            raise MgctagError(f"cannot keep the original for undo: {e}") from None

    def original(self, run_id: int, path: Path) -> "Patch | None":
        """The kept original of a journal row (mgctag.delta.Patch), None when none was kept."""
        return originals.load(self.db, run_id, key(path))


@contextlib.contextmanager
def opened(
    path: str | os.PathLike | None,
    *,
    wait: bool = False,
    should_stop: Callable[[], bool] | None = None,
    create: bool = True,
) -> Iterator[State]:
    """The state database, holding its run lock for as long as it is open (none in memory).

    `create=False`: only an existing database (see State), and no lock file is made for a missing
    one. A missing database whose lock file exists may be a first scan's, being made right now:
    its lock is waited for (or is a LockError) like any other.
    """
    from .lock import RunLock

    if not create and path is not None and not RunLock.beside(path).path.exists():
        state_schema.require(Path(path))
    with RunLock.beside(path, wait=wait, should_stop=should_stop) if path is not None else contextlib.nullcontext():
        state = State(path, create=create)
        try:
            yield state
        finally:
            state.close()
