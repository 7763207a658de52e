"""Where in a track the windows are taken from: a scan's votes, training's tiles, a teacher's context."""

from __future__ import annotations

import math

import numpy as np


def segment_starts(duration: float, seconds: float, n: int) -> list[float]:
    """Start times (s) of `n` segments of `seconds` spread evenly over the track.

    The first starts at 0 and the last ends at the track's end, so the vote hears the whole
    track rather than its intro. A track shorter than `n` segments gets fewer, never
    overlapping more than needed; one shorter than a segment gets one (padded by decode).
    """
    if n < 1:
        raise ValueError("need at least one segment")
    if duration <= seconds:
        return [0.0]
    n = min(n, max(1, int(np.ceil(duration / seconds))))
    if n == 1:
        return [max(0.0, (duration - seconds) / 2)]
    return [float(x) for x in np.linspace(0.0, duration - seconds, n)]


def tile_starts(duration: float, seconds: float) -> list[float]:
    """Back-to-back segment starts covering a whole clip (training and evaluation)."""
    if duration <= seconds:
        return [0.0]
    return [i * seconds for i in range(int((duration + 1e-6) // seconds))]


def spread_order(n: int) -> list[int]:
    """The order a scan hears `n` evenly spread windows in: the one nearest the middle first, then
    each time the one farthest from those heard and from the track's ends, so that after any
    round the windows heard lie across the track, and intros and outros come last. For 6: 2, 4,
    1, 3, 5, 0."""
    at = [(i + 0.5) / n for i in range(n)]
    order = [min(range(n), key=lambda i: (abs(at[i] - 0.5), i))]
    while len(order) < n:
        heard = [0.0, 1.0, *(at[i] for i in order)]
        free = [i for i in range(n) if i not in order]
        order.append(max(free, key=lambda i: (min(abs(at[i] - h) for h in heard), -i)))
    return order


def window_starts(start: float, seconds: float, window: float, duration: float) -> list[float]:
    """Where a teacher window of `window` s hears the segment [start, start + seconds) of a `duration` s track.

    Shorter segment: one window centred on it, moved inside the track where it fits. Longer: the
    fewest windows that cover it, spread from its start to its end (`segment_starts`).
    """
    if seconds <= window:
        latest = max(0.0, duration - window)
        return [min(max(0.0, start + (seconds - window) / 2), latest)]
    n = math.ceil(seconds / window - 1e-9)
    return [start + s for s in segment_starts(seconds, window, n)]
