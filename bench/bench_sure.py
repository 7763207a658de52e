"""Listening until sure (`--segments auto`, the default) against a fixed window count, side by side.

For each model (by default the AudioSet model, when installed, and the best shipped one), in one
run, after one read of every file to warm the page cache:

  fixed        `mgctag scan LIB --albums off --segments N --report R.json` (a dry run, fresh
               state), N the model's window count, timed from launch to exit
  auto         the same with the default `--segments auto`
  start-up     the same command on an empty folder (its best of two), taken off for the figures
               "without start-up"
  decode-only  mgctag.pool.decode_all with the model's N-window DecodeJob on every core, nothing
               heard: the ceiling of a scan that hears every window

Printed: tracks/s of each (with and without start-up) and auto's over fixed; auto's tracks/s
against the decode-only ceiling; windows heard per track by auto (mean, distribution, from the
report's `windows`); peak memory (main process, largest worker); and the agreement: files whose
written genres (none for a skipped file) are the same, files whose top genre is the same, and
the top genre's confidence difference (median, 95th percentile, largest).

    .venv/bin/python bench/make_library.py /tmp/mgctag-bench/lib --tracks 60
    .venv/bin/python bench/bench_sure.py /tmp/mgctag-bench/lib
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_scan import (  # noqa: E402
    audio_files,
    cpu_name,
    decode_only,
    describe,
    mib,
    run_cli,
    selection,
    warm_cache,
)

WRITTEN = ("would-tag", "tagged", "unchanged")


def scan(mgctag: Path, target: Path, tmp: Path, model: str, extra: list[str]) -> tuple[dict, dict]:
    """One dry run; its timings and memory, and the report's rows by path."""
    folder = Path(tempfile.mkdtemp(dir=tmp))
    report = folder / "report.json"
    args = ["scan", str(target), "--state", str(folder / "s.sqlite"), "--rescan", "--albums", "off"]
    r = run_cli([str(mgctag), *args, "--model", model, "--report", str(report), *extra])
    if r["rc"] not in (0, 1) or (target.name != "empty" and not report.exists()):
        raise SystemExit(f"mgctag scan failed (exit {r['rc']}):\n{r['stderr'][-2000:]}")
    rows = json.loads(report.read_text()) if report.exists() else []
    for row in rows:
        row["genres"] = [(g["genre"], g["confidence"]) for g in row["genres"]]
    return r, {row["path"]: row for row in rows}


def written(row: dict) -> tuple[str, ...]:
    return tuple(g for g, _ in row["genres"]) if row["status"] in WRITTEN else ()


def compare(fixed: dict, auto: dict) -> dict:
    paths = sorted(fixed)
    same = sum(written(fixed[p]) == written(auto[p]) for p in paths)
    top = sum(fixed[p]["genre"] == auto[p]["genre"] for p in paths)
    diff = [
        abs(fixed[p]["confidence"] - auto[p]["confidence"])
        for p in paths
        if fixed[p]["genre"] == auto[p]["genre"] and fixed[p]["confidence"] is not None
    ]
    return dict(n=len(paths), same=same, top=top, diff=np.array(diff or [0.0]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("library", type=Path, help="e.g. one built by bench/make_library.py")
    ap.add_argument("--limit", type=int, default=None, help="the first N files (sorted by path)")
    ap.add_argument("--model", action="append", default=None, help="repeatable; default: see the module doc")
    ap.add_argument("--mgctag", type=Path, default=ROOT / ".venv" / "bin" / "mgctag")
    args = ap.parse_args()

    from mgctag import weights
    from mgctag.analyser import Analyser
    from mgctag.pool import usable_cpus

    files = audio_files(args.library.resolve(), args.limit)
    if not files:
        raise SystemExit(f"no audio files under {args.library}")
    models = args.model or list(dict.fromkeys([weights.default_model(), weights.SHIPPED_DEFAULT]))
    cores = usable_cpus()
    print(f"# {datetime.now():%Y-%m-%d %H:%M}, {cpu_name()}, {cores} usable cores, CPU")
    print(f"# {describe(files)}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-sure-"))
    target = selection(files, args.library.resolve(), tmp)
    (tmp / "empty").mkdir()
    warm_cache(files)
    for model in models:
        n = Analyser.load(model).segments[0]
        fixed_r, fixed = scan(args.mgctag, target, tmp, model, ["--segments", str(n)])
        auto_r, auto = scan(args.mgctag, target, tmp, model, [])
        start = min(scan(args.mgctag, tmp / "empty", tmp, model, [])[0]["wall"] for _ in range(2))
        ceiling, errors = decode_only(files, Analyser.load(model, segments=n).job(), cores)
        windows = Counter(row["windows"] for row in auto.values())
        agree = compare(fixed, auto)
        k = len(files)
        print(f"\n## {model}: {k} tracks, fixed {n} windows against auto (at most {n})")
        for name, r in (("fixed", fixed_r), ("auto", auto_r)):
            print(
                f"  {name:5s} {r['wall']:6.1f} s  {k / r['wall']:5.2f} tracks/s, "
                f"{k / max(r['wall'] - start, 1e-9):5.2f} without start-up; "
                f"peak main {mib(r['main_kib'])}, worker {mib(r['worker_kib'])}"
            )
        print(
            f"  start-up {start:.1f} s; decode-only ceiling ({n} windows) {ceiling:.1f} s = {k / ceiling:.2f} tracks/s"
        )
        print(
            f"  auto / fixed: {fixed_r['wall'] / auto_r['wall']:.2f}x with start-up, "
            f"{(fixed_r['wall'] - start) / max(auto_r['wall'] - start, 1e-9):.2f}x without; "
            f"auto = {ceiling / auto_r['wall']:.0%} of the decode-only ceiling "
            f"({ceiling / max(auto_r['wall'] - start, 1e-9):.0%} without start-up)"
        )
        mean = sum(w * c for w, c in windows.items()) / k
        spread = ", ".join(f"{w}: {c}" for w, c in sorted(windows.items()))
        print(f"  windows heard by auto: mean {mean:.2f} of {n} ({spread})")
        d = agree["diff"]
        print(
            f"  same written genre(s): {agree['same']}/{agree['n']} ({agree['same'] / agree['n']:.1%}); "
            f"same top genre {agree['top']}/{agree['n']}; |confidence difference| median {np.median(d):.3f}, "
            f"95th pct {np.percentile(d, 95):.3f}, max {d.max():.3f}"
        )
        if errors:
            print(f"  ({errors} files failed to decode in the decode-only run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
