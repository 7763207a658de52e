"""The state database's tables, and how a database file is opened and brought up to them.

One SQLite database in WAL mode (a killed run loses at most the row it was writing; SQLite rolls
an unfinished transaction back on the next open) with these tables:

- ``runs``: one row per scan: id, start and end, roots, model, settings, outcome and counts;
- ``files``: per path (as bytes, so any file name fits) the size and mtime seen, the model and
  decision settings, the result and the values written. A re-run skips a file whose size, mtime,
  model and settings all match a settled result, after one ``stat`` and without decoding it;
- ``journal``: per run and path, the genre-related values before and after a write. A row is
  committed as ``pending`` *before* the file is renamed into place and marked ``done`` after, so
  a kill between the two still leaves undo something to compare against. Its path is the real
  file's (a symlink may be gone by the time of the undo);
- ``originals`` and ``blobs``: per journal row, how to rebuild the original bytes from the written
  file (mgctag.delta), committed before the rename too (mgctag.originals).

Apart from mgctag.state's reads and writes: this changes only when the tables do (a new
SCHEMA_VERSION, and a step in `connect` that brings an older file up to it).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from . import originals
from .errors import MgctagError

SCHEMA_VERSION = 2
SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    outcome TEXT NOT NULL DEFAULT 'running',      -- running | done | interrupted
    roots TEXT NOT NULL,                          -- JSON list
    model TEXT NOT NULL,
    settings TEXT NOT NULL,
    write_tags INTEGER NOT NULL,
    writing TEXT NOT NULL,                        -- JSON: how files were written (undo writes alike)
    counts TEXT                                   -- JSON {status: n}
);
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    model TEXT NOT NULL,
    settings TEXT NOT NULL,
    status TEXT NOT NULL,
    genres TEXT NOT NULL,                         -- JSON [[genre, confidence], ...]
    existing_genre TEXT NOT NULL,
    error TEXT NOT NULL,
    written TEXT,                                 -- JSON Values, when this run wrote the file
    run_id INTEGER NOT NULL,
    evidence TEXT,                                -- JSON: what the file's album is decided from
    note TEXT NOT NULL DEFAULT ''                 -- why it was skipped or kept, shown again on a re-run
);
CREATE TABLE IF NOT EXISTS journal (
    run_id INTEGER NOT NULL,
    path BLOB NOT NULL,
    before TEXT NOT NULL,                         -- JSON Values
    after TEXT NOT NULL,                          -- JSON Values
    state TEXT NOT NULL,                          -- pending | done | undone
    PRIMARY KEY (run_id, path)
);
"""
    + originals.SCHEMA
)


def connect(path: Path | None, *, create: bool) -> sqlite3.Connection:
    """The database at `path` (None: in memory), in autocommit mode, at SCHEMA_VERSION.

    `create=False` opens only an existing mgctag database: nothing is created, neither the file
    nor its folder, and another program's SQLite file is refused before anything is written to it.
    """
    if not create and path is not None:
        require(path)
    try:
        if path is None:
            db = sqlite3.connect(":memory:", isolation_level=None)
        elif create:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=30, isolation_level=None)  # autocommit; explicit transactions
        else:  # mode=rw: never creates the file, even if it vanished since the check above
            db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=30, isolation_level=None)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 1:  # schema 1 had no evidence or note columns; its rows simply have none
            db.execute("ALTER TABLE files ADD COLUMN evidence TEXT")
            db.execute("ALTER TABLE files ADD COLUMN note TEXT NOT NULL DEFAULT ''")
        if version > SCHEMA_VERSION:
            raise MgctagError(f"state database {path} is from a newer mgctag (schema {version})")
        if not create and version == 0:
            raise MgctagError(f"{path} is not an mgctag state database")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)  # idempotent: every statement is IF NOT EXISTS
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except (sqlite3.Error, OSError) as e:
        raise MgctagError(f"cannot use state database {path}: {e}") from None
    return db


def require(path: Path) -> None:
    """An MgctagError unless `path` is a file: the database undo and listing runs need exists."""
    if not path.is_file():
        raise MgctagError(
            f"no state database at {path}"
            + (
                " (not a file)"
                if path.exists()
                else " (no scan has used it yet; --state or $MGCTAG_STATE chooses another)"
            )
        )
