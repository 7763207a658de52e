"""The state's store of what writes replaced (mgctag.delta patches), for undo to give back bytes.

A row of ``originals`` per journal row names its patch's pieces by sha256; the pieces are rows of
``blobs``, stored once however many patches use them (an album's cover, in every track's tag),
zlib-compressed where that helps, and counted, so that a piece goes with the last patch that used
it: an undone or abandoned write keeps nothing. Functions take the connection inside the
caller's transaction (mgctag.state) and paths as state keys.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy: not for what only opens the state (`undo --list`)
    from .delta import Patch

SCHEMA = """
CREATE TABLE IF NOT EXISTS originals (
    run_id INTEGER NOT NULL,
    path BLOB NOT NULL,                           -- as in journal: the real file
    seen_as BLOB,                                 -- the name the run found it by (a symlink), if another
    recipe TEXT,                                  -- JSON: a delta.Patch, its pieces by sha256; NULL: none kept
    PRIMARY KEY (run_id, path)
);
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY,                      -- of the bytes, before compression
    data BLOB NOT NULL,
    zipped INTEGER NOT NULL,                      -- data is zlib-compressed
    refs INTEGER NOT NULL                         -- recipes that use it; at 0 the row is deleted
);
"""


def store(db: sqlite3.Connection, run_id: int, path: bytes, patch: "Patch | None") -> None:
    """Keep `patch` as the row's original (None: nothing kept), letting go of any kept before."""
    release(db, run_id, path)
    recipe = None if patch is None else json.dumps(_store(db, patch))
    db.execute(
        "INSERT INTO originals (run_id, path, recipe) VALUES (?, ?, ?) ON CONFLICT (run_id, path) "
        "DO UPDATE SET recipe = excluded.recipe",
        (run_id, path, recipe),
    )


def load(db: sqlite3.Connection, run_id: int, path: bytes) -> "Patch | None":
    """The row's kept patch, None when nothing was kept (or a piece is missing)."""
    from .delta import Patch

    row = db.execute("SELECT recipe FROM originals WHERE run_id = ? AND path = ?", (run_id, path)).fetchone()
    if row is None or row[0] is None:
        return None
    recipe = json.loads(row[0])
    pieces = [_blob(db, h) for h in (recipe.pop("runs"), recipe.pop("lifted"), *recipe.pop("middle"))]
    if any(p is None for p in pieces):
        return None
    return Patch(**recipe, runs=pieces[0], lifted=pieces[1], middle=tuple(pieces[2:]))


def drop(db: sqlite3.Connection, run_id: int, path: bytes) -> None:
    """The row goes, and with it what only it kept."""
    release(db, run_id, path)
    db.execute("DELETE FROM originals WHERE run_id = ? AND path = ?", (run_id, path))


def release(db: sqlite3.Connection, run_id: int, path: bytes) -> None:
    """Let go of the pieces the row's recipe uses; those nothing uses any more are deleted."""
    row = db.execute("SELECT recipe FROM originals WHERE run_id = ? AND path = ?", (run_id, path)).fetchone()
    if row is None or row[0] is None:
        return
    recipe = json.loads(row[0])
    for digest in (recipe["runs"], recipe["lifted"], *recipe["middle"]):
        db.execute("UPDATE blobs SET refs = refs - 1 WHERE sha256 = ?", (digest,))
        db.execute("DELETE FROM blobs WHERE sha256 = ? AND refs <= 0", (digest,))
    db.execute("UPDATE originals SET recipe = NULL WHERE run_id = ? AND path = ?", (run_id, path))


def _store(db: sqlite3.Connection, patch: "Patch") -> dict:
    """Each piece once per sha256 (counted); the recipe, which names them."""
    hashes = []
    for data in (patch.runs, patch.lifted, *patch.middle):
        digest = hashlib.sha256(data).hexdigest()
        hashes.append(digest)
        if db.execute("UPDATE blobs SET refs = refs + 1 WHERE sha256 = ?", (digest,)).rowcount:
            continue
        packed = zlib.compress(data)
        zipped = len(packed) < len(data)
        db.execute(
            "INSERT INTO blobs (sha256, data, zipped, refs) VALUES (?, ?, ?, 1)",
            (digest, packed if zipped else data, int(zipped)),
        )
    return dict(
        size=patch.size,
        sha256=patch.sha256,
        written_size=patch.written_size,
        written_sha256=patch.written_sha256,
        head=patch.head,
        tail=patch.tail,
        runs=hashes[0],
        lifted=hashes[1],
        middle=hashes[2:],
    )


def _blob(db: sqlite3.Connection, digest: str) -> bytes | None:
    row = db.execute("SELECT data, zipped FROM blobs WHERE sha256 = ?", (digest,)).fetchone()
    return None if row is None else zlib.decompress(row[0]) if row[1] else bytes(row[0])
