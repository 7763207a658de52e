"""The training loop, on features computed once: one model, one visible loop, the best epoch kept.

What to train on and how it was split is mgctag.train's business; this module only fits a `Net`
to given features (`_fit`) and measures it on others (`validate`). Progress goes to a `Progress`
object the caller supplies (the CLI draws it with rich), so nothing here prints.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import cache
from .errors import TrainError
from .evaluate import EvalReport, check_labels, report
from .model import Classifier
from .vote import softmax

if TYPE_CHECKING:
    from .teacher import Teacher
    from .train import TrainOptions


class Progress:
    """What training reports. Subclass and override; the base is silent."""

    def stage(self, name: str, *, epochs: int) -> None:
        """A model starts training ("fold 3/10", "final model")."""

    def features(self, done: int, total: int) -> None:
        """Tracks whose features are ready (cached or computed)."""

    def epoch(self, record: dict) -> None:
        """One epoch finished: its history record."""

    def note(self, text: str) -> None:
        """Something the user should know (a left-out track, a split detail)."""


class Net:
    """What the loop trains: the backbone on normalised features, or only the head on frozen-trunk embeddings.

    A backbone with an `embed` method and a `head` module (musicnn-head) has a frozen trunk, so
    its embeddings are computed once (`inputs`) and only the head learns; a backbone that
    normalises its own input (musicnn) keeps the Classifier's normalisation at identity.
    """

    def __init__(self, model: Classifier):
        bb = model.backbone
        self.model = model
        self.frozen = callable(getattr(bb, "embed", None)) and isinstance(getattr(bb, "head", None), nn.Module)
        self.module = bb.head if self.frozen else bb
        self.normalised = not (self.frozen or getattr(bb, "normalises_input", False))

    def inputs(self, fs: cache.FeatureSet, *, device: str, batch_size: int = 64) -> cache.FeatureSet:
        """Front-end features -> what `__call__` takes (embeddings for a frozen trunk)."""
        if not self.frozen:
            return fs
        if not len(fs.x):
            return replace(fs, x=np.zeros((0, self.model.backbone.trunk.embed_dim), np.float32))
        return replace(fs, x=_run(_Part(self.model, "embed"), fs.x, device=device, batch_size=batch_size))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) if self.frozen else self.model.backbone(self.model.normalise(x))

    def parameters(self) -> list[nn.Parameter]:
        return [p for p in self.module.parameters() if p.requires_grad]


def _fit(
    net: Net,
    train_fs: cache.FeatureSet,
    valid_fs: cache.FeatureSet,
    labels: list[str],
    options: TrainOptions,
    progress: Progress,
    device: str,
    teacher: Teacher | None = None,
) -> tuple[list[dict], int, EvalReport | None]:
    """The loop. Returns the history, the best epoch (lowest validation loss) and its validation report.

    Each history record: epoch, train_loss (the training objective: cross-entropy against the
    labels, or with a teacher the distillation loss), train_segment_accuracy (labelled segments,
    as seen while learning, dropout on), valid_loss (cross-entropy against the true labels, as
    without a teacher), valid_segment_accuracy, valid_track_accuracy (voted as scan does),
    valid_macro_f1, seconds. Without validation tracks every epoch runs and the last is kept.
    A loss that is no longer a number (diverged) ends the loop: the best epoch before it is kept,
    and TrainError is raised when there is none.
    """
    torch.manual_seed(options.seed)
    model = net.model.to(device)
    if net.normalised:
        model.set_normalisation(*bin_stats(train_fs.x))
    x, y, soft = _data(train_fs, labels, device, teacher)
    amp = options.amp and device.startswith("cuda")
    optimizer = torch.optim.Adam(net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    order = torch.Generator().manual_seed(options.seed)
    history: list[dict] = []
    best_loss, best_epoch, best_state, best_val, waited = math.inf, 0, None, None, 0
    for epoch in range(1, options.max_epochs + 1):
        started = time.monotonic()
        model.train()
        loss_sum = correct = seen = labelled = 0.0
        for idx in _batches(len(y), options.batch_size, order):
            idx = idx.to(device)
            xb, yb = x[idx].float(), y[idx]
            # forward, backward, update
            with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                logits = net(xb)
            if soft is None:
                loss, ce = _loss(logits.float(), yb, net)
            else:
                loss, ce = _loss(logits.float(), yb, net, soft=soft[idx], teacher=teacher)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            # what the epoch's record says of training (labelled segments only for accuracy)
            loss_sum += ce.item() * len(yb)
            known = yb >= 0
            correct += (logits.argmax(1)[known] == yb[known]).sum().item()
            labelled += known.sum().item()
            seen += len(yb)
        record = {
            "epoch": epoch,
            "train_loss": loss_sum / max(seen, 1),
            "train_segment_accuracy": correct / max(labelled, 1),
        }
        # evaluate on the validation tracks
        val = None
        if valid_fs.tracks:
            val_loss, val = validate(net, valid_fs, labels, options, device)
            record.update(valid_loss=val_loss, **{f"valid_{k}": v for k, v in headline(val).items()})
        record["seconds"] = time.monotonic() - started
        history.append(record)
        progress.epoch(record)
        if _diverged(record, best_epoch if best_state is not None else None, progress):
            break
        # keep the best epoch; stop after `patience` epochs without a lower validation loss
        score = record.get("valid_loss", -epoch)  # no validation: the latest epoch is the best
        if score < best_loss:
            best_loss, best_epoch, best_val, waited = score, epoch, val, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            waited += 1
            if waited >= options.patience:
                break
    model.load_state_dict(best_state)
    return history, best_epoch, best_val


def _data(
    fs: cache.FeatureSet, labels: list[str], device: str, teacher: Teacher | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The training features (as stored), label indices (-1: unlabelled) and the teacher's targets, on `device`."""
    x, y = _tensor(fs.x, device, float32=False), torch.from_numpy(fs.targets(labels)).to(device)
    if teacher is not None and fs.soft is None:
        raise ValueError("a teacher without its targets: attach them to the features first")
    soft = torch.from_numpy(fs.soft).to(device) if teacher is not None else None
    if soft is None and bool((y < 0).any()):
        raise ValueError("unlabelled segments can only be learnt from a teacher")
    return x, y, soft


def _diverged(record: dict, best_epoch: int | None, progress: Progress) -> bool:
    """Whether a loss of this epoch is no longer a number; TrainError when no epoch before it can be kept."""
    diverged = [k for k in ("train_loss", "valid_loss") if k in record and not math.isfinite(record[k])]
    if not diverged:
        return False
    what, value = " and ".join(k.replace("_", " ") for k in diverged), record[diverged[0]]
    if best_epoch is None:
        raise TrainError(
            f"the {what} is {value} from epoch {record['epoch']} on: training diverged (a lower learning rate may help)"
        )
    progress.note(
        f"epoch {record['epoch']}: the {what} is {value} (training diverged); stopped, epoch {best_epoch} kept"
    )
    return True


def _loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    net: Net,
    *,
    soft: torch.Tensor | None = None,
    teacher: Teacher | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss to minimise, its cross-entropy part): the architecture's own penalty (mlp's L2) is added.

    With `soft` targets (a teacher's), the cross-entropy part is `distillation_loss`.
    """
    if soft is None:
        ce = F.cross_entropy(logits, targets)
    else:
        ce = distillation_loss(logits, targets, soft, weight=teacher.weight, temperature=teacher.temperature)
    penalty = getattr(net.module, "penalty", None)
    return (ce + penalty() if callable(penalty) else ce), ce.detach()


def distillation_loss(
    logits: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor, *, weight: float, temperature: float = 1.0
) -> torch.Tensor:
    """Hinton et al.'s loss: (1 - w) CE(label, softmax(z)) + w T^2 CE(q_T, softmax(z / T)), mean over segments.

    `soft` holds the teacher's distributions q_T, already tempered (mgctag.teacher.temper); an
    unlabelled segment (label -1) has only the second term, with weight 1. Both terms are
    cross-entropies against (soft) targets; at T = 1 their sum is exactly the cross-entropy
    against the mixed target (1 - w) one-hot + w q. T^2 keeps the soft term's gradients on the
    scale of the hard one's as T grows (Hinton, Vinyals & Dean 2015, section 2).
    """
    known = labels >= 0
    hard = F.cross_entropy(logits, labels.clamp(min=0), reduction="none")
    taught = -(soft * F.log_softmax(logits / temperature, dim=1)).sum(dim=1) * temperature**2
    w = torch.where(known, torch.full_like(taught, weight), torch.ones_like(taught))
    return (torch.where(known, (1.0 - w) * hard, torch.zeros_like(hard)) + w * taught).mean()


@torch.no_grad()
def validate(
    net: Net, fs: cache.FeatureSet, labels: list[str], options: TrainOptions, device: str
) -> tuple[float, EvalReport]:
    """Mean segment cross-entropy and the report of `fs` (inputs as `net` takes them)."""
    probs, loss = predict(net, fs, device=device, batch_size=options.batch_size, targets=fs.targets(labels))
    truth = check_labels(fs.tracks, labels)
    return loss, report(labels, probs, fs.owner, truth, vote_method=options.vote, paths=[t.path for t in fs.tracks])


@torch.no_grad()
def predict(
    net: Net, fs: cache.FeatureSet, *, device: str, batch_size: int = 128, targets: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """(segments, classes) softmax probabilities, and the mean cross-entropy against `targets` (if given)."""
    if not len(fs.x):
        out = torch.zeros(0, len(net.model.labels))
    else:
        part = _Part(net.model, "head" if net.frozen else "backbone")
        out = torch.from_numpy(_run(part, fs.x, device=device, batch_size=batch_size))
    loss = float(F.cross_entropy(out, torch.from_numpy(targets))) if targets is not None and len(out) else math.nan
    return softmax(out.numpy()), loss


class _Part(nn.Module):
    """A part of the model as one module, for mgctag.infer's batched inference: the backbone on
    normalised features, a frozen trunk's head on its embeddings, or the trunk's embedding."""

    def __init__(self, model: Classifier, part: str):
        super().__init__()
        self.model, self.part = model, part

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bb = self.model.backbone
        if self.part == "head":
            return bb.head(x)
        if self.part == "embed":
            return bb.embed(self.model.normalise(x))
        return bb(self.model.normalise(x))


def _run(module: nn.Module, x: np.ndarray, *, device: str, batch_size: int) -> np.ndarray:
    """`module` over the rows of `x` through mgctag.infer (the one batched inference: batch norms
    folded into a copy; float16 autocast on CUDA, as training's steps run); its raw float32 output."""
    from .infer import BatchedInference

    module.to(device).eval()
    batcher = BatchedInference(module, batch_size=batch_size, precision="fp16", activation=False)
    return np.concatenate([out for _, out in [*batcher.feed(0, x), *batcher.flush()]])


def headline(rep: EvalReport) -> dict:
    """The figures an epoch's record and the weights' metrics keep of a report."""
    return {"segment_accuracy": rep.segment_accuracy, "track_accuracy": rep.track_accuracy, "macro_f1": rep.macro_f1}


def bin_stats(x: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature-bin mean and std over segments and frames of x (segments, bins, frames), in float64."""
    total = np.zeros(x.shape[1])
    squares = np.zeros(x.shape[1])
    for i in range(0, len(x), chunk):
        part = x[i : i + chunk].astype(np.float64)
        total += part.sum(axis=(0, 2))
        squares += np.square(part).sum(axis=(0, 2))
    n = max(len(x) * x.shape[2], 1)
    mean = total / n
    return mean, np.sqrt(np.maximum(squares / n - mean**2, 0.0))


def _batches(n: int, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Shuffled index batches; a last batch of one is left out (batch norm cannot train on it)."""
    order = torch.randperm(n, generator=generator)
    if n % batch_size == 1 and n > 1:
        order = order[:-1]
    return order.split(batch_size)


def _tensor(x: np.ndarray, device: str, float32: bool = True) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    return t.float() if float32 else t
