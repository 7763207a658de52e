"""`mgctag train` and `mgctag evaluate` through Typer's runner: files written, figures printed, errors."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mgctag import dataset, weights
from mgctag.cli import app
from mgctag.evaluate import evaluate
from test_train import BANDS, PER_CLASS, make_clip, separable  # noqa: F401  (a fixture)

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(separable):
    return separable


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-out")
    r = invoke("train", data, "--arch", "cnn", "--folds", 2, "--epochs", 4, "--batch-size", 16,
               "--out", out / "cnn-synth.safetensors", "--cache-dir", out / "cache", "--device", "cpu")
    assert r.exit_code == 0, r.output
    return out, r.output


def test_train_prints_cv_and_writes_weights_history_curves(trained):
    out, text = trained
    assert "2-fold cross-validation, 24 tracks" in text and "mean ± sd" in text
    assert "fold 1/2 epoch   1: train loss" in text and "final model" in text
    for name in ("cnn-synth.safetensors", "cnn-synth.history.json", "cnn-synth.curves.png"):
        assert (out / name).is_file(), name
    meta = weights.read_meta(out / "cnn-synth.safetensors")
    assert meta.arch == "cnn" and meta.labels == sorted(BANDS) and meta.metrics["cv_folds"] == 2
    assert meta.provenance["command"].startswith("mgctag ")


def test_evaluate_json_agrees_with_the_library_and_writes_the_png(trained, data, tmp_path):
    out, _ = trained
    png = tmp_path / "conf.png"
    r = invoke("evaluate", data, "--model", out / "cnn-synth.safetensors", "--json", "--confusion", png,
               "--coverage", tmp_path / "cov.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["n_tracks"] == 3 * PER_CLASS and sum(map(sum, rep["confusion"])) == 3 * PER_CLASS
    model, meta = weights.load(out / "cnn-synth.safetensors")
    expected = evaluate((model, meta), dataset.load_tracks(data).tracks)
    assert rep["track_accuracy"] == pytest.approx(expected.track_accuracy)
    assert rep["macro_f1"] == pytest.approx(expected.macro_f1)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and rep["confusion_png"] == str(png)


def test_evaluate_prints_tables(trained, data, tmp_path):
    out, _ = trained
    r = invoke("evaluate", data, "--model", out / "cnn-synth.safetensors", "--confusion", tmp_path / "c.png",
               "--coverage", tmp_path / "cov.png")
    assert r.exit_code == 0, r.output
    for heading in ("track accuracy", "Per class (track level)", "Confusion matrix",
                    "Precision of the top genre", "files written", "min-confidence"):
        assert heading in r.output, heading
    assert (tmp_path / "c.png").is_file() and (tmp_path / "cov.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_matches_labels_in_any_spelling_and_a_closed_set(trained, data, tmp_path):
    """Folder names (low) meet a model's labels (LOW, Other) by their canonical key; a model with
    more labels than the data is evaluated on all of them, or on the data's with --closed-set."""
    out, _ = trained
    model, meta = weights.load(out / "cnn-synth.safetensors")
    meta.labels = [g.upper() for g in meta.labels]
    renamed = weights.save(tmp_path / "upper.safetensors", model, meta)
    args = ("--confusion", tmp_path / "c.png", "--coverage", tmp_path / "v.png", "--json")
    r = invoke("evaluate", data, "--model", renamed, *args)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    plain = json.loads(invoke("evaluate", data, "--model", out / "cnn-synth.safetensors", *args).stdout)
    assert rep["track_accuracy"] == plain["track_accuracy"] and rep["labels"] == ["HIGH", "LOW", "MID"]
    closed = invoke("evaluate", data, "--model", renamed, "--closed-set", "--genre-map", _map(tmp_path, "mid: -"),
                    *args)
    assert closed.exit_code == 0, closed.output
    assert json.loads(closed.stdout)["labels"] == ["HIGH", "LOW"]
    rep_c = json.loads(closed.stdout)
    assert rep_c["n_tracks"] == 2 * PER_CLASS and len(rep_c["coverage"]) == 2 * PER_CLASS


def _map(tmp_path, text):
    p = tmp_path / "map.txt"
    p.write_text(text + "\n")
    return p


@pytest.mark.parametrize("args, message", [
    (("train", "{missing}", "--arch", "cnn"), "no such file or folder"),
    (("train", "{data}", "--arch", "nope"), "nope"),
    (("train", "{data}", "--arch", "cnn", "--param", "oops"), "expected KEY=VALUE"),
    (("train", "--arch", "cnn"), "no training data"),
    (("evaluate", "{data}", "--model", "{missing}.safetensors"), "not found"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, data, tmp_path):
    r = invoke(*(a.format(data=data, missing=tmp_path / "missing") for a in args))
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_evaluate_refuses_labels_the_model_does_not_know(trained, tmp_path):
    out, _ = trained
    (tmp_path / "polka").mkdir()
    make_clip(tmp_path / "polka" / "p.wav", 300.0, 0)
    r = invoke("evaluate", tmp_path, "--model", out / "cnn-synth.safetensors")
    assert r.exit_code == 2 and "polka" in r.output
