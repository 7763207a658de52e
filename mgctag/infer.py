"""Batched inference across tracks: segments of many files share one model batch.

Feed it (key, windows) pairs; it yields (key, segment probabilities) as soon as every
segment of that key has been through the model, in the order the keys were fed. Batches
always hold exactly `batch_size` segments (a track may straddle two), except the last one
that `flush` sends: fixed shapes keep cuDNN's tuned kernels and the pinned buffers reusable.

On a CUDA model, windows are gathered straight into pinned host memory, copied without
blocking, and the newest batch's results come back while the next batch is being filled, so
the main process and the GPU overlap. On the CPU everything runs in float32, synchronously.

With `activation=False` it hands back the module's raw output of any shape (B, ...), e.g. a
bare front-end's (B, n_features, n_frames) for the feature cache; `batched_map` runs several
batchers side by side (a teacher's ensemble) over one stream of tracks.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Hashable, Iterator

import numpy as np
import torch

from .errors import MgctagError
from .vote import activate

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Architectures whose backbone "auto" runs under bf16 autocast on CUDA (the front-end always runs
# in float32: log of tiny mel powers). bench/check_precision.py, musicnn-msd on gtzan-mini's 100
# real clips x 10 segments (CPU autocast, 2026-11-23): track top-1 agreement with fp32 100%,
# accuracy 0.657 both, largest track probability difference 0.014 (segments: 98.8% agree, 0.03).
# Other architectures stay in float32 until `check_precision.py --model NAME` says bf16 holds.
CUDA_BF16_ARCHS = frozenset({"musicnn"})


def pick_device(device: str) -> str:
    """ "auto" -> "cuda" when a CUDA GPU is available, else "cpu"; asking for a missing GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise MgctagError("--device cuda asked for, but no CUDA GPU is available")
    return device


def _for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """An eval-mode model with its batch norms folded into the convs before them (a copy: the
    caller's model and its state dict stay as they were); a model in training mode as it is."""
    if model.training:
        return model
    import copy

    from .models.blocks import fold_batchnorm

    return fold_batchnorm(copy.deepcopy(model))


class BatchedInference:
    """Run `model` (waveforms (B, samples) -> logits (B, classes)) over many tracks' windows.

    `precision`: "fp32"; "bf16" runs the backbone of a Classifier (anything with `features` and
    `backbone`) under autocast on its device, the front-end in fp32; "auto" is "bf16" on CUDA
    for the architectures in CUDA_BF16_ARCHS, else "fp32"; "fp16" runs the whole module under
    float16 autocast on CUDA, as training's steps run (its validation), and fp32 on the CPU.
    `activation`: hand out probabilities
    (vote.activate: softmax, or sigmoid for a multi-label model); False: the model's float32
    output as it is, of any shape (B, ...) (a module with only buffers, such as a Frontend, too).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        batch_size: int = 64,
        precision: str = "auto",
        activation: bool = True,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model, self.batch_size, self.activation = _for_inference(model), batch_size, activation
        self.multilabel = bool(getattr(model, "multilabel", False))
        # a Frontend has buffers (its window, its mel filters) but no parameters
        first = next(itertools.chain(model.parameters(), model.buffers()), None)
        self.device = first.device if first is not None else torch.device("cpu")
        self.cuda = self.device.type == "cuda"
        split = hasattr(model, "features") and hasattr(model, "backbone")
        if precision == "bf16" and not split:
            raise ValueError("bf16 needs a model with separate features and backbone (a Classifier)")
        checked = split and getattr(model, "arch", None) in CUDA_BF16_ARCHS
        use_bf16 = precision == "bf16" or (precision == "auto" and self.cuda and checked)
        self.autocast = torch.bfloat16 if use_bf16 else None
        self.whole16 = precision == "fp16" and self.cuda
        self.pending: deque[tuple[Hashable, int]] = deque()  # keys fed and not yet yielded, with segment counts
        self.queue: deque[np.ndarray] = deque()  # windows not yet in a batch
        self.queued = 0
        self.in_flight: deque[tuple[torch.Tensor, torch.cuda.Event | None]] = deque()  # launched batches' logits
        self.done: list[np.ndarray] = []  # probabilities not yet handed out, in order
        self.n_done = 0

    def feed(self, key: Hashable, windows: np.ndarray) -> Iterator[tuple[Hashable, np.ndarray]]:
        """Queue one track's windows (S, samples); yield the tracks that are complete."""
        self.pending.append((key, len(windows)))
        self.queue.append(windows)
        self.queued += len(windows)
        while self.queued >= self.batch_size:
            self._launch(self._take(self.batch_size))
        yield from self._collect(wait=not self.cuda)

    def flush(self) -> Iterator[tuple[Hashable, np.ndarray]]:
        """Run what is queued, however few, and yield every remaining track."""
        if self.queued:
            self._launch(self._take(self.queued))
        self.queue.clear()  # only tracks with no windows can be left
        yield from self._collect(wait=True)

    def _take(self, n: int) -> torch.Tensor:
        """The next `n` queued windows as one (n, samples) batch, in pinned memory on CUDA."""
        parts, need = [], n
        while need:
            head = self.queue.popleft()
            if len(head) > need:
                self.queue.appendleft(head[need:])
                head = head[:need]
            parts.append(head)
            need -= len(head)
        self.queued -= n
        if not self.cuda:
            return torch.from_numpy(np.concatenate(parts)).float()  # cached features are float16
        batch = torch.empty((n, *parts[0].shape[1:]), dtype=torch.float32, pin_memory=True)
        np.concatenate(parts, out=batch.numpy())  # one copy, straight into page-locked memory
        return batch

    @torch.inference_mode()
    def _launch(self, batch: torch.Tensor) -> None:
        """Start one batch; on CUDA it runs asynchronously and its logits land in pinned memory."""
        if not self.cuda:
            self.in_flight.append((self._forward(batch.to(self.device)).float(), None))
            return
        tuned = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True  # batches have one shape: cuDNN tunes its kernels once
        try:
            logits = self._forward(batch.to(self.device, non_blocking=True)).float()
        finally:
            torch.backends.cudnn.benchmark = tuned
        host = logits.to("cpu", non_blocking=True)  # a non-blocking copy to the CPU is pinned
        ready = torch.cuda.Event()
        ready.record()
        self.in_flight.append((host, ready))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.whole16:
            with torch.autocast("cuda", dtype=torch.float16):
                return self.model(x)
        if self.autocast is None:
            return self.model(x)
        feats = self.model.features(x)  # fp32: bf16 would round away the quiet end of the spectrum
        with torch.autocast(self.device.type, dtype=self.autocast):
            return self.model.backbone(feats)

    def _collect(self, *, wait: bool) -> Iterator[tuple[Hashable, np.ndarray]]:
        """Gather finished batches (with wait=False the newest may stay on the GPU if still busy)
        and yield every track whose segments are all done."""
        while self.in_flight:
            host, ready = self.in_flight[0]
            if ready is not None:
                if not wait and len(self.in_flight) == 1 and not ready.query():
                    break
                ready.synchronize()
            self.in_flight.popleft()
            out = host.numpy()
            self.done.append(activate(out, multilabel=self.multilabel) if self.activation else out)
            self.n_done += len(host)
        if not self.pending or self.pending[0][1] > self.n_done:
            return
        probs = np.concatenate(self.done) if self.done else np.zeros((0, 0), np.float32)
        start = 0
        while self.pending and self.pending[0][1] <= self.n_done:
            key, n = self.pending.popleft()
            start += n
            # the state is whole before each yield, so a caller may stop iterating at any point
            self.done = [probs[start:]] if start < len(probs) else []
            self.n_done -= n
            yield key, probs[start - n : start]


class Together:
    """Several batchers side by side (one per plan of a DecodeJob: an ensemble's models): `feed`
    a track's windows, one array per batcher, and get (key, one output per batcher) back in the
    order fed, as soon as every batcher has heard it, while each fills its batches with many
    tracks' windows. Keys must differ while in flight."""

    def __init__(self, batchers: Sequence[BatchedInference]):
        self.batchers = list(batchers)
        self.order: deque[Hashable] = deque()
        self.parts: dict[Hashable, list[np.ndarray | None]] = {}

    def feed(self, key: Hashable, windows: Sequence[np.ndarray]) -> Iterator[tuple[Hashable, list[np.ndarray]]]:
        if len(windows) != len(self.batchers):
            raise ValueError(f"{len(windows)} window arrays for {len(self.batchers)} batchers")
        self.order.append(key)
        self.parts[key] = [None] * len(self.batchers)
        return self._collect([b.feed(key, w) for b, w in zip(self.batchers, windows)])

    def flush(self) -> Iterator[tuple[Hashable, list[np.ndarray]]]:
        return self._collect([b.flush() for b in self.batchers])

    @property
    def busy(self) -> bool:
        """Some track fed is not yet back."""
        return bool(self.order)

    def _collect(self, streams) -> Iterator[tuple[Hashable, list[np.ndarray]]]:
        for j, stream in enumerate(streams):
            for key, out in stream:
                self.parts[key][j] = out
        while self.order and all(p is not None for p in self.parts[self.order[0]]):
            key = self.order.popleft()
            yield key, self.parts.pop(key)


def batched_map(
    batchers: Sequence[BatchedInference], items: Iterable[tuple[Hashable, Sequence[np.ndarray]]]
) -> Iterator[tuple[Hashable, list[np.ndarray]]]:
    """Each item's windows through `Together(batchers)`, then a flush: (key, outputs) in order."""
    together = Together(batchers)
    for key, windows in items:
        yield from together.feed(key, windows)
    yield from together.flush()
