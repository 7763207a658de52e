"""Where a scan's CPU time goes, per track: decoding the voted windows, the front-end, the network.

Each stage runs alone in this process on the same files (one thread unless --threads), so the
figures add up to what one core spends on a track; the network is timed at several batch sizes.
Use it to see whether a scan is bound by decoding or by inference, and what a change costs.

    .venv/bin/python bench/stages.py /tmp/mgctag-bench/lib --limit 10 --model efficientat-mn04
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("library", type=Path)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--model", default=None, help="default: the default model")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--batches", default="1,8,16,32,64", help="batch sizes to time the network at")
    args = ap.parse_args()

    import numpy as np
    import torch
    from bench_scan import audio_files, cpu_name, warm_cache

    from mgctag.analyser import Analyser

    torch.set_num_threads(args.threads)
    files = audio_files(args.library.resolve(), args.limit)
    warm_cache(files)
    analyser = Analyser.load(args.model)
    job = analyser.job()
    member = analyser.members[0]
    model = member.model
    print(
        f"stages: {cpu_name()}, torch {torch.__version__}, {args.threads} thread(s); {analyser.model_id}, "
        f"{member.window.n_segments} windows of {model.spec.segment_seconds:.2f} s; {len(files)} files"
    )

    job(files[0])  # imports, codec tables
    t = time.perf_counter()
    decoded = [job(f) for f in files]
    decode_s = (time.perf_counter() - t) / len(files)
    windows = np.concatenate([d.windows[0] for d in decoded if not d.error])
    per_track = len(windows) / len(files)
    print(
        f"  decode (probe, voted windows, resample, tags): {decode_s * 1000:7.1f} ms per track "
        f"({per_track:.1f} windows)"
    )

    with torch.inference_mode():
        x = torch.from_numpy(windows[:8])
        model.features(x)
        t = time.perf_counter()
        for i in range(0, len(windows), 8):
            feats = model.features(torch.from_numpy(windows[i : i + 8]))
        fe_s = (time.perf_counter() - t) / len(windows)
        print(f"  front-end: {fe_s * 1000:7.1f} ms per window ({fe_s * per_track * 1000:.1f} ms per track)")
        feats = model.features(torch.from_numpy(windows[:1]))
        for b in map(int, args.batches.split(",")):
            batch = feats.repeat(b, *([1] * (feats.dim() - 1)))
            model.backbone(batch)
            n, t = 0, time.perf_counter()
            while time.perf_counter() - t < 2.0 or n < 2:
                model.backbone(batch)
                n += 1
            net_s = (time.perf_counter() - t) / (n * b)
            print(
                f"  network, batch {b:3d}: {net_s * 1000:7.1f} ms per window ({net_s * per_track * 1000:.1f} ms "
                f"per track)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
