"""Tracks/s of a local scan against `scan --ray` on this machine, and a multi-node simulation.

local vs ray (same files, one run each, in this process, a dry run with a fresh state):
  local       scanner.scan(LIB, ScanOptions(model, rescan=True)): decode workers on every core,
              inference in this process; model loading included
  ray         ray_runner.connected("local") starts a local cluster on every core first: that
              start-up is timed and reported on its own, not in the figure. Then the same scan with
              ScanOptions(ray="local", ray_actors=...): the figure includes starting the job's
              workers and actors and loading the model in each, as every Ray run does
nodes (--nodes): a head and worker nodes on 127.0.0.1, each with its own raylet, object store
  and CPU count (and a custom resource naming it), started by ray.cluster_utils.Cluster, Ray's
  own multi-node-on-one-machine harness (`ray start` would not do: it replaces 127.0.0.1 by the
  machine's network address, and its worker nodes refuse Ray's loopback-only mode). This process
  joins as the driver and runs ray_runner.analyse over LIB, counting the files decoded per node;
  the nodes are stopped with the cluster object (never `ray stop`, which ends every Ray here).
Every Ray process listens on 127.0.0.1 only (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, set before
ray is imported).

    .venv/bin/python bench/bench_ray.py /tmp/mgctag-bench/lib --limit 40            # local vs ray
    .venv/bin/python bench/bench_ray.py LIB --limit 40 --nodes 1,2,2 --skip-local   # the simulation
    .venv/bin/python bench/bench_ray.py --tiny 6 --nodes 1,1,1                      # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before ray is imported: loopback only
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
from bench_scan import cpu_name  # noqa: E402


def library(args, tmp: Path) -> list[Path]:
    from mgctag import discover

    if args.tiny:
        import audiogen

        root = tmp / "tiny"
        root.mkdir()
        formats = ("mp3", "flac", "ogg", "wav", "m4a", "opus")
        for i in range(args.tiny):
            audiogen.make(
                root / f"{i:03d}.{formats[i % len(formats)]}", seconds=4.0, sr=22050, freq=150.0 * (1 + i % 7), seed=i
            )
        args.lib = root
    if args.lib is None:
        raise SystemExit("bench_ray: give a library folder or --tiny N")
    found = sorted(f.path for f in discover.discover([args.lib]) if not f.problem)
    return found[: args.limit] if args.limit else found


def timed_scan(paths: list[Path], tmp: Path, **options) -> tuple[float, Counter]:
    from mgctag.scanner import ScanOptions, scan

    folder = tmp / f"files-{len(list(tmp.iterdir()))}"  # the chosen files only, as links (not copies)
    folder.mkdir()
    for i, p in enumerate(paths):
        (folder / f"{i:05d}-{p.name}").symlink_to(p)
    opts = ScanOptions(state=tmp / f"{folder.name}.sqlite", rescan=True, **options)
    start = time.perf_counter()
    statuses = Counter(r.status for r in scan([folder], opts))
    return time.perf_counter() - start, statuses


def local_vs_ray(paths: list[Path], args, tmp: Path) -> dict:
    from mgctag import ray_runner

    out: dict = {}
    if not args.skip_local:
        seconds, statuses = timed_scan(paths, tmp, model=args.model, batch_size=args.batch_size)
        out["local"] = dict(seconds=seconds, statuses=dict(statuses))
        print(f"local: {len(paths) / seconds:.2f} tracks/s ({seconds:.1f} s, {dict(statuses)})", flush=True)
    if args.skip_ray:
        return out
    start = time.perf_counter()
    with ray_runner.connected("local"):
        import ray

        startup = time.perf_counter() - start
        cpus = int(ray.cluster_resources().get("CPU", 0))
        print(f"ray start-up (local cluster, {cpus} CPUs): {startup:.1f} s", flush=True)
        seconds, statuses = timed_scan(
            paths, tmp, model=args.model, batch_size=args.batch_size, ray="local", ray_actors=args.actors
        )
        stop = time.perf_counter()
    out["ray"] = dict(
        seconds=seconds, statuses=dict(statuses), startup=startup, cpus=cpus, shutdown=time.perf_counter() - stop
    )
    print(
        f"ray: {len(paths) / seconds:.2f} tracks/s ({seconds:.1f} s, {dict(statuses)}); "
        f"shut-down {out['ray']['shutdown']:.1f} s",
        flush=True,
    )
    return out


def nodes_run(paths: list[Path], args, tmp: Path) -> dict:
    """A head and workers on loopback (ray.cluster_utils.Cluster); files decoded per node."""
    import ray
    from ray.cluster_utils import Cluster

    from mgctag import ray_runner
    from mgctag.analyser import Analyser
    from mgctag.scanner import ScanOptions

    cpus = [int(c) for c in args.nodes.split(",")]
    names = ["head"] + [f"worker{i}" for i in range(1, len(cpus))]
    store = 300 * 2**20  # object store per node: small, several share this machine's memory
    cluster = Cluster(
        initialize_head=True,
        head_node_args=dict(
            num_cpus=cpus[0], resources={"bench_head": 1}, object_store_memory=store, include_dashboard=False
        ),
    )
    address = cluster.address
    try:
        for name, n in zip(names[1:], cpus[1:]):
            cluster.add_node(num_cpus=n, resources={f"bench_{name}": 1}, object_store_memory=store)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        by_id = {
            node["NodeID"]: next((k[len("bench_") :] for k in node["Resources"] if k.startswith("bench_")), "?")
            for node in ray.nodes()
            if node["Alive"]
        }
        options = ScanOptions(model=args.model, batch_size=args.batch_size, ray=cluster.address, ray_actors=args.actors)
        analyser = Analyser.load(options.model, device="cpu", batch_size=options.batch_size)
        counts: Counter = Counter()
        start = time.perf_counter()
        errors = sum(scores is None for _, scores in ray_runner.analyse(paths, analyser, options, nodes=counts))
        seconds = time.perf_counter() - start
        ray.shutdown()
    finally:
        cluster.shutdown()  # the nodes this script started, and only those
    per_node = {by_id.get(node, node[:8]): n for node, n in counts.items()}
    print(
        f"nodes {dict(zip(names, cpus))} (CPUs) at {address}: {len(paths) / seconds:.2f} tracks/s "
        f"({seconds:.1f} s, {errors} errors); files decoded per node: {per_node}",
        flush=True,
    )
    return dict(cpus=dict(zip(names, cpus)), address=address, seconds=seconds, errors=errors, per_node=per_node)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lib", type=Path, nargs="?", help="library folder (e.g. bench/make_library.py's)")
    ap.add_argument("--limit", type=int, default=0, help="the first N files only")
    ap.add_argument("--tiny", type=int, default=0, help="make N short generated files instead of a library")
    ap.add_argument("--model", default=None, help="--model (default: the default model)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--actors", type=int, default=None, help="--ray-actors (default: one per GPU, else half the CPUs)")
    ap.add_argument("--skip-local", action="store_true", help="no local scan")
    ap.add_argument("--skip-ray", action="store_true", help="no local-cluster Ray scan (e.g. only --nodes)")
    ap.add_argument("--nodes", default="", help="CPUs of head,worker,... for the simulation, e.g. 1,2,2")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    import ray
    import torch

    from mgctag.pool import usable_cpus

    tmp = Path(tempfile.mkdtemp(prefix="mgctag-bench-ray-"))
    try:
        paths = library(args, tmp)
        print(
            f"{datetime.now():%Y-%m-%d %H:%M} {cpu_name()}, {usable_cpus()} usable CPUs, torch {torch.__version__}, "
            f"ray {ray.__version__}, Python {platform.python_version()}; {len(paths)} files",
            flush=True,
        )
        figures = {"files": len(paths)}
        figures.update(local_vs_ray(paths, args, tmp))
        if args.nodes:
            figures["nodes"] = nodes_run(paths, args, tmp)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
