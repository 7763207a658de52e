"""Every registered architecture builds, maps waveforms to logits and trains end to end.

Cheap on CPU: batches of two, one forward and backward each. Architectures that need
shipped weights to build (musicnn-head's trunk) are skipped when those are missing.
"""

from __future__ import annotations

import json

import pytest
import torch

from mgctag.errors import WeightsError
from mgctag.model import Classifier
from mgctag.models import architecture_names, get_architecture

LABELS = ["blues", "jazz", "rock"]
# Built from scratch here, so they must build for any input shape (sizes probed, not written down).
FROM_SCRATCH = ("crnn", "pcrnn", "crnn-mfcc", "crnn-lstm", "cnn", "lstm", "mlp", "cnn1d")
# Pretrained taggers whose labels name some of their outputs: which outputs LABELS are.
PARAMS = {"efficientat": {"tag_indices": [251, 235, 219]}}  # AudioSet's Blues, Jazz, Rock music


def build_or_skip(build, name: str):
    try:
        return build()
    except WeightsError as e:
        pytest.skip(f"{name}: {e}")


@pytest.mark.parametrize("name", architecture_names())
def test_forward_backward_on_waveforms(name: str):
    torch.manual_seed(0)
    model = build_or_skip(lambda: Classifier(name, LABELS, arch_params=PARAMS.get(name)), name)
    model.train()
    wave = 0.1 * torch.randn(2, model.spec.segment_samples)
    logits = model(wave)
    assert logits.shape == (2, len(LABELS))
    assert torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable, "no trainable parameters"
    missing = [n for n, p in trainable.items() if p.grad is None]
    assert not missing, f"no gradient reached {missing}"
    bad = [n for n, p in trainable.items() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradient in {bad}"


@pytest.mark.parametrize("name", architecture_names())
def test_params_survive_json(name: str):
    """Weights metadata stores arch params as JSON (tuples become lists); the model must not change."""
    a = get_architecture(name)
    spec = a.frontend
    params = {**a.params, **PARAMS.get(name, {})}
    original = build_or_skip(lambda: a.build(len(LABELS), spec.n_features, spec.n_frames, **params), name)
    restored = a.build(len(LABELS), spec.n_features, spec.n_frames, **json.loads(json.dumps(params)))
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(restored) == shapes(original)


@pytest.mark.parametrize("name", FROM_SCRATCH)
def test_builds_for_other_input_shapes(name: str):
    a = get_architecture(name)
    n_features, n_frames = a.frontend.n_features + 7, a.frontend.n_frames * 5 // 4 + 3
    model = a.build(5, n_features, n_frames, **a.params).eval()
    with torch.no_grad():
        assert model(torch.randn(1, n_features, n_frames)).shape == (1, 5)


def test_mlp_penalty_is_l2_on_dense_weights():
    a = get_architecture("mlp")
    spec = a.frontend
    model = a.build(3, spec.n_features, spec.n_frames, **{**a.params, "l2": 0.01})
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    expected = 0.01 * sum(float(m.weight.detach().square().sum()) for m in linears)
    penalty = model.penalty()
    assert penalty.item() == pytest.approx(expected, rel=1e-5)
    penalty.backward()
    assert all(m.weight.grad is not None and m.bias.grad is None for m in linears)


@pytest.mark.parametrize("name", FROM_SCRATCH)
def test_shape_probe_leaves_model_untouched(name: str):
    """Sizes are probed at build time; that must not count as a training batch or leave eval mode on."""
    a = get_architecture(name)
    model = a.build(3, a.frontend.n_features, a.frontend.n_frames, **a.params)
    assert all(m.training for m in model.modules())
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            assert m.num_batches_tracked.item() == 0
            assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
