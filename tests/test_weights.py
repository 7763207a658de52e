import json
import logging

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
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

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
    assert weights.resolve("test-band") == band_model  # architecture name -> its weights


def _with_meta(src, dst, edit):
    """A copy of `src` whose mgctag metadata is `edit(meta dict)` (a str is stored as it is)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as f:
        meta = json.loads(f.metadata()["mgctag"])
    new = edit(meta)
    save_file(load_file(str(src)), str(dst), metadata={"mgctag": new if isinstance(new, str) else json.dumps(new)})
    return dst


@pytest.fixture
def user_weights(tmp_path, band_model, monkeypatch):
    """A user weights folder with one good file, one from a newer mgctag, and five broken ones."""
    d = tmp_path / "user-weights"
    d.mkdir()
    _with_meta(band_model, d / "band.safetensors", lambda m: m)
    _with_meta(band_model, d / "newer.safetensors", lambda m: {**m, "calibration": {"t": 1.5}, "licence": "CC0"})
    _with_meta(band_model, d / "badjson.safetensors", lambda m: json.dumps(m)[:-9])
    _with_meta(band_model, d / "nolabels.safetensors", lambda m: {k: v for k, v in m.items() if k != "labels"})
    _with_meta(band_model, d / "list.safetensors", lambda m: [m])
    _with_meta(band_model, d / "strlabels.safetensors", lambda m: {**m, "labels": "Low,High"})
    (d / "junk.safetensors").write_bytes(b"not a safetensors file")
    monkeypatch.setattr(weights, "user_dir", lambda: d)
    return d


BROKEN = {
    "badjson": "not valid JSON",
    "nolabels": "lacks labels",
    "list": "not a JSON object",
    "strlabels": "'labels' should be a JSON list",
    "junk": "not a readable weights file",
}


def test_unknown_metadata_keys_are_ignored(user_weights):
    meta = weights.read_meta(user_weights / "newer.safetensors")
    assert meta.arch == "test-band" and meta.licence == "CC0" and not hasattr(meta, "calibration")
    model, _ = weights.load(user_weights / "newer.safetensors")
    assert model.labels == ["Low", "High"]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_file_is_one_clear_error(name, user_weights):
    with pytest.raises(WeightsError, match=BROKEN[name]) as e:
        weights.read_meta(user_weights / f"{name}.safetensors")
    assert str(e.value).startswith(str(user_weights / name)) and "\n" not in str(e.value)
    with pytest.raises(WeightsError, match=BROKEN[name]):
        weights.resolve(name)


def test_broken_user_files_are_left_out_with_one_warning_each(user_weights, caplog):
    caplog.set_level(logging.WARNING, logger="mgctag")
    found = weights.installed()
    assert {"band", "newer"} <= set(found) and not set(BROKEN) & set(found)
    assert "cnn-gtzan-mini" in found  # the shipped ones are still there
    warned = [r.getMessage() for r in caplog.records]
    assert sorted(m.split("/")[-1].split(".")[0] for m in warned) == sorted(BROKEN)
    caplog.clear()
    assert weights.resolve("test-band") == user_weights / "band.safetensors"  # by architecture, past the broken
    assert weights.resolve("cnn") == weights.shipped_dir() / "cnn-gtzan-mini.safetensors"
    assert len(caplog.records) == 2 * len(BROKEN)


def test_a_broken_user_file_does_not_hide_the_shipped_one_of_its_name(user_weights, caplog):
    (user_weights / "cnn-gtzan-mini.safetensors").write_bytes(b"half a download")
    caplog.set_level(logging.WARNING, logger="mgctag")
    assert weights.resolve("cnn-gtzan-mini") == weights.shipped_dir() / "cnn-gtzan-mini.safetensors"
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [str(user_weights / "cnn-gtzan-mini.safetensors")]


def test_cli_models_lists_the_rest_and_warns_once(user_weights):
    from typer.testing import CliRunner

    from mgctag.cli import app

    r = CliRunner().invoke(app, ["models"], env={"COLUMNS": "300"})
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert "│ band " in r.output and "│ newer " in r.output and "│ cnn-gtzan-mini " in r.output
    for name, reason in BROKEN.items():
        lines = [ln for ln in r.output.splitlines() if f"{name}.safetensors" in ln]
        assert len(lines) == 1 and reason in lines[0] and lines[0].endswith("(left out)"), (name, lines)


def test_cli_models_prints_labels_as_they_are(user_weights):
    from typer.testing import CliRunner

    from mgctag.cli import app

    _with_meta(
        user_weights / "band.safetensors",
        user_weights / "odd.safetensors",
        lambda m: {**m, "labels": ["[/Low]", "[red]High"], "metrics": {"cv_folds": 3}},
    )
    r = CliRunner().invoke(app, ["models"], env={"COLUMNS": "300"})
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert "[/Low], [red]High" in r.output and "cv_folds=3" in r.output


@pytest.mark.parametrize("umask", [0o027, 0o002], ids=["umask-027", "umask-002"])
def test_a_weights_file_gets_the_mode_the_umask_gives(tmp_path, umask):
    """safetensors' save_file made every weights file 0600, whatever the umask; other outputs followed it."""
    import os
    import stat

    from conftest import make_band_model

    old = os.umask(umask)
    try:
        path = make_band_model(tmp_path / "band.safetensors")
        (tmp_path / "other.json").write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE((tmp_path / "other.json").stat().st_mode)
    assert weights.load(path)[1].labels == ["Low", "High"]
