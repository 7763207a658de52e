"""ID3v2: MP3, WAV/AIFF through their ID3 chunk, and DSF (whose ID3v2 tag sits at the end).

Version policy (why): converting a tag between v2.3 and v2.4 rewrites frames nobody asked us
to touch (mutagen drops RVAD/EQUA going up, TSOP/TDRL/RVA2... going down), so a file keeps
the version it has; a new tag (or an old v2.2 one, which mutagen cannot write) becomes v2.4.
Only `id3v23=True` converts, and then the whole tag, to v2.3. The tag is loaded untranslated
and without the ID3v1 merge, so frames are saved exactly as they were read.

v2.3 has no multi-value text: mutagen joins values with "/" there, so values of the fields
mgctag writes are split on "/" when read back from a v2.3 tag. An MP3's ID3v1 tag is kept
byte for byte (mutagen would otherwise regenerate it from the v2 frames; its
genre stays stale, players read v2 first). An MP3 whose tags are in an ID3v2 tag appended after
the audio, or whose genre is in an APEv2 tag there, is not written: mgctag reads and writes the
leading tag only, and would leave the real one stale.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from typing import NamedTuple

import mutagen
import mutagen.id3
from mutagen.apev2 import APEv2
from mutagen.dsf import DSF
from mutagen.id3 import TCON, TXXX, Encoding, Frame
from mutagen.id3._specs import EncodedTextSpec, EncodingSpec, MultiSpec

from . import trailing
from .base import ALBUM, ALBUM_ARTIST, ARTIST, COMPILATION, CONFIDENCE, GENRE, MODEL, Format

V23_SEP = "/"
V1_WINDOW = 131  # mutagen looks for an ID3v1 tag in the last 128 + 3 bytes
TXXX_DESC = {CONFIDENCE: "MGCTAG_CONFIDENCE", MODEL: "MGCTAG_MODEL"}
KEYS = {
    GENRE: "TCON",
    ARTIST: "TPE1",
    ALBUM: "TALB",
    ALBUM_ARTIST: "TPE2",
    COMPILATION: "TCMP",
    **{field: "TXXX:" + desc for field, desc in TXXX_DESC.items()},
}
SPLIT_IN_V23 = (GENRE, CONFIDENCE, MODEL)  # fields mgctag writes as several values
# mutagen drops a text frame whose text is empty when it saves; a frame class of the same name that
# is not a TextFrame is written as it is (encoding byte and an empty string), so undo can put back
# the empty TCON a file had
_EMPTY_TCON = type(
    "TCON",
    (Frame,),
    {"_framespec": [EncodingSpec("encoding"), MultiSpec("text", EncodedTextSpec("text"), sep="\u0000")]},
)
DSF_TOTAL_SIZE_AT = 12  # "DSD ", chunk size (8 bytes), then the file's total size (8 bytes, little-endian)


class Id3Format(Format):
    name = "id3"
    keys = KEYS

    def __init__(self, key: str, genre_words: str, *, v1: bool):
        self.key, self.genre_words = key, genre_words
        self.v1 = v1  # a bare stream (MP3): may end with an ID3v1 tag, or tags appended after the audio

    def open(self, path, detected):
        return type(detected)(path, translate=False, load_v1=False)

    def blocked(self, f):
        if not self.v1:
            return ""
        found = trailing.trailers(f.filename)
        if any(t.kind == "id3v2" for t in found):
            return "its tags are in an ID3v2 tag after the audio, which mgctag would not update: not written"
        for t in found:
            if t.kind == "apev2":
                try:
                    ape = APEv2(io.BytesIO(trailing.read_span(f.filename, t)))
                except mutagen.MutagenError:
                    return "an unreadable APEv2 tag after the audio: not written"
                if "Genre" in ape:
                    return "its genre is in an APEv2 tag after the audio, which mgctag does not write: not written"
        return ""

    def older_genres(self, f):
        if not self.v1:
            return []
        v1 = next((t for t in trailing.trailers(f.filename) if t.kind == "id3v1"), None)
        frame = mutagen.id3.ParseID3v1(trailing.read_span(f.filename, v1)).get("TCON") if v1 else None
        return [str(g) for g in frame.genres if g.strip()] if frame else []

    def get(self, f, field):
        frame = f.tags.get(KEYS[field]) if f.tags is not None else None
        if frame is None:
            return []
        values = frame.genres if field == GENRE else frame.text
        if field in SPLIT_IN_V23 and f.tags.version[:2] == (2, 3):
            values = [part for v in values for part in v.split(V23_SEP)]
        return [str(v) for v in values]

    def set(self, f, field, values: Sequence[str]):
        if field not in SPLIT_IN_V23:
            raise ValueError(f"mgctag does not write the {field} field")
        self.restore_field(f, field, list(values) or None)

    def snapshot_field(self, f, field):
        frame = f.tags.get(KEYS[field]) if f.tags is not None else None
        return None if frame is None else [str(v) for v in frame.text]  # the frame's own text: "35", "(3)Dance"

    def snapshot_extra(self, f, field):
        frame = f.tags.get(KEYS[field]) if f.tags is not None else None
        return None if frame is None else int(frame.encoding)

    def restore_field(self, f, field, stored, extra=None):
        if f.tags is None:
            if stored is None:
                return
            f.add_tags()
        f.tags.delall(KEYS[field])
        if stored is None:
            return
        encoding = Encoding.UTF8 if extra is None else Encoding(extra)
        if field == GENRE:
            kind = _EMPTY_TCON if not any(stored) else TCON
            f.tags.add(kind(encoding=encoding, text=list(stored)))
        else:
            f.tags.add(TXXX(encoding=encoding, desc=TXXX_DESC[field], text=list(stored)))

    def remove_tag(self, f):
        if self.v1:  # FileType.delete would take the ID3v1 tag too
            mutagen.id3.delete(f.filename, delete_v1=False, delete_v2=True)
            return
        f.delete()
        if isinstance(f, DSF):  # mutagen cuts the tag but leaves the header's file size counting it
            with open(f.filename, "rb+") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(DSF_TOTAL_SIZE_AT)
                fh.write(struct.pack("<Q", size))

    def save(self, f, *, id3v23):
        had = f.tags.version[:2]  # (2, 4) for a tag mutagen just created
        version = 3 if id3v23 or had == (2, 3) else 4
        if had != (2, version) and version == 3:
            f.tags.update_to_v23()
        elif had != (2, version):
            f.tags.update_to_v24()
        if not self.v1:
            f.save(v2_version=version)
            return
        # mutagen rewrites or cuts whatever it takes for an ID3v1 tag at the end (up to 131 bytes);
        # save with v1=0 (cut only), then append exactly the bytes it cut.
        before = _layout(f.filename)
        f.save(v1=0, v2_version=version)
        after = _layout(f.filename)
        cut = (before.size - before.v2) - (after.size - after.v2)
        if cut > 0:
            with open(f.filename, "ab") as fh:
                fh.write(before.tail[-cut:])


class _Layout(NamedTuple):
    size: int  # whole file, bytes
    v2: int  # leading ID3v2 tag, bytes (0 when none)
    tail: bytes  # the last bytes, enough to hold any ID3v1 tag mutagen recognises


def _layout(path: str | os.PathLike) -> _Layout:
    with open(path, "rb") as fh:
        head = fh.read(10)
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - V1_WINDOW))
        tail = fh.read()
    v2 = 0
    if len(head) == 10 and head.startswith(b"ID3"):
        v2 = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
        v2 += 10 if head[5] & 0x10 else 0  # v2.4 footer
    return _Layout(size, v2, tail)


def leading_genre(path: str | os.PathLike) -> bool:
    """Whether `path` starts with an ID3v2 tag that holds a genre (formats that keep tags elsewhere)."""
    try:
        return bool(mutagen.id3.ID3(path, translate=False, load_v1=False).getall("TCON"))
    except mutagen.id3.ID3NoHeaderError:
        return False


MP3_HANDLER = Id3Format("id3", "ID3v2 `TCON` (v2.4; v2.3 with `--id3v23`), one value per genre", v1=True)
CHUNK_HANDLER = Id3Format("id3-chunk", "`TCON`, as MP3", v1=False)
