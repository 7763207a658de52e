"""Rename the labels of trained weights files with a genre map (one-to-one, order kept).

The shipped *-gtzan-mini weights were trained on GTZAN's folder names (`hiphop`); this gives
them the names scan writes (`Hip-Hop`) without retraining. Because the map keeps the labels'
alphabetical order, class k stays class k and the result is what `mgctag train --genre-map`
would have written. The history JSON beside each file is renamed the same way.

    .venv/bin/python tools/relabel_weights.py weights/gtzan-genres.txt weights/*-gtzan-mini.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mgctag import weights
from mgctag.genremap import GenreMap


def relabel(path: Path, gmap: GenreMap, map_name: str) -> list[str]:
    model, meta = weights.load(path)
    new = [gmap.apply(label) for label in meta.labels]
    if None in new or len(set(new)) != len(new) or sorted(new) != new:
        raise SystemExit(f"{path}: the map must rename every label one-to-one and keep their order: {new}")
    if new == meta.labels:
        return new
    model.labels = meta.labels = new
    meta.provenance["labels_renamed_with"] = map_name
    weights.save(path, model, meta)
    history = path.with_name(path.name[: -len(weights.SUFFIX)] + ".history.json")
    if history.is_file():
        h = json.loads(history.read_text())
        h["labels"] = new
        if h.get("cv"):
            h["cv"]["labels"] = new
        h["provenance"] = meta.provenance
        history.write_text(json.dumps(h, indent=2, ensure_ascii=False))
    return new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("genre_map", type=Path)
    ap.add_argument("files", type=Path, nargs="+")
    args = ap.parse_args()
    gmap = GenreMap.load(args.genre_map)
    for path in args.files:
        print(f"{path}: {', '.join(relabel(path, gmap, args.genre_map.name))}", file=sys.stderr)


if __name__ == "__main__":
    main()
