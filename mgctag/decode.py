"""Decode audio with real decoders: libsndfile (soundfile) and FFmpeg (PyAV, which bundles it).

No librosa here: its first call pays a long numba warm-up, and scan needs only a few windows per
file. `read_windows` seeks to each window and decodes just that (plus a small margin for the
resampler), so a 4-minute file costs a fraction of a full decode. Every failure leaves this
module as a DecodeError with a one-line reason (the report already carries the path), never as a
decoder's own exception type.
"""
from __future__ import annotations

import errno
import hashlib
import math
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from mgctag.errors import DecodeError

# libsndfile for PCM and FLAC (exact and fastest); FFmpeg for every lossy codec and for ALAC/WMA.
# Measured with libsndfile 1.2.2: MP3 reads go wrong at some read boundaries and after some seeks
# (~3% of windows, errors up to 0.12 over ~300 samples), ~10% of Vorbis seeks land wrongly, and
# its Opus decode is 2x slower; FFmpeg's windows matched its full decodes in all of them.
# Either backend is the other's fallback.
SOUNDFILE_EXTENSIONS = frozenset({".wav", ".flac", ".aif", ".aiff"})
PYAV_EXTENSIONS = frozenset({".mp3", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wma"})
CHUNK = 16384  # frames per libsndfile read: a corrupt tail loses at most this much
RESAMPLE_MARGIN = 0.02  # s of context each side of a window, so the resampler's edges fall outside it
# samples decoded and dropped before a window after a seek: frame overlap (AAC, Vorbis) and the MP3
# bit reservoir reach back a few frames; at 8 kHz MP3 needed more than 0.1 s
PREROLL = 8192
SEEK_GAP = 2.0  # s: a window closer than this to the decoder's position is reached by decoding on


@dataclass(frozen=True)
class AudioInfo:
    duration: float  # seconds, from headers (a truncated file may hold less)
    sample_rate: int  # native rate, Hz
    channels: int  # native channel count
    backend: str  # "soundfile" or "pyav"


# --- the file itself ---------------------------------------------------------------------------

def _check_file(path: str | Path) -> bytes:
    """Refuse what must not be opened (a FIFO would block), return the path as bytes.

    Bytes go to the decoders so that a non-UTF-8 file name still opens.
    """
    fspath = os.fsencode(path)
    try:
        st = os.stat(fspath)
    except FileNotFoundError:
        raise DecodeError("broken symlink" if os.path.islink(fspath) else "file not found") from None
    except PermissionError:
        raise DecodeError("permission denied") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DecodeError("symlink loop") from None
        raise DecodeError(f"cannot read file ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise DecodeError("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise DecodeError(f"not a regular file ({file_kind(st.st_mode)})")
    if st.st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    if not os.access(fspath, os.R_OK):
        raise DecodeError("permission denied")
    return fspath


def file_kind(mode: int) -> str:
    """A short name for a non-regular file type ("FIFO", "socket", ...)."""
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "directory")):
        if test(mode):
            return name
    return "special file"


def _describe_failure(fspath: bytes, reason: str) -> str:
    """One line for a file no backend could open: say what it looks like when we can tell."""
    try:
        with open(fspath, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        return "permission denied" if e.errno == errno.EACCES else f"cannot read file ({e.strerror})"
    if _looks_like_text(head):
        return "not an audio file (looks like text)"
    if reason == "no audio stream":
        return reason
    if head[:3] == b"ID3" or head[:4] in (b"fLaC", b"OggS", b"RIFF", b"FORM") or head[4:8] == b"ftyp":
        return f"truncated or corrupt ({reason})"
    return "not an audio file (unrecognised format)"


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    text = head.decode("utf-8", "replace")
    return sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text)


def _short(e: BaseException) -> str:
    """A decoder's message cut to one short line, without the path it often repeats."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if msg.startswith("Error opening"):
        msg = msg.rsplit(": ", 1)[-1]
    elif msg.startswith("[Errno"):
        msg = msg.split("] ", 1)[-1].split(": '", 1)[0]
    return msg.strip().rstrip(".")[:120]


@contextmanager
def _boundary():
    """Let only DecodeError out: decoders raise their own types, OSError, even MemoryError."""
    try:
        yield
    except DecodeError:
        raise
    except PermissionError:
        raise DecodeError("permission denied") from None
    except MemoryError:
        raise DecodeError("out of memory decoding this file") from None
    except Exception as e:
        raise DecodeError(f"truncated or corrupt ({_short(e)})") from None


def _mono(x: np.ndarray) -> np.ndarray:
    """(samples, channels) -> (samples,) float32, the mean of the channels.

    Summed column by column: numpy's mean over a short last axis is several times slower.
    """
    acc = x[:, 0].astype(np.float32, copy=True)
    for c in range(1, x.shape[1]):
        acc += x[:, c]
    if x.shape[1] > 1:
        acc *= np.float32(1.0 / x.shape[1])
    return acc


# --- soundfile backend -------------------------------------------------------------------------

class _SoundfileReader:
    """libsndfile: PCM, FLAC and Opus seek sample-accurately. As a fallback it may get MP3 (given
    a pre-roll, and quiet: mpg123 prints to stderr) but never Vorbis, whose seeks land wrongly."""

    backend = "soundfile"

    def __init__(self, fspath: bytes):
        import soundfile as sf

        # mpg123 inside libsndfile prints notes on stderr even for ordinary seeks
        self._quiet = _quiet_stderr if fspath.lower().endswith(b".mp3") else nullcontext
        self._open = lambda: sf.SoundFile(fspath)
        with self._quiet():
            self.f = self._open()
        f = self.f
        if f.frames <= 0:  # an Ogg truncated before its first page says 0: let FFmpeg have a go
            f.close()
            raise ValueError("no audio samples")
        if f.subtype == "VORBIS":  # libsndfile 1.2 lands wrongly on ~10% of Vorbis seeks: FFmpeg's are exact
            f.close()
            raise ValueError("Vorbis goes to FFmpeg")
        # mpg123 decodes the first frame after a seek wrongly now and then (bit reservoir): start early
        self.preroll = PREROLL if f.format == "MP3" else 0
        self.frames = f.frames
        self.info = AudioInfo(duration=f.frames / f.samplerate, sample_rate=f.samplerate, channels=f.channels,
                              backend=self.backend)

    def close(self) -> None:
        self.f.close()

    def _read(self, n: int) -> Iterator[np.ndarray]:
        """Up to `n` frames from here, in chunks, so a corrupt tail (a truncated FLAC's "lost
        sync") costs only the chunk it is in; an error ends the reading quietly."""
        while n > 0:
            try:
                with self._quiet():
                    x = self.f.read(min(n, CHUNK), dtype="float32", always_2d=True)
            except Exception:
                return
            if len(x) == 0:
                return
            n -= len(x)
            yield x

    def blocks(self) -> Iterator[np.ndarray]:
        """Whole stream as (samples, channels) float32 blocks."""
        return self._read(self.frames)

    def mono_blocks(self) -> Iterator[np.ndarray]:
        return map(_mono, self.blocks())

    def spans(self, spans: Sequence[tuple[int, int]]) -> list[tuple[np.ndarray, int]]:
        """Mono audio for each native-sample span [begin, end), zero-padded, with its real length."""
        out = []
        for begin, end in spans:
            buf = np.zeros(end - begin, np.float32)
            at = lo = max(begin, 0)
            if lo < self.frames:
                early = max(lo - self.preroll, 0)
                try:
                    with self._quiet():
                        self.f.seek(early)
                    ready = sum(len(x) for x in self._read(lo - early)) == lo - early
                except Exception:  # past the end of a truncated file
                    ready = False
                if ready:
                    for x in self._read(end - lo):
                        buf[at - begin : at - begin + len(x)] = _mono(x)
                        at += len(x)
                if at < end:  # an error or an early end leaves libsndfile unusable: start afresh
                    self.f.close()
                    with self._quiet():
                        self.f = self._open()
            out.append((buf, at - lo))
        return out


_quiet_lock = threading.Lock()
_quiet_depth = 0
_saved_stderr = -1


@contextmanager
def _quiet_stderr():
    """Point file descriptor 2 at /dev/null meanwhile (C libraries write there, not to sys.stderr).

    Counted under a lock, so threads decoding at once restore the real stderr exactly once.
    """
    global _quiet_depth, _saved_stderr
    with _quiet_lock:
        if _quiet_depth == 0:
            _saved_stderr = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                os.dup2(_saved_stderr, 2)
                os.close(_saved_stderr)


# --- PyAV backend ------------------------------------------------------------------------------

class _PyavReader:
    """FFmpeg through PyAV: seek to a timestamp, then place each frame on the timeline by its pts.

    The timeline is that of a full decode (its first sample is 0), so windows match `load`.
    Codecs with overlapping frames (AAC, MP3) decode wrongly just after a seek, hence PREROLL.
    """

    backend = "pyav"

    def __init__(self, fspath: bytes):
        import av

        self._path = os.fsdecode(fspath)
        self._av = av
        self.c = self._open()
        if not self.c.streams.audio:
            self.c.close()
            raise DecodeError("no audio stream")
        self.stream = self.c.streams.audio[0]
        ctx = self.stream.codec_context
        sr, channels = ctx.sample_rate or self.stream.rate, ctx.channels
        if not sr or not channels:
            self.c.close()
            raise ValueError("no sample rate or channel count")
        self.sr = int(sr)
        self.info = AudioInfo(duration=self._duration(), sample_rate=self.sr, channels=int(channels),
                              backend=self.backend)
        self._origin: int | None = None  # pts of the first frame of a full decode

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
    x = _frame_planes(frame)
    if len(x) == 1:
        return x[0]
    return x.sum(axis=0) * np.float32(1.0 / len(x))


# --- opening with either backend ---------------------------------------------------------------

def _open(path: str | Path, backend: str | None = None):
    """A reader for `path`: the backend its extension calls for, PyAV when libsndfile refuses it."""
    fspath = _check_file(path)
    ext = os.path.splitext(fspath)[1].decode("utf-8", "replace").lower()
    if backend:  # a hint (from probe): the other backend still gets its chance
        order = (backend, "pyav" if backend == "soundfile" else "soundfile")
    elif ext in PYAV_EXTENSIONS:
        order = ("pyav", "soundfile")
    else:
        order = ("soundfile", "pyav")
    reasons = []
    for name in order:
        try:
            return (_SoundfileReader if name == "soundfile" else _PyavReader)(fspath)
        except Exception as e:  # any decoder error type becomes a reason, then the next backend
            reasons.append(str(e) if isinstance(e, DecodeError) else _short(e))
    raise DecodeError(_describe_failure(fspath, reasons[0]))


@contextmanager
def _reader(path: str | Path, backend: str | None = None):
    with _boundary():
        r = _open(path, backend)
        try:
            yield r
        finally:
            r.close()


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x
    import soxr

    return soxr.resample(x, sr_in, sr_out).astype(np.float32, copy=False)


def _plan(start: float, sr_in: int, sr_out: int, n_out: int) -> tuple[int, int, int]:
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


# --- public API --------------------------------------------------------------------------------

def probe(path: str | Path) -> AudioInfo:
    """Duration, rate and channels from the headers, without decoding."""
    with _reader(path) as r:
        info = r.info
    if info.duration <= 0:
        raise DecodeError("no audio (0 samples)")
    return info


def read_windows(path: str | Path, *, sample_rate: int, starts: Sequence[float], n_samples: int,
                 info: AudioInfo | None = None) -> np.ndarray:
    """Decode only the windows that will be voted on.

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
    if sample_rate <= 0 or n_samples <= 0:
        raise ValueError("sample_rate and n_samples must be positive")
    out = np.zeros((len(starts), n_samples), np.float32)
    if not len(starts):
        return out
    with _reader(path, info.backend if info else None) as r:
        sr = r.info.sample_rate
        order = sorted(range(len(starts)), key=lambda i: starts[i])
        plans = [_plan(starts[i], sr, sample_rate, n_samples) for i in order]
        decoded = r.spans([(begin, end) for begin, end, _ in plans])
    got = 0
    for i, (_, _, skip), (x, n) in zip(order, plans, decoded):
        y = _resample(x, sr, sample_rate)[skip : skip + n_samples]
        out[i, : len(y)] = y
        got += n
    if got == 0 and not 0 < r.info.duration <= min(starts):  # nothing, and not just asked past the end
        raise DecodeError("truncated or corrupt (no audio could be decoded)")
    return out


def load(path: str | Path, *, sample_rate: int | None = None) -> np.ndarray:
    """The whole file, mono float32, at `sample_rate` (None: the native rate). Shape (samples,)."""
    with _reader(path) as r:
        sr = r.info.sample_rate
        blocks = list(r.mono_blocks())
    if not blocks:
        raise DecodeError("truncated or corrupt (no audio could be decoded)")
    with _boundary():
        return _resample(np.concatenate(blocks), sr, sample_rate or sr)


def audio_digest(path: str | Path) -> str:
    """sha256 (hex) of the decoded native samples, all channels, whole file.

    Proves a tag write left the audio untouched: tags live outside the decoded stream, so the
    digest changes only when the audio does. Rate and channel count are hashed too.
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
