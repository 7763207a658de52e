"""musicnn port: parity with the TensorFlow reference, the genre merge, and the frozen-trunk head.

The reference outputs in tests/fixtures/musicnn_parity.npz come from musicnn 0.1.0's own
extractor (tools/convert_musicnn.py regenerates them), so no TensorFlow is needed here. The
fixture clip is a synthetic 16 kHz mono PCM WAV, so soundfile's float32 read is exactly what
every decoder (and librosa.load in the reference) returns for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mgctag import weights
from mgctag.model import Classifier
from mgctag.models.musicnn import MUSICNN_FRONTEND, reference_patches

FIXTURES = Path(__file__).parent / "fixtures"
PARITY_TOL = 1e-3
MODELS = ("musicnn-msd", "musicnn-mtt")


@pytest.fixture(scope="module")
def reference():
    return np.load(FIXTURES / "musicnn_parity.npz")


@pytest.fixture(scope="module")
def patches():
    wave, sr = sf.read(FIXTURES / "musicnn_parity.wav", dtype="float32")
    assert sr == MUSICNN_FRONTEND.sample_rate and wave.ndim == 1
    return torch.from_numpy(reference_patches(wave))


def load_shipped(name: str):
    return weights.load(weights.shipped_dir() / f"{name}{weights.SUFFIX}")


@pytest.mark.parametrize("name", MODELS)
def test_taggram_matches_musicnn_reference(name, reference, patches):
    model, meta = load_shipped(name)
    with torch.no_grad():
        taggram = torch.sigmoid(model.backbone.tag_logits(model.features(patches))).numpy()
    expected = reference[f"{name}/taggram"]
    assert taggram.shape == expected.shape == (len(patches), 50)
    assert np.abs(taggram - expected).max() <= PARITY_TOL
    assert meta.arch == "musicnn" and "Permission to use, copy, modify" in meta.licence


def test_pooled_statistics_match_reference(reference, patches):
    """The mid-end output, pooled over time, as the reference's max_pool / mean_pool features."""
    model, _ = load_shipped("musicnn-msd")
    with torch.no_grad():
        trunk = model.backbone.midend(model.backbone.frontend(model.features(patches)))
    # float16 rounding of the mel can flip in the last bit between numpy and torch; max-pooled
    # activations (tens in size) show it most, so they get a looser absolute bound.
    assert np.abs(trunk.amax(2).numpy() - reference["musicnn-msd/max_pool"]).max() < 2e-2
    assert np.abs(trunk.mean(2).numpy() - reference["musicnn-msd/mean_pool"]).max() < 1e-3


@pytest.mark.parametrize("name", MODELS)
def test_genre_logit_is_best_member_tag(name, patches):
    model, meta = load_shipped(name)
    groups = meta.arch_params["genre_groups"]
    assert list(groups) == meta.labels
    with torch.no_grad():
        feats = model.features(patches)
        tag_logits = model.backbone.tag_logits(feats)
        genre_logits = model(patches)
    expected = torch.stack([tag_logits[:, members].amax(dim=1) for members in groups.values()], dim=1)
    assert torch.equal(genre_logits, expected)
    members = [i for m in groups.values() for i in m]
    assert len(members) == len(set(members)), "a tag feeds at most one genre"


def test_moods_decades_and_vocals_are_dropped():
    """Moods, decades and vocals never reach a genre (the genre map's documented choice)."""
    meta = weights.read_meta(weights.shipped_dir() / "musicnn-msd.safetensors")
    tags = meta.arch_params["tags"]
    used = {tags[i] for m in meta.arch_params["genre_groups"].values() for i in m}
    assert not used & {"female vocalists", "male vocalists", "80s", "00s", "sad", "happy", "beautiful"}
    assert {"rock", "jazz", "Hip-Hop", "rnb", "heavy metal"} <= used


def test_head_trains_only_the_head(patches, tmp_path):
    msd, _ = load_shipped("musicnn-msd")
    model = Classifier("musicnn-head", ["Blues", "Reggae", "Disco"])
    trunk = model.backbone.trunk
    ref_state = msd.backbone.state_dict()
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, ref_state[key]), key
    assert not any(p.requires_grad for p in trunk.parameters())

    model.train()
    assert not trunk.training and model.backbone.head.training
    assert model.backbone.normalises_input and torch.equal(model.norm_std, torch.ones(96))
    feats = model.features(patches[:2])
    emb = model.backbone.embed(feats)
    assert emb.shape == (2, trunk.embed_dim) and not emb.requires_grad
    loss = torch.nn.functional.cross_entropy(model.backbone.head(emb), torch.tensor([0, 2]))
    loss.backward()
    assert all(p.grad is not None for p in model.backbone.head.parameters())
    assert all(p.grad is None for p in trunk.parameters())
    running = trunk.backend.pool_bn.running_mean.clone()
    model(patches[:2])
    assert torch.equal(running, trunk.backend.pool_bn.running_mean), "trunk batch norm must stay frozen"

    model.eval()
    with torch.no_grad():
        before = model(patches)
    path = weights.save(
        tmp_path / "head.safetensors",
        model,
        weights.WeightsMeta(
            arch="musicnn-head", labels=model.labels, frontend=model.spec.to_dict(), arch_params=model.arch_params
        ),
    )
    loaded, _ = weights.load(path)
    with torch.no_grad():
        assert torch.allclose(loaded(patches), before)


@pytest.mark.parametrize("kind", [(12, 7, "valid-3"), (1, 16, "same")])
def test_frequency_max_block_eval_shortcut_matches_literal_order(kind):
    """Eval mode pools before ReLU and batch norm (a speed-up); the values must be conv -> ReLU -> BN -> max."""
    from mgctag.models.musicnn import _FrequencyMaxBlock

    torch.manual_seed(0)
    freq, time_, padded = kind
    block = _FrequencyMaxBlock(8, freq, time_, padded)
    with torch.no_grad():  # mixed-sign scales, so both the max and the min branch are exercised
        block.bn.weight.copy_(torch.tensor([1.5, -0.7, 0.3, -2.0, 0.0, 1.0, -1.0, 0.5]))
        block.bn.bias.normal_()
        block.bn.running_mean.normal_()
        block.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 1, 24, 40)

    def literal(b):
        xp = (
            torch.nn.functional.pad(x, (3, 3))
            if padded == "valid-3"
            else torch.nn.functional.pad(x, ((time_ - 1) // 2, time_ // 2))
        )
        return b.bn(torch.relu(b.conv(xp))).amax(dim=2)

    block.eval()
    with torch.no_grad():
        out = block(x)
        assert out.shape == (3, 8, 40)
        assert torch.allclose(out, literal(block), atol=1e-6, rtol=0)
    block.train()  # batch statistics: the shortcut does not hold, so the literal order must run
    with torch.no_grad():
        assert torch.allclose(block(x), literal(block), atol=1e-6, rtol=0)


def test_the_embedded_default_scans_in_small_batches():
    """musicnn's activations are large: 64 windows a batch peaked near 1.5 GB on 20 clips, 8 under
    0.5 GB at the same speed (bench/RESULTS.md); a scan uses 8 unless --batch-size says otherwise."""
    from mgctag.analyser import Analyser

    assert Analyser.load("musicnn-gtzan-mini").batch_sizes == [8]
    assert Analyser.load("musicnn-gtzan-mini", batch_size=32).batch_sizes == [32]
