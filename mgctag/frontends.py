"""Spectrogram front-ends in torch, so they run batched on the GPU.

Each front-end reproduces a reference (librosa for most kinds, the EfficientAT authors' code for
`kaldimel`; tests check both) but uses no librosa or torchaudio at run time: the filterbanks
and DCT are built here in numpy, which keeps `scan` free of librosa's import cost and numba JIT.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

KINDS = ("logmel", "mfcc", "logstft", "log10mel", "kaldimel")
MEL_KINDS = ("logmel", "mfcc", "log10mel", "kaldimel")

# kaldimel: EfficientAT's fixed input pipeline (models/preprocess.py, eval mode). These are part
# of the kind, not settings: the pretrained networks only make sense with exactly these.
KALDI_PREEMPHASIS = 0.97  # y[n] = x[n] - 0.97 x[n-1], a valid 2-tap filter (one sample shorter)
KALDI_LOG_OFFSET = 1e-5  # log(mel + 1e-5)
KALDI_SHIFT, KALDI_SCALE = 4.5, 5.0  # (log mel + 4.5) / 5, the authors' "fast normalisation"


@dataclass(frozen=True)
class FrontendSpec:
    kind: str  # one of KINDS
    sample_rate: int  # audio is resampled to this rate before the front-end
    n_fft: int
    hop_length: int
    n_frames: int  # frames per segment; the segment length derives from it
    n_mels: int = 128  # mel bands (logmel, mfcc, log10mel)
    n_mfcc: int = 0  # coefficients kept (mfcc)
    fmin: float = 0.0
    fmax: float | None = None
    top_db: float | None = 80.0  # librosa's power_to_db clipping, per example
    center: bool = True  # librosa's centred frames; False for patches cut from a longer STFT
    fp16_mel: bool = False  # log10mel: round the mel to float16 first, as musicnn's reference does
    win_length: int | None = None  # STFT window length (zero-padded to n_fft, centred); None: n_fft

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown front-end kind {self.kind!r}; expected one of {KINDS}")
        if self.kind == "kaldimel" and not self.center:
            raise ValueError("kaldimel frames are always centred (reflect padding), as EfficientAT's")

    @property
    def segment_samples(self) -> int:
        """Samples that give exactly `n_frames` frames.

        kaldimel: the longest input that does, n_frames * hop (10 s for EfficientAT's 1,000 frames):
        pre-emphasis drops one sample, so anything from (n_frames - 1) * hop + 1 samples on gives
        n_frames, and the network was trained on (and the reference run on) whole 10 s clips.
        """
        if self.kind == "kaldimel":
            return self.n_frames * self.hop_length
        return (self.n_frames - 1) * self.hop_length + (0 if self.center else self.n_fft)

    @property
    def segment_seconds(self) -> float:
        return self.segment_samples / self.sample_rate

    @property
    def n_features(self) -> int:
        return {
            "logmel": self.n_mels,
            "log10mel": self.n_mels,
            "kaldimel": self.n_mels,
            "mfcc": self.n_mfcc,
            "logstft": self.n_fft // 2 + 1,
        }[self.kind]

    def to_dict(self) -> dict:
        """Fields left at None that older specs did not have are left out, so the feature-cache keys
        and the metadata of existing weights stay as they were."""
        d = asdict(self)
        if d["win_length"] is None:
            del d["win_length"]
        return d

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


def kaldi_hz_to_mel(f):
    """Kaldi's (HTK) mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def kaldi_mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Kaldi's triangular mel bank (no area normalisation), shape (n_mels, 1 + n_fft // 2).

    As Kaldi's MelBanks and torchaudio.compliance.kaldi.get_mel_banks (without VTLN): bands
    evenly spaced in mel with n_mels + 1 steps between fmin and fmax, each a triangle in mel
    (not Hz) evaluated on the n_fft // 2 bins below Nyquist; the Nyquist bin gets a zero column,
    as EfficientAT pads it. fmax <= 0 counts back from Nyquist, as Kaldi's high_freq does.
    """
    nyquist = sr / 2
    fmax = nyquist if fmax is None else (fmax + nyquist if fmax <= 0 else fmax)
    lo, hi = kaldi_hz_to_mel(fmin), kaldi_hz_to_mel(fmax)
    delta = (hi - lo) / (n_mels + 1)
    left = lo + delta * np.arange(n_mels)[:, None]
    centre, right = left + delta, left + 2 * delta
    mel = kaldi_hz_to_mel(np.arange(n_fft // 2) * sr / n_fft)[None, :]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    bank = np.maximum(0.0, np.minimum(up, down))
    return np.pad(bank, ((0, 0), (0, 1))).astype(np.float32)


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


CHUNK_SAMPLES = 1 << 20  # waveform samples per STFT call (two 10 s windows at 32 kHz)


class Frontend(nn.Module):
    """Waveform batch (B, samples) -> features (B, n_features, n_frames)."""

    def __init__(self, spec: FrontendSpec):
        super().__init__()
        self.spec = spec
        kaldi = spec.kind == "kaldimel"
        # librosa's kinds: a periodic Hann of n_fft; EfficientAT: a symmetric Hann of win_length
        # that torch.stft zero-pads to n_fft on both sides.
        window = torch.hann_window(spec.win_length or spec.n_fft, periodic=not kaldi)
        self.register_buffer("window", window, persistent=False)
        if spec.kind in MEL_KINDS:
            make = kaldi_mel_filters if kaldi else mel_filters
            fb = make(spec.sample_rate, spec.n_fft, spec.n_mels, spec.fmin, spec.fmax)
            self.register_buffer("mel_fb", torch.from_numpy(fb), persistent=False)
        if spec.kind == "mfcc":
            self.register_buffer("dct", torch.from_numpy(dct_matrix(spec.n_mfcc, spec.n_mels)), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """A large batch goes through in slices of about CHUNK_SAMPLES: the STFT of one 10 s window
        at 32 kHz is 4 MB, and slices of two windows ran 1.3x faster per window than eight at once
        (they stay in the caches) with a quarter of the peak memory (bench/RESULTS.md)."""
        per = max(1, CHUNK_SAMPLES // max(1, wave.shape[-1]))
        if wave.shape[0] <= per:
            return self._forward(wave)
        return torch.cat([self._forward(part) for part in wave.split(per)])

    def _forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        wave = wave.float()
        kaldi = spec.kind == "kaldimel"
        if kaldi:
            wave = wave[:, 1:] - KALDI_PREEMPHASIS * wave[:, :-1]
        stft = torch.stft(
            wave,
            spec.n_fft,
            spec.hop_length,
            win_length=spec.win_length,
            window=self.window,
            center=spec.center,
            pad_mode="reflect" if kaldi else "constant",
            return_complex=True,
        )
        power = stft.real.square() + stft.imag.square()  # (B, bins, frames)
        if kaldi:
            mel = torch.matmul(self.mel_fb, power)
            out = (torch.log(mel + KALDI_LOG_OFFSET) + KALDI_SHIFT) / KALDI_SCALE
        elif spec.kind == "logstft":
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
