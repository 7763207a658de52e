"""Training runs: which tracks train, validate and test a model (features computed once), and what it records.

`train` fits one model on given training and validation tracks; `cross_validate` measures an
architecture with stratified grouped K-fold; `fit` is what `mgctag train` runs (optional CV,
then the final model on the chosen split, tested when there is a test split). The loop itself
(early stopping on validation, the best epoch kept) is mgctag.loop; `save_run` (mgctag.artefacts)
writes the weights with their history and curves. Progress goes to a `Progress` object the
caller supplies (the CLI draws it with rich), so nothing here prints.

With a `Teacher` (mgctag.teacher) each training segment also learns the teacher's distribution
over the genres (`distillation_loss`), and unlabelled tracks can be learnt from it alone; they
only ever join the training part, never validation, a test split or a CV test fold, and
validation and early stopping always use the true labels.
"""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

# The names mgctag.train had before the loop and the artefacts left it are still imported from here (noqa).
# loop._fit and loop.validate are called through the module: one patch of mgctag.loop (a test's) reaches every call.
from . import cache, loop, splits
from .artefacts import run_facts, save_curves, save_run  # noqa: F401
from .dataset import Track, TrackSet
from .errors import DataError
from .evaluate import EvalReport, check_labels
from .frontends import FrontendSpec
from .infer import pick_device
from .loop import Net, Progress, bin_stats, distillation_loss, validate  # noqa: F401
from .model import Classifier
from .models import Architecture, architecture_names, get_architecture
from .weights import WeightsMeta

if TYPE_CHECKING:
    from .teacher import Teacher


@dataclass(frozen=True)
class TrainOptions:
    lr: float = 1e-3  # Adam's learning rate (the CRNN studies' 0.001)
    batch_size: int = 128  # segments per step, at most
    max_epochs: int = 100
    patience: int = 5  # epochs without a lower validation loss before stopping
    seed: int = 0  # weights, batch order and random splits: same seed, same run (on CPU)
    weight_decay: float = 0.0  # Adam's L2 on every weight; mlp's Keras-style L2 is its own `l2` arch param
    arch_params: dict = field(default_factory=dict)  # overrides of the architecture's constructor keywords
    valid_fraction: float = 0.1  # of the training tracks, held out for early stopping when no valid split is given
    vote: str = "mean"  # how validation tracks vote, as in scan
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # mixed precision (float16 autocast + grad scaling); only ever used on CUDA
    cache_dir: Path | None = None  # feature cache; None: mgctag.cache.default_dir()
    workers: int = 0  # decoding processes for tracks not cached yet (0: this process)


@dataclass
class TrainResult:
    model: Classifier  # the best epoch's weights, eval mode, on the CPU
    meta: WeightsMeta
    history: list[dict]  # one record per epoch (see mgctag.loop._fit)
    best_epoch: int
    valid: EvalReport | None = None
    test: EvalReport | None = None
    cv: dict | None = None
    skipped: list[tuple[Track, str]] = field(default_factory=list)  # tracks that could not be decoded


# --- one model --------------------------------------------------------------------------------


def train(
    tracks: Sequence[Track],
    arch: str,
    options: TrainOptions = TrainOptions(),
    *,
    valid: Sequence[Track] | None = None,
    progress: Progress | None = None,
    provenance: dict | None = None,
    teacher: Teacher | None = None,
    unlabelled: Sequence[Track] = (),
) -> TrainResult:
    """Fit `arch` on `tracks`, stopping early on `valid` (None: hold out options.valid_fraction of `tracks`).

    The labels are the genres of the training tracks that could be decoded, sorted (at least
    two). Normalisation statistics come from the training tracks only. `provenance` is merged
    into the weights' provenance (data source, split, command). With a `teacher`, targets mix
    each label with the teacher's distribution, and the `unlabelled` tracks are learnt from the
    teacher alone (they only ever train).
    """
    progress = progress or Progress()
    spec = _architecture(arch, options).frontend
    tracks = list(tracks)
    _check_teacher(teacher, unlabelled)
    if valid is None:
        keep, held = _hold_out(tracks, options)
        tracks, valid = [tracks[i] for i in keep], [tracks[i] for i in held]
    train_raw = _features(tracks, spec, options, progress)
    valid_raw = _features(list(valid), spec, options, progress, allow_empty=True)
    labels = _labels(train_raw.tracks)
    check_labels(valid_raw.tracks, labels)
    train_raw, extra = _taught(train_raw, list(unlabelled), labels, spec, teacher, options, progress)
    n_unlabelled = len(extra.tracks) if extra is not None else 0
    train_raw = train_raw.plus(extra) if extra is not None else train_raw
    device = pick_device(options.device)
    model = _build(arch, labels, options)
    net = Net(model)
    train_fs, valid_fs = net.inputs(train_raw, device=device), net.inputs(valid_raw, device=device)
    progress.stage("final model", epochs=options.max_epochs)
    history, best, val = loop._fit(net, train_fs, valid_fs, labels, options, progress, device, teacher=teacher)
    counts = {"train": len(train_fs.tracks) - n_unlabelled, "valid": len(valid_fs.tracks)}
    if teacher is not None:
        counts["unlabelled"] = n_unlabelled
    prov = {**(provenance or {}), "tracks": counts, **run_facts(options, device, history, best)}
    description = f"{arch} trained by mgctag on {prov.get('data', 'user data')}"
    if teacher is not None:
        prov["teacher"] = teacher.provenance()
        description += f", taught by {teacher.name}"
    metrics = {f"valid_{k}": v for k, v in loop.headline(val).items()} if val else {}
    meta = WeightsMeta(
        arch=arch,
        labels=labels,
        frontend=model.spec.to_dict(),
        arch_params=model.arch_params,
        provenance=prov,
        metrics=metrics,
        licence=getattr(model.backbone, "licence", ""),
        description=description,
    )
    return TrainResult(model.cpu().eval(), meta, history, best, valid=val, skipped=train_fs.skipped + valid_fs.skipped)


def _check_teacher(teacher: Teacher | None, unlabelled: Sequence[Track]) -> None:
    if unlabelled and teacher is None:
        raise DataError(
            "unlabelled tracks are learnt from a teacher's outputs alone: give a teacher (--teacher MODEL) to use them"
        )
    if any(t.label is not None for t in unlabelled):
        raise ValueError("unlabelled tracks must have no label")


def _taught(
    fs: cache.FeatureSet,
    unlabelled: list[Track],
    labels: list[str],
    spec: FrontendSpec,
    teacher: Teacher | None,
    options: TrainOptions,
    progress: Progress,
) -> tuple[cache.FeatureSet, cache.FeatureSet | None]:
    """The labelled features with the teacher's targets attached (unchanged without a teacher), and
    the unlabelled tracks' features with theirs (None without a teacher or unlabelled tracks)."""
    if teacher is None:
        return fs, None
    fs = _teach(fs, labels, spec, teacher, options, progress)
    if not unlabelled:
        return fs, None
    extra = _features(unlabelled, spec, options, progress, what="unlabelled track")
    return fs, _teach(extra, labels, spec, teacher, options, progress)


def _teach(
    fs: cache.FeatureSet,
    labels: list[str],
    spec: FrontendSpec,
    teacher: Teacher,
    options: TrainOptions,
    progress: Progress,
) -> cache.FeatureSet:
    out, got = teacher.attach(
        fs, labels, spec, cache_dir=options.cache_dir, workers=options.workers, on_track=progress.features
    )
    for t, reason in out.skipped[len(fs.skipped) :]:
        progress.note(f"{t.path}: left out ({reason})")
    if got.computed:
        progress.note(f"teacher {teacher.name}: heard {got.computed} track(s), {got.reused} more from the cache")
    return out


# --- cross-validation and the full run ---------------------------------------------------------


def cross_validate(
    tracks: Sequence[Track],
    arch: str,
    folds: int,
    options: TrainOptions = TrainOptions(),
    *,
    progress: Progress | None = None,
    teacher: Teacher | None = None,
    unlabelled: Sequence[Track] = (),
) -> dict:
    """Stratified grouped K-fold: per-fold test accuracy and macro-F1 (track level), their mean and std.

    Early stopping in each fold uses a validation part carved from that fold's training tracks,
    never its test fold. Features are computed (or read from the cache) once for all folds.
    The folds are made of the labelled tracks; `unlabelled` ones (with a `teacher`) join every
    fold's training part and nothing else.
    """
    progress = progress or Progress()
    _check_teacher(teacher, unlabelled)
    device = pick_device(options.device)
    spec = _architecture(arch, options).frontend
    raw = _features(list(tracks), spec, options, progress)
    labels = _labels(raw.tracks)
    raw, extra = _taught(raw, list(unlabelled), labels, spec, teacher, options, progress)
    template = Net(_build(arch, labels, options))
    fs = template.inputs(raw, device=device)
    extra = template.inputs(extra, device=device) if extra is not None else None
    per_fold = []
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for k, (train_idx, test_idx) in enumerate(splits.kfold(fs.tracks, folds, seed=options.seed), 1):
        keep, held = _hold_out([fs.tracks[i] for i in train_idx], options)
        net = _fold_net(template, arch, labels, options)
        progress.stage(f"fold {k}/{folds}", epochs=options.max_epochs)
        part, valid_part = fs.subset(train_idx[keep]), fs.subset(train_idx[held])
        part = part.plus(extra) if extra is not None else part
        history, best, _ = loop._fit(net, part, valid_part, labels, options, progress, device, teacher=teacher)
        _, test = loop.validate(net, fs.subset(test_idx), labels, options, device)
        confusion += np.array(test.confusion)
        per_fold.append(
            {"fold": k, "test_tracks": len(test_idx), "epochs": len(history), "best_epoch": best, **loop.headline(test)}
        )
    out: dict = {"folds": folds, "tracks": len(fs.tracks), "labels": labels}
    if extra is not None:
        out["unlabelled_tracks"] = len(extra.tracks)
    for key in ("track_accuracy", "macro_f1", "segment_accuracy"):
        values = np.array([f[key] for f in per_fold])
        out[f"{key}_mean"], out[f"{key}_std"] = float(values.mean()), float(values.std())
    out["per_fold"], out["confusion"] = per_fold, confusion.tolist()
    return out


def fit(
    data: TrackSet,
    arch: str,
    options: TrainOptions = TrainOptions(),
    *,
    folds: int = 0,
    split_dir: str | Path | None = None,
    test_fraction: float = 0.1,
    progress: Progress | None = None,
    command: str = "",
    teacher: Teacher | None = None,
    unlabelled: TrackSet | None = None,
) -> TrainResult:
    """What `mgctag train` does: optional K-fold CV, then the final model, tested on a test split if any.

    Splits, in order of precedence: split files in `split_dir`; the split column of a manifest;
    with `folds`, all tracks (less a validation part for early stopping) after the CV; otherwise a
    random grouped 80/10/10 split (`options.valid_fraction`, `test_fraction`). The CV figures go
    into the weights' metrics (flat keys `cv_*`), next to the test split's (`test_*`). Tracks
    that cannot be decoded are left out before any split (`TrainResult.skipped`), so the splits
    and the two-genre minimum count only what can be learnt from. With a `teacher`, the
    `unlabelled` tracks join the training part of every model trained (CV folds and the final
    model) and are never split.
    """
    progress = progress or Progress()
    extra = list(unlabelled.tracks) if unlabelled else []
    _check_teacher(teacher, extra)
    for w in data.warnings + (unlabelled.warnings if unlabelled else ()):
        progress.note(w)
    tracks = list(data.tracks)
    notes: list[str] = []
    if split_dir:
        tracks, notes = splits.apply_split_files(tracks, split_dir)
    spec = _build(arch, _labels(tracks), options).spec  # bad settings fail before anything is decoded
    if teacher is not None:
        teacher.columns(_labels(tracks))  # so does a teacher that cannot name a genre
    tracks, skipped = _readable(tracks, spec, options, progress)
    if extra:
        labelled = {os.path.realpath(t.path) for t in data.tracks}
        extra = [t for t in extra if os.path.realpath(t.path) not in labelled]  # never a labelled track again
        fs = _features(extra, spec, options, progress, what="unlabelled track") if extra else None
        if fs is None:
            raise DataError("every unlabelled track is also a labelled one")
        decoded = set(fs.tracks)
        extra, skipped = [t for t in extra if t in decoded], skipped + fs.skipped
    for n in notes:
        progress.note(n)
    if split_dir:
        split = splits.described(split_dir)
    elif any(t.split for t in tracks):
        tracks = [t if t.split else replace(t, split="train") for t in tracks]
        split = "manifest split column"
    elif folds:
        split = f"all tracks after {folds}-fold CV, {options.valid_fraction:.0%} held out for early stopping"
    else:
        tracks = splits.random_split(tracks, valid=options.valid_fraction, test=test_fraction, seed=options.seed)
        split = (
            f"random grouped split, {options.valid_fraction:.0%} valid, {test_fraction:.0%} test, seed {options.seed}"
        )
    cv = (
        cross_validate(tracks, arch, folds, options, progress=progress, teacher=teacher, unlabelled=extra)
        if folds
        else None
    )
    parts = splits.by_split(tracks) if any(t.split for t in tracks) else {"train": tracks, "valid": [], "test": []}
    provenance = {"data": data.source, "split": split, "command": command}
    if extra:
        provenance["unlabelled"] = unlabelled.source
    result = train(
        parts["train"],
        arch,
        options,
        valid=parts["valid"] or None,
        progress=progress,
        provenance=provenance,
        teacher=teacher,
        unlabelled=extra,
    )
    if parts["test"]:
        net = Net(result.model)
        device = pick_device(options.device)
        fs = net.inputs(_features(parts["test"], result.model.spec, options, progress), device=device)
        _, result.test = loop.validate(net, fs, result.meta.labels, options, device)
        result.model.cpu().eval()
        result.meta.metrics.update({f"test_{k}": v for k, v in loop.headline(result.test).items()})
        result.meta.metrics["test_tracks"] = result.test.n_tracks
    if cv:
        result.cv = cv
        result.meta.metrics.update({f"cv_{k}": v for k, v in cv.items() if k.endswith(("_mean", "_std"))})
        result.meta.metrics["cv_folds"] = folds
    result.skipped = skipped + result.skipped
    return result


def _readable(
    tracks: list[Track], spec: FrontendSpec, options: TrainOptions, progress: Progress
) -> tuple[list[Track], list[tuple[Track, str]]]:
    """The tracks that decode, in order, and the others with their reasons; at least two genres must remain.

    Their features are computed (and cached) here once, so what follows reads them from the cache.
    """
    fs = _features(tracks, spec, options, progress)
    ok = set(fs.tracks)
    kept = [t for t in tracks if t in ok]
    listed, read = Counter(t.label for t in tracks), Counter(t.label for t in kept)
    if len(read) < 2:
        counts = ", ".join(f"{g} {read[g]} of {n}" for g, n in sorted(listed.items()))
        raise DataError(f"only one genre has tracks that could be read ({counts}): training needs at least two genres")
    return kept, fs.skipped


# --- helpers ----------------------------------------------------------------------------------


def _architecture(arch: str, options: TrainOptions) -> Architecture:
    """The architecture, with the names in options.arch_params checked: before any audio is decoded."""
    try:
        a = get_architecture(arch)
    except KeyError as e:
        raise DataError(str(e).strip("'\"")) from None
    if getattr(a.build, "multilabel", False):
        # The loop learns one genre per track (softmax); a multi-label tagger is used as it was trained.
        head = f" (--arch {arch}-head)" if f"{arch}-head" in architecture_names() else ""
        raise DataError(
            f"{arch} is a pretrained multi-label tagger, which mgctag does not train; "
            f"train a head over it instead{head}"
        )
    unknown = sorted(set(options.arch_params) - set(a.params))
    if unknown:
        settings = ", ".join(f"{k}={json.dumps(v)}" for k, v in a.params.items())
        raise DataError(
            f"{arch} has no setting {', '.join(unknown)} "
            + (f"(its settings, with their defaults: {settings})" if settings else "(it takes none)")
        )
    return a


def _labels(tracks: Sequence[Track]) -> list[str]:
    """The sorted genres of the tracks to learn from; a classifier needs at least two."""
    labels = sorted({t.label for t in tracks})
    if len(labels) == 1:
        raise DataError(f"only one genre ({labels[0]}) to learn: training needs at least two genres")
    return labels


def _build(arch: str, labels: list[str], options: TrainOptions) -> Classifier:
    _architecture(arch, options)
    torch.manual_seed(options.seed)
    try:
        return Classifier(arch, labels, arch_params=options.arch_params)
    except (TypeError, ValueError) as e:
        if not options.arch_params:
            raise  # not the user's settings: a bug, shown as one
        given = ", ".join(f"{k}={json.dumps(v)}" for k, v in options.arch_params.items())
        raise DataError(f"{arch} cannot be built with {given} ({str(e).splitlines()[0]})") from None


def _fold_net(template: Net, arch: str, labels: list[str], options: TrainOptions) -> Net:
    """A new model for the next fold; a frozen trunk is shared by every fold, only its head starts again."""
    if not template.frozen:
        return Net(_build(arch, labels, options))
    model = copy.deepcopy(template.model)
    torch.manual_seed(options.seed)
    for m in model.backbone.head.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return Net(model)


def _features(
    tracks: list[Track],
    spec: FrontendSpec,
    options: TrainOptions,
    progress: Progress,
    *,
    allow_empty: bool = False,
    what: str = "track",
) -> cache.FeatureSet:
    fs = cache.features(
        tracks,
        spec,
        cache_dir=options.cache_dir,
        device=pick_device(options.device),
        workers=options.workers,
        on_track=progress.features,
    )
    for t, reason in fs.skipped:
        progress.note(f"{t.path}: left out ({reason})")
    if not fs.tracks and (tracks or not allow_empty):
        raise DataError(f"no {what} could be decoded")
    return fs


def _hold_out(tracks: list[Track], options: TrainOptions) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the tracks kept for training and of a grouped, stratified validation part
    (options.valid_fraction) carved from them for early stopping."""
    if options.valid_fraction <= 0:
        return np.arange(len(tracks)), np.zeros(0, dtype=np.int64)
    parted = splits.random_split(tracks, valid=options.valid_fraction, test=0.0, seed=options.seed)
    return (
        np.array([i for i, t in enumerate(parted) if t.split == "train"], dtype=np.int64),
        np.array([i for i, t in enumerate(parted) if t.split == "valid"], dtype=np.int64),
    )
