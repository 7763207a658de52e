"""The torch front-ends against librosa's reference on the same audio.

Every kind is checked on a generic spec, and every registered architecture on its own spec,
with a real GTZAN clip (skipped if ../shared is absent) and a synthetic chirp + noise. Each
batch holds two different examples, so the per-example top_db floor is checked too.

Tolerances (max abs difference over all bins and frames): 0.02 dB for the dB kinds and for
MFCC (float32 FFTs agree to ~0.002 dB here), 1e-4 for log10mel (~5e-6 seen), 5e-4 where the
mel is rounded to float16 first (one float16 step is ~2e-4 after log10). kaldimel (EfficientAT's
input) has no librosa counterpart: its reference is librosa's STFT plus Kaldi's mel bank written
out band by band here; tests/test_efficientat.py checks it against the authors' own outputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import scipy.signal
import torch
from conftest import GTZAN_MINI

from mgctag.frontends import Frontend, FrontendSpec, dct_matrix, mel_filters
from mgctag.models import architecture_names, get_architecture

librosa = pytest.importorskip("librosa")

SOURCE_RATE = 22050
DB_TOL, LOG10_TOL, FP16_TOL, KALDI_TOL = 0.02, 1e-4, 5e-4, 1e-4

# One spec per kind, away from the architectures' settings (fmin/fmax, other rates, uncentred).
KIND_SPECS = {
    "logmel": FrontendSpec(
        "logmel", sample_rate=16000, n_fft=1024, hop_length=320, n_mels=64, n_frames=100, fmin=50.0, fmax=7000.0
    ),
    "logmel-uncentred": FrontendSpec(
        "logmel", sample_rate=22050, n_fft=1024, hop_length=512, n_mels=80, n_frames=64, center=False
    ),
    "mfcc": FrontendSpec("mfcc", sample_rate=22050, n_fft=1024, hop_length=256, n_mels=40, n_mfcc=20, n_frames=120),
    "logstft": FrontendSpec("logstft", sample_rate=22050, n_fft=512, hop_length=128, n_frames=200),
    "log10mel": FrontendSpec(
        "log10mel", sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, n_frames=187, top_db=None
    ),
    "log10mel-fp16": FrontendSpec(
        "log10mel", sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, n_frames=187, top_db=None, fp16_mel=True
    ),
    "kaldimel": FrontendSpec(
        "kaldimel",
        sample_rate=16000,
        n_fft=512,
        hop_length=160,
        n_mels=64,
        n_frames=150,
        fmin=20.0,
        fmax=7600.0,
        top_db=None,
        win_length=400,
    ),
}


def arch_specs() -> dict[str, FrontendSpec]:
    """Each distinct architecture front-end, named by the first architecture using it."""
    specs: dict[str, FrontendSpec] = {}
    for name in architecture_names():
        spec = get_architecture(name).frontend
        if spec not in specs.values():
            specs[name] = spec
    return specs


ALL_SPECS = {**{f"kind:{k}": s for k, s in KIND_SPECS.items()}, **{f"arch:{k}": s for k, s in arch_specs().items()}}


def chirp(seconds: float = 31.0, sr: int = SOURCE_RATE) -> np.ndarray:
    """A 60 Hz -> 9 kHz linear sweep plus white noise: energy in every band over time."""
    t = np.arange(int(seconds * sr)) / sr
    f0, f1 = 60.0, 9000.0
    phase = 2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / seconds * t**2)
    noise = 0.05 * np.random.default_rng(0).standard_normal(len(t))
    return (0.3 * np.sin(phase) + noise).astype(np.float32)


def gtzan_clip() -> np.ndarray:
    import soundfile as sf

    path = GTZAN_MINI / "blues" / "blues.00000.ogg"
    if not path.is_file():
        pytest.skip(f"real clip {path} not found (../shared/data/gtzan-mini missing)")
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == SOURCE_RATE
    return y.mean(axis=1)


SOURCES = {"gtzan": gtzan_clip, "chirp": chirp}


def resample(y: np.ndarray, sr: int) -> np.ndarray:
    if sr == SOURCE_RATE:
        return y
    import soxr

    return soxr.resample(y, SOURCE_RATE, sr).astype(np.float32)


def kaldi_reference(spec: FrontendSpec, y: np.ndarray) -> np.ndarray:
    """EfficientAT's input: pre-emphasis, librosa's STFT of a symmetric Hann, Kaldi's mel bank, log, (x + 4.5) / 5.

    The bank follows Kaldi's MelBanks one band at a time: band m is a triangle in mel from
    lo + m d to lo + (m + 2) d (d = mel range / (bands + 1)), read at the bins below Nyquist.
    """
    y = y[1:] - 0.97 * y[:-1]
    window = scipy.signal.get_window("hann", spec.win_length, fftbins=False)
    power = (
        np.abs(
            librosa.stft(
                y.astype(np.float64),
                n_fft=spec.n_fft,
                hop_length=spec.hop_length,
                win_length=spec.win_length,
                window=window,
                center=True,
                pad_mode="reflect",
            )
        )
        ** 2
    )
    mel_of = lambda f: 1127.0 * math.log(1.0 + f / 700.0)  # noqa: E731
    lo, hi = mel_of(spec.fmin), mel_of(spec.fmax)
    step = (hi - lo) / (spec.n_mels + 1)
    bank = np.zeros((spec.n_mels, spec.n_fft // 2 + 1))
    for m in range(spec.n_mels):
        left, centre, right = lo + m * step, lo + (m + 1) * step, lo + (m + 2) * step
        for k in range(spec.n_fft // 2):
            mel = mel_of(k * spec.sample_rate / spec.n_fft)
            if left < mel < right:
                bank[m, k] = (mel - left) / (centre - left) if mel <= centre else (right - mel) / (right - centre)
    return (np.log(bank @ power + 1e-5) + 4.5) / 5


def librosa_reference(spec: FrontendSpec, y: np.ndarray) -> np.ndarray:
    """The feature as librosa computes it, shape (n_features, frames)."""
    if spec.kind == "kaldimel":
        return kaldi_reference(spec, y)
    stft = dict(n_fft=spec.n_fft, hop_length=spec.hop_length, center=spec.center)
    if spec.kind == "logstft":
        return librosa.amplitude_to_db(np.abs(librosa.stft(y, **stft)), top_db=spec.top_db)
    mel = librosa.feature.melspectrogram(
        y=y, sr=spec.sample_rate, n_mels=spec.n_mels, fmin=spec.fmin, fmax=spec.fmax, **stft
    )
    if spec.kind == "logmel":
        return librosa.power_to_db(mel, top_db=spec.top_db)
    if spec.kind == "mfcc":
        # What mfcc(y=...) does, with the spec's top_db in place of power_to_db's default 80.
        return librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=spec.top_db), n_mfcc=spec.n_mfcc)
    if spec.fp16_mel:
        mel = mel.astype(np.float16).astype(np.float32)
    return np.log10(1 + 10000 * mel)


def tolerance(spec: FrontendSpec) -> float:
    if spec.kind == "kaldimel":
        return KALDI_TOL
    if spec.kind != "log10mel":
        return DB_TOL
    return FP16_TOL if spec.fp16_mel else LOG10_TOL


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("spec", ALL_SPECS.values(), ids=ALL_SPECS.keys())
def test_frontend_matches_librosa(spec: FrontendSpec, source: str):
    y = resample(SOURCES[source](), spec.sample_rate)
    n = spec.segment_samples
    assert len(y) >= n, "source audio shorter than one segment"
    # Two different examples in one batch: the first segment, and a quieter later one.
    segments = np.stack([y[:n], 0.05 * y[len(y) - n :]])
    got = Frontend(spec)(torch.from_numpy(segments)).numpy()
    assert got.shape == (2, spec.n_features, spec.n_frames)
    for example, wave in zip(got, segments):
        ref = librosa_reference(spec, wave)
        assert ref.shape == example.shape
        err = np.abs(example - ref).max()
        assert err <= tolerance(spec), f"max abs diff {err:.3g} > {tolerance(spec)}"


@pytest.mark.parametrize(
    "sr, n_fft, n_mels, fmin, fmax",
    [
        (12000, 512, 96, 0.0, None),
        (22050, 2048, 128, 0.0, None),
        (16000, 512, 96, 0.0, None),
        (44100, 1024, 40, 30.0, 11000.0),
    ],
)
def test_mel_filters_match_librosa(sr, n_fft, n_mels, fmin, fmax):
    ours = mel_filters(sr, n_fft, n_mels, fmin, fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n_out, n_in", [(13, 128), (40, 128), (20, 40), (128, 128)])
def test_dct_matches_scipy(n_out, n_in):
    ref = scipy.fft.dct(np.eye(n_in), type=2, norm="ortho", axis=0)[:n_out]
    np.testing.assert_allclose(dct_matrix(n_out, n_in), ref, atol=1e-6)


@pytest.mark.parametrize("spec", ALL_SPECS.values(), ids=ALL_SPECS.keys())
def test_segment_samples_gives_exactly_n_frames(spec: FrontendSpec):
    """librosa's frame count for segment_samples is n_frames, and one sample fewer loses a frame.

    kaldimel's pre-emphasis drops a sample first; its segment is the longest input that gives
    n_frames (EfficientAT's whole 10 s clip), so one sample more gains a frame.
    """
    kaldi = spec.kind == "kaldimel"

    def frames(n_samples: int) -> int:
        y = np.zeros(n_samples - 1 if kaldi else n_samples, dtype=np.float32)
        return librosa.stft(y, n_fft=spec.n_fft, hop_length=spec.hop_length, center=spec.center).shape[1]

    assert frames(spec.segment_samples) == spec.n_frames
    if kaldi:
        assert frames(spec.segment_samples + 1) == spec.n_frames + 1
    else:
        assert frames(spec.segment_samples - 1) == spec.n_frames - 1


def test_kaldimel_frames_of_a_batch_match_one_at_a_time():
    """The front-end is batched: each example's features are those it gets alone (and the torch frame count)."""
    spec = KIND_SPECS["kaldimel"]
    y = resample(chirp(), spec.sample_rate)
    batch = np.stack([y[: spec.segment_samples], 0.1 * y[-spec.segment_samples :]])
    fe = Frontend(spec)
    together = fe(torch.from_numpy(batch))
    alone = torch.cat([fe(torch.from_numpy(b[None])) for b in batch])
    assert together.shape == (2, spec.n_mels, spec.n_frames)
    assert torch.allclose(together, alone, atol=1e-6)


def test_a_large_batch_goes_through_in_slices_with_the_same_features(monkeypatch):
    """Slicing a batch for the caches (CHUNK_SAMPLES) must not change a single feature."""
    import mgctag.frontends as fe_module

    spec = KIND_SPECS["kaldimel"]
    y = resample(chirp(), spec.sample_rate)[: spec.segment_samples]
    batch = torch.from_numpy(np.stack([y * g for g in (1.0, 0.5, 0.25, 0.1, 0.05)]).astype(np.float32))
    fe = Frontend(spec)
    calls = []
    real = fe._forward
    monkeypatch.setattr(fe, "_forward", lambda w: calls.append(len(w)) or real(w))
    monkeypatch.setattr(fe_module, "CHUNK_SAMPLES", 2 * spec.segment_samples)
    sliced = fe(batch)
    assert calls == [2, 2, 1]
    monkeypatch.setattr(fe_module, "CHUNK_SAMPLES", 10 * spec.segment_samples)
    assert torch.equal(sliced, fe(batch)) and calls[-1] == 5
