import json

import pytest
import torch

from mgctag import weights
from mgctag.errors import WeightsError


def test_roundtrip_rebuilds_the_same_model(band_model):
    model, meta = weights.load(band_model)
    assert meta.arch == "test-band" and meta.labels == ["Low", "High"] and meta.model_id == "band"
    wave = torch.randn(2, model.spec.segment_samples)
    again, _ = weights.load(band_model)
    assert torch.equal(model(wave), again(wave))
    assert model.backbone.linear.weight[0, 0].item() == pytest.approx(0.05)


def test_file_is_plain_safetensors_with_json_metadata(band_model):
    from safetensors import safe_open

    with safe_open(str(band_model), framework="pt") as f:
        meta = json.loads(f.metadata()["mgctag"])
        assert "backbone.linear.weight" in f.keys()
    assert meta["format_version"] == weights.FORMAT_VERSION and meta["frontend"]["kind"] == "logmel"


def test_bad_files_raise_weights_error(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError):
        weights.load(junk)
    with pytest.raises(WeightsError, match="not found"):
        weights.resolve(str(tmp_path / "missing.safetensors"))
    with pytest.raises(WeightsError, match="no model named"):
        weights.resolve("no-such-model")


def test_tensor_mismatch_is_reported(tmp_path, band_model):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(band_model), framework="pt") as f:
        md = f.metadata()
    t = load_file(str(band_model))
    t["backbone.linear.weight"] = torch.zeros(3, 32)
    bad = tmp_path / "bad.safetensors"
    save_file(t, str(bad), metadata=md)
    with pytest.raises(WeightsError, match="does not match"):
        weights.load(bad)


def test_resolve_by_path_and_installed_name(band_model, monkeypatch, tmp_path):
    assert weights.resolve(str(band_model)) == band_model
    monkeypatch.setattr(weights, "user_dir", lambda: band_model.parent)
    assert weights.resolve("band") == band_model
    assert weights.resolve("test-band") == band_model    # architecture name -> its weights
