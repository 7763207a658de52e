"""BatchedInference: segments of many tracks share batches, yet each track gets its own answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import BAND_SPEC

from mgctag.infer import BatchedInference
from mgctag.model import Classifier
from mgctag.vote import softmax


@pytest.fixture
def model() -> Classifier:
    """The test architecture with random weights, so every segment gets different logits."""
    torch.manual_seed(0)
    m = Classifier("test-band", ["A", "B", "C"])
    with torch.no_grad():
        m.backbone.linear.weight.normal_(0, 0.2)
        m.backbone.linear.bias.normal_(0, 0.2)
    return m.eval()


def _feeds(sizes: list[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n = BAND_SPEC.segment_samples
    return [(rng.standard_normal((s, n)) * rng.uniform(0.01, 0.5)).astype(np.float32) for s in sizes]


def _run(batcher: BatchedInference, feeds: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
    out = []
    for key, windows in enumerate(feeds):
        out.extend(batcher.feed(key, windows))
    out.extend(batcher.flush())
    return out


@pytest.mark.parametrize("batch_size", [1, 4, 7, 64])
def test_mixed_feeds_match_the_plain_model_call(model, batch_size):
    sizes = [3, 1, 9, 0, 4, 2, 13, 1, 5]
    feeds = _feeds(sizes)
    got = _run(BatchedInference(model, batch_size=batch_size), feeds)
    assert [k for k, _ in got] == list(range(len(feeds)))  # every key once, in feed order
    for key, probs in got:
        assert probs.shape[0] == sizes[key]
        if sizes[key]:
            with torch.inference_mode():
                want = softmax(model(torch.from_numpy(feeds[key])).numpy())
            np.testing.assert_allclose(probs, want, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_batches_are_full_except_the_flush_and_tracks_come_as_soon_as_done(model):
    seen = []
    real = model.forward
    model.forward = lambda x: (seen.append(len(x)), real(x))[1]
    batcher = BatchedInference(model, batch_size=4)
    feeds = _feeds([3, 3, 5, 2])
    assert list(batcher.feed(0, feeds[0])) == []  # 3 queued: no batch yet
    assert [k for k, _ in batcher.feed(1, feeds[1])] == [0]  # one batch of 4; track 1 straddles it
    assert [k for k, _ in batcher.feed(2, feeds[2])] == [1]  # track 2 has 2 of 5 done
    assert [k for k, _ in batcher.feed(3, feeds[3])] == [2]  # track 3 has 1 of 2 queued
    assert [k for k, _ in batcher.flush()] == [3]
    assert seen == [4, 4, 4, 1]
    assert list(batcher.flush()) == []


def test_a_caller_that_stops_early_leaves_the_rest_consistent(model):
    batcher = BatchedInference(model, batch_size=8)
    feeds = _feeds([2, 2, 2, 3])
    for i, f in enumerate(feeds[:3]):
        assert list(batcher.feed(i, f)) == []
    gen = batcher.feed(3, feeds[3])  # runs 8 segments: tracks 0-2 are done
    first = next(gen)
    gen.close()  # stop after one track
    rest = list(batcher.flush())
    assert [first[0]] + [k for k, _ in rest] == [0, 1, 2, 3]
    with torch.inference_mode():
        want = softmax(model(torch.from_numpy(feeds[3])).numpy())
    np.testing.assert_allclose(rest[-1][1], want, rtol=1e-5, atol=1e-6)


def test_bf16_runs_the_backbone_only_and_stays_close(model):
    feeds = _feeds([5, 6])
    fp32 = dict(_run(BatchedInference(model, batch_size=4, precision="fp32"), feeds))
    bf16 = dict(_run(BatchedInference(model, batch_size=4, precision="bf16"), feeds))
    for k in fp32:
        assert not np.array_equal(fp32[k], bf16[k])  # autocast really ran
        np.testing.assert_allclose(bf16[k], fp32[k], atol=0.05)


def test_auto_is_fp32_on_the_cpu_and_bad_precisions_are_refused(model):
    assert BatchedInference(model).autocast is None
    assert not BatchedInference(model, precision="fp16").whole16  # training's float16 is CUDA's only
    with pytest.raises(ValueError):
        BatchedInference(model, precision="fp8")
    with pytest.raises(ValueError):
        BatchedInference(torch.nn.Linear(3, 2), precision="bf16")  # no separate front-end


@pytest.mark.parametrize("arch", ["efficientat", "cnn", "crnn", "crnn-mfcc"])
def test_inference_folds_batch_norms_into_a_copy_with_the_same_outputs(arch):
    """BatchedInference runs a copy whose conv + batch-norm pairs are one conv: the same logits to
    float rounding, and the caller's model (which may be trained or saved next) untouched."""
    from mgctag.infer import _for_inference
    from mgctag.models import get_architecture

    torch.manual_seed(0)
    params = {"tag_indices": [251, 235, 219]} if arch == "efficientat" else {}
    m = Classifier(arch, ["A", "B", "C"], arch_params=params)
    for bn in (x for x in m.modules() if isinstance(x, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))):
        bn.running_mean.normal_(0, 0.5)  # statistics as trained ones are, not the identity
        bn.running_var.uniform_(0.2, 3.0)
        bn.weight.data.normal_(1.0, 0.3)
        bn.bias.data.normal_(0, 0.3)
    m.eval()
    keys = list(m.state_dict())
    folded = _for_inference(m)
    n_bn = sum(isinstance(x, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for x in folded.modules())
    assert n_bn < sum(isinstance(x, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for x in m.modules())
    assert list(m.state_dict()) == keys  # the original is as it was
    x = torch.randn(3, get_architecture(arch).frontend.segment_samples) * 0.1
    with torch.inference_mode():
        want, got = m(x), folded(x)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
    assert _for_inference(m.train()) is m  # a model being trained is never changed


def test_raw_outputs_of_a_bare_front_end_are_its_own_output():
    """activation=False (the feature cache): a Frontend (buffers, no parameters; eval mode, so
    copied and folded) gives its (B, n_features, n_frames) output per track, unactivated."""
    from mgctag.frontends import Frontend

    frontend = Frontend(BAND_SPEC).eval()
    sizes = [3, 1, 9, 0, 4]
    feeds = _feeds(sizes)
    got = _run(BatchedInference(frontend, batch_size=4, activation=False), feeds)
    assert [k for k, _ in got] == list(range(len(feeds)))
    for key, x in got:
        if sizes[key]:
            with torch.inference_mode():
                want = frontend(torch.from_numpy(feeds[key])).numpy()
            assert x.shape == (sizes[key], BAND_SPEC.n_features, BAND_SPEC.n_frames)
            np.testing.assert_allclose(x, want, rtol=1e-6, atol=1e-6)


def test_batched_map_keeps_each_tracks_outputs_together(model):
    """Two batchers side by side (a teacher's ensemble): each track's outputs, in feeding order."""
    from mgctag.frontends import Frontend
    from mgctag.infer import batched_map

    feeds = _feeds([3, 5, 1, 2])
    batchers = [BatchedInference(model, batch_size=4), BatchedInference(Frontend(BAND_SPEC), activation=False)]
    got = list(batched_map(batchers, ((k, (f, f)) for k, f in enumerate(feeds))))
    assert [k for k, _ in got] == [0, 1, 2, 3]
    for key, (probs, x) in got:
        with torch.inference_mode():
            np.testing.assert_allclose(probs, softmax(model(torch.from_numpy(feeds[key])).numpy()), rtol=1e-5)
        assert x.shape == (len(feeds[key]), BAND_SPEC.n_features, BAND_SPEC.n_frames)
