"""Compare weights trained without and with a teacher, print the card's table, and ship the better.

Each folder holds `mgctag train --folds K` runs of the same architectures, one trained without
and one with `--teacher`, under the same file names. For each name this prints both runs' CV
figures (from the files' own metadata) and which one ships: the taught one only when its CV
track accuracy is not below the untaught one's (ties go to the teacher, whose provenance names
it). With --ship, the chosen weights, history and curves are copied into weights/.

    .venv/bin/python tools/teacher_table.py PLAIN_DIR TAUGHT_DIR [--ship]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from mgctag import weights

SHIPPED = Path(__file__).resolve().parents[1] / "weights"


def figures(path: Path) -> dict:
    m = weights.read_meta(path)
    x, p = m.metrics, m.provenance
    return {
        "arch": m.arch,
        "acc": x["cv_track_accuracy_mean"],
        "acc_sd": x["cv_track_accuracy_std"],
        "f1": x["cv_macro_f1_mean"],
        "f1_sd": x["cv_macro_f1_std"],
        "seg": x["cv_segment_accuracy_mean"],
        "seg_sd": x["cv_segment_accuracy_std"],
        "folds": x.get("cv_folds"),
        "epochs": p.get("epochs"),
        "best": p.get("best_epoch"),
        "teacher": (p.get("teacher") or {}).get("model"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plain", type=Path)
    ap.add_argument("taught", type=Path)
    ap.add_argument("--ship", action="store_true", help="copy the chosen files into weights/")
    args = ap.parse_args()
    print(
        "| weights | arch | folds | teacher | CV track accuracy | CV macro-F1 | CV segment accuracy "
        "| final model epochs | shipped |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for plain in sorted(args.plain.glob(f"*{weights.SUFFIX}")):
        taught = args.taught / plain.name
        runs = [(plain, figures(plain))] + ([(taught, figures(taught))] if taught.is_file() else [])
        chosen = runs[-1][0] if len(runs) == 2 and runs[1][1]["acc"] >= runs[0][1]["acc"] else plain
        for path, f in runs:
            print(
                f"| `{path.name[: -len(weights.SUFFIX)]}` | `{f['arch']}` | {f['folds']} | {f['teacher'] or 'none'} "
                f"| {f['acc']:.2f} ± {f['acc_sd']:.2f} | {f['f1']:.2f} ± {f['f1_sd']:.2f} "
                f"| {f['seg']:.2f} ± {f['seg_sd']:.2f} | {f['epochs']} (best {f['best']}) "
                f"| {'**yes**' if path == chosen else 'no'} |"
            )
        if args.ship and len(runs) == 2:  # a pair not yet finished ships nothing
            stem = plain.name[: -len(weights.SUFFIX)]
            for suffix in (weights.SUFFIX, ".history.json", ".curves.png"):
                shutil.copy2(chosen.with_name(stem + suffix), SHIPPED / (stem + suffix))


if __name__ == "__main__":
    main()
