"""Albums against files on pseudo-albums from ../shared/data/gtzan-mini, computed by the code `scan` runs.

Each clip is decoded by the scan's DecodeJob and heard once by the scan's Analyser; its scores
over the written genres come from the analyser (with the genre tree, and with the tree emptied,
for the sub-genre figures). Pseudo-albums are five clips of one genre in id order (two per genre,
20 albums), laid out as untagged folders (the coherence test applies) and as tagged albums (it
does not); mgctag.albums.decide decides them. Printed per model and --genres: tracks right when
judged alone and when decided by album, and albums written with more than one genre. gtzan-mini
shares artists within a genre (neighbouring ids), so the album gain here is rough; a model
trained on gtzan-mini is in-set, the AudioSet model zero-shot.

    .venv/bin/python tools/album_table.py --model efficientat-mn04 --genres gtzan --genres common
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GTZAN_MINI = ROOT.parent / "shared" / "data" / "gtzan-mini"
PER_ALBUM = 5


def hear(model: str, genres: str | None, data: Path, workers: int):
    """(tracks, {tree: (analyser, scores per track)}) for the model with and without the genre tree."""
    from mgctag import dataset, taxonomy
    from mgctag.analyser import Analyser
    from mgctag.pool import decode_all

    tracks = sorted(dataset.load_tracks(data).tracks, key=lambda t: t.path.name)
    with_tree = Analyser.load(model, genres=genres)
    saved, taxonomy.PARENT = taxonomy.PARENT, {}
    try:
        without = Analyser.load(model, genres=genres)
    finally:
        taxonomy.PARENT = saved
    raw: dict[int, list[np.ndarray]] = {}
    heard: dict[int, int] = {}
    for i, d in enumerate(decode_all([t.path for t in tracks], with_tree.job(), workers)):
        if d.error:
            raise SystemExit(f"{d.path}: {d.error}")
        heard[i] = d.heard
        raw.update(with_tree.listen(i, d.windows))
    raw.update(with_tree.listen_flush())
    out = {}
    for tree, a in (("tree", with_tree), ("no tree", without)):
        out[tree] = (a, [a.scores(raw[i]) for i in range(len(tracks))])
    return tracks, heard, out


def table(tracks, heard, analyser, scores) -> dict:
    from mgctag import albums, taxonomy

    genres = analyser.genres
    truth = [taxonomy.canonical(t.label) for t in tracks]
    own = [genres[int(np.argmax(s))] for s in scores]
    by_genre: dict[str, list[int]] = {}
    for i, g in enumerate(truth):
        by_genre.setdefault(g, []).append(i)
    groups = [ids[k : k + PER_ALBUM] for ids in by_genre.values() for k in range(0, len(ids), PER_ALBUM)]
    out = {
        "tracks": len(tracks),
        "albums": len(groups),
        "alone_right": sum(o == t for o, t in zip(own, truth)),
        "alone_split": sum(len({own[i] for i in g}) > 1 for g in groups),
    }
    for layout in ("folder", "tags"):
        decided, right, split, joined = list(own), 0, 0, 0
        for n, ids in enumerate(groups):
            folder = Path(f"/pseudo/album{n:02d}")
            members = [
                albums.Track(
                    folder / f"{i:03d}.ogg",
                    scores[i],
                    heard[i],
                    album=f"Album {n}" if layout == "tags" else None,
                    artist=f"Artist {n}" if layout == "tags" else None,
                )
                for i in ids
            ]
            verdicts = albums.decide(members, genres)
            for i, m in zip(ids, members):
                if m.path in verdicts:
                    decided[i] = genres[int(np.argmax(verdicts[m.path].scores))]
            joined += all(m.path in verdicts for m in members)
            split += len({decided[i] for i in ids}) > 1
        right = sum(d == t for d, t in zip(decided, truth))
        out[layout] = {"right": right, "split": split, "joined": joined}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--genres", action="append", help="--genres preset or list (repeatable; default: the model's)")
    p.add_argument("--data", type=Path, default=GTZAN_MINI)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    if not args.data.is_dir():
        print(f"gtzan-mini not found at {args.data}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    print(
        "| model | --genres | genre tree | tracks right alone | by album (folders) | by album (tags) "
        "| albums with >1 genre: alone / folders / tags | folders kept as albums |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for model in args.model:
        for genres in args.genres or [None]:
            tracks, heard, runs = hear(model, genres, args.data, args.workers)
            for tree, (analyser, scores) in runs.items():
                r = table(tracks, heard, analyser, scores)
                n, a = r["tracks"], r["albums"]
                print(
                    f"| {analyser.model_id} | {genres or 'its own'} | {tree} | {r['alone_right'] / n:.2f} "
                    f"| {r['folder']['right'] / n:.2f} | {r['tags']['right'] / n:.2f} "
                    f"| {r['alone_split']} / {r['folder']['split']} / {r['tags']['split']} of {a} "
                    f"| {r['folder']['joined']} of {a} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
