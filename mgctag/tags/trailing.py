"""Tags after the audio: ID3v1, Lyrics3v2, APEv2 and appended ID3v2 (with a "3DI" footer).

mutagen reads an MP3's leading ID3v2 tag only, and its APEv2 writer cuts whatever follows the
APEv2 tag. So the handlers look at the end of the file themselves: to refuse a file whose real
tags sit after the audio where mgctag would not see or update them, and to keep the bytes that
follow an APEv2 tag exactly as they are.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

APE_HAS_HEADER = 1 << 31
MAX_TRAILERS = 8  # more stacked tags than this is not a file anyone tagged on purpose


class Trailer(NamedTuple):
    kind: str  # "id3v1" | "lyrics3" | "apev2" | "id3v2"
    start: int  # byte offsets in the file
    end: int


def trailers(path: str | os.PathLike) -> list[Trailer]:
    """The tags at the end of `path`, last one first; [] when the audio runs to the end."""
    found: list[Trailer] = []
    with open(path, "rb") as fh:
        pos = fh.seek(0, os.SEEK_END)

        def tail(n: int) -> bytes:
            if pos < n:
                return b""
            fh.seek(pos - n)
            return fh.read(n)

        while len(found) < MAX_TRAILERS:
            t = _one(tail, pos)
            if t is None or t.start < 0 or t.start >= t.end:
                break
            found.append(t)
            pos = t.start
    return found


def _one(tail, pos: int) -> Trailer | None:
    """The tag that ends at `pos`, if any. An APEv2 footer is looked for first, as mutagen does: the
    bytes 128 before the end of an APEv2 tag may well spell "TAG"."""
    footer = tail(32)
    if footer[:8] == b"APETAGEX":
        size, _, flags = struct.unpack("<3I", footer[12:24])
        return Trailer("apev2", pos - size - (32 if flags & APE_HAS_HEADER else 0), pos)
    end = tail(15)
    if end[6:] == b"LYRICS200" and end[:6].isdigit():
        return Trailer("lyrics3", pos - 15 - int(end[:6]), pos)
    if tail(128)[:3] == b"TAG":
        return Trailer("id3v1", pos - 128, pos)
    footer = tail(10)
    if footer[:3] == b"3DI" and all(b < 0x80 for b in footer[6:10]):
        size = sum(b << (7 * (3 - i)) for i, b in enumerate(footer[6:10]))
        return Trailer("id3v2", pos - size - 20, pos)
    return None


def read_span(path: str | os.PathLike, t: Trailer) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(t.start)
        return fh.read(t.end - t.start)
