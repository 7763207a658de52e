import csv
import json
import os
from pathlib import Path

import pytest

from mgctag.errors import MgctagError
from mgctag.report import COLUMNS, Report, csv_safe
from mgctag.result import FileResult

RESULTS = [
    FileResult(Path("/m/a.mp3"), "tagged", [("Rock", 0.8123), ("Pop", 0.1)], existing_genre="", model="m1"),
    FileResult(Path("/m/=cmd.flac"), "error", model="m1", error="truncated or corrupt"),
    FileResult(Path(os.fsdecode(b"/m/caf\xe9.ogg")), "kept", [("-Jazz", 0.5)], existing_genre="@Jazz", model="m1"),
]


def test_csv_has_columns_rows_and_escapes_formulas(tmp_path):
    out = tmp_path / "r.csv"
    with Report(out) as rep:
        for r in RESULTS:
            rep.write(r)
    with open(out, encoding="utf-8", errors="surrogateescape", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    assert rows[0]["genre"] == "Rock" and rows[0]["genres"] == "Rock:0.812; Pop:0.100"
    assert rows[1]["status"] == "error" and rows[1]["error"] == "truncated or corrupt"
    assert rows[2]["genre"] == "'-Jazz" and rows[2]["existing_genre"] == "'@Jazz"
    # the non-UTF-8 name comes back byte-exact
    assert os.fsencode(rows[2]["path"]) == b"/m/caf\xe9.ogg"
    assert not list(tmp_path.glob(".*.tmp"))


def test_json_is_a_list_of_objects(tmp_path):
    out = tmp_path / "r.json"
    with Report(out) as rep:
        for r in RESULTS:
            rep.write(r)
    data = json.loads(out.read_bytes().decode("utf-8", "surrogateescape"))
    assert [d["status"] for d in data] == ["tagged", "error", "kept"]
    assert data[0]["genres"] == [{"genre": "Rock", "confidence": 0.8123}, {"genre": "Pop", "confidence": 0.1}]
    assert data[1]["confidence"] is None and set(COLUMNS) <= set(data[0])


def test_csv_safe():
    assert csv_safe("=1+1") == "'=1+1" and csv_safe("+x") == "'+x" and csv_safe("Rock") == "Rock"
    assert csv_safe(None) == ""


def test_bad_report_paths(tmp_path):
    with pytest.raises(MgctagError, match="must end in"):
        Report(tmp_path / "r.txt")
    with pytest.raises(MgctagError, match="does not exist"):
        Report(tmp_path / "nope" / "r.csv")


@pytest.mark.parametrize("ext", ["csv", "json", "html"])
def test_a_failed_run_leaves_the_previous_report_and_no_temp_file(tmp_path, ext):
    out = tmp_path / f"r.{ext}"
    out.write_text("the previous run's report\n")
    with pytest.raises(RuntimeError, match="mid-run"):
        with Report(out) as rep:
            rep.write(RESULTS[0])
            raise RuntimeError("mid-run")
    assert out.read_text() == "the previous run's report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
