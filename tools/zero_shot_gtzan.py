"""Zero-shot figures of a model on ../shared/data/gtzan-mini, computed by the code `scan` runs.

Each clip is heard through mgctag.evaluate with the scan's own Analyser (windows, models,
genre names, presets, vote), so every number is what a scan would do. Printed per model:
accuracy with the model's own genres (as `scan` writes them: a wrong genre outside GTZAN's ten
counts as wrong) and in a closed set (only GTZAN's ten compete), per genre, the precision/coverage
curve that --min-confidence trades on, and, with --segments-sweep, accuracy against the number of
voted windows. gtzan-mini is 100 clips, 10 per genre, neighbouring ids often by one artist, and
AudioSet may contain GTZAN songs: a rough signal. A model trained on gtzan-mini is not zero-shot here.

    .venv/bin/python tools/zero_shot_gtzan.py --model efficientat-mn04 --segments-sweep 1,2,3
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GTZAN_MINI = ROOT.parent / "shared" / "data" / "gtzan-mini"
COVERAGES = (0.3, 0.5, 0.7, 0.8, 0.9, 1.0)


def measure(model: str, data: Path, *, closed_set: bool, genres: str | None = None, segments: int | None = None,
            workers: int = 0) -> dict:
    from mgctag import dataset
    from mgctag.analyser import Analyser
    from mgctag.evaluate import evaluate

    tracks = list(dataset.load_tracks(data).tracks)
    analyser = Analyser.load(model, genres=genres, segments=segments,
                             only=sorted({t.label for t in tracks}) if closed_set else None)
    rep = evaluate(analyser, tracks, workers=workers)
    per_genre = {}
    for g in sorted({p["true"] for p in rep.predictions}):
        rows = [p for p in rep.predictions if p["true"] == g]
        per_genre[g] = {"right": sum(p["predicted"] == g for p in rows), "of": len(rows),
                        "predicted": Counter(p["predicted"] for p in rows).most_common(3)}
    n = len(rep.coverage)
    return {"model": analyser.model_id, "genres": analyser.genres, "segments": analyser.segments,
            "closed_set": closed_set, "tracks": rep.n_tracks, "accuracy": rep.track_accuracy,
            "macro_f1": rep.macro_f1, "per_genre": per_genre, "default_min_confidence": analyser.min_confidence,
            "at_default": rep.precision_at(analyser.min_confidence) if analyser.min_confidence else None,
            "coverage": {c: rep.coverage[max(0, round(c * n) - 1)] for c in COVERAGES},
            "curve": rep.coverage, "skipped": rep.skipped}


def show(r: dict) -> None:
    scope = "closed set (GTZAN's ten compete)" if r["closed_set"] else f"its {len(r['genres'])} genres, as scan writes"
    print(f"\n{r['model']}: {r['tracks']} clips, {r['segments']} windows each, {scope}")
    print(f"  accuracy {r['accuracy']:.2f}, macro-F1 {r['macro_f1']:.2f}")
    for g, v in r["per_genre"].items():
        print(f"    {g:10s} {v['right']:2d}/{v['of']}  predicted: {', '.join(f'{p} {n}' for p, n in v['predicted'])}")
    print("  precision of the top genre when only the most confident files are written:")
    for c, row in r["coverage"].items():
        print(f"    {c:4.0%} of files (min-confidence {row['threshold']:.3f}): precision {row['precision']:.2f}")
    if r["at_default"]:
        covered, precision = r["at_default"]
        print(f"    at the model's default min-confidence {r['default_min_confidence']:g}: {covered:.0%} of files, "
              f"precision {precision:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True, help="weights name, path or A+B (repeatable)")
    p.add_argument("--data", type=Path, default=GTZAN_MINI)
    p.add_argument("--genres", help="--genres preset or list for the open-set figures (default: the model's)")
    p.add_argument("--segments-sweep", default="", help="comma-separated window counts to compare, e.g. 1,2,3")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write every figure (curves included) to this file")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        print(f"gtzan-mini not found at {args.data}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    everything = []
    for model in args.model:
        for closed in (False, True):
            r = measure(model, args.data, closed_set=closed, genres=args.genres, workers=args.workers)
            show(r)
            everything.append(r)
        for n in filter(None, args.segments_sweep.split(",")):
            r = measure(model, args.data, closed_set=False, genres=args.genres, segments=int(n), workers=args.workers)
            print(f"  {int(n)} window(s): accuracy {r['accuracy']:.2f} (its genres), precision at 70% coverage "
                  f"{r['coverage'][0.7]['precision']:.2f}")
            everything.append(r)
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
