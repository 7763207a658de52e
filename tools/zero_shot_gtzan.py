"""Zero-shot figures of a model on ../shared/data/gtzan-mini, computed by the code `scan` runs.

Each clip is decoded by the scan's DecodeJob and heard by the scan's Analyser (windows, models,
genre names, presets, vote); the figures come from mgctag.evaluate.report. Printed per model:
accuracy with the genres a scan writes (a wrong genre outside GTZAN's ten counts as wrong) and in
a closed set (only GTZAN's ten compete), per genre, the precision/coverage curve that
--min-confidence trades on, and how well the confidence ranks answers compared with the raw
voted score (a tagger's sigmoid before it is made a share). --fold-map evaluates a variant that
merges sub-genres by a genre map (tools/fold-subgenres.txt is the folding measured in
weights/README.md); --segments-sweep compares window counts, --until-sure the scan's listening
until sure with every window. gtzan-mini is 100 clips, 10 per
genre, neighbouring ids often by one artist, and AudioSet may contain GTZAN songs: a rough signal.
A model trained on gtzan-mini is not zero-shot here.

    .venv/bin/python tools/zero_shot_gtzan.py --model efficientat-mn04 --fold-map tools/fold-subgenres.txt
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GTZAN_MINI = ROOT.parent / "shared" / "data" / "gtzan-mini"
COVERAGES = (0.3, 0.5, 0.7, 0.8, 0.9, 1.0)


def measure(
    model: str,
    data: Path,
    *,
    closed_set: bool,
    genres: str | None = None,
    genre_map: Path | None = None,
    segments: int | None = None,
    workers: int = 0,
) -> dict:
    from mgctag import dataset
    from mgctag.analyser import Analyser
    from mgctag.evaluate import check_labels, report
    from mgctag.genremap import GenreMap
    from mgctag.pool import decode_all
    from mgctag.vote import vote

    tracks = list(dataset.load_tracks(data).tracks)
    analyser = Analyser.load(
        model,
        genres=genres,
        segments=segments,
        genre_map=GenreMap.load(genre_map) if genre_map else GenreMap(),
        only=sorted({t.label for t in tracks}) if closed_set else None,
    )
    truth = check_labels(tracks, analyser.genres)
    heard: dict[int, list[np.ndarray]] = {}
    for i, d in enumerate(decode_all([t.path for t in tracks], analyser.job(), workers)):
        if d.error:
            raise SystemExit(f"{d.path}: {d.error}")
        heard.update((k, analyser.segment_scores(p)) for k, p in analyser.listen(i, d.windows))
    heard.update((k, analyser.segment_scores(p)) for k, p in analyser.listen_flush())
    kept = sorted(heard)
    segs = [np.concatenate(heard[i]) for i in kept]
    owner = np.concatenate([np.full(len(s), k) for k, s in enumerate(segs)])
    shares = np.stack([analyser.vote_members(heard[i]) for i in kept])
    raw = np.stack([np.mean([vote(s, analyser.vote_method) for s in heard[i]], axis=0) for i in kept])
    args = dict(paths=[tracks[i].path for i in kept])
    rep = report(analyser.genres, np.concatenate(segs), owner, truth[kept], track_probs=shares, **args)
    rep_raw = report(analyser.genres, np.concatenate(segs), owner, truth[kept], track_probs=raw, **args)
    per_genre = {}
    for g in sorted({p["true"] for p in rep.predictions}):
        rows = [p for p in rep.predictions if p["true"] == g]
        per_genre[g] = {
            "right": sum(p["predicted"] == g for p in rows),
            "of": len(rows),
            "predicted": Counter(p["predicted"] for p in rows if p["predicted"] != g).most_common(3),
        }
    n = len(rep.coverage)
    at = {c: max(0, round(c * n) - 1) for c in COVERAGES}
    return {
        "model": analyser.model_id,
        "genres": analyser.genres,
        "segments": analyser.segments,
        "closed_set": closed_set,
        "genre_map": str(genre_map or ""),
        "tracks": rep.n_tracks,
        "accuracy": rep.track_accuracy,
        "macro_f1": rep.macro_f1,
        "per_genre": per_genre,
        "default_min_confidence": analyser.min_confidence,
        "at_default": rep.precision_at(analyser.min_confidence) if analyser.min_confidence else None,
        "coverage": {c: rep.coverage[i] for c, i in at.items()},
        "coverage_raw_score": {c: rep_raw.coverage[i] for c, i in at.items()},
        "curve": rep.coverage,
    }


def until_sure(model: str, data: Path, *, genres: str | None = None, workers: int = 0) -> None:
    """The scan's own listening (mgctag.listen.analyse) with `--segments auto` and with every
    window, side by side: top-genre accuracy over the genres a scan writes, and windows heard."""
    from mgctag import dataset, listen, sure
    from mgctag.analyser import Analyser
    from mgctag.evaluate import check_labels

    tracks = list(dataset.load_tracks(data).tracks)
    analyser = Analyser.load(model, genres=genres)
    truth = check_labels(tracks, analyser.genres)
    rule = sure.Rule(1, analyser.min_confidence, analyser.vote_method)
    print(f"\n{analyser.model_id}, its genres as scan writes them, listening until sure against every window:")
    for label, r in (("every window", None), ("--segments auto", rule)):
        results = list(listen.analyse([t.path for t in tracks], analyser, workers=workers, rule=r))
        right = sum(int(np.argmax(s)) == t for (_, s), t in zip(results, truth))
        heard = [d.heard for d, _ in results]
        print(
            f"  {label:16s} accuracy {right}/{len(tracks)}, windows heard mean {np.mean(heard):.2f} "
            f"({', '.join(f'{k}: {v}' for k, v in sorted(Counter(heard).items()))})"
        )


def show(r: dict) -> None:
    scope = "closed set (GTZAN's ten compete)" if r["closed_set"] else f"its {len(r['genres'])} genres, as scan writes"
    extra = f", genre map {r['genre_map']}" if r["genre_map"] else ""
    print(f"\n{r['model']}: {r['tracks']} clips, up to {r['segments']} windows each, {scope}{extra}")
    print(f"  accuracy {r['accuracy']:.2f}, macro-F1 {r['macro_f1']:.2f}")
    for g, v in r["per_genre"].items():
        print(f"    {g:10s} {v['right']:2d}/{v['of']}  instead: {', '.join(f'{p} {n}' for p, n in v['predicted'])}")
    print(
        "  precision of the top genre when only the most confident files are written "
        "(confidence; the raw voted score instead):"
    )
    for c, row in r["coverage"].items():
        raw = r["coverage_raw_score"][c]
        print(
            f"    {c:4.0%} of files: min-confidence {row['threshold']:.3f}, precision {row['precision']:.2f}"
            f"  (raw score: {raw['precision']:.2f})"
        )
    if r["at_default"]:
        covered, precision = r["at_default"]
        print(
            f"    at the model's default min-confidence {r['default_min_confidence']:g}: {covered:.0%} of files, "
            f"precision {precision:.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True, help="weights name, path or A+B (repeatable)")
    p.add_argument("--data", type=Path, default=GTZAN_MINI)
    p.add_argument("--genres", help="--genres preset or list for the open-set figures (default: the model's)")
    p.add_argument("--fold-map", type=Path, help="also measure --genres all with this genre map (a folding)")
    p.add_argument("--segments-sweep", default="", help="comma-separated window counts to compare, e.g. 1,2,3")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--until-sure", action="store_true", help="also compare --segments auto with every window")
    p.add_argument("--json", type=Path, help="also write every figure (curves included) to this file")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        print(f"gtzan-mini not found at {args.data}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    everything = []

    def run(label: str | None = None, **kw) -> dict:
        r = measure(model, args.data, workers=args.workers, **kw)
        if label is None:
            show(r)
        else:
            print(
                f"  {label}: accuracy {r['accuracy']:.2f}, precision at 50% of files "
                f"{r['coverage'][0.5]['precision']:.2f}"
            )
        everything.append(r)
        return r

    for model in args.model:
        run(closed_set=False, genres=args.genres)
        run(closed_set=True)
        if args.fold_map:
            print(f"\n{model} with --genres all and the genre map {args.fold_map}:")
            run("open set", closed_set=False, genres="all", genre_map=args.fold_map)
            run("closed set", closed_set=True, genres="all", genre_map=args.fold_map)
        if args.until_sure:
            until_sure(model, args.data, genres=args.genres, workers=args.workers)
        for n in filter(None, args.segments_sweep.split(",")):
            run(f"{int(n)} window(s), its genres", closed_set=False, genres=args.genres, segments=int(n))
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
