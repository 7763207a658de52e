"""Make small real audio files in every format mgctag reads, for tests and benchmarks.

numpy -> soundfile for wav/flac/ogg/opus/mp3/aiff/au, numpy -> PyAV for the rest that FFmpeg
encodes (m4a with AAC or ALAC, wma, WavPack, True Audio, Ogg FLAC, Speex where the build has its
encoder, AIFF-C, raw ADTS AAC, AC-3, m4b, 3g2, MP3 inside a WAV), and by hand for the DSD formats
(DSF, DSDIFF), which are simple containers around 1-bit samples. libsndfile can crash writing a
long OGG buffer in one call, so it is written in chunks.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import numpy as np

# extension -> (soundfile format, subtype) for what libsndfile writes
SOUNDFILE_FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "aiff": ("AIFF", "PCM_16"),
    "au": ("AU", "PCM_16"),
}
# extension -> (container, codec, sample format) for what PyAV writes
PYAV_FORMATS = {
    "m4a": ("mp4", "aac", "fltp"),
    "alac.m4a": ("mp4", "alac", "s16p"),
    "wma": ("asf", "wmav2", "fltp"),
    "wv": ("wv", "wavpack", "fltp"),
    "tta": ("tta", "tta", "s16"),
    "oga": ("ogg", "flac", "s16"),
    "spx": ("ogg", "speex", "s16"),
    "aifc": ("aiff", "pcm_s16le", "s16"),
    "aac": ("adts", "aac", "fltp"),
    "ac3": ("ac3", "ac3", "fltp"),
    "m4b": ("ipod", "aac", "fltp"),
    "3g2": ("3g2", "aac", "fltp"),
    "mp3.wav": ("wav", "mp3", "fltp"),
}
DSD_RATE = 2822400  # DSD64: 64 x 44.1 kHz, one bit per sample
DSD_SILENCE = 0x69  # the byte DSD players idle on (the DSF spec's zero fill would decode as a click)
HAND_FORMATS = ("dsf", "dff")
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
RATES = {"opus": OPUS_RATES, "ac3": (32000, 44100, 48000), "spx": (8000, 16000, 32000)}  # what the encoders take
FORMATS = ("wav", "flac", "ogg", "opus", "mp3", "aiff", "m4a", "alac.m4a", "wma")  # the formats every test covers
MORE_FORMATS = ("au", "wv", "tta", "oga", "spx", "aifc", "aac", "ac3", "m4b", "3g2", "mp3.wav", "dsf", "dff")
COMPOUND = ("alac.m4a", "mp3.wav")  # format names that are not just the extension
CHUNK = 16384


def tone(seconds: float = 2.0, sr: int = 22050, freq: float = 440.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A tone with harmonics and a little noise, shape (samples, channels), float32 in [-0.5, 0.5]."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 2 * freq * t) + 0.02 * rng.standard_normal(len(t))
    return np.repeat(y[:, None], channels, axis=1).astype(np.float32)


def fmt_of(path: str | Path) -> str:
    name = Path(path).name.lower()
    return next((c for c in COMPOUND if name.endswith("." + c)), Path(path).suffix.lstrip(".").lower())


def can_write(fmt: str) -> bool:
    """Whether this machine's libraries can encode `fmt` (Speex needs an FFmpeg built with libspeex)."""
    if fmt not in PYAV_FORMATS:
        return fmt in SOUNDFILE_FORMATS or fmt in HAND_FORMATS
    import av

    try:
        av.codec.Codec(PYAV_FORMATS[fmt][1], "w")
    except Exception:
        return False
    return True


def write_audio(path: str | Path, y: np.ndarray, sr: int, fmt: str | None = None) -> Path:
    """Encode `y` (samples, channels) to `path`; `fmt` defaults to the name ('x.alac.m4a' for ALAC)."""
    path = Path(path)
    fmt = fmt or fmt_of(path)
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[:, None]
    if fmt in RATES and sr not in RATES[fmt]:
        import soxr

        rate = min(RATES[fmt], key=lambda r: (r < sr, abs(r - sr)))
        y, sr = soxr.resample(y, sr, rate).astype(np.float32), rate
    if fmt in SOUNDFILE_FORMATS:
        import soundfile as sf

        major, subtype = SOUNDFILE_FORMATS[fmt]
        with sf.SoundFile(path, "w", samplerate=sr, channels=y.shape[1], format=major, subtype=subtype) as f:
            for i in range(0, len(y), CHUNK):
                f.write(y[i : i + CHUNK])
    elif fmt in PYAV_FORMATS:
        _write_pyav(path, y, sr, *PYAV_FORMATS[fmt])
    elif fmt == "dsf":
        _write_dsf(path, _dsd_bits(y, sr))
    elif fmt == "dff":
        _write_dff(path, _dsd_bits(y, sr))
    else:
        raise ValueError(f"no writer for {fmt!r}")
    return path


def _write_pyav(path: Path, y: np.ndarray, sr: int, container: str, codec: str, sample_fmt: str) -> None:
    import av

    layout = "mono" if y.shape[1] == 1 else "stereo"
    planar = sample_fmt.endswith("p")
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=sr, layout=layout)
        stream.time_base = Fraction(1, sr)
        stream.bit_rate = 128000 if codec not in ("alac", "flac", "wavpack", "tta") else 0
        frame_size = stream.codec_context.frame_size or 1024
        x = np.clip(y, -1, 1)
        if sample_fmt.startswith("s16"):
            x = (x * 32767).astype(np.int16)
        for i in range(0, len(x), frame_size):
            part = x[i : i + frame_size]
            data = np.ascontiguousarray(part.T) if planar else part.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(data, format=sample_fmt, layout=layout)
            frame.sample_rate = sr
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _dsd_bits(y: np.ndarray, sr: int) -> np.ndarray:
    """(channels, samples) of 0/1 at DSD_RATE: first-order sigma-delta modulation of `y`.

    The modulator's output is the step of floor(cumulative sum of the density), so it needs no
    loop: each bit says whether the running sum crossed another integer.
    """
    import soxr

    x = soxr.resample(np.clip(y, -1, 1).astype(np.float64), sr, DSD_RATE)
    density = 0.5 + 0.5 * np.clip(x, -0.9, 0.9)
    steps = np.floor(np.cumsum(density, axis=0))
    return np.diff(steps, axis=0, prepend=0).T.astype(np.uint8)


def _write_dsf(path: Path, bits: np.ndarray) -> None:
    """DSF (Sony): DSD, fmt and data chunks, little-endian, each channel in 4096-byte blocks, LSB first."""
    block = 4096
    channels, n = bits.shape
    per_channel = np.packbits(bits, axis=1, bitorder="little")
    pad = -per_channel.shape[1] % block
    per_channel = np.pad(per_channel, ((0, 0), (0, pad)), constant_values=DSD_SILENCE)
    data = per_channel.reshape(channels, -1, block).transpose(1, 0, 2).tobytes()  # block by block, channel by channel
    fmt = struct.pack("<4sQIIIIIIQII", b"fmt ", 52, 1, 0, {1: 1, 2: 2}[channels], channels, DSD_RATE, 1, n, block, 0)
    body = fmt + struct.pack("<4sQ", b"data", 12 + len(data)) + data
    path.write_bytes(struct.pack("<4sQQQ", b"DSD ", 28, 28 + len(body), 0) + body)


def _write_dff(path: Path, bits: np.ndarray) -> None:
    """DSDIFF (Philips): an FRM8 of big-endian chunks; the samples interleaved byte by byte, MSB first."""
    channels = bits.shape[0]

    def chunk(cid: bytes, body: bytes) -> bytes:
        return struct.pack(">4sQ", cid, len(body)) + body + b"\0" * (len(body) & 1)

    ids = {1: [b"C   "], 2: [b"SLFT", b"SRGT"]}[channels]
    name = b"not compressed"
    prop = (
        b"SND "
        + chunk(b"FS  ", struct.pack(">I", DSD_RATE))
        + chunk(b"CHNL", struct.pack(">H", channels) + b"".join(ids))
        + chunk(b"CMPR", b"DSD " + bytes([len(name)]) + name + b"\0" * (1 - len(name) % 2))
    )
    samples = np.packbits(bits, axis=1, bitorder="big").T.tobytes()  # byte of channel 0, of channel 1, ...
    body = b"DSD " + chunk(b"FVER", struct.pack(">I", 0x01050000)) + chunk(b"PROP", prop) + chunk(b"DSD ", samples)
    path.write_bytes(chunk(b"FRM8", body))


def make(
    path: str | Path,
    seconds: float = 2.0,
    sr: int = 22050,
    freq: float = 440.0,
    channels: int = 1,
    fmt: str | None = None,
    seed: int = 0,
) -> Path:
    """One call: a tone file at `path`."""
    return write_audio(path, tone(seconds, sr, freq, channels, seed), sr, fmt)
