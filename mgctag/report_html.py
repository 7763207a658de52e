"""The HTML report: one self-contained page to read before `--write-tags`.

Everything is in the file: the CSS, the two charts (drawn here as SVG, so there is nothing to
load or run for them) and one small script that sorts and filters the table. The page's
Content-Security-Policy fetches nothing and runs only that script (by its hash), so it opens
offline, and a file name or tag that smuggles in markup stays text twice over: every value
taken from a file goes through `html.escape`. The charts and the doubtful-first order need the
whole run, so results are kept (they are small) and the page is rendered at close.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from . import decide
from .genremap import GenreMap
from .result import STATUSES, FileResult, printable

DOUBTFUL_BELOW = 0.5  # a top genre below this (or below --min-confidence) is a doubtful one
MAX_BARS = 30  # genres drawn as bars; any more are summed into one "other" bar
BINS = 20  # confidence histogram: bins of 0.05
# the charts' colours, used nowhere else on the page (a test looks for them in a screenshot)
GENRE_COLOUR, BIN_COLOUR, LINE_COLOUR = "#4e79a7", "#f28e2b", "#d62728"
COLUMNS = (
    ("doubt", "doubtful", "num"),
    ("status", "status", "text"),
    ("genre", "genre", "text"),
    ("confidence", "confidence", "num"),
    ("existing", "existing genre", "text"),
    ("path", "file", "text"),
    ("note", "error / note", "text"),
    ("album", "album", "text"),
)

SCRIPT = """"use strict";
(function () {
  var table = document.getElementById("files-table"), tbody = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var rows = Array.prototype.slice.call(tbody.rows);
  var text = document.getElementById("filter-text"), status = document.getElementById("filter-status");
  var doubtful = document.getElementById("filter-doubtful"), shown = document.getElementById("shown");
  var sort = {col: 0, dir: 1};
  rows.forEach(function (r, i) { r.mgIndex = i; r.mgText = r.textContent.toLowerCase(); });
  function key(row, col) {
    var cell = row.cells[col];
    if (heads[col].getAttribute("data-type") !== "num") return cell.textContent.toLowerCase();
    var v = cell.getAttribute("data-v");
    return v === null || v === "" ? null : parseFloat(v);
  }
  function compare(a, b) {
    if (a[0] === b[0]) return a[1].mgIndex - b[1].mgIndex;
    if (a[0] === null) return 1;  /* no value: last, either way */
    if (b[0] === null) return -1;
    return a[0] < b[0] ? -sort.dir : sort.dir;
  }
  function render() {
    var q = text.value.toLowerCase(), st = status.value, only = doubtful.checked, n = 0;
    var keyed = rows.map(function (r) { return [key(r, sort.col), r]; }).sort(compare);
    var frag = document.createDocumentFragment();
    keyed.forEach(function (k) {
      var r = k[1];
      var ok = (!st || r.getAttribute("data-status") === st) && (!only || r.classList.contains("doubtful")) &&
               (!q || r.mgText.indexOf(q) !== -1);
      r.hidden = !ok;
      if (ok) n += 1;
      frag.appendChild(r);
    });
    tbody.appendChild(frag);
    shown.textContent = n + " of " + rows.length + " files shown";
    heads.forEach(function (h, i) {
      h.setAttribute("aria-sort", i !== sort.col ? "none" : sort.dir > 0 ? "ascending" : "descending");
    });
    var p = new URLSearchParams();
    if (q) p.set("q", text.value);
    if (st) p.set("status", st);
    if (only) p.set("doubtful", "1");
    if (sort.col !== 0 || sort.dir !== 1) {
      p.set("sort", heads[sort.col].getAttribute("data-key"));
      p.set("dir", sort.dir > 0 ? "asc" : "desc");
    }
    try { history.replaceState(null, "", "#" + p.toString()); } catch (e) { /* some file: views refuse */ }
  }
  function load() {  /* the filter and the order live in the address's #fragment: a reload keeps them */
    var p = new URLSearchParams(location.hash.slice(1));
    text.value = p.get("q") || "";
    status.value = p.get("status") || "";
    doubtful.checked = p.get("doubtful") === "1";
    sort.col = 0;
    heads.forEach(function (h, i) { if (h.getAttribute("data-key") === p.get("sort")) sort.col = i; });
    sort.dir = p.get("dir") === "desc" ? -1 : 1;
    render();
  }
  heads.forEach(function (h, i) {
    function click() { sort.dir = sort.col === i ? -sort.dir : 1; sort.col = i; render(); }
    h.addEventListener("click", click);
    h.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); click(); }
    });
  });
  text.addEventListener("input", render);
  status.addEventListener("change", render);
  doubtful.addEventListener("change", render);
  window.addEventListener("hashchange", load);
  load();
})();
"""
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
POLICY = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{SCRIPT_HASH}'"

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.summary { font-weight: 600; margin: 4px 0; }
.meta { color: #555; margin: 2px 0; }
.counts span { display: inline-block; margin: 8px 8px 0 0; padding: 3px 10px; border-radius: 12px;
  background: #eceff4; }
.charts { display: flex; flex-wrap: wrap; gap: 32px; margin-top: 16px; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 6px; }
svg { max-width: 100%; height: auto; }
svg text { font: 12px system-ui, sans-serif; fill: #222; }
table { border-collapse: collapse; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
#files-table th { cursor: pointer; user-select: none; background: #f3f3f3; position: sticky; top: 0; }
#files-table th[aria-sort=ascending]::after { content: " \\25B2"; }
#files-table th[aria-sort=descending]::after { content: " \\25BC"; }
tr.doubtful td.doubt { color: #9a4a00; font-weight: 600; }
tr[data-status=error] td { color: #a00000; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, td.status { white-space: nowrap; }
td.path { overflow-wrap: normal; word-break: normal; }
.controls { margin: 8px 0; display: flex; gap: 14px; align-items: center; flex-wrap: wrap; }
.controls input[type=search] { width: 22em; }
"""


class HtmlReport:
    extension = ".html"

    def __init__(self, f, settings: Mapping[str, object]):
        self.f, self.settings = f, settings
        self.results: list[FileResult] = []

    def write(self, result: FileResult) -> None:
        self.results.append(result)

    def close(self, summary: str | None) -> None:
        self.f.write(render(self.results, self.settings, summary))


def render(results: list[FileResult], settings: Mapping[str, object], summary: str | None = None) -> str:
    """The whole page for one run."""
    line = settings.get("min_confidence")
    line = float(line) if isinstance(line, (int, float)) and not isinstance(line, bool) else None
    threshold = max(DOUBTFUL_BELOW, line or 0.0)
    counts = Counter(r.status for r in results)
    models = sorted({r.model for r in results if r.model})
    genres = Counter(r.genre for r in results if r.genre and decide.holds(r))  # what the files hold, not guesses
    confidences = [r.confidence for r in results if r.confidence is not None and r.status != "error"]
    rows = sorted(
        ((_doubts(r, threshold), i, r) for i, r in enumerate(results)), key=lambda t: (_rank(t[0], t[2]), t[1])
    )
    n_doubtful = sum(1 for d, _, _ in rows if d)
    statuses = [s for s in STATUSES if counts.get(s)] + sorted(s for s in counts if s not in STATUSES)
    e = _esc
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>mgctag report: {len(results)} files</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        "<header>\n<h1>mgctag report</h1>\n",
        f'<p class="summary">{e(summary)}</p>\n' if summary else "",
        f'<p class="meta">written {e(datetime.now().astimezone().isoformat(timespec="seconds"))}'
        f"{'; model ' + e(', '.join(models)) if models else ''}</p>\n",
        '<p class="counts">'
        + "".join(f"<span><b>{counts[s]}</b> {e(s)}</span>" for s in statuses)
        + f"<span><b>{n_doubtful}</b> doubtful</span></p>\n</header>\n",
        '<section class="charts">\n',
        f'<figure id="genre-chart"><figcaption>Genres written or kept ({sum(genres.values())} files)</figcaption>\n'
        f"{_bar_chart(genres.most_common())}</figure>\n",
        f'<figure id="confidence-chart"><figcaption>Confidence of the top genre ({len(confidences)} files)'
        f"</figcaption>\n{_histogram(confidences, line)}</figure>\n</section>\n",
        _disagreeing(results),
        '<section>\n<h2>Files</h2>\n<div class="controls">\n',
        '<input id="filter-text" type="search" placeholder="filter: any text" aria-label="filter">\n',
        '<select id="filter-status" aria-label="status"><option value="">every status</option>'
        + "".join(f'<option value="{e(s)}">{e(s)}</option>' for s in statuses)
        + "</select>\n",
        '<label><input id="filter-doubtful" type="checkbox"> doubtful only</label>\n',
        f'<span id="shown">{len(results)} files</span>\n</div>\n',
        '<table id="files-table">\n<thead><tr>'
        + "".join(f'<th data-key="{k}" data-type="{t}" tabindex="0">{e(label)}</th>' for k, label, t in COLUMNS)
        + "</tr></thead>\n<tbody>\n",
        *(_row(r, d, _rank(d, r)) for d, _, r in rows),
        "</tbody>\n</table>\n</section>\n",
        '<section>\n<h2>Settings</h2>\n<table id="settings">\n',
        *(f"<tr><th>{e(str(k).replace('_', '-'))}</th><td>{e(_setting(v))}</td></tr>\n" for k, v in settings.items()),
        "</table>\n</section>\n",
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n",
    ]
    return "".join(parts)


def _disagreeing(results: list[FileResult]) -> str:
    """The albums whose tracks' own answers differed most from the album's genre
    (decide.heard_otherwise), the ones a person may want to look at; nothing when every album agreed."""
    tracks = Counter(r.album for r in results if r.album)
    differ = Counter(r.album for r in results if r.album and decide.heard_otherwise(r))
    if not differ:
        return ""
    items = "".join(
        f"<li>{_esc(album)}: {n} of {tracks[album]} tracks heard another genre</li>\n"
        for album, n in sorted(differ.items(), key=lambda t: (-t[1] / tracks[t[0]], t[0]))[:20]
    )
    return f'<section id="albums">\n<h2>Albums whose tracks disagreed</h2>\n<ul>\n{items}</ul>\n</section>\n'


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _doubts(r: FileResult, threshold: float) -> list[str]:
    """Why a person should look at this file before writing: a weak answer, or one that
    disagrees with the genre the file already has."""
    if r.status == "error" or r.confidence is None:
        return []
    why = []
    if r.confidence < threshold:
        why.append("low confidence")
    existing = {g.strip().casefold() for g in r.existing_genre.split(";") if g.strip()}
    if existing and r.genre.casefold() not in existing:
        why.append("existing genre differs")
    return why


def _rank(doubts: list[str], r: FileResult) -> float:
    """The default order: doubtful files first (weakest first), then errors, then the rest."""
    if doubts:
        return 0.999 * (r.confidence or 0.0)
    return 1.0 if r.status == "error" else 2.0


def _row(r: FileResult, doubts: list[str], rank: float) -> str:
    e = _esc
    conf = r.confidence
    scored = ", ".join(g if p is None else f"{g} {p:.2f}" for g, p in r.genres)
    cells = (
        f'<td class="doubt" data-v="{rank:.4f}">{e("; ".join(doubts))}</td>',
        f'<td class="status">{e(r.status)}</td>',
        f'<td title="{e(scored)}">{e("; ".join(g for g, _ in r.genres))}</td>',
        f'<td class="num" data-v="{"" if conf is None else f"{conf:.4f}"}">'
        f"{'' if conf is None else f'{conf:.2f}'}</td>",
        f"<td>{e(r.existing_genre)}</td>",
        # a long path may wrap after a slash, never inside a name
        f'<td class="path" title="{e(printable(r.path))}">{"/<wbr>".join(map(e, printable(r.path).split("/")))}</td>',
        f"<td>{e(r.error or r.note)}</td>",
        f'<td title="decided by {e(r.decided_by)}">{e(r.album)}</td>',
    )
    cls = ' class="doubtful"' if doubts else ""
    return f'<tr{cls} data-status="{e(r.status)}">{"".join(cells)}</tr>\n'


def _setting(value) -> str:
    if value is None:  # not used (ray, ray-actors without --ray); the defaults a run chose are filled in
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, GenreMap):
        return f"{len(value.table)} mappings" if value.table else "none"
    if isinstance(value, Path):
        return printable(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(_setting(v) for v in value)
    return str(value)


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(label)}">\n{body}</svg>\n'
    )


def _bar_chart(counts: list[tuple[str, int]]) -> str:
    """Files per top genre, most common first, as horizontal bars."""
    width, label_w, bar_h, gap, pad = 600, 160, 18, 6, 8
    if not counts:
        return _svg(width, 40, '<text x="8" y="24">no genres</text>\n', "no genres")
    if len(counts) > MAX_BARS:
        rest = counts[MAX_BARS:]
        counts = counts[:MAX_BARS] + [(f"other ({len(rest)} genres)", sum(n for _, n in rest))]
    most = max(n for _, n in counts)
    scale = (width - label_w - 50) / most
    parts = []
    for i, (genre, n) in enumerate(counts):
        y = pad + i * (bar_h + gap)
        shown = genre if len(genre) <= 24 else genre[:23] + "\u2026"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end">{_esc(shown)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y}" width="{max(n * scale, 1):.1f}" height="{bar_h}" '
            f'fill="{GENRE_COLOUR}"><title>{_esc(genre)}: {n}</title></rect>'
            f'<text x="{label_w + n * scale + 6:.1f}" y="{y + 13}">{n}</text>\n'
        )
    height = 2 * pad + len(counts) * (bar_h + gap) - gap
    return _svg(width, height, "".join(parts), "files per genre")


def _histogram(confidences: list[float], line: float | None) -> str:
    """How sure the model was, in bins of 1/BINS, with the --min-confidence threshold drawn."""
    width, height, left, right, top, bottom = 600, 240, 44, 16, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    bins = [0] * BINS
    for c in confidences:
        bins[min(max(int(c * BINS), 0), BINS - 1)] += 1
    most = max(bins) or 1
    step = plot_w / BINS
    parts = []
    for i, n in enumerate(bins):
        if n:
            h = plot_h * n / most
            parts.append(
                f'<rect class="bin" x="{left + i * step + 1:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{step - 2:.1f}" height="{h:.1f}" fill="{BIN_COLOUR}">'
                f"<title>{i / BINS:.2f}\u2013{(i + 1) / BINS:.2f}: {n}</title></rect>\n"
            )
    axis = 'stroke="#888" stroke-width="1"'
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" {axis}/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" {axis}/>\n'
    )
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + plot_w * t
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{t:g}</text>')
    parts.append(
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{most}</text>'
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 2}" text-anchor="middle">confidence</text>\n'
    )
    if not confidences:
        parts.append(f'<text x="{left + 12}" y="{top + plot_h / 2:.1f}">no confidences</text>\n')
    if line is not None:
        x = left + plot_w * min(max(line, 0.0), 1.0)
        anchor = "end" if line > 0.7 else "start"
        parts.append(
            f'<line class="min-confidence" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" '
            f'y2="{top + plot_h}" stroke="{LINE_COLOUR}" stroke-width="3"/>'
            f'<text x="{x + (-5 if anchor == "end" else 5):.1f}" y="{top - 10}" text-anchor="{anchor}">'
            f"min-confidence {line:g}</text>\n"
        )
    return _svg(width, height, "".join(parts), "confidence histogram")
