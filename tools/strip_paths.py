"""Replace the training machine's paths in weights' provenance with data set names, tensors unchanged.

Weights trained before `mgctag train` recorded names only say `folders:/work/.../gtzan-mini`;
this rewrites such sources the way train now records them (`folders:gtzan-mini`), in the file's
metadata (provenance and description) and in the history JSON beside it.

    .venv/bin/python tools/strip_paths.py weights/*.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mgctag import weights
from mgctag.dataset import data_name


def named(source: str) -> str:
    kind, sep, where = source.partition(":")
    if not sep or kind not in ("folders", "tags"):
        return source
    return f"{kind}:" + ",".join(data_name(w) for w in where.split(","))


def strip(path: Path) -> bool:
    model, meta = weights.load(path)
    prov = meta.provenance
    new = {k: named(prov[k]) for k in ("data", "unlabelled") if isinstance(prov.get(k), str)}
    if all(prov[k] == v for k, v in new.items()):
        return False
    for k, v in new.items():
        meta.description = meta.description.replace(prov[k], v)
    prov.update(new)
    weights.save(path, model, meta)
    history = path.with_name(path.name[: -len(weights.SUFFIX)] + ".history.json")
    if history.is_file():
        h = json.loads(history.read_text())
        h["provenance"] = prov
        history.write_text(json.dumps(h, indent=2, ensure_ascii=False))
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", type=Path, nargs="+")
    for path in ap.parse_args().files:
        print(f"{path}: {'rewritten' if strip(path) else 'no paths'}", file=sys.stderr)


if __name__ == "__main__":
    main()
