"""Spectrogram front-ends in torch, so they run batched on the GPU.

Each front-end reproduces a librosa reference (tests check it) but uses no librosa at run
time: the mel filterbank and DCT are built here in numpy, which keeps `scan` free of
librosa's import cost and numba JIT.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

KINDS = ("logmel", "mfcc", "logstft", "log10mel")


@dataclass(frozen=True)
class FrontendSpec:
    kind: str               # one of KINDS
    sample_rate: int        # audio is resampled to this rate before the front-end
    n_fft: int
    hop_length: int
    n_frames: int           # frames per segment; the segment length derives from it
    n_mels: int = 128       # mel bands (logmel, mfcc, log10mel)
    n_mfcc: int = 0         # coefficients kept (mfcc)
    fmin: float = 0.0
    fmax: float | None = None
    top_db: float | None = 80.0  # librosa's power_to_db clipping, per example
    center: bool = True     # librosa's centred frames; False for patches cut from a longer STFT
    fp16_mel: bool = False  # log10mel: round the mel to float16 first, as musicnn's reference does

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown front-end kind {self.kind!r}; expected one of {KINDS}")

    @property
    def segment_samples(self) -> int:
        """Samples that give exactly `n_frames` frames."""
        return (self.n_frames - 1) * self.hop_length + (0 if self.center else self.n_fft)

    @property
    def segment_seconds(self) -> float:
        return self.segment_samples / self.sample_rate

    @property
    def n_features(self) -> int:
        return {"logmel": self.n_mels, "log10mel": self.n_mels, "mfcc": self.n_mfcc,
                "logstft": self.n_fft // 2 + 1}[self.kind]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FrontendSpec":
        return cls(**d)


def hz_to_mel(f):
    """Slaney mel scale (librosa's default, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular filters, shape (n_mels, 1 + n_fft // 2), as librosa.filters.mel."""
    fmax = sr / 2 if fmax is None else fmax
    fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II rows, shape (n_out, n_in), as scipy.fft.dct(norm='ortho')."""
    n = np.arange(n_in)
    k = np.arange(n_out)[:, None]
    m = np.cos(np.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    m[0] /= math.sqrt(2.0)
    return m.astype(np.float32)


def power_to_db(s: torch.Tensor, top_db: float | None, amin: float = 1e-10) -> torch.Tensor:
    """librosa.power_to_db with ref=1; the top_db floor is taken per example (dim 0)."""
    db = 10.0 * torch.log10(torch.clamp(s, min=amin))
    if top_db is not None:
        peak = db.flatten(1).amax(dim=1).view(-1, *([1] * (db.dim() - 1)))
        db = torch.maximum(db, peak - top_db)
    return db


class Frontend(nn.Module):
    """Waveform batch (B, samples) -> features (B, n_features, n_frames)."""

    def __init__(self, spec: FrontendSpec):
        super().__init__()
        self.spec = spec
        self.register_buffer("window", torch.hann_window(spec.n_fft, periodic=True), persistent=False)
        if spec.kind in ("logmel", "mfcc", "log10mel"):
            fb = mel_filters(spec.sample_rate, spec.n_fft, spec.n_mels, spec.fmin, spec.fmax)
            self.register_buffer("mel_fb", torch.from_numpy(fb), persistent=False)
        if spec.kind == "mfcc":
            self.register_buffer("dct", torch.from_numpy(dct_matrix(spec.n_mfcc, spec.n_mels)), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        wave = wave.float()
        stft = torch.stft(wave, spec.n_fft, spec.hop_length, window=self.window, center=spec.center,
                          pad_mode="constant", return_complex=True)
        power = stft.real.square() + stft.imag.square()   # (B, bins, frames)
        if spec.kind == "logstft":
            out = power_to_db(power, spec.top_db, amin=1e-10)  # == amplitude_to_db(|S|)
        else:
            mel = torch.matmul(self.mel_fb, power)
            if spec.kind == "log10mel":
                if spec.fp16_mel:
                    mel = mel.half().float()
                out = torch.log10(1.0 + 10000.0 * mel)
            else:
                out = power_to_db(mel, spec.top_db)
                if spec.kind == "mfcc":
                    out = torch.matmul(self.dct, out)
        return fit_frames(out, spec.n_frames)


def fit_frames(x: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Crop or zero-pad the last axis to exactly n_frames."""
    t = x.shape[-1]
    if t > n_frames:
        return x[..., :n_frames]
    if t < n_frames:
        return nn.functional.pad(x, (0, n_frames - t))
    return x
