"""How `--segments auto`'s stopping test trades windows for agreement, on a library of long tracks.

Every track's N windows are heard once (the model's plan, `--segments N`); the rounds of
`--segments auto` are then replayed on those scores for each (PRIOR_SPREAD, LEVEL) of a grid:
windows heard per track (mean) and tracks whose written genres (under the model's
--min-confidence, --top-k 1) equal those of all N windows. The shipped values are marked *.
This replays mgctag.sure on the scores; bench/bench_sure.py measures the scan itself.

    .venv/bin/python tools/sure_table.py /tmp/mgctag-bench/lib --model efficientat-mn04
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def window_scores(paths: list[Path], analyser) -> list[np.ndarray]:
    """Each track's (windows, genres) scores of the first model, in the order auto hears them."""
    from mgctag.pool import decode_all
    from mgctag.segment import spread_order

    out = []
    for d in decode_all(paths, analyser.job(), workers=2):
        if d.error:
            print(f"  skipped {d.path.name}: {d.error}", file=sys.stderr)
            continue
        for _, probs in [*analyser.listen(d.path, d.windows), *analyser.listen_flush()]:
            s = analyser.segment_scores(probs)[0]
            out.append(s[spread_order(len(s))])
    return out


def replay(scores: np.ndarray, rule) -> int:
    """The windows auto would hear of this track."""
    from mgctag import sure

    heard = 0
    while (part := sure.next_round(heard, len(scores))) is not None:
        heard = min(part[1], len(scores))
        if sure.settled(scores[:heard], len(scores), rule):
            break
    return heard


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("library", type=Path)
    ap.add_argument("--model", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--half", choices=("even", "odd"), help="every other file (choose on one half, check on the other)")
    args = ap.parse_args()

    from mgctag import sure
    from mgctag.analyser import Analyser
    from mgctag.discover import discover

    analyser = Analyser.load(args.model)
    paths = sorted((f.path for f in discover([args.library]) if not f.problem), key=str)[: args.limit]
    if args.half:
        paths = paths[args.half == "odd" :: 2]
    tracks = window_scores(paths, analyser)
    floor, n = analyser.min_confidence, analyser.segments[0]
    print(f"{analyser.model_id}: {len(tracks)} tracks, {n} windows each at most, --min-confidence {floor:g}")
    print("prior  level  windows  same written genre")
    shipped = (sure.PRIOR_SPREAD, sure.LEVEL)
    for prior in (0.1, 0.25, 0.5, 1.0):
        for level in (1.5, 2.0, 2.5, 3.0):
            sure.PRIOR_SPREAD = prior
            rule = sure.Rule(1, floor, level=level)
            heard = [replay(s, rule) for s in tracks]
            same = sum(
                sure.written(s[:h].mean(axis=0), 1, floor) == sure.written(s.mean(axis=0), 1, floor)
                for s, h in zip(tracks, heard)
            )
            mark = "*" if (prior, level) == shipped else " "
            print(f"{prior:5.2f}{mark} {level:5.1f}  {np.mean(heard):7.2f}  {same}/{len(tracks)}")
    sure.PRIOR_SPREAD = shipped[0]
    rule = sure.Rule(1, floor, level=shipped[1])
    full = [sure.written(s.mean(axis=0), 1, floor) for s in tracks]
    print(f"skipped with every window: {sum(not w for w in full)}/{len(tracks)}")
    late = np.mean([hindsight(s, floor) for s in tracks])
    print(f"hindsight (the fewest windows after which the decision never changes): {late:.2f}")
    for s, w in zip(tracks, full):
        h = replay(s, rule)
        if sure.written(s[:h].mean(axis=0), 1, floor) != w:
            print(f"  differs, shipped values: {h} windows, top share {share(s[:h]):.2f} heard, {share(s):.2f} in all")
    return 0


def share(scores: np.ndarray) -> float:
    mean = scores.mean(axis=0)
    return float(mean.max() / max(mean.sum(), 1e-12))


def hindsight(scores: np.ndarray, floor: float) -> int:
    from mgctag import sure

    full, k = sure.written(scores.mean(axis=0), 1, floor), len(scores)
    while k > 1 and sure.written(scores[: k - 1].mean(axis=0), 1, floor) == full:
        k -= 1
    return k


if __name__ == "__main__":
    raise SystemExit(main())
