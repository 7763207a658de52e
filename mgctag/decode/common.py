"""What both decoding backends share: the file checks, one-line reasons, the codec sniff, mono.

Every failure leaves mgctag.decode as a DecodeError with a one-line reason (the report already
carries the path), never as a decoder's own exception type; `boundary` is where that happens.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from mgctag.errors import DecodeError

CANNOT_DECODE = "audio in a codec this build cannot decode"
# containers FFmpeg has no reader for: said as such, not as "not an audio file"
UNDECODABLE_MAGIC = {b"ADIF": "ADIF AAC", b"OFR ": "OptimFROG"}
ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
# audio containers: when a decoder fails on one of these, the file is broken rather than foreign
AUDIO_MAGIC = (
    b"ID3",
    b"fLaC",
    b"OggS",
    b"RIFF",
    b"RF64",
    b"FORM",
    b"wvpk",
    b"MAC ",
    b"MPCK",
    b"MP+",
    b"TTA1",
    b"tBaK",
    b"DSD ",
    b"FRM8",
    b".snd",
    ASF_GUID,
)
MPEG_WAVE_TAGS = (0x0050, 0x0055)  # WAVE_FORMAT_MPEG (layer I/II), WAVE_FORMAT_MPEGLAYER3
WAVE_EXTENSIBLE = 0xFFFE
SNIFF_BYTES = 4096


@dataclass(frozen=True)
class AudioInfo:
    duration: float  # seconds, from headers (a truncated file may hold less)
    sample_rate: int  # native rate, Hz
    channels: int  # native channel count
    backend: str  # "soundfile" or "pyav"


class Handoff(Exception):
    """A backend declines a stream that the other one reads right (a codec, not a failure)."""


# --- the file itself ---------------------------------------------------------------------------


def check_file(path: str | os.PathLike) -> bytes:
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
    for test, name in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISDIR, "directory"),
    ):
        if test(mode):
            return name
    return "special file"


def head(fspath: bytes) -> bytes:
    with open(fspath, "rb") as f:
        return f.read(SNIFF_BYTES)


def mpeg_stream(first: bytes) -> bool:
    """Whether the file holds MPEG audio (MP3, MP2): bare, or inside a RIFF WAVE.

    libsndfile reads MPEG through mpg123, which misreads a WAV's stream once a chunk follows it
    and prints to stderr; such streams go to FFmpeg, whatever the file is called.
    """
    if first[:4] in (b"RIFF", b"RF64", b"BW64") and first[8:12] == b"WAVE":
        pos = 12
        while pos + 10 <= len(first):
            cid, size = first[pos : pos + 4], struct.unpack("<I", first[pos + 4 : pos + 8])[0]
            if cid == b"fmt ":
                tag = struct.unpack("<H", first[pos + 8 : pos + 10])[0]
                if tag == WAVE_EXTENSIBLE and pos + 34 <= len(first):  # the sub-format GUID starts with the tag
                    tag = struct.unpack("<H", first[pos + 32 : pos + 34])[0]
                return tag in MPEG_WAVE_TAGS
            pos += 8 + size + (size & 1)
        return False
    return first[:3] == b"ID3" or (
        len(first) >= 2 and first[0] == 0xFF and first[1] & 0xE0 == 0xE0 and first[1] & 0x06 != 0
    )  # frame sync with a layer (ADTS has layer 0)


def describe_failure(fspath: bytes, reason: str) -> str:
    """One line for a file no backend could open: say what it looks like when we can tell."""
    try:
        first = head(fspath)
    except OSError as e:
        return "permission denied" if e.errno == errno.EACCES else f"cannot read file ({e.strerror})"
    if looks_like_text(first):
        return "not an audio file (looks like text)"
    for magic, name in UNDECODABLE_MAGIC.items():
        if first.startswith(magic):
            return f"{CANNOT_DECODE} ({name})"
    if reason == "no audio stream":
        return reason
    if first.startswith(AUDIO_MAGIC) or first[4:8] == b"ftyp" or mpeg_stream(first):
        return f"truncated or corrupt ({reason})"
    return "not an audio file (unrecognised format)"


def looks_like_text(first: bytes) -> bool:
    if not first or b"\x00" in first:
        return False
    text = first.decode("utf-8", "replace")
    return sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text)


def short(e: BaseException) -> str:
    """A decoder's message cut to one short line, without the path it often repeats."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if msg.startswith("Error opening"):
        msg = msg.rsplit(": ", 1)[-1]
    elif msg.startswith("[Errno"):
        msg = msg.split("] ", 1)[-1].split(": '", 1)[0]
    return msg.strip().rstrip(".")[:120]


@contextmanager
def boundary():
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
        raise DecodeError(f"truncated or corrupt ({short(e)})") from None


def mono(x: np.ndarray) -> np.ndarray:
    """(samples, channels) -> (samples,) float32, the mean of the channels.

    Summed column by column: numpy's mean over a short last axis is several times slower.
    """
    acc = x[:, 0].astype(np.float32, copy=True)
    for c in range(1, x.shape[1]):
        acc += x[:, c]
    if x.shape[1] > 1:
        acc *= np.float32(1.0 / x.shape[1])
    return acc


# --- stderr ------------------------------------------------------------------------------------

_quiet_lock = threading.Lock()
_quiet_depth = 0
_saved_stderr = -1


@contextmanager
def quiet_stderr():
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
