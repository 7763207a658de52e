"""How good a model is on labelled tracks: the figures users and papers quote, from scikit-learn.

`evaluate` hears each track the way `scan` does (the same windows, the same batched model, the
same `vote`), so its track-level accuracy is what a user would get from tagging those files.
`report` is the pure part (segment probabilities in, metrics out); training's validation and
cross-validation call it on cached features, so every figure mgctag prints is computed one way.
"""
from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .dataset import Track
from .errors import DataError, MgctagError
from .vote import vote


@contextlib.contextmanager
def quiet():
    """No library warnings on the user's terminal: scikit-learn's notes on degenerate metrics
    (mgctag passes `labels` and `zero_division` itself) and matplotlib's missing glyphs say
    nothing a user can act on. Works as a decorator too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass
class EvalReport:
    labels: list[str]                     # the model's labels: rows/columns of `confusion`
    vote: str                             # how segments were voted
    n_tracks: int
    n_segments: int
    track_accuracy: float
    segment_accuracy: float
    macro_f1: float                       # track level, over the labels present in truth or predictions
    per_class: dict[str, dict]            # label -> precision, recall, f1, support (track level)
    confusion: list[list[int]]            # [true][predicted] track counts
    predictions: list[dict] = field(default_factory=list)   # path, true, predicted, confidence
    skipped: list[dict] = field(default_factory=list)       # path, reason

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @quiet()
    def save_confusion_png(self, path: str | Path, *, title: str = "") -> Path:
        """The confusion matrix as an image (no pyplot: nothing global changes, no display needed)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from sklearn.metrics import ConfusionMatrixDisplay

        n = len(self.labels)
        fig = Figure(figsize=(2.5 + 0.55 * n, 2.0 + 0.5 * n), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ConfusionMatrixDisplay(np.array(self.confusion), display_labels=self.labels).plot(
            ax=ax, cmap="Blues", colorbar=False, xticks_rotation="vertical")
        ax.set_title(title or f"track accuracy {self.track_accuracy:.3f}, macro-F1 {self.macro_f1:.3f} "
                              f"({self.n_tracks} tracks)", fontsize=9)
        path = Path(path)
        try:
            fig.savefig(path, dpi=120)
        except OSError as e:
            raise MgctagError(f"cannot write {path}: {(e.strerror or str(e)).lower()}") from None
        return path


@quiet()
def report(labels: Sequence[str], seg_probs: np.ndarray, owner: np.ndarray, truth: Sequence[int], *,
           vote_method: str = "mean", paths: Sequence[Path] | None = None) -> EvalReport:
    """Metrics from segment probabilities.

    Parameters
    ----------
    seg_probs : (segments, classes) softmax outputs
    owner : (segments,) index of each segment's track
    truth : (tracks,) class index of each track
    paths : (tracks,) for the per-track predictions
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(labels)
    truth = np.asarray(truth, dtype=np.int64)
    owner = np.asarray(owner)
    if len(truth) == 0:
        raise DataError("nothing to evaluate: no track could be read")
    track_probs = np.stack([vote(seg_probs[owner == i], vote_method) for i in range(len(truth))])
    pred = track_probs.argmax(axis=1)
    seg_pred = seg_probs.argmax(axis=1)
    every = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, labels=every, zero_division=0)
    per_class = {g: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                     "support": int(support[i])} for i, g in enumerate(labels)}
    predictions = []
    if paths is not None:
        predictions = [{"path": str(p), "true": labels[t], "predicted": labels[k], "confidence": float(track_probs[i, k])}
                       for i, (p, t, k) in enumerate(zip(paths, truth, pred))]
    return EvalReport(
        labels=labels, vote=vote_method, n_tracks=len(truth), n_segments=len(seg_probs),
        track_accuracy=float(accuracy_score(truth, pred)),
        segment_accuracy=float(accuracy_score(truth[owner], seg_pred)),
        macro_f1=float(f1_score(truth, pred, average="macro", zero_division=0)),
        per_class=per_class, confusion=confusion_matrix(truth, pred, labels=every).tolist(),
        predictions=predictions)


def check_labels(tracks: Sequence[Track], labels: Sequence[str]) -> np.ndarray:
    """(tracks,) class indices; DataError naming the labels the model does not know."""
    index = {g: i for i, g in enumerate(labels)}
    unknown = sorted({t.label for t in tracks} - set(index))
    if unknown:
        raise DataError(f"labels the model does not know: {', '.join(unknown)} (it knows: {', '.join(labels)}; "
                        "a --genre-map can rename them)")
    return np.array([index[t.label] for t in tracks], dtype=np.int64)


def evaluate(model, meta, tracks: Sequence[Track], *, vote_method: str = "mean", segments: int | None = None,
             batch_size: int = 64, device: str | None = None, workers: int = 0) -> EvalReport:
    """Label `tracks` as `scan` would and compare with their labels.

    `segments` per track as in scan (None: the architecture's default), windows spread over the
    track by `segment.segment_starts`. Tracks that cannot be decoded are listed in `skipped`.
    """
    from .infer import BatchedInference
    from .models import get_architecture
    from .pool import DecodeJob, WindowSpec, decode_all

    truth = check_labels(tracks, meta.labels)
    if device is not None:
        model = model.to(device)
    model.eval()
    job = DecodeJob(WindowSpec.of(model, segments or get_architecture(meta.arch).default_segments))
    batcher = BatchedInference(model, batch_size=batch_size)
    probs: dict[int, np.ndarray] = {}
    skipped = []
    for i, d in enumerate(decode_all([t.path for t in tracks], job, workers)):  # results come in input order
        if d.error:
            skipped.append({"path": str(d.path), "reason": d.error})
            continue
        for done, p in batcher.feed(i, d.windows[0]):
            probs[done] = p
    for done, p in batcher.flush():
        probs[done] = p
    kept = sorted(probs)
    seg_probs = np.concatenate([probs[i] for i in kept]) if kept else np.zeros((0, len(meta.labels)))
    owner = np.concatenate([np.full(len(probs[i]), k) for k, i in enumerate(kept)]) if kept else np.zeros(0, int)
    rep = report(meta.labels, seg_probs, owner, truth[kept], vote_method=vote_method,
                 paths=[tracks[i].path for i in kept])
    rep.skipped = skipped
    return rep
