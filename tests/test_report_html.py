"""The HTML report: what the page holds, that it stays self-contained and escaped, and that a
real headless browser (Debian's chromium) draws both charts and sorts and filters the table."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import audiogen
import numpy as np
import pytest
from typer.testing import CliRunner

from mgctag import report_html
from mgctag.cli import app
from mgctag.report import Report
from mgctag.result import FileResult

EVIL = "</td></tr><script>document.title='pwned'</script>"
RESULTS = [
    FileResult(Path("/m/sure.flac"), "would-tag", [("Rock", 0.97)], model="m1"),
    FileResult(Path("/m/weak.flac"), "would-tag", [("Jazz", 0.31), ("Rock", 0.30)], model="m1"),
    FileResult(Path("/m/<b>bold</b>.mp3"), "kept", [("Rock", 0.9)], existing_genre=EVIL, model="m1"),
    FileResult(Path("/m/broken.mp3"), "error", model="m1", error="truncated or corrupt <x>"),
    FileResult(
        Path("/m/quiet.wav"), "skipped", [("Pop", 0.2)], model="m1", note="confidence 0.20 is below --min-confidence"
    ),
]


VOID = {"meta", "input", "br", "img", "hr", "link", "source", "col", "wbr", "area", "base", "embed", "track"}


class Dom(HTMLParser):
    """What the tests look at in a page: the table's rows, the charts' shapes, scripts, texts by id."""

    def __init__(self, text: str):
        super().__init__()
        self.rows: list[dict] = []
        self.shapes: dict[str, list[str]] = {}  # figure id -> classes of the rects and lines in it
        self.scripts, self.texts, self.title = 0, {}, ""
        self._figure = None
        self._open: list[tuple[str, str | None]] = []  # open elements (tag, id), for texts by id
        self._cell: list[str] | None = None
        self._in_body = self._in_title = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        elif tag == "title" and not self._figure:
            self._in_title = True
        elif tag == "figure":
            self._figure = a.get("id")
            self.shapes[self._figure] = []
        elif tag in ("rect", "line") and self._figure:
            self.shapes[self._figure].append(a.get("class") or tag)
        elif tag == "tbody" and self._in_body is False and not self.rows:
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append(
                {
                    "hidden": "hidden" in a,
                    "status": a.get("data-status"),
                    "cells": [],
                    "doubtful": "doubtful" in (a.get("class") or ""),
                }
            )
        elif tag == "td" and self._in_body:
            self._cell = []
        if tag not in VOID:
            self._open.append((tag, a.get("id")))
            if a.get("id"):
                self.texts[a["id"]] = ""

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()[0] == tag:
                break
        if tag == "figure":
            self._figure = None
        elif tag == "title":
            self._in_title = False
        elif tag == "tbody":
            self._in_body = None  # only the first tbody: the files
        elif tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title:
            self.title += data
        for _, id_ in self._open:
            if id_:
                self.texts[id_] += data


def render(results=RESULTS, **settings) -> str:
    return report_html.render(results, {"min_confidence": 0.4, **settings}, "5 files seen (run 7)")


def test_every_file_is_a_row_with_doubtful_files_first():
    dom = Dom(render())
    paths = [r["cells"][5] for r in dom.rows]
    assert sorted(paths) == sorted(str(r.path) for r in RESULTS)
    # doubtful first (weakest first): below the threshold, or a different existing genre; then errors
    assert paths[:3] == ["/m/quiet.wav", "/m/weak.flac", "/m/<b>bold</b>.mp3"]
    assert [r["doubtful"] for r in dom.rows] == [True, True, True, False, False]
    assert paths[3] == "/m/broken.mp3" and dom.rows[3]["cells"][6] == "truncated or corrupt <x>"
    weak = dom.rows[1]["cells"]
    assert weak[:5] == ["low confidence", "would-tag", "Jazz; Rock", "0.31", ""]
    assert dom.rows[2]["cells"][0] == "existing genre differs"


def test_values_from_files_stay_text_and_nothing_is_fetched():
    page = render(paths=["/m/<i>x</i>"])
    dom = Dom(page)
    assert dom.scripts == 1 and "pwned" not in dom.title
    assert dom.rows[2]["cells"][4] == EVIL  # shown as the text it is
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page and "&lt;i&gt;x&lt;/i&gt;" in page
    # self-contained: no address to load anything from, and a policy that would refuse it anyway
    assert not re.search(r"""\b(src|href)\s*=|url\(|@import""", page, re.I)
    assert [u for u in re.findall(r"https?://[^\s\"'<>]+", page) if u != "http://www.w3.org/2000/svg"] == []
    script = re.search(r"<script>(.*)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'" in page


def test_charts_count_genres_and_bin_confidences():
    dom = Dom(render())
    # Rock, Jazz: what the files hold or will; not the skipped file's guess (Pop), nor the error
    assert dom.shapes["genre-chart"].count("bar") == 2
    bins = dom.shapes["confidence-chart"]
    assert bins.count("bin") == 4 and bins.count("min-confidence") == 1
    assert "min-confidence 0.4" in dom.texts["confidence-chart"]
    assert "min-confidence" not in Dom(report_html.render(RESULTS, {}, None)).shapes["confidence-chart"]
    empty = Dom(report_html.render([], {}, None))
    assert empty.rows == [] and "no genres" in empty.texts["genre-chart"]


def test_the_bar_chart_sums_the_rarest_genres_into_one_bar():
    results = [
        FileResult(Path(f"/m/{g}-{i}.flac"), "would-tag", [(f"G{g:02d}", 0.9)])
        for g in range(35)
        for i in range(40 - g)
    ]
    page = report_html.render(results, {})
    assert Dom(page).shapes["genre-chart"].count("bar") == report_html.MAX_BARS + 1
    assert "<title>G00: 40</title>" in page and "<title>G29: 11</title>" in page and "<title>G30:" not in page
    assert "<title>other (5 genres): 40</title>" in page  # 10 + 9 + 8 + 7 + 6 files


def test_report_writes_html_with_settings_and_summary(tmp_path):
    out = tmp_path / "r.html"
    with Report(out, settings={"top_k": 2, "write_tags": False, "model": None}) as rep:
        for r in RESULTS:
            rep.write(r)
        rep.finish("5 files seen: 1 would-tag (run 3)")
    page = out.read_text(encoding="utf-8")
    assert "5 files seen: 1 would-tag (run 3)" in page
    assert re.search(r"<th>top-k</th><td>2</td>", page) and re.search(r"<th>write-tags</th><td>no</td>", page)
    assert re.search(r"<th>model</th><td>—</td>", page)  # a library caller that left it unresolved
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_cli_reports_what_the_model_decided(tmp_path):
    from conftest import make_band_model

    model = make_band_model(tmp_path / "m.safetensors", defaults={"min_confidence": 0.55})
    (tmp_path / "lib").mkdir()
    audiogen.make(tmp_path / "lib" / "a.flac", seconds=2.5, freq=150)
    out = tmp_path / "r.html"
    r = CliRunner().invoke(
        app, ["scan", str(tmp_path / "lib"), "--model", str(model), "--workers", "0", "--report", str(out)]
    )
    assert r.exit_code == 0, r.output
    page = out.read_text(encoding="utf-8")
    # left out on the command line, so the model's own: its minimum confidence (drawn), genres, segments
    assert "<th>min-confidence</th><td>0.55</td>" in page and "min-confidence 0.55" in page
    assert "<th>genres</th><td>Low, High</td>" in page and "<th>segments</th><td>auto (at most 3)</td>" in page
    assert f"<th>model</th><td>{model}</td>" in page and "<th>top-k</th><td>1</td>" in page
    assert "1 file seen" in page
    assert "<td>default</td>" not in page and "<th>ray</th><td>—</td>" in page  # the values used
    assert "<th>workers</th><td>0</td>" in page and re.search(r"<th>batch-size</th><td>\d+</td>", page)


# --- in a real browser ------------------------------------------------------------------------
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
WINDOW = (1280, 1200)


def chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ]
    proc = subprocess.run([CHROMIUM, *flags, *args, url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def near(pixels: np.ndarray, colour: str, tolerance: int = 6) -> np.ndarray:
    """Which pixels (an H x W x 3 array) are within `tolerance` of `colour` in every channel."""
    rgb = np.frombuffer(bytes.fromhex(colour.lstrip("#")), dtype=np.uint8).astype(int)
    return (np.abs(pixels - rgb) <= tolerance).all(axis=2)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not found: `apt-get install chromium` (.ci/run installs it)")
def test_a_browser_draws_both_charts_and_sorts_and_filters_the_table(tmp_path, band_model):
    from PIL import Image

    lib = tmp_path / "lib"
    lib.mkdir()
    # pure tones are sure answers; a little low tone under a high one makes the model less sure
    # (about 0.77, 0.65 and 0.53 with the test model: the last is below --min-confidence)
    for i, (low, high) in enumerate([(1, 0), (0, 1), (0.12, 1), (0.14, 1), (0.16, 1)]):
        y = low * audiogen.tone(2.5, 22050, 150, seed=i) + high * audiogen.tone(2.5, 22050, 5000, seed=9 + i)
        audiogen.write_audio(lib / f"t{i}.flac", y, 22050)
    audiogen.make(lib / "<script>alert(1)<.flac", seconds=2.5, freq=150)
    (lib / "broken.mp3").write_bytes(b"not audio at all")
    out = tmp_path / "report.html"
    r = CliRunner().invoke(
        app,
        [
            "scan",
            str(lib),
            "--model",
            str(band_model),
            "--workers",
            "0",
            "--min-confidence",
            "0.6",
            "--report",
            str(out),
        ],
    )
    assert r.exit_code == 1, r.output  # the broken file
    n_files = 7

    shot = tmp_path / "shot.png"
    chromium(tmp_path, out.as_uri(), f"--screenshot={shot}")
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=int)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    # each chart's own colour is on screen (and nowhere else on the page): the bars, the bins, the line
    for colour, least in (
        (report_html.GENRE_COLOUR, 500),
        (report_html.BIN_COLOUR, 500),
        (report_html.LINE_COLOUR, 50),
    ):
        count = int(near(pixels, colour).sum())
        assert count >= least, f"{colour}: {count} pixels in the screenshot"

    # the DOM after the page's script ran, with a filter and an order in the address
    dom = Dom(chromium(tmp_path, out.as_uri() + "#status=would-tag&sort=confidence&dir=desc", "--dump-dom").stdout)
    assert len(dom.rows) == n_files and dom.scripts == 1 and dom.title == f"mgctag report: {n_files} files"
    assert sorted(Path(r["cells"][5]).name for r in dom.rows) == sorted(p.name for p in lib.iterdir())
    shown = [r for r in dom.rows if not r["hidden"]]
    assert shown and {r["status"] for r in shown} == {"would-tag"}
    assert sorted(r["status"] for r in dom.rows if r["hidden"]) == ["error", "skipped"]
    confidences = [float(r["cells"][3]) for r in shown]
    assert confidences == sorted(confidences, reverse=True)
    assert dom.texts["shown"] == f"{len(shown)} of {n_files} files shown"
    assert dom.shapes["genre-chart"].count("bar") == 2 and "min-confidence" in dom.shapes["confidence-chart"]
    assert dom.shapes["confidence-chart"].count("bin") >= 2
