"""How good a model is on labelled tracks: the figures users and papers quote, from scikit-learn.

`evaluate` hears each track the way `scan` does (the same windows, the same Analyser: models,
genre names, presets, vote), so its track-level accuracy is what a user would get from tagging
those files. `report` is the pure part (probabilities in, metrics out); training's validation
and cross-validation call it on cached features, so every figure mgctag prints is computed one
way. The precision/coverage curve says how right the top genre is when only the files the
model is most confident about are written: what `--min-confidence` trades.
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
from .errors import DataError
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
    labels: list[str]  # the model's labels: rows/columns of `confusion`
    vote: str  # how segments were voted
    n_tracks: int
    n_segments: int
    track_accuracy: float
    segment_accuracy: float
    macro_f1: float  # track level, over the labels present in truth or predictions
    per_class: dict[str, dict]  # label -> precision, recall, f1, support (track level)
    confusion: list[list[int]]  # [true][predicted] track counts
    predictions: list[dict] = field(default_factory=list)  # path, true, predicted, confidence
    skipped: list[dict] = field(default_factory=list)  # path, reason
    coverage: list[dict] = field(default_factory=list)  # precision at each coverage: see coverage_curve

    def precision_at(self, min_confidence: float) -> tuple[float, float]:
        """(coverage, precision) of the top genre when only files at or above `min_confidence` are written."""
        kept = [p for p in self.predictions if p["confidence"] >= min_confidence]
        if not kept:
            return 0.0, float("nan")
        return len(kept) / len(self.predictions), sum(p["true"] == p["predicted"] for p in kept) / len(kept)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def save_confusion_png(self, path: str | Path, *, title: str = "") -> Path:
        """The confusion matrix as an image (drawn by mgctag.artefacts)."""
        from .artefacts import confusion_png

        return confusion_png(self, path, title=title)

    def save_coverage_png(self, path: str | Path, *, title: str = "", marks: Sequence[float] = ()) -> Path:
        """The precision/coverage curve as an image; `marks`: minimum confidences to draw a line at."""
        from .artefacts import coverage_png

        return coverage_png(self, path, title=title, marks=marks)


def coverage_curve(confidences: Sequence[float], correct: Sequence[bool]) -> list[dict]:
    """Files sorted by confidence, best first: for each prefix, its share of all files (coverage),
    how many of its top genres are right (precision), and the confidence that admits it (threshold)."""
    order = np.argsort(-np.asarray(confidences, dtype=np.float64), kind="stable")
    hits = np.cumsum(np.asarray(correct, dtype=np.float64)[order])
    n = len(order)
    return [
        {"coverage": (i + 1) / n, "precision": float(hits[i] / (i + 1)), "threshold": float(confidences[j])}
        for i, j in enumerate(order)
    ]


@quiet()
def report(
    labels: Sequence[str],
    seg_probs: np.ndarray,
    owner: np.ndarray,
    truth: Sequence[int],
    *,
    vote_method: str = "mean",
    paths: Sequence[Path] | None = None,
    track_probs: np.ndarray | None = None,
) -> EvalReport:
    """Metrics from segment probabilities.

    Parameters
    ----------
    seg_probs : (segments, classes) probabilities
    owner : (segments,) index of each segment's track
    truth : (tracks,) class index of each track
    paths : (tracks,) for the per-track predictions
    track_probs : (tracks, classes) the tracks' scores when they were voted already (scan's way)
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(labels)
    truth = np.asarray(truth, dtype=np.int64)
    owner = np.asarray(owner)
    if len(truth) == 0:
        raise DataError("nothing to evaluate: no track could be read")
    if track_probs is None:
        track_probs = np.stack([vote(seg_probs[owner == i], vote_method) for i in range(len(truth))])
    pred = track_probs.argmax(axis=1)
    seg_pred = seg_probs.argmax(axis=1)
    every = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, labels=every, zero_division=0)
    per_class = {
        g: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, g in enumerate(labels)
    }
    predictions = []
    if paths is not None:
        predictions = [
            {"path": str(p), "true": labels[t], "predicted": labels[k], "confidence": float(track_probs[i, k])}
            for i, (p, t, k) in enumerate(zip(paths, truth, pred))
        ]
    return EvalReport(
        labels=labels,
        vote=vote_method,
        n_tracks=len(truth),
        n_segments=len(seg_probs),
        track_accuracy=float(accuracy_score(truth, pred)),
        segment_accuracy=float(accuracy_score(truth[owner], seg_pred)),
        macro_f1=float(f1_score(truth, pred, average="macro", zero_division=0)),
        per_class=per_class,
        confusion=confusion_matrix(truth, pred, labels=every).tolist(),
        predictions=predictions,
        coverage=coverage_curve(track_probs[np.arange(len(pred)), pred], pred == truth),
    )


def check_labels(tracks: Sequence[Track], labels: Sequence[str]) -> np.ndarray:
    """(tracks,) class indices; DataError naming the labels the model does not know.

    Labels match in their canonical names (hiphop = Hip-Hop), as the genre map matches them.
    """
    from .genremap import GenreMap

    index = {GenreMap.key(g): i for i, g in enumerate(labels)}
    unknown = sorted({t.label for t in tracks if GenreMap.key(t.label) not in index})
    if unknown:
        raise DataError(
            f"labels the model does not know: {', '.join(unknown)} (it knows: {', '.join(labels)}; "
            "a --genre-map can rename them)"
        )
    return np.array([index[GenreMap.key(t.label)] for t in tracks], dtype=np.int64)


def data_genres(tracks: Sequence[Track]) -> str:
    """The tracks' own genres as a `--genres` list: evaluate the model on the genres the data has."""
    return ",".join(sorted({t.label for t in tracks}))


HELD_OUT = ("valid", "test")  # split lists a model was not trained on


def in_sample(
    metas: Sequence, source: str, *, split_dir: str | Path | None = None, split: str | None = None
) -> list[str]:
    """The models (WeightsMeta) whose provenance says they were trained on `source` (a TrackSet's,
    e.g. "folders:gtzan"): on it they are scored on music they learnt, so their figures say
    nothing about new music. A valid or test list of the split files a model was trained with
    (`split_dir`, `split`) is held out, not in-sample."""
    from .splits import described

    held_out = split_dir is not None and split in HELD_OUT
    return [
        m.model_id
        for m in metas
        if m.provenance.get("data") == source and not (held_out and m.provenance.get("split") == described(split_dir))
    ]


def evaluate(analyser, tracks: Sequence[Track], *, workers: int | None = 0) -> EvalReport:
    """Label `tracks` as `scan` would with `analyser` (an mgctag.analyser.Analyser, or a
    (Classifier, WeightsMeta) pair, evaluated on every label it has) and compare.

    Tracks that cannot be decoded are listed in `skipped`. `workers`: decoding processes, as
    in a scan (None: one per usable core, 0: in this process).
    """
    from .analyser import Analyser, member
    from .pool import decode_all, usable_cpus

    if isinstance(analyser, tuple):
        analyser = Analyser.of([member(*analyser)])
    if workers is None:
        workers = usable_cpus()

    truth = check_labels(tracks, analyser.genres)
    heard: dict[int, list[np.ndarray]] = {}
    skipped = []

    def keep(items):
        for i, parts in items:
            heard[i] = analyser.segment_scores(parts)

    for i, d in enumerate(decode_all([t.path for t in tracks], analyser.job(), workers)):  # in input order
        if d.error:
            skipped.append({"path": str(d.path), "reason": d.error})
            continue
        keep(analyser.listen(i, d.windows))
    keep(analyser.listen_flush())
    kept = sorted(heard)
    n = len(analyser.genres)
    segs = [np.concatenate(heard[i]) for i in kept]  # every member's segments, over the shared genres
    seg_probs = np.concatenate(segs) if segs else np.zeros((0, n))
    owner = np.concatenate([np.full(len(s), k) for k, s in enumerate(segs)]) if segs else np.zeros(0, int)
    track_probs = np.stack([analyser.vote_members(heard[i]) for i in kept]) if kept else np.zeros((0, n))
    rep = report(
        analyser.genres,
        seg_probs,
        owner,
        truth[kept],
        vote_method=analyser.vote_method,
        paths=[tracks[i].path for i in kept],
        track_probs=track_probs,
    )
    rep.skipped = skipped
    return rep
