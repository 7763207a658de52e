"""`mgctag models`: the architectures and the installed weights."""
from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from .common import Lines, app, out


@app.command()
def models():
    """List the architectures and the installed weights, with their labels, data and metrics."""
    from .. import weights
    from ..errors import WeightsError
    from ..models import ARCHITECTURES, architecture_names

    arch_table = Table(title="Architectures", title_justify="left")
    for col in ("name", "front-end", "segment", "paper"):
        arch_table.add_column(col)
    for name in architecture_names():
        a = ARCHITECTURES[name]
        fe = a.frontend
        arch_table.add_row(name, f"{fe.kind} {fe.n_features}x{fe.n_frames} @ {fe.sample_rate} Hz",
                           f"{fe.segment_seconds:.2f} s", a.citation)
    out.print(arch_table)

    w_table = Table(title=f"Installed weights (default: {weights.DEFAULT_MODEL})", title_justify="left")
    for col in ("name", "arch", "labels", "trained on", "metrics", "licence"):
        w_table.add_column(col, overflow="fold")
    with Lines(quiet=False, log_file=None):             # a weights file left out is a warning on stderr
        found = weights.installed()
    for name, path in found.items():
        try:
            m = weights.read_meta(path)
        except WeightsError as e:
            w_table.add_row(name, "[red]unreadable[/red]", str(e), "", "", "")
            continue
        labels = ", ".join(m.labels[:12]) + (f" (+{len(m.labels) - 12})" if len(m.labels) > 12 else "")
        data = str(m.provenance.get("data", ""))
        kind, _, where = data.partition(":")
        data = f"{kind}:{Path(where).name}" if kind == "folders" else data   # the data set, not this machine's path
        w_table.add_row(*map(Text, (name, m.arch, labels, data, _metrics_text(m.metrics),   # the file's words, not markup
                                    (m.licence.splitlines() or [""])[0])))
    out.print(w_table)


def _metrics_text(metrics: dict) -> str:
    """The headline figures: cross-validation (mean ± sd) and test split when present, else every number."""
    m = metrics
    if "cv_folds" in m and all(isinstance(m.get(f"cv_{k}"), (int, float))
                               for k in ("track_accuracy_mean", "track_accuracy_std", "macro_f1_mean", "macro_f1_std")):
        text = (f"{m['cv_folds']}-fold CV: track acc {m['cv_track_accuracy_mean']:.2f} ± "
                f"{m['cv_track_accuracy_std']:.2f}, macro-F1 {m['cv_macro_f1_mean']:.2f} ± {m['cv_macro_f1_std']:.2f}")
        if isinstance(m.get("test_track_accuracy"), (int, float)):
            text += f"; test track acc {m['test_track_accuracy']:.2f}"
        return text
    parts = []
    for k, v in metrics.items():
        if isinstance(v, (int, float)):
            parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
        elif isinstance(v, str):
            parts.append(f"{k}: {v}")
    return "; ".join(parts)
