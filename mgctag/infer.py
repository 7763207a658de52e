"""Batched inference across tracks: segments of many files share one model batch.

Feed it (key, windows) pairs; it yields (key, segment probabilities) as soon as every
segment of that key has been through the model, in the order the keys were fed.
"""
from __future__ import annotations

from collections import deque
from typing import Hashable, Iterator

import numpy as np
import torch

from .vote import softmax


class BatchedInference:
    def __init__(self, model: torch.nn.Module, *, batch_size: int = 64):
        self.model, self.batch_size = model, batch_size
        self.device = next(model.parameters()).device
        self.pending: deque[tuple[Hashable, int]] = deque()   # keys whose segments are queued
        self.queue: list[np.ndarray] = []
        self.queued = 0

    def feed(self, key: Hashable, windows: np.ndarray) -> Iterator[tuple[Hashable, np.ndarray]]:
        """Queue one track's windows (S, samples); yield the tracks that are complete."""
        self.pending.append((key, len(windows)))
        self.queue.append(windows)
        self.queued += len(windows)
        if self.queued >= self.batch_size:
            yield from self._run()

    def flush(self) -> Iterator[tuple[Hashable, np.ndarray]]:
        if self.queue:
            yield from self._run()

    @torch.inference_mode()
    def _run(self) -> Iterator[tuple[Hashable, np.ndarray]]:
        batch = np.concatenate(self.queue)
        self.queue.clear()
        self.queued = 0
        parts = [self.model(torch.from_numpy(batch[i : i + self.batch_size]).to(self.device)).float().cpu().numpy()
                 for i in range(0, len(batch), self.batch_size)]
        probs = softmax(np.concatenate(parts))
        start = 0
        while self.pending:
            key, n = self.pending.popleft()
            yield key, probs[start : start + n]
            start += n

