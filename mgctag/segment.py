"""Where in a track the voted segments are taken from."""

from __future__ import annotations

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
