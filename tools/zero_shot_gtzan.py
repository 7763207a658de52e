"""Zero-shot genre accuracy of a shipped model on ../shared/data/gtzan-mini, scored as scan scores.

Each clip goes through scan's own steps (pool.DecodeJob: probe, segment_starts, read_windows;
then the model, softmax and the mean vote), so the number is what `scan` would give. GTZAN's labels are mapped to our canonical
genre names; a GTZAN genre the model has no label for can never be right, so accuracy is
given on all clips and on the clips of covered genres. gtzan-mini is 100 clips, 10 per genre,
neighbouring ids often by one artist: a rough signal only.

    .venv/bin/python tools/zero_shot_gtzan.py --model musicnn-msd --segments 10
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GTZAN_MINI = ROOT.parent / "shared" / "data" / "gtzan-mini"
GTZAN_TO_CANONICAL = {"blues": "Blues", "classical": "Classical", "country": "Country", "disco": "Disco",
                      "hiphop": "Hip-Hop", "jazz": "Jazz", "metal": "Metal", "pop": "Pop", "reggae": "Reggae",
                      "rock": "Rock"}


def evaluate(model: str, segments: int, data: Path) -> dict:
    import torch

    from mgctag.pool import DecodeJob, WindowSpec
    from mgctag.vote import softmax, top_k, vote
    from mgctag.weights import load, resolve

    net, meta = load(resolve(model))
    labels, spec = meta.labels, net.spec
    job = DecodeJob(WindowSpec(spec.sample_rate, spec.segment_samples, segments))
    rows = []
    for path in sorted(data.glob("*/*.ogg")):
        d = job(path)
        if d.error:
            raise SystemExit(f"{path}: {d.error}")
        with torch.inference_mode():
            probs = softmax(net(torch.from_numpy(d.windows[0])).numpy())
        ranked = top_k(vote(probs, "mean"), labels, len(labels))
        covered = [g for g, _ in ranked if g in GTZAN_TO_CANONICAL.values()]
        rows.append({"truth": GTZAN_TO_CANONICAL[path.parent.name], "pred": ranked[0][0],
                     "covered_pred": covered[0] if covered else ""})
    covered_genres = sorted(set(GTZAN_TO_CANONICAL.values()) & set(labels))
    on_covered = [r for r in rows if r["truth"] in covered_genres]
    return {
        "model": model, "clips": len(rows), "covered_genres": covered_genres,
        "uncovered_genres": sorted(set(GTZAN_TO_CANONICAL.values()) - set(labels)),
        "accuracy_all": sum(r["pred"] == r["truth"] for r in rows) / len(rows),
        "accuracy_covered": sum(r["pred"] == r["truth"] for r in on_covered) / max(1, len(on_covered)),
        # if the model were asked to pick only among the GTZAN genres it can name:
        "accuracy_covered_closed_set": sum(r["covered_pred"] == r["truth"] for r in on_covered) / max(1, len(on_covered)),
        "per_genre": {g: (sum(r["pred"] == g for r in rows if r["truth"] == g),
                          Counter(r["pred"] for r in rows if r["truth"] == g).most_common(3))
                      for g in GTZAN_TO_CANONICAL.values()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", help="weights name or path (repeatable); default: both musicnn models")
    p.add_argument("--segments", type=int, default=10, help="segments voted per clip")
    p.add_argument("--data", type=Path, default=GTZAN_MINI)
    args = p.parse_args(argv)
    if not args.data.is_dir():
        print(f"gtzan-mini not found at {args.data}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    for model in args.model or ["musicnn-msd", "musicnn-mtt"]:
        r = evaluate(model, args.segments, args.data)
        print(f"\n{r['model']}: {r['clips']} clips, {args.segments} segments each, mean-softmax vote")
        print(f"  cannot name: {', '.join(r['uncovered_genres']) or '-'}")
        print(f"  accuracy, all clips:        {r['accuracy_all']:.2f}")
        print(f"  accuracy, covered genres:   {r['accuracy_covered']:.2f}  ({', '.join(r['covered_genres'])})")
        print(f"  same, closed set (only the covered GTZAN genres compete): {r['accuracy_covered_closed_set']:.2f}")
        for genre, (right, top) in r["per_genre"].items():
            print(f"    {genre:10s} {right:2d}/10  predicted: {', '.join(f'{g} {n}' for g, n in top)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
