"""What `--write-tags` costs over a dry run, and what each write's audio check costs, old vs new.

In one run, on the same files:

  dry run         `mgctag scan COPY --state <fresh> --rescan --min-confidence 0` over a fresh copy
                  of the library (the CLI as users run it, default model and workers)
  --write-tags    the same with `--write-tags --overwrite`, over another fresh copy, so every file
                  is written (nothing is tagged yet, nothing is kept)
  (--repeat N alternates the two N times, each on a fresh copy; the median counts)

Each copy is written, synced to disk (so its writeback does not fall into a timed run) and read
once before its run. Then, in this process, file by file: the audio check of a write as it was
(the full decode of the original and of the tagged copy, `decode.audio_digest` twice) against
the one `mgctag.safe` makes now (`decode.witness` of the original + `decode.same_audio` of the
copy), with the check that decided, per format. `--tones S` adds an S-second tone per format
tests/audiogen.py can encode and tag to that comparison (not to the scans).

    .venv/bin/python bench/bench_write.py /tmp/mgctag-bench/lib --limit 40
    .venv/bin/python bench/bench_write.py LIB --limit 4 --repeat 1 --tones 5      # a quick check
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
from bench_scan import audio_files, cpu_name, describe, scan_cli, warm_cache  # noqa: E402

WRITE = ["--write-tags", "--overwrite"]
VALUES = dict(genres=["Rock"], confidences=[0.5], model_id="bench")


def fresh_copy(files: list[Path], library: Path, dest: Path) -> Path:
    """`files` copied under `dest` by their paths relative to `library`; synced and read once."""
    for f in files:
        target = dest / f.relative_to(library)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
    os.sync()
    warm_cache(sorted(p for p in dest.rglob("*") if p.is_file()))
    return dest


def scans(files: list[Path], library: Path, tmp: Path, mgctag: Path, extra: list[str], repeat: int) -> dict:
    """Alternating dry and --write-tags runs, each over a fresh copy: their wall times and statuses."""
    out = {"dry": [], "write": []}
    for i in range(repeat):
        for kind, flags in (("dry", []), ("write", WRITE)):
            copy = fresh_copy(files, library, tmp / f"{kind}-{i}")
            r = scan_cli(mgctag, copy, len(files), tmp, extra + flags)
            out[kind].append(r)
            print(f"  {kind:5} run {i + 1}: {r['wall']:.1f} s, {dict(r['statuses'])}, {r['errors']} errors", flush=True)
            shutil.rmtree(copy)
    return out


def tones(folder: Path, seconds: float) -> list[Path]:
    """One tone per format audiogen can encode and mgctag can tag (44.1 kHz stereo; DSD mono)."""
    import audiogen

    from mgctag import formats

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in audiogen.FORMATS + audiogen.MORE_FORMATS:
        entry = formats.for_path(f"x.{fmt}")
        if not audiogen.can_write(fmt) or entry is None or entry.tags is None:
            continue
        dsd = fmt in ("dsf", "dff")
        out.append(
            audiogen.make(
                folder / f"tone-{fmt.replace('.', '-')}.{fmt}",
                seconds=seconds,
                sr=44100,
                channels=1 if dsd else 2,
                fmt=fmt,
            )
        )
    return out


def check_costs(files: list[Path], tmp: Path) -> dict:
    """Per format: seconds of the old check and of the new one per file, and which check decided."""
    from audiogen import fmt_of

    from mgctag import decode, tags

    rows = defaultdict(lambda: {"n": 0, "old": [], "new": [], "by": defaultdict(int), "same": 0})
    for k, f in enumerate(files):
        fmt = fmt_of(f)  # "alac.m4a", "mp3.wav" for the tones; else the extension
        copy = tmp / f"check.{fmt}"
        shutil.copyfile(f, copy)
        tags.write(copy, **VALUES)
        warm_cache([f, copy])

        def old() -> bool:
            return decode.audio_digest(f) == decode.audio_digest(copy)

        def new():
            return decode.same_audio(decode.witness(f), copy)

        timed = {}
        for name, fn in (("old", old), ("new", new)) if k % 2 else (("new", new), ("old", old)):
            start = time.perf_counter()
            result = fn()
            timed[name] = (time.perf_counter() - start, result)
        row = rows[fmt]
        row["n"] += 1
        row["old"].append(timed["old"][0])
        row["new"].append(timed["new"][0])
        verdict = timed["new"][1]
        row["by"][verdict.by] += 1
        row["same"] += verdict.same and timed["old"][1]
        copy.unlink()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("library", type=Path, help="e.g. one built by bench/make_library.py")
    ap.add_argument("--limit", type=int, default=None, help="use the first N files (sorted by path)")
    ap.add_argument("--repeat", type=int, default=2, help="dry/--write-tags pairs, each on fresh copies")
    ap.add_argument(
        "--tones",
        type=float,
        default=0.0,
        help="also compare the checks on an S-second tone per taggable format (0: none)",
    )
    ap.add_argument("--skip-scans", action="store_true", help="only the per-file check costs")
    ap.add_argument("--model", default=None, help="weights for the scans (default: the default model)")
    ap.add_argument("--scan-args", default="", help="extra options for both scans, e.g. '--workers 2'")
    ap.add_argument("--mgctag", type=Path, default=ROOT / ".venv" / "bin" / "mgctag")
    ap.add_argument("--tmp", type=Path, default=None, help="where the copies go (default: the system's temp)")
    args = ap.parse_args()
    extra = (["--model", args.model] if args.model else []) + ["--min-confidence", "0"] + args.scan_args.split()

    library = args.library.resolve()
    files = audio_files(library, args.limit)
    if not files:
        raise SystemExit(f"no audio files under {args.library}")
    print(
        f"bench_write {datetime.now():%Y-%m-%d %H:%M}  {platform.node()}: {cpu_name()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}"
    )
    print(f"library: {args.library} -> {describe(files)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mgctag-bench-write-", dir=args.tmp) as t:
        tmp = Path(t)
        runs = None if args.skip_scans else scans(files, library, tmp, args.mgctag, extra, args.repeat)
        checked = files + (tones(tmp / "tones", args.tones) if args.tones else [])
        print(f"  checking {len(checked)} files old vs new ...", flush=True)
        rows = check_costs(checked, tmp)

    n = len(files)
    if runs:
        dry = statistics.median(r["wall"] for r in runs["dry"])
        write = statistics.median(r["wall"] for r in runs["write"])
        print(f"\n{'run':14} {'tracks/s':>9} {'seconds':>9}  (median of {args.repeat}, {n} files)")
        print(f"{'dry run':14} {n / dry:9.2f} {dry:9.1f}")
        print(f"{'--write-tags':14} {n / write:9.2f} {write:9.1f}  {(write - dry) / n * 1000:+.0f} ms per file")
        print(f"--write-tags at {dry / write:.0%} of the dry run's tracks/s (target >= 70%)")
    print(f"\n{'format':10} {'files':>5} {'old ms/file':>12} {'new ms/file':>12} {'speed-up':>9}  decided by")
    total_old = total_new = 0.0
    for ext, row in sorted(rows.items()):
        old, new = statistics.mean(row["old"]) * 1000, statistics.mean(row["new"]) * 1000
        total_old, total_new = total_old + sum(row["old"]), total_new + sum(row["new"])
        by = ", ".join(f"{k} {v}" for k, v in sorted(row["by"].items()))
        same = "" if row["same"] == row["n"] else f"  ({row['n'] - row['same']} NOT the same audio!)"
        print(f"{ext:10} {row['n']:5} {old:12.1f} {new:12.1f} {old / new:8.1f}x  {by}{same}")
    k = sum(r["n"] for r in rows.values())
    print(
        f"{'all':10} {k:5} {total_old / k * 1000:12.1f} {total_new / k * 1000:12.1f} "
        f"{total_old / total_new:8.1f}x  (old: audio_digest of both files; new: witness + same_audio)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
