"""Which native samples to decode for each window, and windows that hold real audio only.

`plan` maps a window at the model's rate to a native span (aligned so the resampled window
equals a slice of a fully decoded, resampled file). `read` decodes the spans and says where the
audio really ended, so `voting` can move windows off the zeros past the end of a truncated file,
or of a stream a little shorter than its header says (Opus's pre-skip, WMA's first frame).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mgctag.errors import DecodeError
from mgctag.segment import segment_starts, spread_order

RESAMPLE_MARGIN = 0.02  # s of context each side of a window, so the resampler's edges fall outside it
MIN_REAL = 0.5  # a file holding less than this part of one window (and less than MIN_SECONDS) is too short
MIN_SECONDS = 3.0  # ... so a model with long windows (30 s) still hears a clip of a few seconds
REPLANS = 3  # each round learns the real end better; a header wrong by a lot needs two


class TooShort(DecodeError):
    """The audio decodes, but there is too little of it for a model to hear (the file is skipped)."""


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x
    import soxr

    return soxr.resample(x, sr_in, sr_out).astype(np.float32, copy=False)


def plan(start: float, sr_in: int, sr_out: int, n_out: int) -> tuple[int, int, int]:
    """Native span (begin, end) to decode for one window, and where the window starts in its
    resampled output, such that the window equals load(path, sample_rate=sr_out) sliced at
    round(start * sr_out).

    The span begins on a sample where both rates meet exactly (every sr_in/gcd samples) and
    carries RESAMPLE_MARGIN of context each side, so the resampler's edges fall outside the window.
    """
    o0 = round(start * sr_out)
    if sr_in == sr_out:
        return o0, o0 + n_out, 0
    g = math.gcd(sr_in, sr_out)
    step_in, step_out = sr_in // g, sr_out // g
    if step_in <= sr_in // 10:  # rates meet at least every 0.1 s
        q, skip = divmod(o0, step_out)
        b = q * step_in
        k = max(1, math.ceil(RESAMPLE_MARGIN * sr_in / step_in))
        m_in, m_out = k * step_in, k * step_out
    else:  # awkward rates: accept a sub-sample misalignment
        b, skip = round(o0 * sr_in / sr_out), 0
        m_in = int(RESAMPLE_MARGIN * sr_in)
        m_out = round(m_in * sr_out / sr_in)
    end = b + math.ceil((skip + n_out) * sr_in / sr_out) + m_in
    return b - m_in, end, m_out + skip


def read(reader, starts: Sequence[float], *, sample_rate: int, n_samples: int) -> tuple[np.ndarray, int | None, int]:
    """Windows at `starts` (zero-padded where the audio ends), the native sample where the
    decoded audio ended (None when every span decoded whole) and how many native samples decoded."""
    sr = reader.info.sample_rate
    out = np.zeros((len(starts), n_samples), np.float32)
    order = sorted(range(len(starts)), key=lambda i: starts[i])
    plans = [plan(starts[i], sr, sample_rate, n_samples) for i in order]
    decoded = reader.spans([(begin, end) for begin, end, _ in plans])
    end_at, total = None, 0
    for i, (begin, end, skip), (x, got) in zip(order, plans, decoded):
        total += got
        y = resample(x, sr, sample_rate)[skip : skip + n_samples]
        out[i, : len(y)] = y
        if got < end - max(begin, 0):  # the audio stopped inside (or before) this span
            stop = max(begin, 0) + got
            end_at = stop if end_at is None else min(end_at, stop)
    return out, end_at, total


def voting(
    reader,
    *,
    duration: float,
    sample_rate: int,
    n_samples: int,
    n_segments: int,
    part: tuple[int, int] | None = None,
) -> tuple[np.ndarray, int]:
    """The windows a model votes over, every sample of them decoded audio (no zero padding), and
    how many windows the whole plan holds.

    Spread by segment_starts over `duration` first; when the audio ends earlier than that, the
    windows are spread again over what really decodes (a short shortfall just moves the last
    windows back). A file shorter than one window is repeated to fill it, its own samples and never
    silence, when it holds at least MIN_REAL of a window or MIN_SECONDS: a model trained on whole
    windows hears the music, where zeros would make it hear silence. A shorter one raises TooShort:
    a fraction of a second repeated over and over is a buzz, not music.

    `part` (a, b): only the windows spread_order puts at a..b-1, a round of a scan that listens
    until it is sure; the plan's count is then -1 when the audio ended early and every window
    of the plan, spread again, came back instead (they replace the rounds heard before).
    """
    seconds = n_samples / sample_rate
    starts = segment_starts(duration, seconds, n_segments)
    if part is not None:
        picked = [starts[i] for i in spread_order(len(starts))[part[0] : part[1]]]
        windows, end_at, _ = read(reader, picked, sample_rate=sample_rate, n_samples=n_samples)
        sr = reader.info.sample_rate
        if end_at is None or all(_real(end_at, sr, s, sample_rate, n_samples) == n_samples for s in picked):
            return windows, len(starts)
        return _whole(reader, starts, sample_rate, n_samples, n_segments), -1
    whole = _whole(reader, starts, sample_rate, n_samples, n_segments)
    return whole, len(whole)


def _whole(reader, starts: list[float], sample_rate: int, n_samples: int, n_segments: int) -> np.ndarray:
    sr, seconds = reader.info.sample_rate, n_samples / sample_rate
    seen: dict[float, tuple[np.ndarray, int]] = {}  # start -> (window, real samples at its start)
    for attempt in range(REPLANS):
        todo = [s for s in starts if s not in seen]
        if todo:
            windows, end_at, _ = read(reader, todo, sample_rate=sample_rate, n_samples=n_samples)
            if end_at == 0:
                raise DecodeError("truncated or corrupt (no audio could be decoded)")
            for k, s in enumerate(todo):
                seen[s] = (windows[k], n_samples if end_at is None else _real(end_at, sr, s, sample_rate, n_samples))
        short = [s for s in starts if seen[s][1] < n_samples]
        if not short or attempt == REPLANS - 1:
            break
        starts = _replan(starts, min(s + seen[s][1] / sample_rate for s in short), seconds, n_segments)
    whole = [seen[s][0] for s in starts if seen[s][1] == n_samples]
    if whole:
        return np.stack(whole)
    window, real = max(seen.values(), key=lambda wr: wr[1])
    if real < min(MIN_REAL * n_samples, MIN_SECONDS * sample_rate):
        raise TooShort(
            f"too short to analyse: {real / sample_rate:.2f} s of audio, the model listens to {seconds:.2f} s at a time"
        )
    return np.resize(window[:real], n_samples)[None]  # np.resize repeats the samples to fill


def _real(end_at: int, sr: int, start: float, sample_rate: int, n_samples: int) -> int:
    """How many samples of the window at `start` come before native sample `end_at`."""
    before = -(-end_at * sample_rate // sr)  # output samples whose time is before the end: ceil, exactly
    return min(n_samples, max(0, before - round(start * sample_rate)))


def _replan(starts: list[float], real_end: float, seconds: float, n: int) -> list[float]:
    """Starts within [0, real_end]: the short windows moved back when less than one window is
    missing (the others stay, already decoded), all of them spread again when more is."""
    if real_end <= seconds:
        return [0.0]
    if max(starts) + seconds - real_end < seconds:
        moved = [min(s, real_end - seconds) for s in starts]
        return sorted(set(moved))
    return segment_starts(real_end, seconds, n)
