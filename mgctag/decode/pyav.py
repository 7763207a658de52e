"""FFmpeg through PyAV (its wheel bundles FFmpeg): MP3, Vorbis, Opus, AAC/ALAC, WMA, WavPack, DSD...

Seek to a timestamp, then place each frame on the timeline by its pts. The timeline is that of
a full decode (its first sample is 0), so windows match `load`. Codecs with overlapping frames
(AAC, MP3) decode wrongly just after a seek, hence PREROLL.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np

from mgctag.errors import DecodeError

from .common import CANNOT_DECODE, AudioInfo

# samples decoded and dropped before a window after a seek: frame overlap (AAC, Vorbis) and the MP3
# bit reservoir reach back a few frames; at 8 kHz MP3 needed more than 0.1 s
PREROLL = 8192
SEEK_GAP = 2.0  # s: a window closer than this to the decoder's position is reached by decoding on


class PyavReader:
    """FFmpeg: windows by seeking, placed on a full decode's timeline."""

    backend = "pyav"

    def __init__(self, fspath: bytes, *, fallback: bool = False):
        import av

        self._path = os.fsdecode(fspath)
        self._av = av
        self.c = self._open()
        try:
            self._check_stream()
        except BaseException:
            self.c.close()
            raise
        self.info = AudioInfo(
            duration=self._duration(), sample_rate=self.sr, channels=self.channels, backend=self.backend
        )
        self._origin: int | None = None  # pts of the first frame of a full decode

    def _check_stream(self) -> None:
        """The first audio stream, its decoder opened: a codec FFmpeg lacks (or whose decoder
        refuses the stream, as with some WMA 9 files) is said as such, not as a broken file."""
        if not self.c.streams.audio:
            raise DecodeError("no audio stream")
        self.stream = self.c.streams.audio[0]
        ctx = self.stream.codec_context
        if ctx is None:
            raise DecodeError(f"{CANNOT_DECODE} ({self._codec_name()})")
        try:
            ctx.open()
        except self._av.error.FFmpegError:
            raise DecodeError(f"{CANNOT_DECODE} ({ctx.name})") from None
        sr, channels = ctx.sample_rate or self.stream.rate, ctx.channels
        if not sr or not channels:
            raise ValueError("no sample rate or channel count")
        self.sr, self.channels = int(sr), int(channels)

    def _codec_name(self) -> str:
        tag = getattr(self.stream, "codec_tag", "")
        return f"codec tag {tag!r}" if tag else "unknown codec"

    def _duration(self) -> float:
        s = self.stream
        if s.duration is not None and s.time_base:
            return float(s.duration * s.time_base)
        if self.c.duration is not None:
            return self.c.duration / 1_000_000
        n = sum(len(b) for b in self.blocks())  # a raw stream without a length: count it
        self._reopen()
        return n / self.sr

    def close(self) -> None:
        self.c.close()

    def _frames(self) -> Iterator:
        """Decoded frames; a bad packet is skipped and a demuxer error ends the stream, as players do."""
        try:
            for packet in self.c.demux(self.stream):
                try:
                    frames = packet.decode()
                except self._av.error.FFmpegError:
                    continue
                for frame in frames:
                    if frame.samples:
                        yield frame
        except self._av.error.FFmpegError:
            return

    def _open(self):
        # tags are not our business here: a non-UTF-8 title must not fail the decode
        return self._av.open(self._path, "r", metadata_errors="replace")

    def _reopen(self) -> None:
        self.c.close()
        self.c = self._open()
        self.stream = self.c.streams.audio[0]

    def blocks(self) -> Iterator[np.ndarray]:
        for frame in self._frames():
            yield _frame_array(frame)

    def mono_blocks(self) -> Iterator[np.ndarray]:
        return map(_frame_mono, self._frames())

    # windows --------------------------------------------------------------------------------

    def _from_start(self) -> Iterator[tuple[int, np.ndarray]]:
        """(position, mono) of every frame from the beginning; a fresh open, not seek(0), so that
        the first frame is decoded exactly as in a full decode (AAC priming)."""
        self._reopen()
        pos = 0
        for frame in self._frames():
            if self._origin is None:
                self._origin = frame.pts if frame.pts is not None else 0
            x = _frame_mono(frame)
            yield pos, x
            pos += len(x)

    def _after_seek(self, target: int) -> Iterator[tuple[int, np.ndarray]] | None:
        """Frames from a seek that lands at or before native sample `target`; None if it cannot."""
        if self._origin is None:  # learn it from the first frame of a fresh decode
            self._reopen()
            first = next(self._frames(), None)
            self._origin = first.pts if first is not None and first.pts is not None else 0
        tb = self.stream.time_base
        coarse = tb > Fraction(1, self.sr)  # e.g. ASF's milliseconds: pts is only ~20 samples exact
        back = PREROLL
        for _ in range(3):
            ts = self._origin + math.floor(Fraction(target - back, self.sr) / tb)
            if ts <= self._origin:
                return None
            try:
                self.c.seek(ts, stream=self.stream, backward=True)
            except self._av.error.FFmpegError:
                return None
            frames = self._frames()
            first = next(frames, None)
            if first is None or first.pts is None:
                return None
            pos = round((first.pts - self._origin) * tb * self.sr)
            if coarse:  # frames of a fixed size tile the timeline from the origin
                pos = round(pos / first.samples) * first.samples
            if pos <= target - PREROLL:  # demuxers may land late (MP3 without a seek table)
                return self._positioned(first, pos, frames)
            back *= 4
        return None

    @staticmethod
    def _positioned(first, pos: int, frames: Iterator) -> Iterator[tuple[int, np.ndarray]]:
        for frame in _chain(first, frames):
            x = _frame_mono(frame)
            yield pos, x
            pos += len(x)

    def spans(self, spans: Sequence[tuple[int, int]]) -> list[tuple[np.ndarray, int]]:
        """Mono audio for each native-sample span [begin, end), sorted by begin; zero-padded.

        Near spans are reached by decoding on, far ones by seeking; a stream that cannot seek is
        decoded on from where it is, never restarted per span.
        """
        out = []
        frames: Iterator | None = None
        held: list[tuple[int, np.ndarray]] = []  # decoded frames that may still overlap a span
        cur = 0  # where `frames` will continue
        eos: int | None = None  # where the stream was found to end
        seekable = True
        gap = int(SEEK_GAP * self.sr)
        for begin, end in spans:
            if eos is not None and begin >= eos:
                out.append((np.zeros(end - begin, np.float32), 0))
                continue
            if frames is None or (begin - cur > gap and seekable) or (held and begin < held[0][0]):
                frames = None
                if begin > gap + PREROLL and seekable:
                    frames = self._after_seek(begin)
                    seekable = frames is not None
                if frames is None:
                    frames = self._from_start()
                held, cur = [], 0
            held = [(p, x) for p, x in held if p + len(x) > begin]
            for p, x in frames:
                cur = p + len(x)
                if cur > begin:
                    held.append((p, x))
                if cur >= end:
                    break
            else:
                eos = cur
            buf = np.zeros(end - begin, np.float32)
            got = 0
            for p, x in held:
                lo, hi = max(p, begin, 0), min(p + len(x), end)
                if hi > lo:
                    buf[lo - begin : hi - begin] = x[lo - p : hi - p]
                    got += hi - lo
            out.append((buf, got))
        return out


def _chain(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def _frame_planes(frame) -> np.ndarray:
    """One decoded frame as (channels, samples) float32, whatever FFmpeg's sample format."""
    x = frame.to_ndarray()
    if not frame.format.is_planar:
        x = x.reshape(-1, len(frame.layout.channels)).T
    kind = frame.format.name.rstrip("p")
    if kind in ("s16", "s32", "s64"):
        x = x * np.float32(2.0 ** -(int(kind[1:]) - 1))
    elif kind == "u8":
        x = (x.astype(np.float32) - 128.0) / 128.0
    return x.astype(np.float32, copy=False)


def _frame_array(frame) -> np.ndarray:
    """(samples, channels) float32, the layout soundfile gives."""
    return np.ascontiguousarray(_frame_planes(frame).T)


def _frame_mono(frame) -> np.ndarray:
    """One frame as mono float32, the mean of its channels. Planar float (what FFmpeg's MP3, AAC,
    Vorbis and Opus decoders give) is read straight from the planes: 3x faster per frame than
    to_ndarray, which stacks them first, and the same numbers."""
    if frame.format.name == "fltp":
        n, planes = frame.samples, frame.planes
        acc = np.frombuffer(planes[0], np.float32, n).copy()  # planes may be padded: count, not size
        for plane in planes[1:]:
            acc += np.frombuffer(plane, np.float32, n)
        if len(planes) > 1:
            acc *= np.float32(1.0 / len(planes))
        return acc
    x = _frame_planes(frame)
    if len(x) == 1:
        return x[0]
    return x.sum(axis=0) * np.float32(1.0 / len(x))
