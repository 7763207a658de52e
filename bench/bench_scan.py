"""Throughput and memory of `mgctag scan` against a naive tagger, the decode ceiling and musicnn's TF tagger.

All contenders get the same files in one run (ratios are measured side by side), after one
read of every file to warm the page cache:

  mgctag scan     the CLI as users run it (`mgctag scan LIB --state <fresh> --rescan --model M`, a
                  dry run on default workers), timed from launch to exit, for each model (by
                  default the default model and the best shipped one); its start-up is the same
                  command on an empty folder
  decode-only     mgctag.pool.decode_all with each model's DecodeJob on every core: only the
                  voted windows are decoded, no inference (the ceiling of a scan with that model)
  naive           in-process: librosa.load(path, sr, mono=True) of the whole file, then the first
                  model over as many segments as scan votes, cut from it, one track at a time;
                  librosa's numba warm-up and the model's loading are excluded (one warm-up file)
  musicnn TF      musicnn 0.1.0's own extractor in the .tfenv venv (bench/musicnn_tf.py), which
                  tags every 3-s patch of the whole track; timed after one warm-up file

Peak memory: the CLI over folders of --rss-files files (copies of one short 22.05 kHz mono file
per format, 100 per folder; not links, which discover counts once), read from /proc every 0.1 s:
the main process's and the largest worker's peak (VmHWM), and all processes' peaks summed
(shared pages count once per process, so the sum overstates).

    .venv/bin/python bench/bench_scan.py /tmp/mgctag-bench/lib                   # everything
    .venv/bin/python bench/bench_scan.py LIB --limit 6 --rss-files 100,200      # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from make_library import GTZAN_MINI, make_short_files  # noqa: E402

STATUSES = ("tagged", "would-tag", "kept", "unchanged", "skipped", "error")
SUMMARY = re.compile(r"(\d+) files? seen: .*?(\d+) skipped, (\d+) errors?")


# --- the machine ---------------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    import torch

    return f"cuda ({torch.cuda.get_device_name()})" if device == "cuda" else "cpu"


# --- running the CLI and watching its memory -----------------------------------------------------


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(root: int) -> list[int]:
    """`root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            parent = _ppid(int(name))
            if parent is not None:
                children.setdefault(parent, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def run_cli(args: list[str], *, poll: float = 0.1) -> dict:
    """Run `args`; wall time, output and memory peaks (KiB) of the process and its descendants."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err)
        hwm: dict[int, int] = {}
        total = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            pids = _tree(proc.pid)
            rss = 0
            for p in pids:
                hwm[p] = max(hwm.get(p, 0), _kib(p, "VmHWM"))
                rss += _kib(p, "VmRSS")
            total = max(total, rss)
            time.sleep(poll)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    main = max(hwm.get(proc.pid, 0), usage.ru_maxrss)  # wait4 has the main process's exact peak
    workers = [v for p, v in hwm.items() if p != proc.pid]
    return dict(
        wall=wall,
        rc=proc.returncode,
        stdout=stdout,
        stderr=stderr,
        main_kib=main,
        worker_kib=max(workers, default=0),
        n_children=len(workers),
        sum_kib=main + sum(workers),
        concurrent_kib=total,
    )


def scan_cli(mgctag: Path, target: Path, n_expected: int, tmp: Path, extra: list[str]) -> dict:
    """One dry-run scan with a fresh state database; checks every file was analysed."""
    state = Path(tempfile.mkdtemp(dir=tmp)) / "state.sqlite"
    r = run_cli([str(mgctag), "scan", str(target), "--state", str(state), "--rescan", *extra])
    m = SUMMARY.search(r["stderr"])
    if r["rc"] not in (0, 1) or not m:
        raise SystemExit(f"mgctag scan failed (exit {r['rc']}):\n{r['stderr'][-2000:]}")
    seen, skipped, errors = map(int, m.groups())
    if seen != n_expected or skipped:
        raise SystemExit(f"mgctag scan saw {seen} files and skipped {skipped}; expected {n_expected}, none skipped")
    r["errors"] = errors
    r["statuses"] = Counter(w[0] for w in map(str.split, r["stdout"].splitlines()) if w and w[0] in STATUSES)
    return r


def startup_seconds(mgctag: Path, tmp: Path, extra: list[str]) -> float:
    """The CLI's fixed cost (imports, model load, state): a scan of an empty folder."""
    empty = Path(tempfile.mkdtemp(dir=tmp))
    return min(scan_cli(mgctag, empty, 0, tmp, extra)["wall"] for _ in range(2))


def help_seconds(mgctag: Path, n: int = 5) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run([str(mgctag), "--help"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- the in-process contenders -------------------------------------------------------------------


def decode_only(paths: list[Path], job, workers: int) -> tuple[float, int]:
    from mgctag.pool import decode_all

    start = time.perf_counter()
    errors = sum(bool(d.error) for d in decode_all(paths, job, workers))
    return time.perf_counter() - start, errors


def naive_load(path: Path, sr: int) -> tuple[np.ndarray, bool]:
    """librosa.load of the whole file; for what librosa cannot open without a system FFmpeg (M4A),
    mgctag's whole-file decode at the native rate, resampled by librosa.resample as librosa.load
    would. Returns (audio, whether the fallback was used)."""
    import librosa

    try:
        return librosa.load(path, sr=sr, mono=True)[0], False
    except Exception:
        from mgctag import decode

        return librosa.resample(decode.load(path), orig_sr=decode.probe(path).sample_rate, target_sr=sr), True


def naive(paths: list[Path], model, n_segments: int) -> tuple[float, int, int]:
    """Whole-file load + per-track inference; returns (seconds, errors, files decoded by the fallback)."""
    import warnings

    import torch

    from mgctag.segment import segment_starts
    from mgctag.vote import softmax, vote

    sr, n = model.spec.sample_rate, model.spec.segment_samples
    device = next(model.parameters()).device

    def tag(path: Path) -> bool:
        y, fell_back = naive_load(path, sr)
        starts = segment_starts(len(y) / sr, n / sr, n_segments)
        windows = np.zeros((len(starts), n), np.float32)
        for i, s in enumerate(starts):
            piece = y[int(round(s * sr)) : int(round(s * sr)) + n]
            windows[i, : len(piece)] = piece
        with torch.inference_mode():
            vote(softmax(model(torch.from_numpy(windows).to(device)).float().cpu().numpy()))
        return fell_back

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa's audioread deprecation notes, once per M4A
        tag(paths[0])  # numba JIT, librosa's caches, the model's first call
        errors = fallback = 0
        start = time.perf_counter()
        for p in paths:
            try:
                fallback += tag(p)
            except Exception as e:
                errors += 1
                print(f"  naive: {p}: {e}", file=sys.stderr)
        return time.perf_counter() - start, errors, fallback


def musicnn_tf(tf_python: Path, paths: list[Path], tmp: Path) -> dict:
    import av

    pyav = tmp / "pyav"  # PyAV for the TF venv's librosa fallback: links to this venv's package
    pyav.mkdir(exist_ok=True)
    for name in ("av", "av.libs"):
        src = Path(av.__file__).parent.parent / name
        if src.exists() and not (pyav / name).exists():
            (pyav / name).symlink_to(src)
    listing = tmp / "tf-files.txt"
    listing.write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
    r = subprocess.run(
        [str(tf_python), str(ROOT / "bench" / "musicnn_tf.py"), str(listing), "--pyav", str(pyav)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    if r.returncode or not last.startswith("{"):
        raise RuntimeError(f"musicnn TF run failed (exit {r.returncode}): {r.stderr[-1500:]}")
    return json.loads(last)


# --- libraries -----------------------------------------------------------------------------------


def audio_files(library: Path, limit: int | None) -> list[Path]:
    from mgctag.discover import discover

    found = sorted((f.path for f in discover([library]) if not f.problem), key=str)
    return found[:limit] if limit else found


def copy_tree(root: Path, sources: list[Path], n: int, per_folder: int = 100) -> Path:
    """`n` copies of the `sources` in folders of `per_folder`. Copies, not links: discover yields a
    file reached under several names (hard links, symlinks) once."""
    for i in range(n):
        src = sources[i % len(sources)]
        folder = root / f"album-{i // per_folder:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, folder / f"{i:05d}{src.suffix}")
    return root


def selection(files: list[Path], library: Path, tmp: Path) -> Path:
    """A folder holding exactly `files` (symlinks under their relative paths), for the CLI."""
    root = tmp / "selection"
    for f in files:
        dst = root / f.relative_to(library)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(f)
    return root


def describe(files: list[Path]) -> str:
    from mgctag import decode

    kinds = Counter(f.suffix.lower().lstrip(".") for f in files)
    hours = sum(decode.probe(f).duration for f in files) / 3600
    size = sum(f.stat().st_size for f in files) / 1e9
    return (
        f"{len(files)} files, {hours:.1f} h of audio ({hours * 60 / max(len(files), 1):.1f} min each), "
        f"{size:.2f} GB: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    )


def warm_cache(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 22):
                pass


# --- output --------------------------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("library", type=Path, help="e.g. one built by bench/make_library.py")
    ap.add_argument("--limit", type=int, default=None, help="use the first N files (sorted by path)")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-tf", action="store_true")
    ap.add_argument("--skip-decode", action="store_true")
    ap.add_argument("--rss-files", default="100,10000", help="file counts for the memory runs ('' for none)")
    ap.add_argument(
        "--rss-seconds",
        type=float,
        default=3.0,
        help="length of the files copied for the memory runs (3 s: one window each)",
    )
    ap.add_argument(
        "--model",
        action="append",
        default=None,
        help="a model to time (repeatable; default: the default model, and the best shipped one when "
        "an AudioSet model is the default). Memory runs use the first.",
    )
    ap.add_argument("--scan-args", default="", help="extra options for mgctag scan, e.g. '--batch-size 16'")
    ap.add_argument("--mgctag", type=Path, default=ROOT / ".venv" / "bin" / "mgctag")
    ap.add_argument("--tf-python", type=Path, default=ROOT / ".tfenv" / "bin" / "python")
    args = ap.parse_args()

    import torch

    from mgctag import weights
    from mgctag.analyser import Analyser
    from mgctag.infer import pick_device

    device = pick_device("auto")
    files = audio_files(args.library.resolve(), args.limit)
    if not files:
        raise SystemExit(f"no audio files under {args.library}")
    cores = len(os.sched_getaffinity(0))
    models = args.model or list(dict.fromkeys([weights.default_model(), weights.SHIPPED_DEFAULT]))
    print(
        f"bench_scan {datetime.now():%Y-%m-%d %H:%M}  {platform.node()}: {cpu_name()}, {cores} cores, "
        f"torch {torch.__version__}, device {device_name(device)}, python {platform.python_version()}"
    )
    print(
        f"library: {args.library} -> {describe(files)}; page cache warmed (every file read once before timing)",
        flush=True,
    )
    warm_cache(files)
    n = len(files)
    rows: list[tuple[str, float, str]] = []  # (contender, seconds for all files, note)
    ratios: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mgctag-bench-") as t:
        tmp = Path(t)
        target = args.library if not args.limit else selection(files, args.library.resolve(), tmp)
        help_s = help_seconds(args.mgctag)
        for name in models:
            # --min-confidence 0: every file is heard either way; this keeps "skipped" for files the
            # state excused, which must not happen in a timed run
            extra = ["--model", name, "--min-confidence", "0", *args.scan_args.split()]
            analyser = Analyser.load(name, device=device)
            member = analyser.members[0]
            windows = f"{member.window.n_segments} x {member.model.spec.segment_seconds:.0f} s"
            boot = startup_seconds(args.mgctag, tmp, extra)
            r = scan_cli(args.mgctag, target, n, tmp, extra)
            rows.append(
                (
                    f"mgctag scan, {name}",
                    r["wall"],
                    f"{windows} windows; CLI wall clock, {cores} decode workers; {r['errors']} errors; "
                    f"start-up {boot:.1f} s; peak memory summed {mib(r['sum_kib'])}",
                )
            )
            print(f"  mgctag scan {name} done: {r['wall']:.1f} s", flush=True)
            mine = ratios.setdefault(name, {"scan": r["wall"], "scan_no_boot": r["wall"] - boot})
            if not args.skip_decode:
                secs, errs = decode_only(files, analyser.job(), cores)
                rows.append(
                    (
                        f"decode-only ceiling, {name}'s windows",
                        secs,
                        f"{cores} workers, {windows} windows only, no inference; {errs} errors",
                    )
                )
                mine["ceiling"] = secs
                print(f"  decode-only ({name}) done: {secs:.1f} s", flush=True)
            if not args.skip_naive and name == models[0]:
                secs, errs, fb = naive(files, member.model, member.window.n_segments)
                rows.append(
                    (
                        f"naive: librosa.load + {name} per track",
                        secs,
                        f"{errs} errors; {fb} M4A decoded by PyAV + librosa.resample",
                    )
                )
                mine["naive"] = secs
                print(f"  naive done: {secs:.1f} s", flush=True)
        tf = None
        if not args.skip_tf:
            if args.tf_python.exists():
                tf = musicnn_tf(args.tf_python, files, tmp)
                rows.append(
                    (
                        "musicnn TF extractor (MSD)",
                        tf["seconds"],
                        f"whole track, every 3-s patch; {len(tf['errors'])} errors; "
                        f"{tf['pyav_fallback']} M4A decoded by PyAV + librosa.resample",
                    )
                )
                print(f"  musicnn TF done: {tf['seconds']:.1f} s", flush=True)
            else:
                print(f"  musicnn TF: skipped, no {args.tf_python}")
        rss = []
        counts = [int(x) for x in args.rss_files.split(",") if x.strip()]
        if counts and not GTZAN_MINI.is_dir():
            print(f"  memory runs: skipped, no clips at {GTZAN_MINI} to make short files from")
        elif counts:
            shorts = make_short_files(tmp / "short", args.rss_seconds, sr=22050, channels=1)
            for count in counts:
                tree = copy_tree(tmp / f"copies-{count}", shorts, count)
                rss.append(
                    (
                        count,
                        scan_cli(
                            args.mgctag,
                            tree,
                            count,
                            tmp,
                            ["--model", models[0], "--min-confidence", "0", *args.scan_args.split()],
                        ),
                    )
                )
                shutil.rmtree(tree)
                print(f"  memory run with {count} files done", flush=True)

    print(f"\n{'contender':48} {'tracks/s':>9} {'seconds':>9}  notes")
    for label, secs, note in rows:
        print(f"{label:48} {n / secs:9.2f} {secs:9.1f}  {note}")
    print(f"\nmgctag --help: {help_s:.3f} s (median of 5)")
    if rss:
        print(
            f"peak memory of `mgctag scan --model {models[0]}` over folders of copies of {args.rss_seconds:g}-s files "
            f"(one file per format, 22.05 kHz mono):"
        )
        for count, m in rss:
            print(
                f"  {count:>7} files: main {mib(m['main_kib'])}, largest worker {mib(m['worker_kib'])}, "
                f"{m['n_children'] + 1} processes summed {mib(m['sum_kib'])} (highest sampled total "
                f"{mib(m['concurrent_kib'])}); {count / m['wall']:.1f} files/s"
            )
    print("\ntargets:")
    for name, m in ratios.items():
        if "ceiling" in m:
            print(
                f"  {name}: {m['ceiling'] / m['scan']:.0%} of its decode-only ceiling wall clock, "
                f"{m['ceiling'] / m['scan_no_boot']:.0%} without start-up"
            )
        if tf:
            print(f"  {name}: {tf['seconds'] / m['scan']:.1f}x musicnn's TF tagger")
        if "naive" in m:
            print(f"  {name}: {m['naive'] / m['scan']:.1f}x the naive baseline")
    if len(rss) >= 2:
        a, b = rss[0][1]["sum_kib"], rss[-1][1]["sum_kib"]
        print(f"  memory {rss[0][0]} -> {rss[-1][0]} files: {mib(a)} -> {mib(b)} summed ({b / a - 1:+.1%})")
    print(f"  --help: {help_s:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
