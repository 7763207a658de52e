"""Make small real audio files in every format mgctag reads, for tests and benchmarks.

numpy -> soundfile for wav/flac/ogg/opus/mp3/aiff, numpy -> PyAV for m4a (AAC, ALAC) and
wma. libsndfile can crash writing a long OGG buffer in one call, so it is written in chunks.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

# extension -> (soundfile format, subtype) for what libsndfile writes
SOUNDFILE_FORMATS = {
    "wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"), "mp3": ("MP3", "MPEG_LAYER_III"), "aiff": ("AIFF", "PCM_16"),
}
# extension -> (container, codec, sample format) for what PyAV writes
PYAV_FORMATS = {"m4a": ("mp4", "aac", "fltp"), "alac.m4a": ("mp4", "alac", "s16p"), "wma": ("asf", "wmav2", "fltp")}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
FORMATS = tuple(SOUNDFILE_FORMATS) + tuple(PYAV_FORMATS)
CHUNK = 16384


def tone(seconds: float = 2.0, sr: int = 22050, freq: float = 440.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A tone with harmonics and a little noise, shape (samples, channels), float32 in [-0.5, 0.5]."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 2 * freq * t) + 0.02 * rng.standard_normal(len(t))
    return np.repeat(y[:, None], channels, axis=1).astype(np.float32)


def write_audio(path: str | Path, y: np.ndarray, sr: int, fmt: str | None = None) -> Path:
    """Encode `y` (samples, channels) to `path`; `fmt` defaults to the extension ('alac.m4a' for ALAC)."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[:, None]
    if fmt == "opus" and sr not in OPUS_RATES:
        import soxr

        y, sr = soxr.resample(y, sr, 48000).astype(np.float32), 48000
    if fmt in SOUNDFILE_FORMATS:
        import soundfile as sf

        major, subtype = SOUNDFILE_FORMATS[fmt]
        with sf.SoundFile(path, "w", samplerate=sr, channels=y.shape[1], format=major, subtype=subtype) as f:
            for i in range(0, len(y), CHUNK):
                f.write(y[i : i + CHUNK])
    elif fmt in PYAV_FORMATS:
        _write_pyav(path, y, sr, *PYAV_FORMATS[fmt])
    else:
        raise ValueError(f"no writer for {fmt!r}")
    return path


def _write_pyav(path: Path, y: np.ndarray, sr: int, container: str, codec: str, sample_fmt: str) -> None:
    import av

    layout = "mono" if y.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=sr, layout=layout)
        stream.time_base = Fraction(1, sr)
        stream.bit_rate = 128000 if codec != "alac" else 0
        frame_size = stream.codec_context.frame_size or 1024
        planar = np.ascontiguousarray(y.T)
        if sample_fmt == "s16p":
            planar = (np.clip(planar, -1, 1) * 32767).astype(np.int16)
        for i in range(0, planar.shape[1], frame_size):
            frame = av.AudioFrame.from_ndarray(planar[:, i : i + frame_size], format=sample_fmt, layout=layout)
            frame.sample_rate = sr
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def make(path: str | Path, seconds: float = 2.0, sr: int = 22050, freq: float = 440.0, channels: int = 1,
         fmt: str | None = None, seed: int = 0) -> Path:
    """One call: a tone file at `path`."""
    return write_audio(path, tone(seconds, sr, freq, channels, seed), sr, fmt)
