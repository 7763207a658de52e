"""Print the metrics table of weights/README.md from the shipped files' own metadata.

The card's figures are pasted from this output, so every number in it is one that `mgctag
train` wrote into the weights it shipped.

    .venv/bin/python tools/model_card.py [FOLDER]     (default: the installed package's weights)
"""

from __future__ import annotations

import sys
from pathlib import Path

from mgctag import weights


def row(path: Path) -> str | None:
    m = weights.read_meta(path)
    x = m.metrics
    if "cv_track_accuracy_mean" not in x:
        return None
    p = m.provenance
    opts = p.get("options", {})
    pm = "±"
    return (
        f"| `{path.stem}` | `{m.arch}` | {x['cv_track_accuracy_mean']:.2f} {pm} {x['cv_track_accuracy_std']:.2f} "
        f"| {x['cv_macro_f1_mean']:.2f} {pm} {x['cv_macro_f1_std']:.2f} "
        f"| {x['cv_segment_accuracy_mean']:.2f} {pm} {x['cv_segment_accuracy_std']:.2f} "
        f"| {x.get('cv_folds')} | {opts.get('max_epochs')} / {opts.get('batch_size')} "
        f"| {(p.get('teacher') or {}).get('model') or 'none'} | {p.get('epochs')} (best {p.get('best_epoch')}) "
        f"| {p.get('date', '')[:10]} |"
    )


def main() -> None:
    print(
        "| weights | arch | CV track accuracy | CV macro-F1 | CV segment accuracy | folds | epoch cap / batch "
        "| teacher | final model epochs | trained |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else weights.shipped_dir()
    for path in sorted(folder.glob(f"*{weights.SUFFIX}")):
        line = row(path)
        if line:
            print(line)


if __name__ == "__main__":
    main()
