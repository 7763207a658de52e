"""The bytes of a container that decide its decoded audio, read straight from the file.

Each reader feeds a hash with the parts a decoder reads (labelled and length-prefixed, so parts
cannot run into each other) and returns False when the file is not laid out strictly enough to
say which bytes those are: a chunk running past the end, two `data` chunks, a RIFF size that
disagrees with the file's. Such a file is then compared by a full decode (mgctag.decode.check).
Used two ways: a PCM or FLAC file that libsndfile decodes is compared by these bytes alone; for
a stream that FFmpeg decodes they add the codec parameters that PyAV does not expose (block
align, bits per sample) to its demuxed packets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

BLOCK = 1 << 20  # bytes per read while hashing a payload
RIFF_HEADERS = (b"fmt ", b"fact")  # what libsndfile and FFmpeg read from a WAV, beside `data`
AIFF_HEADERS = (b"COMM", b"FVER")
ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
ASF_STREAM_PROPERTIES = bytes.fromhex("9107dcb7b7a9cf118ee600c00c205365")
MP4_DESCRIPTIONS = (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd")  # the path to each sample description
FLAC_STREAMINFO, FLAC_INVALID = 0, 127


def feed(h, fh, label: bytes, offset: int, length: int) -> None:
    """Hash `length` bytes of `fh` from `offset`, after a label and the length."""
    h.update(label + struct.pack("<Q", length))
    fh.seek(offset)
    buf = memoryview(bytearray(min(length, BLOCK)))
    while length:
        n = fh.readinto(buf[: min(length, BLOCK)])
        if not n:
            raise EOFError("file shorter than its chunks say")
        h.update(buf[:n])
        length -= n


# --- RIFF WAVE and AIFF: chunks ------------------------------------------------------------------


def _chunks(fh, start: int, end: int, endian: str) -> list[tuple[bytes, int, int]] | None:
    """(id, body offset, body size) of chunks that tile [start, end) exactly (a pad byte after an
    odd-sized one; the last one may lack it); None when they do not."""
    out, pos = [], start
    while pos < end:
        fh.seek(pos)
        head = fh.read(8)
        if len(head) < 8:
            return None
        cid, size = struct.unpack(endian + "4sI", head)
        body = pos + 8
        if body + size > end:
            return None
        out.append((cid, body, size))
        pos = body + size + (size & 1)
    return out if pos in (end, end + 1) else None


def _form(fh, size: int, magic: bytes, kinds: tuple[bytes, ...], endian: str):
    """The chunks of a RIFF/FORM file whose size field says exactly the file's size, and its kind."""
    fh.seek(0)
    head = fh.read(12)
    if len(head) < 12 or head[:4] != magic or head[8:12] not in kinds:
        return None, b""
    if struct.unpack(endian + "I", head[4:8])[0] + 8 != size:
        return None, b""
    return _chunks(fh, 12, size, endian), head[8:12]


def _pick(chunks, data: bytes, headers: tuple[bytes, ...]) -> dict[bytes, tuple[int, int]] | None:
    """One `data` chunk, each header chunk at most once and the first before the data; else None."""
    ids = [c for c, _, _ in chunks]
    if ids.count(data) != 1 or any(ids.count(h) > 1 for h in headers) or headers[0] not in ids:
        return None
    if ids.index(headers[0]) > ids.index(data):
        return None
    return {c: (off, n) for c, off, n in chunks if c == data or c in headers}


def riff(fh, size: int, h, *, data: bool) -> int | None:
    """WAV: the `fmt ` and `fact` chunks, and (data=True) the `data` chunk's bytes. Returns the
    whole frames in `data` by the block align `fmt ` gives (0 if none), None when not strict."""
    chunks, _ = _form(fh, size, b"RIFF", (b"WAVE",), "<")
    picked = _pick(chunks, b"data", RIFF_HEADERS) if chunks else None
    if picked is None or picked[b"fmt "][1] < 14:
        return None
    for cid in (*RIFF_HEADERS, b"data") if data else RIFF_HEADERS:
        if cid in picked:
            feed(h, fh, cid, *picked[cid])
    fh.seek(picked[b"fmt "][0] + 12)
    align = struct.unpack("<H", fh.read(2))[0]
    return picked[b"data"][1] // align if align else 0


def aiff(fh, size: int, h, *, data: bool) -> int | None:
    """AIFF and AIFF-C: the form type, `COMM` and `FVER` chunks, and (data=True) the `SSND` chunk.
    Returns the sample frames `COMM` declares, None when not strict."""
    chunks, kind = _form(fh, size, b"FORM", (b"AIFF", b"AIFC"), ">")
    picked = _pick(chunks, b"SSND", AIFF_HEADERS) if chunks else None
    if picked is None or picked[b"COMM"][1] < 8:
        return None
    h.update(kind)
    for cid in (*AIFF_HEADERS, b"SSND") if data else AIFF_HEADERS:
        if cid in picked:
            feed(h, fh, cid, *picked[cid])
    fh.seek(picked[b"COMM"][0] + 2)
    return struct.unpack(">I", fh.read(4))[0]


# --- FLAC: STREAMINFO and the frames after the metadata ------------------------------------------


def flac(fh, size: int, h) -> bool:
    """STREAMINFO, then every byte from the first frame to the end of the file."""
    fh.seek(0)
    if fh.read(4) != b"fLaC":
        return False  # an ID3v2 tag in front, or not FLAC at all
    pos, streaminfo = 4, None
    while True:
        fh.seek(pos)
        head = fh.read(4)
        if len(head) < 4:
            return False
        last, kind, n = head[0] & 0x80, head[0] & 0x7F, int.from_bytes(head[1:4], "big")
        if kind == FLAC_INVALID or pos + 4 + n > size or (kind == FLAC_STREAMINFO) != (streaminfo is None):
            return False
        if streaminfo is None:
            if n != 34:
                return False
            streaminfo = pos + 4
        pos += 4 + n
        if last:
            break
    sync = fh.read(2) if fh.seek(pos) == pos else b""
    if len(sync) < 2 or sync[0] != 0xFF or sync[1] & 0xFE != 0xF8:
        return False  # no frame where the metadata ends
    feed(h, fh, b"STREAMINFO", streaminfo, 34)
    feed(h, fh, b"frames", pos, size - pos)
    return True


# --- headers beside FFmpeg's packets -------------------------------------------------------------


def asf(fh, size: int, h) -> bool:
    """ASF: every stream properties object (the WAVEFORMATEX a WMA decoder is opened with)."""
    fh.seek(0)
    head = fh.read(30)
    if len(head) < 30 or head[:16] != ASF_HEADER:
        return False
    end, count = struct.unpack("<QI", head[16:28])
    pos, found = 30, 0
    for _ in range(count):
        fh.seek(pos)
        obj = fh.read(24)
        if len(obj) < 24:
            return False
        n = struct.unpack("<Q", obj[16:24])[0]
        if n < 24 or pos + n > min(end, size):
            return False
        if obj[:16] == ASF_STREAM_PROPERTIES:
            feed(h, fh, b"stream", pos, n)
            found += 1
        pos += n
    return found > 0


def _boxes(fh, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body offset, body end) of the MP4 boxes in [start, end); raises ValueError on a bad size."""
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        size, kind = struct.unpack(">I4s", fh.read(8))
        body = pos + 8
        if size == 1:
            size, body = struct.unpack(">Q", fh.read(8))[0], pos + 16
        elif size == 0:
            size = end - pos
        if size < body - pos or pos + size > end:
            raise ValueError("box runs past its parent")
        yield kind, body, pos + size
        pos += size


def mp4(fh, size: int, h) -> bool:
    """MP4: the file type box and every track's sample description (`stsd`: codec, rate, channels,
    bits per sample, its decoder configuration)."""
    found = 0

    def walk(start: int, end: int, path: tuple[bytes, ...]) -> None:
        nonlocal found
        for kind, body, stop in _boxes(fh, start, end):
            if kind == b"ftyp" and not path:
                feed(h, fh, kind, body, stop - body)
            elif kind == MP4_DESCRIPTIONS[len(path)]:
                if len(path) + 1 == len(MP4_DESCRIPTIONS):
                    feed(h, fh, kind, body, stop - body)
                    found += 1
                else:
                    walk(body, stop, (*path, kind))

    try:
        walk(0, size, ())
    except (ValueError, struct.error):
        return False
    return found > 0


def dsf(fh, size: int, h) -> bool:
    """DSF: the `fmt ` chunk (the DSD chunk before it holds the file size and the tag's offset)."""
    fh.seek(0)
    head = fh.read(40)
    if len(head) < 40 or head[:4] != b"DSD " or head[28:32] != b"fmt ":
        return False
    n = struct.unpack("<Q", head[32:40])[0]
    if 28 + n > size:
        return False
    feed(h, fh, b"fmt ", 28, n)
    return True
