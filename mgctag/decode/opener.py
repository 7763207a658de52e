"""Opening a file with either backend, and the full decode's digest: what every decode starts from.

A file goes to the backend its format calls for first (mgctag.formats), and to the other when
that one refuses or hands the stream over. This sits below the package and below
mgctag.decode.compare, which opens files the same way and falls back to `audio_digest`: with
both here the package imports compare and compare imports this, one way, and neither reaches
back into the package at call time.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mgctag import formats
from mgctag.errors import DecodeError

from .common import CANNOT_DECODE, Handoff, boundary, check_file, describe_failure, short
from .pyav import PyavReader
from .sndfile import SoundfileReader

BACKENDS = {"soundfile": SoundfileReader, "pyav": PyavReader}


def open_reader(path: str | Path, backend: str | None = None):
    """A reader for `path`: the backend its format calls for first, the other when that one refuses.

    A backend handing a stream over (its codec is the other's) is no failure; of the failures,
    a codec this build lacks is said before a generic reason.
    """
    fspath = check_file(path)
    entry = formats.for_path(fspath)
    first = backend or (entry.decoder if entry else "soundfile")
    order = (first, "pyav" if first == "soundfile" else "soundfile")
    reasons = []
    for i, name in enumerate(order):
        try:
            return BACKENDS[name](fspath, fallback=i > 0)
        except Handoff:
            continue
        except Exception as e:  # any decoder error type becomes a reason, then the next backend
            reasons.append(str(e) if isinstance(e, DecodeError) else short(e))
    specific = [r for r in reasons if r.startswith((CANNOT_DECODE, "no audio stream"))]
    raise DecodeError(specific[0] if specific else describe_failure(fspath, reasons[0] if reasons else "unreadable"))


@contextmanager
def reading(path: str | Path, backend: str | None = None):
    """`open_reader` for a `with` block: closed after it, every failure a DecodeError."""
    with boundary():
        r = open_reader(path, backend)
        try:
            yield r
        finally:
            r.close()


def audio_digest(path: str | Path) -> str:
    """sha256 (hex) of the decoded native samples, all channels, whole file.

    Proves a tag write left the audio untouched: tags live outside the decoded stream, so the
    digest changes only when the audio does. Rate and channel count are hashed too. mgctag.safe
    compares cheaper digests first (`witness`, `same_audio`) and decodes only when they differ.
    """
    with reading(path) as r:
        h = hashlib.sha256(f"{r.info.sample_rate}:{r.info.channels}:".encode())
        n = 0
        for block in r.blocks():
            h.update(np.ascontiguousarray(block, dtype="<f4").tobytes())
            n += len(block)
    if n == 0:
        raise DecodeError("truncated or corrupt (no audio could be decoded)")
    return h.hexdigest()
