"""Memory and speed of a scan that decides albums, against one that judges every file alone.

The CLI (`mgctag scan`, dry run, fresh state) over folders of copies of short files (one per
format, from gtzan-mini), twelve to a folder, at each file count, with `--albums auto` and
`--albums off` side by side. An album's tracks wait for the rest of their folder, so the peak
should follow the largest folder, not the library: the figures to read are the peaks at 100 and
at 10,000 files, and auto against off at each count.

    .venv/bin/python bench/bench_albums.py --files 100,10000 --model efficientat-mn04
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_scan import GTZAN_MINI, copy_tree, cpu_name, make_short_files, mib, scan_cli  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", default="100,10000", help="file counts, comma-separated")
    ap.add_argument("--per-album", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=4.0, help="length of each file")
    ap.add_argument("--model", default=None, help="default: the default model")
    ap.add_argument("--mgctag", type=Path, default=ROOT / ".venv" / "bin" / "mgctag")
    args = ap.parse_args()
    if not GTZAN_MINI.is_dir():
        print(f"bench_albums: skipped: no clips at {GTZAN_MINI}", file=sys.stderr)
        return 2
    extra = ["--min-confidence", "0"] + (["--model", args.model] if args.model else [])
    print(
        f"bench_albums {datetime.now():%Y-%m-%d %H:%M}  {platform.node()}: {cpu_name()}; "
        f"{args.seconds:g}-s files, {args.per_album} to a folder; {' '.join(extra)}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="mgctag-bench-albums-") as t:
        tmp = Path(t)
        shorts = make_short_files(tmp / "short", args.seconds, sr=22050, channels=1)
        for count in (int(x) for x in args.files.split(",") if x.strip()):
            tree = copy_tree(tmp / f"copies-{count}", shorts, count, per_folder=args.per_album)
            for mode in ("auto", "off"):
                r = scan_cli(args.mgctag, tree, count, tmp, [*extra, "--albums", mode])
                rows.append((count, mode, r))
                print(
                    f"  {count} files, --albums {mode}: {r['wall']:.1f} s, summed peak {mib(r['sum_kib'])}", flush=True
                )
            shutil.rmtree(tree)
    print(f"\n{'files':>7} {'--albums':>8} {'main':>9} {'worker':>9} {'summed':>9} {'files/s':>8}")
    for count, mode, r in rows:
        print(
            f"{count:>7} {mode:>8} {mib(r['main_kib']):>9} {mib(r['worker_kib']):>9} {mib(r['sum_kib']):>9} "
            f"{count / r['wall']:8.1f}"
        )
    auto = [(c, r) for c, m, r in rows if m == "auto"]
    if len(auto) >= 2:
        (c0, a), (c1, b) = auto[0], auto[-1]
        print(
            f"--albums auto, {c0} -> {c1} files: summed peak {mib(a['sum_kib'])} -> {mib(b['sum_kib'])} "
            f"({b['sum_kib'] / a['sum_kib'] - 1:+.1%})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
