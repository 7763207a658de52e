"""What a cron job sees: plain lines, --quiet, --log-file, one summary line, exit codes, MGCTAG_STATE."""

from __future__ import annotations

import os
import re

import audiogen
from typer.testing import CliRunner

from mgctag.cli import app

SUMMARY = re.compile(
    r"^\d+ files? seen: \d+ tagged, \d+ would-tag, \d+ kept, \d+ unchanged, \d+ skipped, "
    r"\d+ errors? in \d+\.\d s; \d+ albums? decided, \d+ tracks? alone \(run \d+\)$"
)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def library(root):
    root.mkdir()
    audiogen.make(root / "[bold]song.flac", seconds=2.5, freq=150)  # markup-looking name
    audiogen.make(root / "other.mp3", seconds=2.5, freq=5000)
    (root / "broken.mp3").write_bytes(b"")
    return root


def test_plain_lines_and_one_summary_line(tmp_path, band_model):
    lib = library(tmp_path / "lib")
    r = invoke("scan", lib, "--model", band_model, "--workers", 0, "--state", tmp_path / "s.sqlite")
    assert r.exit_code == 1
    assert "\x1b[" not in r.output  # no colour or cursor codes when not on a terminal
    assert f"{lib}/[bold]song.flac" in r.stdout  # a file name is never read as markup
    (summary,) = [line for line in r.stderr.splitlines() if "files seen" in line]
    assert SUMMARY.match(summary), summary
    assert summary.startswith("3 files seen: 0 tagged, 2 would-tag, 0 kept, 0 unchanged, 0 skipped, 1 error in")


def test_quiet_prints_only_errors_and_the_summary_and_log_file_gets_everything(tmp_path, band_model):
    lib = library(tmp_path / "lib")
    log = tmp_path / "mgctag.log"
    args = (
        "scan",
        lib,
        "--model",
        band_model,
        "--workers",
        0,
        "--state",
        tmp_path / "s.sqlite",
        "--write-tags",
        "--quiet",
        "--log-file",
        log,
    )
    r = invoke(*args)
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error") and "broken.mp3" in lines[0]
    assert [line for line in r.stderr.splitlines() if line] == [r.stderr.strip()] and "files seen" in r.stderr
    r = invoke(*args)  # a second run appends
    text = log.read_text(encoding="utf-8")
    assert text.count("tagged     ") == 2 and text.count("(unchanged since last run)") == 2
    assert text.count("files seen") == 2 and text.count("broken.mp3") == 2
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ")
    assert all(stamp.match(line) for line in text.splitlines())


def test_state_path_from_the_environment(tmp_path, band_model, monkeypatch):
    lib = library(tmp_path / "lib")
    db = tmp_path / "from-env" / "state.sqlite"
    monkeypatch.setenv("MGCTAG_STATE", str(db))
    r = invoke("scan", lib, "--model", band_model, "--workers", 0)
    assert r.exit_code == 1 and db.is_file() and os.path.exists(f"{db}.lock")
    r = invoke("scan", lib, "--model", band_model, "--workers", 0)
    assert "2 would-tag" in r.stderr and "(run 2)" in r.stderr  # the same database: answers remembered


def test_unusable_state_path_is_a_usage_error(tmp_path, band_model):
    lib = library(tmp_path / "lib")
    (tmp_path / "a-file").write_text("")
    r = invoke("scan", lib, "--model", band_model, "--state", tmp_path / "a-file" / "state.sqlite")
    assert r.exit_code == 2 and "cannot" in r.output
    r = invoke("scan", lib, "--model", band_model, "--state", tmp_path)  # a folder
    assert r.exit_code == 2
    r = invoke("scan", lib, "--model", band_model, "--hardlinks", "keep")
    assert r.exit_code == 2


def test_one_file_and_no_file_read_as_english(tmp_path, band_model):
    one = tmp_path / "one"
    one.mkdir()
    audiogen.make(one / "a.flac", seconds=2.5, freq=150.0)
    r = invoke("scan", one, "--model", band_model, "--workers", 0, "--state", tmp_path / "s.sqlite")
    assert r.stderr.startswith("1 file seen: 0 tagged, 1 would-tag") and ", 0 errors in" in r.stderr, r.stderr
    assert "0 albums decided, 1 track alone" in r.stderr
    empty = tmp_path / "empty"
    (empty / ".hidden").mkdir(parents=True)
    audiogen.make(empty / ".hidden" / "b.flac", seconds=2.5, freq=150.0)
    r = invoke("scan", empty, "--model", band_model, "--state", tmp_path / "s.sqlite")
    assert r.exit_code == 0 and r.stderr.startswith("0 files seen")
    assert "no audio file was found under the paths given (hidden ones need --include-hidden)" in r.stderr
