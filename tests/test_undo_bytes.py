"""undo gives back the original bytes (cmp-equal), in every format, and finds a file written through a symlink.

The originals carry tags laid out as other tools lay them (frames or items in another order than
mutagen's, the genre between other comments, an encoder's own header), which a restore of the
values alone cannot reproduce byte for byte.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct

import audiogen
import mutagen
import pytest
from mutagen.id3 import APIC, ID3, TCON, TDRC, TIT2, TPE1, TXXX

from mgctag import delta, tags
from mgctag.scanner import ScanOptions, scan
from mgctag.state import State, Values
from mgctag.undo import CHANGED_SINCE, pick_run, undo

LOW = 150.0
TAGGED = [
    f
    for f in audiogen.FORMATS + audiogen.MORE_FORMATS
    if audiogen.can_write(f) and f not in ("au", "aac", "ac3", "dff")
]  # those have no tags to write


def scan_all(root, model, db, **kw):
    options = ScanOptions(model=str(model), state=db, write_tags=True, workers=0, keep_existing=False, **kw)
    return {r.path: r for r in scan([root], options)}


def undo_all(db, **kw):
    state = State(db)
    try:
        return {r.path: r for r in undo(state, pick_run(state), **kw)}
    finally:
        state.close()


def blob_bytes(db) -> int:
    """What the state keeps of originals (a state without the table keeps nothing)."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT coalesce(sum(length(data)), 0) FROM blobs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


# --- tags as other tools lay them out --------------------------------------------------------------


def foreign(path):
    """Title, genre and artist, laid out in a way mutagen's writer would not lay them out itself."""
    handler, f = tags._open(path)
    if handler.name == "asf":
        return path  # FFmpeg's own ASF header: mutagen re-lays it on any save
    if f.tags is None:
        f.add_tags()
    if handler.name == "id3":
        for frame in (TIT2(encoding=3, text="Title"), TCON(encoding=3, text="Polka"), TPE1(encoding=3, text="Artist")):
            f.tags.add(frame)
    else:
        keys = {
            "vorbis": ("TITLE", "GENRE", "ARTIST"),
            "mp4": ("\xa9nam", "\xa9gen", "\xa9ART"),
            "apev2": ("Title", "Genre", "Artist"),
        }[handler.name]
        for k, v in zip(keys, ("Title", "Polka", "Artist")):
            f.tags[k] = [v]
    f.save()
    data = bytearray(path.read_bytes())
    {"id3": _reverse_id3, "mp4": _reverse_ilst, "apev2": _reverse_ape}.get(handler.name, lambda d: None)(data)
    path.write_bytes(bytes(data))
    return path


def _syncsafe(b: bytes) -> int:
    return (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]


def _reverse_id3(data: bytearray) -> None:
    """The ID3v2.4 tag's frames in reverse order (mutagen sorts them), padding to the same size."""
    at = data.index(b"ID3\x04\x00")
    size = _syncsafe(data[at + 6 : at + 10])
    body, frames, i = data[at + 10 : at + 10 + size], [], 0
    while i + 10 <= size and body[i : i + 4].strip(b"\0"):
        n = _syncsafe(body[i + 4 : i + 8])
        frames.append(bytes(body[i : i + 10 + n]))
        i += 10 + n
    new = b"".join(reversed(frames))
    data[at + 10 : at + 10 + size] = new + bytes(size - len(new))


def _reverse_ape(data: bytearray) -> None:
    """The APEv2 items in reverse order (mutagen sorts them by length)."""
    at = data.index(b"APETAGEX")  # the header comes first
    size, count = struct.unpack("<II", data[at + 12 : at + 20])
    start, items, i = at + 32, [], at + 32
    for _ in range(count):
        n = struct.unpack("<I", data[i : i + 4])[0]
        end = data.index(b"\0", i + 8) + 1 + n
        items.append(bytes(data[i:end]))
        i = end
    data[start:i] = b"".join(reversed(items))


def _reverse_ilst(data: bytearray) -> None:
    """The MP4 ilst atom's children in reverse order (mutagen sorts them)."""
    at = data.index(b"ilst") - 4
    end = at + struct.unpack(">I", data[at : at + 4])[0]
    children, i = [], at + 8
    while i < end:
        n = struct.unpack(">I", data[i : i + 4])[0]
        children.append(bytes(data[i : i + n]))
        i += n
    data[at + 8 : end] = b"".join(reversed(children))


# --- the tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", TAGGED)
def test_undo_gives_back_the_original_bytes(fmt, tmp_path, band_model):
    root = tmp_path / "lib"
    root.mkdir()
    p = foreign(audiogen.make(root / f"song.{fmt}", seconds=2.5, freq=LOW))
    original = p.read_bytes()
    db = tmp_path / "state.sqlite"
    assert [r.status for r in scan_all(root, band_model, db).values()] == ["tagged"]
    assert p.read_bytes() != original and tags.read(p).genres == ("Low",)
    (result,) = undo_all(db).values()
    assert (result.status, result.reason) == ("restored", "")
    assert p.read_bytes() == original  # cmp-equal
    assert blob_bytes(db) == 0  # what was kept for the undo is gone with it


@pytest.mark.parametrize("fmt", ["mp3", "flac", "ogg"])
def test_a_shared_cover_is_kept_once_and_comes_back(fmt, tmp_path, band_model):
    """An album's tracks share one cover (300 kB here); it spans Ogg pages, whose numbers change.
    Pieces are cut by content (~8 kB, up to 64 kB), so the pieces at the cover's two edges hold
    each file's own bytes too and are kept per file: less than two covers in all, never three
    (0 of 1,000 random covers went over in mgctag.delta.chunks alone; at 100 kB and 1.5 covers,
    28% did)."""
    root = tmp_path / "lib"
    root.mkdir()
    cover = os.urandom(300_000)
    files = [audiogen.make(root / f"{i}.{fmt}", seconds=2.5, freq=LOW, seed=i) for i in range(3)]
    for i, p in enumerate(files):
        _add_cover(p, cover, title=f"Track {i}")
    originals = {p: p.read_bytes() for p in files}
    db = tmp_path / "state.sqlite"
    assert {r.status for r in scan_all(root, band_model, db).values()} == {"tagged"}
    kept = blob_bytes(db)
    assert {(r.status, r.reason) for r in undo_all(db).values()} == {("restored", "")}
    assert {p: p.read_bytes() for p in files} == originals
    assert 0 < kept < 2 * len(cover)  # one cover and its edges, not 3


def _add_cover(p, cover: bytes, *, title: str) -> None:
    if p.suffix == ".mp3":
        tag = ID3()
        tag.add(TIT2(encoding=3, text=title))
        tag.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="", data=cover))
        tag.save(p, padding=lambda info: 123)
        data = bytearray(p.read_bytes())
        _reverse_id3(data)
        p.write_bytes(bytes(data))
        return
    from mutagen.flac import Picture

    pic = Picture()
    pic.type, pic.mime, pic.data = 3, "image/jpeg", cover
    f = mutagen.File(p)
    f["TITLE"] = [title]
    f["GENRE"] = ["Polka"]
    f["ARTIST"] = ["Artist"]
    if p.suffix == ".flac":
        f.add_picture(pic)
    else:
        import base64

        f["METADATA_BLOCK_PICTURE"] = [base64.b64encode(pic.write()).decode("ascii")]
    f.save()


def test_id3v24_comes_back_after_a_write_as_id3v23(tmp_path, band_model):
    """--id3v23 converts the whole tag (TDRC split into TYER/TDAT/TIME, a two-value TXXX joined
    with "/"): undo gives back the v2.4 tag as it was."""
    root = tmp_path / "lib"
    root.mkdir()
    p = audiogen.make(root / "song.mp3", seconds=2.5, freq=LOW)
    tag = ID3()
    tag.add(TIT2(encoding=3, text="Title"))
    tag.add(TDRC(encoding=3, text="2024-05-06T07:08"))
    tag.add(TXXX(encoding=3, desc="MOOD", text=["calm", "warm"]))
    tag.save(p, v2_version=4)
    original = p.read_bytes()
    db = tmp_path / "state.sqlite"
    scan_all(root, band_model, db, id3v23=True)
    assert ID3(p).version == (2, 3, 0)
    assert [(r.status, r.reason) for r in undo_all(db).values()] == [("restored", "")]
    assert p.read_bytes() == original and ID3(p).version == (2, 4, 0)


def test_a_write_through_a_symlink_is_undone_at_its_target(tmp_path, band_model):
    root, elsewhere = tmp_path / "lib", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    target = foreign(audiogen.make(elsewhere / "song.flac", seconds=2.5, freq=LOW))
    original = target.read_bytes()
    link = root / "link.flac"
    link.symlink_to(target)
    db = tmp_path / "state.sqlite"
    assert [r.status for r in scan_all(root, band_model, db).values()] == ["tagged"]
    assert tags.read(target).genres == ("Low",)
    link.unlink()  # the link goes; the file it pointed to stays
    undone = undo_all(db)
    assert {p: (r.status, r.reason) for p, r in undone.items()} == {target: ("restored", "")}
    assert target.read_bytes() == original


def test_a_file_changed_since_gets_its_values_back_and_says_so(tmp_path, band_model):
    """Another tag changed since the run (a tag editor): the bytes kept would undo that edit too,
    so the genre values come back instead, and the edit stays."""
    root = tmp_path / "lib"
    root.mkdir()
    p = foreign(audiogen.make(root / "song.flac", seconds=2.5, freq=LOW))
    db = tmp_path / "state.sqlite"
    scan_all(root, band_model, db)
    f = mutagen.File(p)
    f["TITLE"] = ["Edited"]
    f.save()
    (result,) = undo_all(db).values()
    assert (result.status, result.reason) == ("restored", CHANGED_SINCE)
    assert Values.of(tags.read(p)).genres == ("Polka",) and mutagen.File(p)["TITLE"] == ["Edited"]
    assert blob_bytes(db) == 0


def test_a_rebuild_that_does_not_hash_right_is_refused(tmp_path):
    """The rebuilt original must hash as the original did; else nothing is written."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"tag one" + bytes(5000))
    b.write_bytes(b"tag number two" + bytes(5000))
    patch = delta.diff(a, b)
    out = tmp_path / "out"
    with open(out, "wb") as fh:
        delta.apply(b, patch, fh)
    assert out.read_bytes() == a.read_bytes()
    from dataclasses import replace

    with open(out, "wb") as fh, pytest.raises(delta.NotWritten):
        delta.apply(b, replace(patch, sha256="0" * 64), fh)
    shutil.copy(a, b)
    assert not delta.holds_written(b, patch)


def test_a_write_that_fails_at_the_rename_keeps_nothing(tmp_path, band_model, monkeypatch):
    """What was kept for a write is let go when the write does not happen (here: a full disk)."""
    import errno

    from mgctag import safe

    root = tmp_path / "lib"
    root.mkdir()
    p = foreign(audiogen.make(root / "song.mp3", seconds=2.5, freq=LOW))
    original = p.read_bytes()

    def replace(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safe.os, "replace", replace)
    db = tmp_path / "state.sqlite"
    (result,) = scan_all(root, band_model, db).values()
    assert (result.status, result.error) == ("error", "disk full") and p.read_bytes() == original
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM originals").fetchone() == (0,)
    con.close()
    assert blob_bytes(db) == 0
