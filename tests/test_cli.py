"""The CLI through Typer's runner: exit codes, output, reports, help."""

from __future__ import annotations

import json

import audiogen
from typer.testing import CliRunner

from mgctag import __version__
from mgctag.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_version_and_help():
    r = invoke("--version")
    assert r.exit_code == 0 and __version__ in r.output
    r = invoke("scan", "--help")
    assert r.exit_code == 0
    for opt in (
        "--write-tags",
        "--model",
        "--top-k",
        "--min-confidence",
        "--overwrite",
        "--genre-map",
        "--report",
        "--device",
        "--batch-size",
        "--workers",
        "--segments",
        "--vote",
        "--include-hidden",
        "--follow-symlinks",
        "--id3v23",
    ):
        assert opt in r.output, opt


def test_scan_dry_run_prints_genres_and_exits_0(tmp_path, band_model):
    audiogen.make(tmp_path / "low.flac", seconds=2.5, freq=150)
    audiogen.make(tmp_path / "high.mp3", seconds=2.5, freq=5000)
    r = invoke("scan", tmp_path, "--model", band_model, "--workers", 0)
    assert r.exit_code == 0, r.output
    lines = {line.split()[-1].rsplit("/", 1)[-1]: line.split() for line in r.output.splitlines() if "would-tag" in line}
    assert lines["low.flac"][1] == "Low" and lines["high.mp3"][1] == "High"


def test_broken_file_exits_1_with_reason_and_report(tmp_path, band_model):
    audiogen.make(tmp_path / "ok.wav", seconds=2.5, freq=150)
    (tmp_path / "bad.mp3").write_bytes(b"")
    rep = tmp_path / "out.json"
    r = invoke("scan", tmp_path, "--model", band_model, "--workers", 0, "--write-tags", "--report", rep)
    assert r.exit_code == 1, r.output
    data = {d["path"].rsplit("/", 1)[-1]: d for d in json.loads(rep.read_text())}
    assert data["bad.mp3"]["status"] == "error" and data["bad.mp3"]["error"]
    assert data["ok.wav"]["status"] == "tagged" and data["ok.wav"]["genre"] == "Low"


def test_usage_errors_exit_2(tmp_path, band_model):
    assert invoke("scan", tmp_path / "missing").exit_code == 2
    assert invoke("scan", tmp_path, "--top-k", 0).exit_code == 2
    assert invoke("scan", tmp_path, "--vote", "median").exit_code == 2
    r = invoke("scan", tmp_path, "--model", "no-such-model")
    assert r.exit_code == 2 and "no model named" in r.output
    r = invoke("scan", tmp_path, "--model", band_model, "--report", tmp_path / "r.txt")
    assert r.exit_code == 2 and "report" in r.output


def test_models_lists_architectures_and_weights():
    r = invoke("models")
    assert r.exit_code == 0, r.output
    assert "Architectures" in r.output and "Installed weights" in r.output


def test_a_run_that_fails_midway_leaves_the_previous_report(tmp_path, band_model, monkeypatch):
    import mgctag.scanner
    from mgctag.errors import MgctagError

    def failing_scan(paths, options, **kw):
        for r in real_scan(paths, options, **kw):
            yield r
            raise MgctagError("the disk went away")

    real_scan = mgctag.scanner.scan
    monkeypatch.setattr(mgctag.scanner, "scan", failing_scan)
    audiogen.make(tmp_path / "a.flac", seconds=2.5, freq=150)
    audiogen.make(tmp_path / "b.flac", seconds=2.5, freq=150)
    for name in ("r.csv", "r.html"):
        rep = tmp_path / name
        rep.write_text("the previous report\n")
        r = invoke("scan", tmp_path, "--model", band_model, "--workers", 0, "--report", rep)
        assert r.exit_code == 2 and "the disk went away" in r.output, r.output
        assert rep.read_text() == "the previous report\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_misspelt_genre_gets_a_suggestion_and_a_map_line_that_does_nothing_a_warning(tmp_path, band_model):
    (tmp_path / "lib").mkdir()
    audiogen.make(tmp_path / "lib" / "a.flac", seconds=2.5, freq=150.0)
    r = CliRunner().invoke(app, ["scan", str(tmp_path / "lib"), "--model", str(band_model), "--genres", "lwo"])
    assert r.exit_code == 2 and "cannot name lwo (did you mean Low?)" in r.output, r.output
    gmap = tmp_path / "map.txt"
    gmap.write_text("Low: Bass\nJaz: Jazz\n")
    r = CliRunner().invoke(
        app,
        [
            "scan",
            str(tmp_path / "lib"),
            "--model",
            str(band_model),
            "--workers",
            "0",
            "--genre-map",
            str(gmap),
            "--state",
            str(tmp_path / "s.sqlite"),
        ],
    )
    assert r.exit_code == 0 and "--genre-map: no model here names 'jaz'; that line does nothing" in r.stderr, r.output
    assert "Bass" in r.stdout


def test_the_summary_says_what_was_measured_of_the_audioset_model(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # nothing installed: the embedded default
    (tmp_path / "lib").mkdir()
    audiogen.make(tmp_path / "lib" / "a.flac", seconds=4.0, freq=440.0)
    r = CliRunner().invoke(app, ["scan", str(tmp_path / "lib"), "--workers", "0"])
    assert r.exit_code == 0, r.output
    assert "far more accurate" not in r.stderr
    assert "writes fewer wrong genres (0.85 of them right against 0.74 on 57 independent recordings)" in r.stderr


# --- help and usage errors in plain words ----------------------------------------------------------

TYPER_WORDS = (
    "<bool>",
    "<int",
    "<float",
    "<str>",
    "<path>",
    "<file>",
    "<dir>",
    "<list",
    "{paths}",
    "{name}",
    "range]",
    "[x>=",
    "x<=",
)


def _panels(text: str) -> dict[str, str]:
    """Each long option in a help text -> the title of the panel it is listed in."""
    where, panel = {}, None
    for line in text.splitlines():
        if line.startswith("╭─ "):
            panel = line[3:].split(" ─", 1)[0]
        elif line.startswith("│ "):
            first = line[2:].split()
            opt = next((w for w in first[:2] if w.startswith("--")), None)
            if opt:
                where[opt] = panel
    return where


def test_scan_help_at_80_columns_names_values_plainly_in_panels():
    r = runner.invoke(app, ["scan", "--help"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "scan [OPTIONS] PATHS..." in [ln.strip().split(" ", 2)[-1] for ln in r.output.splitlines()]
    assert not [w for w in TYPER_WORDS if w in r.output], r.output
    assert len(r.output.splitlines()) < 150, "205 lines in one panel before"  # 80 columns, as a terminal
    where = _panels(r.output)
    expected = {
        "--write-tags": "Writing",
        "--min-confidence": "Writing",
        "--keep-existing": "Writing",
        "--model": "Model and genres",
        "--genres": "Model and genres",
        "--albums": "Model and genres",
        "--include-hidden": "Selection",
        "--state": "State",
        "--rescan": "State",
        "--report": "Output",
        "--quiet": "Output",
        "--workers": "Performance",
        "--device": "Performance",
        "--ray": "Ray cluster",
        "--ray-actors": "Ray cluster",
    }
    assert {o: where.get(o) for o in expected} == expected
    lines = r.output.splitlines()
    assert any(ln.split()[1:3] == ["--top-k", "N"] for ln in lines if ln.startswith("│")), r.output
    assert any(ln.split()[1:3] == ["--device", "auto|cpu|cuda"] for ln in lines if ln.startswith("│")), r.output


def test_every_command_help_is_free_of_typer_type_names():
    for args in ([], ["train"], ["evaluate"], ["undo"], ["models"], ["models", "install"], ["models", "remove"]):
        r = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "80"})
        assert r.exit_code == 0, (args, r.output)
        assert not [w for w in TYPER_WORDS if w in r.output], (args, r.output)
    r = runner.invoke(app, ["models", "install", "--help"], env={"COLUMNS": "80"})
    assert "models install [OPTIONS] NAME" in [ln.strip().split(" ", 2)[-1] for ln in r.output.splitlines()]


def test_a_bad_value_is_named_in_plain_words(tmp_path):
    for args, words in (
        (["--top-k", "0"], "'--top-k': 0 is not a whole number of 1 or more"),
        (["--top-k", "two"], "'--top-k': two is not a whole number of 1 or more"),
        (["--min-confidence", "2"], "'--min-confidence': 2 is not a number from 0 to 1"),
        (["--device", "gpu"], "'--device': gpu is not one of auto, cpu, cuda"),
        (["--workers", "-1"], "'--workers': -1 is not a whole number of 0 or more"),
    ):
        r = runner.invoke(app, ["scan", str(tmp_path), *args], env={"COLUMNS": "200"})
        assert r.exit_code == 2 and words in r.output, r.output
        assert "Input should" not in r.output and "Value error" not in r.output, r.output
    r = runner.invoke(app, ["scan", str(tmp_path / "missing")], env={"COLUMNS": "200"})
    assert r.exit_code == 2 and "'PATHS'" in r.output, r.output


def test_genres_help_agrees_with_the_presets_and_the_readme():
    from pathlib import Path

    from mgctag.taxonomy import COMMON

    r = runner.invoke(app, ["scan", "--help"], env={"COLUMNS": "300"})
    assert f"common (the {len(COMMON)} genres libraries use" in r.output and "folded" not in r.output
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"| `common` | {len(COMMON)} genres libraries use" in readme


def test_models_keeps_names_whole_and_shows_min_confidence_and_licence():
    from mgctag import weights

    narrow = runner.invoke(app, ["models"], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    for name in weights.installed():
        assert f"│ {name} " in narrow.output, (name, narrow.output)
    row = narrow.output.split("│ cnn-gtzan-mini ", 1)[1].split("│ cnn1d-gtzan-mini ", 1)[0]
    assert "min-confidence 0;" in row and f"licence: {weights.SHIPPED_LICENCE}" in row, row
    wide = runner.invoke(app, ["models"], env={"COLUMNS": "300"})
    header = [ln for ln in wide.output.splitlines() if "┃ name" in ln][-1]  # the weights', not the architectures'

    assert "min-confidence" in header and "licence" in header
    row = next(ln for ln in wide.output.splitlines() if ln.startswith("│ cnn-gtzan-mini "))
    assert weights.SHIPPED_LICENCE in row
