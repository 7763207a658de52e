"""Where in a file a job's windows lie: the one thing a scan, training and a teacher decode differently.

A plan turns a probed file into windows at one rate and length; `mgctag.pool.DecodeJob` reads any
plan the same way, in a worker process, so errors, witnesses and tags are handled once. Plans
import no torch: decoding workers load this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import decode, segment


@dataclass(frozen=True)
class WindowSpec:
    """A scan's voting windows: up to `n_segments` of `n_samples` each at `sample_rate`, spread
    over the track, real audio only (decode.voting_windows); a `part` is one round of them."""

    sample_rate: int
    n_samples: int
    n_segments: int

    @classmethod
    def of(cls, model, n_segments: int) -> "WindowSpec":
        """For a Classifier: its front-end's rate and segment length."""
        return cls(model.spec.sample_rate, model.spec.segment_samples, n_segments)

    def read(self, path: Path, info: decode.AudioInfo, part: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
        return decode.voting_round(
            path,
            sample_rate=self.sample_rate,
            n_samples=self.n_samples,
            n_segments=self.n_segments,
            info=info,
            part=part,
        )


@dataclass(frozen=True)
class Tiles:
    """Training's windows: the whole track as back-to-back segments (segment.tile_starts)."""

    sample_rate: int
    n_samples: int

    @classmethod
    def of(cls, spec) -> "Tiles":
        """For a FrontendSpec."""
        return cls(spec.sample_rate, spec.segment_samples)

    def read(self, path: Path, info: decode.AudioInfo, part=None) -> tuple[np.ndarray, int]:
        starts = segment.tile_starts(info.duration, self.n_samples / self.sample_rate)
        w = decode.read_windows(path, sample_rate=self.sample_rate, starts=starts, n_samples=self.n_samples, info=info)
        return w, len(w)


@dataclass(frozen=True)
class Centred:
    """A teacher's windows (`window`) hearing a student's back-to-back segments of `seconds`:
    `per_segment` windows each, as segment.window_starts places them."""

    seconds: float
    window: WindowSpec

    @property
    def per_segment(self) -> int:
        w = self.window
        return len(segment.window_starts(0.0, self.seconds, w.n_samples / w.sample_rate, math.inf))

    def read(self, path: Path, info: decode.AudioInfo, part=None) -> tuple[np.ndarray, int]:
        w = self.window
        length = w.n_samples / w.sample_rate
        starts = [
            s
            for start in segment.tile_starts(info.duration, self.seconds)
            for s in segment.window_starts(start, self.seconds, length, info.duration)
        ]
        out = decode.read_windows(path, sample_rate=w.sample_rate, starts=starts, n_samples=w.n_samples, info=info)
        return out, len(out)
