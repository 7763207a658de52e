"""The scan's listening engine: decoding workers and the model, each track heard until it is sure.

With a Rule (`--segments auto`), a file is decoded a round at a time (mgctag.sure.next_round:
windows spread over the track, middle first) and each round goes through the model before the
next is asked for; mgctag.sure says when the windows heard settle the written genres. Without
one, every file is one round of all its windows (`--segments N`). The workers and the model talk
both ways: a file's next round is asked for only once its last is heard, continuing files go
before new ones, and new files are taken only while there is room, so memory stays bounded.

The local scan (`analyse`, here) and the Ray scan (mgctag.ray_runner) both build their decode
job and rule with `Listening.of` and keep each file's rounds in a `Hearing`: they cannot drift.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import sure
from .analyser import Analyser
from .pool import IN_FLIGHT_PER_WORKER, Decoded, DecodeJob, spawn_pool, usable_cpus

ROOM_PER_DECODE = 4  # files open (heard in part, or waiting to be yielded in order) per decode in flight


@dataclass(frozen=True)
class Listening:
    """What a scan decodes and when it stops: built once, for the local and the Ray scan alike."""

    job: DecodeJob
    rule: sure.Rule | None  # None: every window of the plan (`--segments N`), in one round

    @classmethod
    def of(cls, analyser: Analyser, *, witness: bool, rule: sure.Rule | None) -> "Listening":
        """`witness`: the workers take each file's audio witness (a write checks against it).
        An ensemble hears every window: its score is a mean of shares, not of windows."""
        return cls(analyser.job(witness=witness), rule if len(analyser.members) == 1 else None)

    def first(self) -> tuple[int, int] | None:
        return sure.next_round(0, 0) if self.rule else None


class Hearing:
    """One file's rounds so far: the first round's Decoded (tags, stat, witness) and each model's
    (windows, genres) scores. Keeps no audio, only a few numbers per window."""

    def __init__(self, path: Path):
        self.d = Decoded(path)
        self.scores: list[np.ndarray] | None = None
        self.heard = 0

    def add(self, part: Decoded, probs: list[np.ndarray] | None, analyser: Analyser) -> None:
        """A round back from the decoder (`part`) and the model (each member's (windows, labels)
        probabilities; None for a round that failed)."""
        if part.error or probs is None:
            self.d = part if self.heard == 0 else replace(self.d, error=part.error)
            return
        scores = analyser.segment_scores(probs)
        if self.heard == 0:  # the first round brings the tags, stat, witness and the plan's size
            self.d, self.scores, self.heard = part, scores, part.heard
        elif part.whole:  # the audio ended early: the whole plan, spread again, replaces the rounds
            self.scores, self.heard, self.d.planned = scores, part.heard, part.planned
        else:
            self.scores = [np.concatenate([a, b]) for a, b in zip(self.scores, scores)]
            self.heard += part.heard
        if part is not self.d:
            self.d.peak, self.d.cpu_s = max(self.d.peak, part.peak), self.d.cpu_s + part.cpu_s
        self.d.heard = self.heard

    def next(self, rule: sure.Rule | None) -> tuple[int, int] | None:
        """The next round to ask for, or None when the file is decided (or failed)."""
        if rule is None or self.d.error or self.scores is None or sure.settled(self.scores[0], self.d.planned, rule):
            return None  # settled() is also true once every window of the plan is heard
        return sure.next_round(self.heard, self.d.planned)

    def result(self, analyser: Analyser) -> tuple[Decoded, np.ndarray | None]:
        if self.d.error or self.scores is None:
            return self.d, None
        return self.d, analyser.vote_members(self.scores)


def analyse(
    paths: Iterable[Path],
    analyser: Analyser,
    *,
    workers: int,
    witness: bool = False,
    rule: sure.Rule | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[Decoded, np.ndarray | None]]:
    """(decoded file, its scores over `analyser.genres`) for each path, in order; scores are None
    when the file could not be decoded (`Decoded.error` says why). `Decoded.heard` is the windows
    heard; no windows are kept. `workers=0` decodes in this process. torch's threads follow
    `_ThreadShare` while this runs and are put back afterwards."""
    listening = Listening.of(analyser, witness=witness, rule=rule)
    with _ThreadShare(workers) as share, _Decoders(listening.job, workers) as decoders:
        yield from _Engine(analyser, listening, decoders, share, stop).run(paths)


class _Engine:
    """The loop: ask for rounds, feed what comes back to the model, test, yield in input order."""

    def __init__(self, analyser: Analyser, listening: Listening, decoders: "_Decoders", share, stop):
        self.analyser, self.listening, self.decoders, self.share, self.stop = (
            analyser,
            listening,
            decoders,
            share,
            stop,
        )
        self.room = ROOM_PER_DECODE * decoders.depth + max(analyser.batch_sizes)
        # on the CPU the model runs a part batch rather than wait for the decoders; on a GPU it
        # waits for whole ones (one shape for cuDNN) while any round is being decoded
        self.eager = not any(b.cuda for b in analyser.batchers)
        self.hearing: dict[int, Hearing] = {}  # files taken and not yet decided
        self.parts: dict[int, Decoded] = {}  # the round of each file that is in the model
        self.decided: dict[int, tuple] = {}  # decided, waiting for the files before them
        self.again: deque[tuple[int, tuple[int, int]]] = deque()  # next rounds to ask for
        self.pending: dict[Future, int] = {}

    def run(self, paths: Iterable[Path]) -> Iterator[tuple[Decoded, np.ndarray | None]]:
        paths, taken, shown = iter(paths), 0, 0
        while True:
            while len(self.pending) < self.decoders.depth:  # continuing files first, new ones while there is room
                if self.again:
                    i, part = self.again.popleft()
                elif len(self.hearing) + len(self.decided) < self.room and not self.stop():
                    path = next(paths, None)
                    if path is None:
                        break
                    i, part, taken = taken, self.listening.first(), taken + 1
                    self.hearing[i] = Hearing(path)
                else:
                    break
                self.pending[self.decoders.submit(self.hearing[i].d.path, part)] = i
            if self.stop():
                return
            if self.pending:
                eager = self.parts and self.eager
                ready, _ = wait(self.pending, timeout=0 if eager else None, return_when=FIRST_COMPLETED)
            else:
                ready = set()
            if ready:
                for future in sorted(ready, key=self.pending.__getitem__):  # in file order: batches as before
                    self._decoded(self.pending.pop(future), future.result())
            elif self.parts:
                self._heard(self.analyser.listen_flush())
            elif not self.pending and not self.again:
                return
            while shown in self.decided:
                yield self.decided.pop(shown)
                shown += 1

    def _decoded(self, i: int, part: Decoded) -> None:
        self.share.add(part.cpu_s)
        if part.error:
            self._round(i, part, None)
            return
        self.parts[i] = part
        self._heard(self.analyser.listen(i, part.windows))

    def _heard(self, heard: Iterable[tuple[int, list[np.ndarray]]]) -> None:
        for i, probs in heard:
            self._round(i, self.parts.pop(i), probs)

    def _round(self, i: int, part: Decoded, probs: list[np.ndarray] | None) -> None:
        h = self.hearing[i]
        h.add(part, probs, self.analyser)
        part.windows = ()
        nxt = h.next(self.listening.rule)
        if nxt is None:
            self.decided[i] = h.result(self.analyser)
            del self.hearing[i]
        else:
            self.again.append((i, nxt))


class _Decoders:
    """Decoding workers (`workers` processes, or this process for 0), `depth` rounds in flight."""

    def __init__(self, job: DecodeJob, workers: int):
        self.job, self.workers = job, workers
        self.depth = IN_FLIGHT_PER_WORKER * workers if workers else 1
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "_Decoders":
        if self.workers:
            self.pool = spawn_pool(self.workers)
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:  # a caller that stops early waits only for the rounds being decoded now
            self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, path: Path, part: tuple[int, int] | None) -> Future:
        if self.pool is not None:
            return self.pool.submit(self.job, path, part)
        future: Future = Future()
        future.set_result(self.job(path, part))
        return future


class _ThreadShare:
    """torch's intra-op threads: the cores the decoding workers leave, measured every `SPAN_S` s.

    A worker reports the CPU seconds each file took; torch gets the rest of the cores, rounded,
    at least one. Threads spinning beside a busy worker per core made a 2-core scan slower
    (mn04, which keeps its decoders busy: 16 s with one thread, 19 s with two), and one thread
    left a core idle when the model is the slow part (musicnn: 54 s with one, 39 s with two)."""

    SPAN_S = 2.0

    def __init__(self, workers: int):
        import torch

        self._torch, self._before = torch, torch.get_num_threads()
        self.cpus, self.workers = usable_cpus(), workers
        self._decoding, self._since = 0.0, time.perf_counter()

    def __enter__(self) -> "_ThreadShare":
        self._torch.set_num_threads(max(1, self.cpus - self.workers))  # until measured
        return self

    def __exit__(self, *exc) -> None:
        self._torch.set_num_threads(self._before)

    def add(self, cpu_s: float) -> None:
        """One more decoded round's cost; every SPAN_S the cores are shared again by it."""
        self._decoding += cpu_s
        now = time.perf_counter()
        if self.workers and now - self._since >= self.SPAN_S:
            busy = self._decoding / (now - self._since)
            self._torch.set_num_threads(min(self.cpus, max(1, round(self.cpus - busy))))
            self._decoding, self._since = 0.0, now
