"""What a tag write replaced, and the original rebuilt from the written file: undo gives back bytes.

A write changes a file in few places: the tag itself, and at times small fields far from it (a
container's size at the start, the sequence number and checksum of every Ogg page after re-laid
header pages), while the audio stays the same bytes, where it was or moved by the tag's growth.
So the original is described against the written file in three parts: a head at the same
offsets, the middle verbatim (the old tag region), and a tail moved by the size change; the few
bytes that differ in head and tail are kept as runs. Where the middle starts and ends is chosen
to keep the fewest bytes (per block, then trimmed to the byte), so no format is parsed: a format
whose write changes more keeps more, and nothing is ever guessed — the rebuilt file must hash to
the original's sha256. The middle is cut where its content says (a gear hash), not at offsets,
so the same cover in every track of an album gives the same chunks, which the caller stores once
by their sha256; Ogg page headers are lifted out of the middle first (each carries the stream's
serial number and a checksum, and a cover is spread over many pages).
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from .errors import MgctagError

BLOCK = 512  # granularity of the head/middle/tail choice
RUN_COST = 4  # what one run costs beside its bytes (offset and length), roughly
GAP = 8  # differing bytes closer than this are kept as one run
READ = 1 << 20  # bytes compared or copied at a time
KEEP_LIMIT = 32 << 20  # more than this to keep (a write that changed much of a file): nothing kept
MIN_CHUNK, MAX_CHUNK = 2048, 65536
CUT_MASK = np.uint64(((1 << 13) - 1) << 40)  # ~8 KiB chunks on average; bits every window byte reaches
WINDOW = 32
_GEAR = np.random.default_rng(0x6D676374).integers(0, 2**64 - 1, 256, dtype=np.uint64, endpoint=True)


class NotWritten(MgctagError):
    """The file is not the one the write produced: it cannot give back the original's bytes."""


@dataclass(frozen=True)
class Patch:
    """The original, as the written file plus what differs. Offsets are the original's."""

    size: int
    sha256: str
    written_size: int
    written_sha256: str
    head: int  # original[:head] == written[:head] but for the runs there
    tail: int  # original[tail:] == written[tail + shift:] but for the runs there
    runs: bytes  # _pack()ed runs: (offset, bytes), ascending
    lifted: bytes  # _pack()ed Ogg page headers taken out of the middle: (offset in it, bytes)
    middle: tuple[bytes, ...]  # original[head:tail], less the lifted headers, in content-defined chunks

    @property
    def shift(self) -> int:
        return self.written_size - self.size

    def kept_bytes(self) -> int:
        return len(self.runs) + len(self.lifted) + sum(map(len, self.middle))


def diff(original: str | os.PathLike, written: str | os.PathLike, *, limit: int = KEEP_LIMIT) -> Patch | None:
    """The patch that rebuilds `original` from `written`; None when it would keep more than `limit` bytes."""
    a, b = _map(original), _map(written)
    n, m = len(a), len(b)
    shift = m - n
    k1, k2 = _split(_block_costs(a, b, 0), _block_costs(a, b, shift), n)
    if k2 - k1 > limit + 2 * BLOCK:  # trimming takes at most a block off each end
        return None
    k1 += _same_run(a, b, k1, min(k2, m), 0, forward=True)
    k2 -= _same_run(a, b, max(k1, -shift), k2, shift, forward=False)
    runs = list(_runs(a, b, 0, k1, 0)) + list(_runs(a, b, k2, n, shift))
    kept = (k2 - k1) + sum(e - s for s, e in runs)
    if kept > limit:
        return None
    rest, lifted = _lift_pages(a[k1:k2].tobytes())
    return Patch(
        n,
        _sha256(original),
        m,
        _sha256(written),
        k1,
        k2,
        _pack((s, a[s:e].tobytes()) for s, e in runs),
        _pack(lifted),
        tuple(chunks(rest)),
    )


def holds_written(path: str | os.PathLike, patch: Patch) -> bool:
    """Whether `path` is still exactly what the write produced (the only file the patch fits)."""
    try:
        return os.path.getsize(path) == patch.written_size and _sha256(path) == patch.written_sha256
    except OSError:
        return False


def apply(written: str | os.PathLike, patch: Patch, out: BinaryIO) -> None:
    """Write the original into `out`, from `written` and `patch`; NotWritten unless it hashes right."""
    h = hashlib.sha256()
    runs = _unpack(patch.runs)
    with open(written, "rb") as src:
        if os.fstat(src.fileno()).st_size != patch.written_size:
            raise NotWritten("the file changed since that run")
        for piece in _rebuild(src, patch, runs):
            h.update(piece)
            out.write(piece)
    if h.hexdigest() != patch.sha256:
        raise NotWritten("the rebuilt original does not match its checksum")


def chunks(data: bytes) -> Iterator[bytes]:
    """`data` cut where a gear hash of the last WINDOW bytes says (MIN_CHUNK..MAX_CHUNK long)."""
    if len(data) <= 2 * MIN_CHUNK:
        if data:
            yield data
        return
    g = _GEAR[np.frombuffer(data, np.uint8)]
    h = g.copy()
    for j in range(1, WINDOW):
        h[j:] += g[:-j] << np.uint64(j)
    cuts = np.flatnonzero((h & CUT_MASK) == 0) + 1
    start = 0
    for cut in cuts.tolist():
        while cut - start > MAX_CHUNK:
            yield data[start : start + MAX_CHUNK]
            start += MAX_CHUNK
        if cut - start >= MIN_CHUNK and len(data) - cut >= MIN_CHUNK:
            yield data[start:cut]
            start = cut
    while len(data) - start > MAX_CHUNK:
        yield data[start : start + MAX_CHUNK]
        start += MAX_CHUNK
    yield data[start:]


# --- choosing the middle ------------------------------------------------------------------------


def _map(path) -> np.ndarray:
    """The file's bytes, mapped (read in full where the file system cannot map it)."""
    if os.path.getsize(path) == 0:
        return np.zeros(0, np.uint8)
    try:
        return np.memmap(path, np.uint8, "r")
    except (OSError, ValueError):
        return np.fromfile(path, np.uint8)


def _block_costs(a: np.ndarray, b: np.ndarray, shift: int) -> np.ndarray:
    """Per BLOCK of `a`: what keeping its differences from `b` (at `shift`) as runs would cost."""
    n, m = len(a), len(b)
    lo, hi = max(0, -shift), min(n, m - shift)  # offsets of `a` that `b` has a byte for
    counts = np.zeros(-(-n // BLOCK), np.int64)
    for s in range(0, n, READ):  # READ is a multiple of BLOCK
        e = min(n, s + READ)
        differs = np.ones(e - s, bool)
        cs, ce = max(s, lo), min(e, hi)
        if cs < ce:
            differs[cs - s : ce - s] = a[cs:ce] != b[cs + shift : ce + shift]
        differs = np.pad(differs, (0, -len(differs) % BLOCK))
        counts[s // BLOCK : s // BLOCK + len(differs) // BLOCK] = differs.reshape(-1, BLOCK).sum(axis=1)
    # a block that differs in more than a quarter of its bytes is kept whole: as part of the middle
    # its bytes can be shared with other files' (a cover shifted by a few bytes matches nowhere)
    return np.where(counts > BLOCK // 4, BLOCK + 1, counts + RUN_COST * (counts > 0))


def _split(head_costs: np.ndarray, tail_costs: np.ndarray, n: int) -> tuple[int, int]:
    """(k1, k2), block-aligned: runs before k1 (shift 0), verbatim in between, runs after k2 (shift)."""
    sizes = np.full(len(head_costs), BLOCK, np.int64)
    if len(sizes):
        sizes[-1] = n - BLOCK * (len(sizes) - 1)
    before = np.concatenate(([0], np.cumsum(head_costs - sizes)))  # K1 blocks as head, vs verbatim
    after = np.concatenate((np.cumsum((tail_costs - sizes)[::-1])[::-1], [0]))  # from K2 on as tail
    best_before = np.minimum.accumulate(before)
    k2 = int(np.argmin(best_before + after))
    k1 = int(np.argmin(before[: k2 + 1]))
    return min(k1 * BLOCK, n), min(k2 * BLOCK, n)


def _same_run(a, b, lo: int, hi: int, shift: int, *, forward: bool) -> int:
    """How many bytes from `lo` (forward) or back from `hi` are equal in `a` and `b` at `shift`."""
    if hi <= lo:
        return 0
    differs = np.flatnonzero(a[lo:hi] != b[lo + shift : hi + shift])
    if not len(differs):
        return hi - lo
    return int(differs[0]) if forward else int(hi - lo - 1 - differs[-1])


def _runs(a, b, lo: int, hi: int, shift: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the differing stretches of a[lo:hi] against b at `shift`, gaps < GAP merged."""
    m = len(b)
    start = end = None
    for s in range(lo, hi, READ):
        e = min(hi, s + READ)
        differs = np.ones(e - s, bool)
        cs, ce = max(s, -shift), min(e, m - shift)
        if cs < ce:
            differs[cs - s : ce - s] = a[cs:ce] != b[cs + shift : ce + shift]
        for i in (np.flatnonzero(differs) + s).tolist():
            if end is not None and i - end < GAP:
                end = i + 1
                continue
            if start is not None:
                yield start, end
            start, end = i, i + 1
    if start is not None:
        yield start, end


# --- rebuilding ---------------------------------------------------------------------------------


def _rebuild(src: BinaryIO, patch: Patch, runs: list[tuple[int, bytes]]) -> Iterator[bytes]:
    head = [r for r in runs if r[0] < patch.head]
    tail = [r for r in runs if r[0] >= patch.tail]
    yield from _overlay(src, 0, patch.head, 0, head)
    yield _insert(b"".join(patch.middle), _unpack(patch.lifted))
    yield from _overlay(src, patch.tail, patch.size, patch.shift, tail)


def _overlay(src: BinaryIO, lo: int, hi: int, shift: int, runs: list[tuple[int, bytes]]) -> Iterator[bytes]:
    """original[lo:hi]: the written file's bytes at `shift`, with `runs` laid over them."""
    pos = lo
    for start, data in runs + [(hi, b"")]:
        yield from _copy(src, pos + shift, start - pos)
        yield data
        pos = start + len(data)


def _copy(src: BinaryIO, offset: int, length: int) -> Iterator[bytes]:
    if length <= 0:
        return
    src.seek(offset)
    while length > 0:
        piece = src.read(min(READ, length))
        if not piece:
            raise NotWritten("the file is shorter than the write left it")
        length -= len(piece)
        yield piece


def _lift_pages(middle: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """`middle` without the Ogg page headers in it, and those headers with their offsets. Exact
    whatever else happens to read "OggS": the headers are put back where they were."""
    rest, lifted, pos = [], [], 0
    i = middle.find(b"OggS")
    while i != -1 and i + 27 <= len(middle) and i + 27 + middle[i + 26] <= len(middle):
        end = i + 27 + middle[i + 26]  # the fixed header, then one byte per segment
        rest.append(middle[pos:i])
        lifted.append((i, middle[i:end]))
        pos = end
        i = middle.find(b"OggS", end)
    rest.append(middle[pos:])
    return b"".join(rest), lifted


def _insert(rest: bytes, lifted: list[tuple[int, bytes]]) -> bytes:
    out, pos, taken = [], 0, 0
    for offset, header in lifted:
        out += [rest[taken : taken + offset - pos], header]
        taken += offset - pos
        pos = offset + len(header)
    out.append(rest[taken:])
    return b"".join(out)


def _pack(spans) -> bytes:
    """(offset, bytes) spans, ascending and apart, as zlib of (gap, length, bytes) each."""
    encoded, last = bytearray(), 0
    for start, data in spans:
        encoded += _varint(start - last) + _varint(len(data)) + data
        last = start + len(data)
    return zlib.compress(bytes(encoded))


def _unpack(encoded: bytes) -> list[tuple[int, bytes]]:
    data, i, pos, runs = zlib.decompress(encoded), 0, 0, []
    while i < len(data):
        gap, i = _read_varint(data, i)
        length, i = _read_varint(data, i)
        pos += gap
        runs.append((pos, data[i : i + length]))
        i += length
        pos += length
    return runs


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        byte = data[i]
        i += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return n, i


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(READ), b""):
            h.update(block)
    return h.hexdigest()
