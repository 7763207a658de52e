"""What training and evaluation leave on disk: the weights with their history and curves, and the figures.

Every figure is drawn on its own matplotlib Figure with an Agg canvas (no pyplot: nothing
global changes, no display needed), so one place says how mgctag draws.
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import writing
from .evaluate import quiet
from .weights import save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .evaluate import EvalReport
    from .train import TrainOptions, TrainResult


def save_run(result: TrainResult, out_path: str | Path) -> dict[str, Path]:
    """The weights, plus `<stem>.history.json` and `<stem>.curves.png` beside them."""
    out_path = Path(out_path)
    stem = out_path.name[: -len(".safetensors")] if out_path.name.endswith(".safetensors") else out_path.stem
    weights_path = save(out_path, result.model, result.meta)
    history_path = out_path.with_name(f"{stem}.history.json")
    with writing(history_path):
        _write_history(result, history_path)
    curves_path = out_path.with_name(f"{stem}.curves.png")
    with writing(curves_path):
        save_curves(
            result.history,
            curves_path,
            best_epoch=result.best_epoch,
            title=f"{result.meta.arch} on {Path(str(result.meta.provenance.get('data', ''))).name}",
        )
    return {"weights": weights_path, "history": history_path, "curves": curves_path}


def _write_history(result: TrainResult, history_path: Path) -> None:
    history_path.write_text(
        json.dumps(
            {
                "arch": result.meta.arch,
                "labels": result.meta.labels,
                "best_epoch": result.best_epoch,
                "epochs": result.history,
                "provenance": result.meta.provenance,
                "metrics": result.meta.metrics,
                "cv": result.cv,
                "test": result.test.to_dict() if result.test else None,
            },
            indent=2,
            ensure_ascii=False,
        )
    )


def run_facts(options: TrainOptions, device: str, history: list[dict], best: int) -> dict:
    """What the weights' provenance says of the run: seed, epochs, date, machine, options."""
    import torch  # here, so that drawing a figure never loads torch

    where = torch.cuda.get_device_name(device) if device.startswith("cuda") else (platform.processor() or "cpu")
    # where the cache was is this machine's business (it never changes the weights)
    opts = {k: v for k, v in asdict(options).items() if k != "cache_dir"}
    return {
        "seed": options.seed,
        "epochs": len(history),
        "best_epoch": best,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}; torch {torch.__version__} on {device} ({where})",
        "options": opts,
    }


@quiet()
def save_curves(history: list[dict], path: str | Path, *, best_epoch: int = 0, title: str = "") -> Path:
    """Loss and accuracy per epoch, training and validation, as in the papers' figures."""
    fig = _figure(9, 3.6)
    epochs = [r["epoch"] for r in history]
    for ax, (name, keys) in zip(
        fig.subplots(1, 2),
        (
            ("loss", ("train_loss", "valid_loss")),
            ("accuracy", ("train_segment_accuracy", "valid_segment_accuracy", "valid_track_accuracy")),
        ),
    ):
        for key in keys:
            if any(key in r for r in history):
                ax.plot(epochs, [r.get(key, math.nan) for r in history], marker=".", label=key.replace("_", " "))
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


@quiet()
def confusion_png(rep: EvalReport, path: str | Path, *, title: str = "") -> Path:
    """A report's confusion matrix as an image (EvalReport.save_confusion_png)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(rep.labels)
    fig = _figure(2.5 + 0.55 * n, 2.0 + 0.5 * n)
    ax = fig.add_subplot()
    ConfusionMatrixDisplay(np.array(rep.confusion), display_labels=rep.labels).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation="vertical"
    )
    ax.set_title(
        title or f"track accuracy {rep.track_accuracy:.3f}, macro-F1 {rep.macro_f1:.3f} ({rep.n_tracks} tracks)",
        fontsize=9,
    )
    path = Path(path)
    with writing(path):
        fig.savefig(path, dpi=120)
    return path


def coverage_png(rep: EvalReport, path: str | Path, *, title: str = "", marks: Sequence[float] = ()) -> Path:
    """Precision of the top genre against the share of files written, thresholds annotated;
    `marks` draws a line at each of these minimum confidences (EvalReport.save_coverage_png)."""
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot()
    cov = [c["coverage"] for c in rep.coverage]
    ax.plot(cov, [c["precision"] for c in rep.coverage], marker=".", label="precision of the top genre")
    for c in rep.coverage[max(1, len(rep.coverage) // 8) - 1 :: max(1, len(rep.coverage) // 8)]:
        ax.annotate(
            f"{c['threshold']:.2f}",
            (c["coverage"], c["precision"]),
            fontsize=7,
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
        )
    for m in marks:
        covered, precision = rep.precision_at(m)
        ax.axvline(covered, color="grey", linestyle=":", label=f"min-confidence {m:g}: precision {precision:.2f}")
    ax.set_xlabel("share of files written (coverage), most confident first")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.08)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title or f"precision against coverage ({rep.n_tracks} tracks; numbers: min-confidence)", fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig
