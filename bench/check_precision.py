"""Does a bf16 backbone give the same genres as float32? Measured on gtzan-mini's real clips.

Each clip's voted windows are decoded as `scan` decodes them, then run through
mgctag.infer.BatchedInference twice: precision "fp32", and "bf16" (front-end in float32, backbone
under torch.autocast(bfloat16) on the model's device: the path scan takes on CUDA for the
architectures in infer.CUDA_BF16_ARCHS). It prints track-level top-1 agreement, the largest and
mean difference of the voted probabilities, segment-level figures, and accuracy against the
clips' genre folders where the model has a label of that name. bf16 "holds" when top-1 agreement is at
least 99% and accuracy drops by no more than one clip.

On a CPU without native bf16 the bf16 pass is several times slower than float32 (emulated), but
its arithmetic is CUDA's: bf16 operands, float32 accumulation. On a GPU it runs on the GPU, with
TF32 turned off so that the reference is true float32.

    nice -n 10 .venv/bin/python bench/check_precision.py                 # default model, 100 clips
    .venv/bin/python bench/check_precision.py --model musicnn-mtt --model cnn --limit 30
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from bench_scan import cpu_name  # this folder is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GTZAN_MINI = ROOT.parent / "shared" / "data" / "gtzan-mini"
PRECISIONS = ("fp32", "bf16")


def clips(data: Path, limit: int | None) -> list[Path]:
    """Clips interleaved across genres, so that a --limit still samples every genre."""
    by_genre = [sorted(d.glob("*.ogg")) for d in sorted(p for p in data.iterdir() if p.is_dir())]
    order = [c for i in range(max(map(len, by_genre), default=0)) for g in by_genre if i < len(g) for c in [g[i]]]
    return order[:limit]


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def compare(
    model_name: str | None, paths: list[Path], *, device: str, batch_size: int, segments: int | None, threshold: float
) -> bool:
    import torch

    from mgctag import weights
    from mgctag.infer import BatchedInference
    from mgctag.models import get_architecture
    from mgctag.pool import DecodeJob, WindowSpec, decode_all
    from mgctag.vote import vote

    if device == "cuda":  # the reference is true float32, not TF32 (torch's default for cuDNN convs)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    model, meta = weights.load(weights.resolve(model_name), device)
    n_seg = segments or get_architecture(meta.arch).default_segments
    job = DecodeJob(WindowSpec.of(model, n_seg))
    batchers = {p: BatchedInference(model, batch_size=batch_size, precision=p) for p in PRECISIONS}
    seg = {p: {} for p in PRECISIONS}
    seconds = dict.fromkeys(PRECISIONS, 0.0)
    print(
        f"\n== {meta.model_id} ({meta.arch}) on {device}: {len(paths)} clips x {n_seg} segments, batch {batch_size}",
        flush=True,
    )

    def take(p, results):
        start = time.perf_counter()
        for key, probs in results:
            seg[p][key] = probs
        if device == "cuda":
            torch.cuda.synchronize()
        seconds[p] += time.perf_counter() - start

    errors = 0
    for i, d in enumerate(decode_all(paths, job, 0)):
        if d.error:
            errors += 1
            print(f"  skipped {d.path}: {d.error}")
            continue
        for p, b in batchers.items():
            take(p, b.feed(i, d.windows[0]))
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{len(paths)} clips", flush=True)
    for p, b in batchers.items():
        take(p, b.flush())

    keys = sorted(seg["fp32"])
    track = {p: np.stack([vote(seg[p][k]) for k in keys]) for p in PRECISIONS}
    segs = {p: np.concatenate([seg[p][k] for k in keys]) for p in PRECISIONS}
    agree = float(np.mean(track["fp32"].argmax(1) == track["bf16"].argmax(1)))
    seg_agree = float(np.mean(segs["fp32"].argmax(1) == segs["bf16"].argmax(1)))
    diff = np.abs(track["fp32"] - track["bf16"])
    seg_diff = np.abs(segs["fp32"] - segs["bf16"])
    labels = {_key(name): j for j, name in enumerate(meta.labels)}
    truth = [labels.get(_key(paths[k].parent.name)) for k in keys]
    known = [n for n, t in enumerate(truth) if t is not None]
    acc = {
        p: (float(np.mean([track[p][n].argmax() == truth[n] for n in known])) if known else float("nan"))
        for p in PRECISIONS
    }
    drop = (acc["fp32"] - acc["bf16"]) * len(known) if known else 0.0
    holds = agree >= threshold and drop <= 1 + 1e-9

    print(f"  tracks compared:           {len(keys)} ({errors} could not be decoded)")
    print(f"  track top-1 agreement:     {agree:.1%}  ({int(round(agree * len(keys)))}/{len(keys)})")
    print(f"  track prob |fp32 - bf16|:  max {diff.max():.4f}, mean {diff.mean():.5f}")
    print(
        f"  segment top-1 agreement:   {seg_agree:.1%} of {len(segs['fp32'])}; "
        f"segment prob diff max {seg_diff.max():.4f}"
    )
    if known:
        print(
            f"  accuracy vs genre folder:  fp32 {acc['fp32']:.3f}, bf16 {acc['bf16']:.3f} "
            f"({len(known)} clips whose genre is one of the model's labels)"
        )
    else:
        print("  accuracy vs genre folder:  n/a (no folder name is one of the model's labels)")
    print(f"  model time:                fp32 {seconds['fp32']:.1f} s, bf16 {seconds['bf16']:.1f} s")
    print(
        f"  verdict: bf16 {'HOLDS' if holds else 'DOES NOT HOLD'} "
        f"(needs top-1 agreement >= {threshold:.0%} and an accuracy drop of at most one clip)"
    )
    return holds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", help="weights name or file (repeatable; default: the default model)")
    ap.add_argument("--data", type=Path, default=GTZAN_MINI, help="genre folders of clips (default: gtzan-mini)")
    ap.add_argument("--limit", type=int, default=None, help="clips to use (default: all)")
    ap.add_argument("--segments", type=int, default=None, help="segments per clip (default: the model's)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--threshold", type=float, default=0.99, help="top-1 agreement bf16 must reach")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"check_precision: skipped: no clips at {args.data} (needs ../shared/data/gtzan-mini)")
        return 0
    import torch

    from mgctag.infer import pick_device

    device = pick_device(args.device)
    paths = clips(args.data, args.limit)
    where = torch.cuda.get_device_name() if device == "cuda" else cpu_name()
    print(
        f"check_precision {datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {where}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    results = [
        compare(m, paths, device=device, batch_size=args.batch_size, segments=args.segments, threshold=args.threshold)
        for m in (args.model or [None])
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
