"""Decode audio with real decoders: libsndfile (soundfile) and FFmpeg (PyAV, which bundles it).

No librosa here: its first call pays a long numba warm-up, and scan needs only a few windows per
file. `read_windows` seeks to each window and decodes just that (plus a small margin for the
resampler), so a 4-minute file costs a fraction of a full decode; `voting_windows` places them
where the audio really is. Which backend reads a format first is the format table's word
(mgctag.formats); the backends (`sndfile`, `pyav`) may hand a stream to each other by its codec.
Every failure leaves this package as a DecodeError with a one-line reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mgctag import formats
from mgctag.errors import DecodeError

from . import windows
from .common import AudioInfo, boundary, file_kind
from .compare import Verdict, Witness, same_audio, witness
from .opener import audio_digest, reading
from .windows import TooShort

SOUNDFILE_EXTENSIONS = formats.extensions_for("soundfile")
PYAV_EXTENSIONS = formats.extensions_for("pyav")


def probe(path: str | Path) -> AudioInfo:
    """Duration, rate and channels from the headers, without decoding."""
    with reading(path) as r:
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
    with reading(path, info.backend if info else None) as r:
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
    with reading(path, info.backend if info else None) as r:
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
    with reading(path) as r:
        sr = r.info.sample_rate
        blocks = list(r.mono_blocks())
    if not blocks:
        raise DecodeError("truncated or corrupt (no audio could be decoded)")
    with boundary():
        return windows.resample(np.concatenate(blocks), sr, sample_rate or sr)


# --- checks --------------------------------------------------------------------------------------


def _check_window(sample_rate: int, n_samples: int) -> None:
    if sample_rate <= 0 or n_samples <= 0:
        raise ValueError("sample_rate and n_samples must be positive")


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
