"""Decode audio with real decoders: libsndfile (soundfile) and FFmpeg (PyAV, which bundles it).

No librosa here: its first call pays a long numba warm-up, and scan needs only a few windows per
file. `read_windows` seeks to each window and decodes just that (plus a small margin for the
resampler), so a 4-minute file costs a fraction of a full decode; `voting_windows` places them
where the audio really is. Which backend reads a format first is the format table's word
(mgctag.formats); the backends (`sndfile`, `pyav`) may hand a stream to each other by its codec.
Every failure leaves this package as a DecodeError with a one-line reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mgctag import formats
from mgctag.errors import DecodeError

from . import windows
from .common import CANNOT_DECODE, AudioInfo, Handoff, boundary, check_file, describe_failure, file_kind, short
from .compare import Verdict, Witness, same_audio, witness
from .pyav import PyavReader
from .sndfile import SoundfileReader
from .windows import TooShort

BACKENDS = {"soundfile": SoundfileReader, "pyav": PyavReader}
SOUNDFILE_EXTENSIONS = formats.extensions_for("soundfile")
PYAV_EXTENSIONS = formats.extensions_for("pyav")


def probe(path: str | Path) -> AudioInfo:
    """Duration, rate and channels from the headers, without decoding."""
    with _reader(path) as r:
        info = r.info
    if info.duration <= 0:
        raise DecodeError("no audio (0 samples)")
    return info


def read_windows(
    path: str | Path, *, sample_rate: int, starts: Sequence[float], n_samples: int, info: AudioInfo | None = None
) -> np.ndarray:
    """Decode only these windows.

    Parameters
    ----------
    starts : start of each window, seconds, in any order
    n_samples : window length at `sample_rate`
    info : from `probe`, to skip choosing the backend again

    Returns
    -------
    (len(starts), n_samples) float32, mono (mean of channels), resampled with soxr: row i equals
    ``load(path, sample_rate=sample_rate)[round(starts[i] * sample_rate):][:n_samples]`` (to
    float rounding; lossy decoders can differ slightly just after a seek), zero-padded where the
    audio ends early (a short clip, or a truncated file whose header claims more).
    """
    _check_window(sample_rate, n_samples)
    if not len(starts):
        return np.zeros((0, n_samples), np.float32)
    with _reader(path, info.backend if info else None) as r:
        out, _, got = windows.read(r, starts, sample_rate=sample_rate, n_samples=n_samples)
    if got == 0 and not 0 < r.info.duration <= min(starts):  # nothing, and not just asked past the end
        raise DecodeError("truncated or corrupt (no audio could be decoded)")
    return out


def voting_windows(
    path: str | Path, *, sample_rate: int, n_samples: int, n_segments: int, info: AudioInfo | None = None
) -> np.ndarray:
    """The windows a model votes over: up to `n_segments` rows of `n_samples` at `sample_rate`,
    spread over the track, every sample real audio (see mgctag.decode.windows.voting).

    Fewer rows when the audio is shorter than the header says; TooShort (a DecodeError) when
    there is less than half a window (and less than 3 s) of it.
    """
    return voting_round(path, sample_rate=sample_rate, n_samples=n_samples, n_segments=n_segments, info=info)[0]


def voting_round(
    path: str | Path,
    *,
    sample_rate: int,
    n_samples: int,
    n_segments: int,
    info: AudioInfo | None = None,
    part: tuple[int, int] | None = None,
) -> tuple[np.ndarray, int]:
    """`voting_windows`, or with `part` one round of them, and the plan's window count
    (mgctag.decode.windows.voting: -1 when a round came back as the whole plan)."""
    _check_window(sample_rate, n_samples)
    with _reader(path, info.backend if info else None) as r:
        return windows.voting(
            r,
            duration=(info or r.info).duration,
            sample_rate=sample_rate,
            n_samples=n_samples,
            n_segments=n_segments,
            part=part,
        )


def load(path: str | Path, *, sample_rate: int | None = None) -> np.ndarray:
    """The whole file, mono float32, at `sample_rate` (None: the native rate). Shape (samples,)."""
    with _reader(path) as r:
        sr = r.info.sample_rate
        blocks = list(r.mono_blocks())
    if not blocks:
        raise DecodeError("truncated or corrupt (no audio could be decoded)")
    with boundary():
        return windows.resample(np.concatenate(blocks), sr, sample_rate or sr)


def audio_digest(path: str | Path) -> str:
    """sha256 (hex) of the decoded native samples, all channels, whole file.

    Proves a tag write left the audio untouched: tags live outside the decoded stream, so the
    digest changes only when the audio does. Rate and channel count are hashed too. mgctag.safe
    compares cheaper digests first (`witness`, `same_audio`) and decodes only when they differ.
    """
    with _reader(path) as r:
        h = hashlib.sha256(f"{r.info.sample_rate}:{r.info.channels}:".encode())
        n = 0
        for block in r.blocks():
            h.update(np.ascontiguousarray(block, dtype="<f4").tobytes())
            n += len(block)
    if n == 0:
        raise DecodeError("truncated or corrupt (no audio could be decoded)")
    return h.hexdigest()


# --- opening with either backend ---------------------------------------------------------------


def _check_window(sample_rate: int, n_samples: int) -> None:
    if sample_rate <= 0 or n_samples <= 0:
        raise ValueError("sample_rate and n_samples must be positive")


def _open(path: str | Path, backend: str | None = None):
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
def _reader(path: str | Path, backend: str | None = None):
    with boundary():
        r = _open(path, backend)
        try:
            yield r
        finally:
            r.close()


__all__ = [
    "AudioInfo",
    "TooShort",
    "probe",
    "read_windows",
    "voting_windows",
    "voting_round",
    "load",
    "audio_digest",
    "file_kind",
    "witness",
    "same_audio",
    "Witness",
    "Verdict",
    "SOUNDFILE_EXTENSIONS",
    "PYAV_EXTENSIONS",
]
