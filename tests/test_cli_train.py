"""`mgctag train` and `mgctag evaluate` through Typer's runner: files written, figures printed, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train import BANDS, PER_CLASS, make_clip, separable  # noqa: F401  (a fixture)
from typer.testing import CliRunner

from mgctag import dataset, weights
from mgctag.cli import app
from mgctag.evaluate import evaluate

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(separable):  # noqa: F811 (the fixture imported above)
    return separable


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-out")
    r = invoke(
        "train",
        data,
        "--arch",
        "cnn",
        "--folds",
        2,
        "--epochs",
        4,
        "--batch-size",
        16,
        "--out",
        out / "cnn-synth.safetensors",
        "--cache-dir",
        out / "cache",
        "--device",
        "cpu",
    )
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
    r = invoke(
        "evaluate",
        data,
        "--model",
        out / "cnn-synth.safetensors",
        "--json",
        "--confusion",
        png,
        "--coverage",
        tmp_path / "cov.png",
        "--device",
        "cpu",
    )
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
    r = invoke(
        "evaluate",
        data,
        "--model",
        out / "cnn-synth.safetensors",
        "--confusion",
        tmp_path / "c.png",
        "--coverage",
        tmp_path / "cov.png",
    )
    assert r.exit_code == 0, r.output
    for heading in (
        "track accuracy",
        "Per class (track level)",
        "Confusion matrix",
        "Precision of the top genre",
        "files written",
        "min-confidence",
    ):
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
    closed = invoke(
        "evaluate", data, "--model", renamed, "--closed-set", "--genre-map", _map(tmp_path, "mid: -"), *args
    )
    assert closed.exit_code == 0, closed.output
    assert json.loads(closed.stdout)["labels"] == ["HIGH", "LOW"]
    rep_c = json.loads(closed.stdout)
    assert rep_c["n_tracks"] == 2 * PER_CLASS and len(rep_c["coverage"]) == 2 * PER_CLASS


def test_evaluate_writes_no_file_unless_asked(trained, data, tmp_path, monkeypatch):
    out, _ = trained
    monkeypatch.chdir(tmp_path)
    r = invoke("evaluate", data, "--model", out / "cnn-synth.safetensors", "--device", "cpu", "--workers", 0)
    assert r.exit_code == 0, r.output
    assert list(tmp_path.iterdir()) == [] and ".png" not in r.output
    r = invoke(
        "evaluate",
        data,
        "--model",
        out / "cnn-synth.safetensors",
        "--device",
        "cpu",
        "--workers",
        0,
        "--out",
        "figures",
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "cnn-synth-confusion.png",
        "cnn-synth-coverage.png",
    ]
    rep = json.loads(r.stdout)
    assert rep["confusion_png"] == str(Path("figures", "cnn-synth-confusion.png"))
    assert rep["coverage_png"] == str(Path("figures", "cnn-synth-coverage.png"))


def test_evaluate_on_the_data_a_model_learnt_warns_in_sample(trained, data, tmp_path):
    import shutil

    out, _ = trained
    r = invoke("evaluate", data, "--model", out / "cnn-synth.safetensors", "--device", "cpu", "--workers", 0)
    assert r.exit_code == 0, r.output
    warning = [ln for ln in r.stderr.splitlines() if "in-sample" in ln]
    assert len(warning) == 1 and warning[0].startswith(
        f"warning: in-sample: cnn-synth was trained on this data (folders:{data.name}, says its provenance)"
    ), r.stderr
    assert "(in-sample)" in next(ln for ln in r.stdout.splitlines() if ln.startswith("track accuracy"))
    fresh = tmp_path / "new-recordings"
    shutil.copytree(data, fresh)
    r = invoke("evaluate", fresh, "--model", out / "cnn-synth.safetensors", "--device", "cpu", "--workers", 0, "--json")
    assert r.exit_code == 0, r.output
    assert "in-sample" not in r.stderr and json.loads(r.stdout)["in_sample"] == []


def test_evaluate_decodes_with_one_worker_per_core_as_scan_does(trained, data, monkeypatch):
    from typer.main import get_command

    from mgctag import pool

    group = get_command(app)

    def workers(command):
        return next(p for p in group.commands[command].params if p.name == "workers").default

    assert workers("evaluate") == workers("scan") and workers("scan") is None  # None: one per core
    asked, real = [], pool.decode_all
    monkeypatch.setattr(pool, "usable_cpus", lambda: 7)
    monkeypatch.setattr(pool, "decode_all", lambda paths, job, n: asked.append(n) or real(paths, job, 0))
    out, _ = trained
    r = invoke("evaluate", data, "--model", out / "cnn-synth.safetensors", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert asked == [7]


def test_train_writes_its_files_with_the_mode_the_umask_gives(trained):
    import os
    import stat

    out, _ = trained
    mask = os.umask(0o022)
    os.umask(mask)
    for name in ("cnn-synth.safetensors", "cnn-synth.history.json", "cnn-synth.curves.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~mask, name


def _map(tmp_path, text):
    p = tmp_path / "map.txt"
    p.write_text(text + "\n")
    return p


@pytest.mark.parametrize(
    "args, message",
    [
        (("train", "{missing}", "--arch", "cnn"), "no such file or folder"),
        (("train", "{data}", "--arch", "nope"), "nope"),
        (("train", "{data}", "--arch", "cnn", "--param", "oops"), "expected KEY=VALUE"),
        (
            ("train", "{data}", "--arch", "cnn", "--param", "bogus=1"),
            "cnn has no setting bogus (its settings, with their defaults: channels=[32, 32, 32], dense=64",
        ),
        (("train", "{data}", "--arch", "cnn", "--param", "dropout=abc"), 'cnn cannot be built with dropout="abc"'),
        (("train", "--arch", "cnn"), "no training data"),
        (("evaluate", "{data}", "--model", "{missing}.safetensors"), "not found"),
    ],
)
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


def test_train_needs_two_readable_genres_and_says_what_it_left_out(data, tmp_path):
    import shutil

    root = tmp_path / "two"
    for g in ("low", "high"):
        shutil.copytree(data / g, root / g)
    (root / "low" / "cover.jpg").write_bytes(b"\xff\xd8")
    (root / "high" / "broken.wav").write_bytes(b"RIFF not really")
    r = invoke(
        "train",
        root,
        "--arch",
        "cnn",
        "--epochs",
        1,
        "--batch-size",
        16,
        "--out",
        tmp_path / "m.safetensors",
        "--cache-dir",
        tmp_path / "cache",
        "--device",
        "cpu",
    )
    assert r.exit_code == 0, r.output
    assert "low: 1 file(s) left out (not an audio file name 1)" in r.output
    assert "high: 1 file(s) left out (not an audio file (looks like text) 1)" in r.output

    for f in (root / "high").iterdir():  # now nothing of "high" can be read
        f.write_bytes(b"RIFF not really")
    r = invoke(
        "train",
        root,
        "--arch",
        "cnn",
        "--epochs",
        1,
        "--out",
        tmp_path / "n.safetensors",
        "--cache-dir",
        tmp_path / "cache",
        "--device",
        "cpu",
    )
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "error: only one genre has tracks that could be read (high 0 of" in r.output
    assert not (tmp_path / "n.safetensors").exists()
    shutil.rmtree(root / "high")
    r = invoke("train", root, "--arch", "cnn", "--epochs", 1, "--cache-dir", tmp_path / "cache", "--device", "cpu")
    assert r.exit_code == 2 and "error: only one genre (low) to learn" in r.output, r.output


def test_evaluate_shows_no_library_warnings(data, tmp_path):
    """A one-label model (an older mgctag trained one) made scikit-learn warn on the terminal."""
    import warnings

    from conftest import BAND_SPEC

    from mgctag.model import Classifier

    (tmp_path / "Low").mkdir()
    make_clip(tmp_path / "Low" / "a.wav", 180.0, 0)
    path = weights.save(
        tmp_path / "one.safetensors",
        Classifier("test-band", ["Low"]),
        weights.WeightsMeta(arch="test-band", labels=["Low"], frontend=BAND_SPEC.to_dict()),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = invoke(
            "evaluate",
            tmp_path,
            "--model",
            path,
            "--confusion",
            tmp_path / "c.png",
            "--coverage",
            tmp_path / "v.png",
            "--device",
            "cpu",
        )
    assert r.exit_code == 0, r.output
    assert not [str(w.message) for w in caught]


def test_genre_names_are_printed_as_they_are_never_as_markup(data, tmp_path):
    """Genres come from users' tags and manifests: "[/Zouk]" crashed rich, "[red]Jazz" lost its name."""
    manifest = tmp_path / "m.csv"
    names = {"low": "[/Zouk]", "high": "[red]Jazz"}
    manifest.write_text(
        "path,genre\n" + "".join(f"{p},{names[g]}\n" for g in names for p in sorted((data / g).iterdir()))
    )
    model = tmp_path / "m.safetensors"
    r = invoke(
        "train",
        manifest,
        "--arch",
        "cnn",
        "--epochs",
        1,
        "--batch-size",
        16,
        "--out",
        model,
        "--cache-dir",
        tmp_path / "cache",
        "--device",
        "cpu",
    )
    assert r.exit_code == 0, r.output
    assert f"16 tracks, 2 genres ([/Zouk] {PER_CLASS}, [red]Jazz {PER_CLASS})" in r.output
    r = invoke(
        "evaluate",
        manifest,
        "--model",
        model,
        "--confusion",
        tmp_path / "c.png",
        "--coverage",
        tmp_path / "v.png",
        "--device",
        "cpu",
    )
    assert r.exit_code == 0, r.output
    assert "│ [/Zouk] " in r.output and "│ [red]Jazz " in r.output


def test_an_unwritable_output_fails_before_any_work(data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    r = invoke(
        "train",
        data,
        "--arch",
        "cnn",
        "--epochs",
        2,
        "--out",
        blocker / "m.safetensors",
        "--cache-dir",
        tmp_path / "cache",
        "--device",
        "cpu",
    )
    assert r.exit_code == 2 and f"error: cannot write {blocker / 'm.safetensors'}" in r.output, r.output
    assert "epoch" not in r.output and not (tmp_path / "cache").exists()
    r = invoke("evaluate", data, "--model", "cnn", "--confusion", blocker / "c.png")
    assert r.exit_code == 2 and f"error: cannot write {blocker / 'c.png'}" in r.output, r.output


def test_ctrl_c_during_training_is_one_line_and_exit_130(data, trained, tmp_path):
    import signal

    import cliproc

    cached = trained[0] / "cache"  # the features are there already
    proc = cliproc.start(
        "train",
        data,
        "--arch",
        "cnn",
        "--epochs",
        500,
        "--patience",
        500,
        "--batch-size",
        16,
        "--out",
        tmp_path / "m.safetensors",
        "--cache-dir",
        cached,
        "--device",
        "cpu",
    )
    seen = []
    for line in proc.stderr:  # wait until it is really training
        seen.append(line)
        if " epoch " in line:
            break
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=120)
    text = "".join(seen) + rest
    assert proc.returncode == 130, text
    assert "error: stopped by Ctrl-C: nothing was written" in text and "Traceback" not in text
    assert not (tmp_path / "m.safetensors").exists()
