"""Decode audio with real decoders: libsndfile (via soundfile) first, FFmpeg (via PyAV) for the rest.

No librosa here: its first call pays a long numba warm-up, and scan only needs a few windows
per file. Every failure leaves this module as a DecodeError with a one-line reason (the report
already carries the path), never as a decoder's own exception type.
"""
from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgctag.errors import DecodeError

# libsndfile reads these itself; FFmpeg (PyAV) reads the rest and whatever libsndfile refuses.
SOUNDFILE_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"})
PYAV_EXTENSIONS = frozenset({".m4a", ".mp4", ".aac", ".wma"})
BLOCK = 65536  # samples per block when streaming a whole file


@dataclass(frozen=True)
class AudioInfo:
    duration: float  # seconds, from headers (a truncated file may hold less)
    sample_rate: int  # native rate, Hz
    channels: int  # native channel count
    backend: str  # "soundfile" or "pyav"


# --- the file itself ---------------------------------------------------------------------------

def _check_file(path: str | Path) -> bytes:
    """Refuse what must not be opened (FIFOs would block, folders, empty files); return an fs path.

    The path goes to the decoders as bytes so a non-UTF-8 file name still opens.
    """
    fspath = os.fsencode(path)
    try:
        st = os.stat(fspath)
    except FileNotFoundError:
        if os.path.islink(fspath):
            raise DecodeError("broken symlink") from None
        raise DecodeError("file not found") from None
    except PermissionError:
        raise DecodeError("permission denied") from None
    except OSError as e:
        if e.errno == 40:  # ELOOP
            raise DecodeError("symlink loop") from None
        raise DecodeError(f"cannot read file ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise DecodeError("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise DecodeError(f"not a regular file ({_file_kind(st.st_mode)})")
    if st.st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    if not os.access(fspath, os.R_OK):
        raise DecodeError("permission denied")
    return fspath


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def _backends(fspath: bytes) -> tuple[str, ...]:
    """Backends to try, in order: by extension, the other one as fallback."""
    ext = os.path.splitext(fspath)[1].decode("utf-8", "replace").lower()
    if ext in PYAV_EXTENSIONS:
        return ("pyav",)
    return ("soundfile", "pyav")


def _describe_failure(fspath: bytes, reason: str) -> str:
    """One line for a file no backend could open: say what it looks like when we can tell."""
    try:
        with open(fspath, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        return f"cannot read file ({e.strerror})"
    if _looks_like_text(head):
        return "not an audio file (looks like text)"
    if head[:3] == b"ID3" or head[:4] in (b"fLaC", b"OggS", b"RIFF", b"FORM") or head[4:8] == b"ftyp":
        return f"truncated or corrupt ({reason})"
    return "not an audio file (unrecognised format)"


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text)


def _short(e: BaseException) -> str:
    """A decoder's message, cut to one short line, without the path it often repeats."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    if ": " in msg and ("Error opening" in msg or "No such" in msg or msg.startswith("[Errno")):
        msg = msg.rsplit(": ", 1)[-1]
    return msg.strip().rstrip(".")[:120]


# --- soundfile backend -------------------------------------------------------------------------

def _sf_open(fspath: bytes):
    import soundfile as sf

    return sf.SoundFile(fspath)


def _sf_info(f) -> AudioInfo:
    return AudioInfo(duration=f.frames / f.samplerate, sample_rate=f.samplerate, channels=f.channels,
                     backend="soundfile")


def _sf_blocks(f) -> Iterator[np.ndarray]:
    """Whole stream as (samples, channels) float32 blocks; stops quietly where a truncated file ends."""
    f.seek(0)
    while True:
        try:
            block = f.read(BLOCK, dtype="float32", always_2d=True)
        except Exception:  # corrupt data mid-stream: keep what was decoded
            return
        if len(block) == 0:
            return
        yield block


# --- PyAV backend ------------------------------------------------------------------------------

def _av_open(fspath: bytes):
    import av

    container = av.open(os.fsdecode(fspath), "r") if _utf8(fspath) else av.open(open(fspath, "rb"), "r")
    if not container.streams.audio:
        container.close()
        raise DecodeError("no audio stream")
    return container


def _utf8(fspath: bytes) -> bool:
    try:
        fspath.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _av_info(container) -> AudioInfo:
    stream = container.streams.audio[0]
    ctx = stream.codec_context
    sr = ctx.sample_rate or stream.rate
    channels = ctx.channels
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    else:
        duration = 0.0
    if not sr or not channels:
        raise DecodeError("truncated or corrupt (no sample rate or channel count)")
    return AudioInfo(duration=duration, sample_rate=int(sr), channels=int(channels), backend="pyav")


def _frame_array(frame) -> np.ndarray:
    """One decoded frame as (samples, channels) float32, whatever FFmpeg's sample format."""
    x = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        x = x.reshape(-1, channels).T
    name = frame.format.name.rstrip("p")
    if name == "s16":
        x = x.astype(np.float32) / 32768.0
    elif name == "s32":
        x = x.astype(np.float32) / 2147483648.0
    elif name == "u8":
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif name == "s64":
        x = x.astype(np.float64) / 9223372036854775808.0
    return np.ascontiguousarray(x.T, dtype=np.float32)


def _av_frames(container, stream):
    """Decoded frames of `stream`; a corrupt packet ends the stream rather than the whole decode."""
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except Exception:  # one bad packet: skip it, as players do
                continue
            yield from frames
    except Exception:  # demuxer gave up (truncated file): keep what was decoded
        return


def _av_blocks(container) -> Iterator[np.ndarray]:
    stream = container.streams.audio[0]
    for frame in _av_frames(container, stream):
        if frame.samples:
            yield _frame_array(frame)


# --- opening with either backend ---------------------------------------------------------------

class _Source:
    """An open file with the backend that accepted it."""

    def __init__(self, path: str | Path):
        fspath = _check_file(path)
        errors = []
        for backend in _backends(fspath):
            try:
                if backend == "soundfile":
                    self.handle = _sf_open(fspath)
                    self.info = _sf_info(self.handle)
                else:
                    self.handle = _av_open(fspath)
                    self.info = _av_info(self.handle)
            except DecodeError:
                raise
            except Exception as e:  # any decoder error type becomes a reason, then the next backend
                errors.append(_short(e))
                continue
            self.backend = backend
            return
        raise DecodeError(_describe_failure(fspath, errors[-1] if errors else "unreadable"))

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.handle.close()
        except Exception:
            pass

    def blocks(self) -> Iterator[np.ndarray]:
        """The whole stream as (samples, channels) float32 blocks at the native rate."""
        return _sf_blocks(self.handle) if self.backend == "soundfile" else _av_blocks(self.handle)


def _wrap(fn):
    """Let only DecodeError out of a public function (decoder errors, OSError, MemoryError...)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DecodeError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except PermissionError:
            raise DecodeError("permission denied") from None
        except MemoryError:
            raise DecodeError("out of memory decoding this file") from None
        except Exception as e:
            raise DecodeError(f"truncated or corrupt ({_short(e)})") from None

    return wrapper


# --- public API --------------------------------------------------------------------------------

@_wrap
def probe(path: str | Path) -> AudioInfo:
    """Duration, rate and channels from the headers, without decoding."""
    with _Source(path) as src:
        return src.info


@_wrap
def audio_digest(path: str | Path) -> str:
    """sha256 (hex) of the decoded native samples, all channels, whole file.

    Proves a tag write left the audio untouched: tags live outside the decoded stream, so the
    digest changes only when the audio does. Rate and channel count are hashed too.
    """
    with _Source(path) as src:
        h = hashlib.sha256(f"{src.info.sample_rate}:{src.info.channels}:".encode())
        n = 0
        for block in src.blocks():
            h.update(np.ascontiguousarray(block, dtype="<f4").tobytes())
            n += len(block)
    if n == 0:
        raise DecodeError("truncated or corrupt (no audio samples)")
    return h.hexdigest()
