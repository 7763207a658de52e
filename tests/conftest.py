"""Shared fixtures: where ../shared is, and small audio made on the fly."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GTZAN_MINI = SHARED / "data" / "gtzan-mini"


@pytest.fixture(autouse=True)
def _private_state(tmp_path_factory, monkeypatch):
    """The CLI keeps a state database; no test may touch the real one in the user's home."""
    monkeypatch.setenv("MGCTAG_STATE", str(tmp_path_factory.mktemp("state") / "state.sqlite"))


@pytest.fixture
def decoded(monkeypatch):
    """The paths the decode step was asked for, once per file however many rounds it took
    (workers=0 decodes in this process)."""
    from mgctag import pool

    calls = []
    real = pool.DecodeJob.__call__

    def counting(self, path, part=None):
        if not part or part[0] == 0:
            calls.append(path)
        return real(self, path, part)

    monkeypatch.setattr(pool.DecodeJob, "__call__", counting)
    return calls


@pytest.fixture
def gtzan_mini() -> Path:
    if not GTZAN_MINI.is_dir():
        pytest.skip(f"../shared/data/gtzan-mini not found at {GTZAN_MINI}")
    return GTZAN_MINI


# --- a tiny model whose answer depends on the audio, saved in the real weights format -------
import torch  # noqa: E402 (below the fixtures above, which need none of it)
from torch import nn  # noqa: E402

from mgctag.frontends import FrontendSpec  # noqa: E402
from mgctag.models import ARCHITECTURES, register  # noqa: E402

BAND_SPEC = FrontendSpec(kind="logmel", sample_rate=16000, n_fft=512, hop_length=256, n_frames=63, n_mels=32)


class BandNet(nn.Module):
    """Test backbone: class 0 when the low half of the mel bands is louder, else class 1."""

    def __init__(self, n_classes, n_features, n_frames):
        super().__init__()
        self.linear = nn.Linear(n_features, n_classes)

    def forward(self, x):
        return self.linear(x.mean(dim=2))


class BandTagger(BandNet):
    """The same, as a multi-label tagger (independent sigmoid outputs)."""

    multilabel = True


class GatedBandNet(BandNet):
    """The same, but a forward waits while the gate is closed: with a file `waiting-PID` in the
    folder $MGCTAG_TEST_GATE until the test creates `open` there (at most GATE_WAIT_S), so a test
    knows which process is in the middle of a batch (tests/raycluster.py). No folder, no gate."""

    def forward(self, x):
        gate = os.environ.get(GATE_ENV)
        if gate and not Path(gate, "open").exists():
            Path(gate, f"waiting-{os.getpid()}").touch()
            deadline = time.monotonic() + GATE_WAIT_S
            while not Path(gate, "open").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().forward(x)


GATE_ENV, GATE_WAIT_S = "MGCTAG_TEST_GATE", 120.0

if "test-band" not in ARCHITECTURES:
    register("test-band", frontend=BAND_SPEC, citation="test only", default_segments=3)(BandNet)
    register("test-band-tagger", frontend=BAND_SPEC, citation="test only", default_segments=3)(BandTagger)
    register("test-band-gated", frontend=BAND_SPEC, citation="test only", default_segments=3)(GatedBandNet)


def make_band_model(
    path: Path,
    labels=("Low", "High"),
    *,
    arch: str = "test-band",
    defaults: dict | None = None,
    low: tuple[float, ...] | None = None,
) -> Path:
    """Label i scores `low[i]` x (low-band minus high-band loudness); default: Low +0.05, High -0.05."""
    from mgctag import weights
    from mgctag.model import Classifier

    labels = list(labels)
    low = low or (0.05, -0.05)
    model = Classifier(arch, labels)
    half = BAND_SPEC.n_mels // 2
    w = torch.zeros(len(labels), BAND_SPEC.n_mels)
    for i, g in enumerate(low):
        w[i, :half], w[i, half:] = g, -g
    with torch.no_grad():
        model.backbone.linear.weight.copy_(w)
        model.backbone.linear.bias.zero_()
    meta = weights.WeightsMeta(
        arch=arch,
        labels=labels,
        frontend=BAND_SPEC.to_dict(),
        provenance={"data": "hand-set test weights"},
        defaults=defaults or {},
    )
    return weights.save(path, model, meta)


@pytest.fixture
def band_model(tmp_path) -> Path:
    return make_band_model(tmp_path / "band.safetensors")
