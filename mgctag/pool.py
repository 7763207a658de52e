"""Decoding worker processes: each reads a file's voted windows and its current tags.

Files are handed out in order and at most a few per worker are in flight, so memory stays
bounded however large the library is. Workers are spawned (not forked) so they never inherit
torch's threads, and they import only numpy, soundfile, PyAV and mutagen.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import decode, tags
from .errors import MgctagError

# Files decoded ahead per worker: two keep every worker busy while the model works, and each file's
# windows (7.7 MB for the AudioSet model's six 10 s windows) wait in the main process; four held
# about 30 MB more in a scan's peak for no speed (bench/RESULTS.md).
IN_FLIGHT_PER_WORKER = 2
ORPHAN_CHECK_SECONDS = 1.0


@dataclass
class Decoded:
    """What a worker sends back for one file: its windows (one array per WindowSpec), or why there are none."""

    path: Path
    windows: tuple[np.ndarray, ...] = ()  # per spec: (segments, samples) float32 at that spec's rate
    existing: tags.TagState | None = None
    stat: tuple[int, int] | None = None  # (size, mtime_ns) at analysis time
    error: str = ""
    peak: float = 0.0  # largest |sample| in the windows: kept when they are dropped
    skipped: bool = False  # `error` is why the file was skipped, not an error (too short)
    cpu_s: float = 0.0  # CPU seconds the decoding took (the scan shares cores by it)
    heard: int = 0  # windows of the first model: the weight of this file in its album
    witness: decode.Witness | None = None  # the file's audio as analysed, for a write's check (DecodeJob(witness=True))


@dataclass(frozen=True)
class WindowSpec:
    """The windows one model votes over: up to `n_segments` of `n_samples` each, at `sample_rate`."""

    sample_rate: int
    n_samples: int
    n_segments: int

    @classmethod
    def of(cls, model, n_segments: int) -> "WindowSpec":
        """For a Classifier: its front-end's rate and segment length."""
        return cls(model.spec.sample_rate, model.spec.segment_samples, n_segments)


def failed(path: Path, e: Exception) -> Decoded:
    """A file that could not be decoded, with the one-line reason: mgctag's own message, the OS's
    (no such file, permission denied), or for anything else (a decoder bug) its type and text."""
    if isinstance(e, MgctagError):
        return Decoded(path, error=str(e))
    if isinstance(e, OSError):
        return Decoded(path, error=e.strerror or str(e))
    return Decoded(path, error=f"unexpected {type(e).__name__}: {e}")


class DecodeJob:
    """Picklable: decode one file into the windows each model (WindowSpec) votes over, and read its tags."""

    def __init__(self, *specs: WindowSpec, witness: bool = False):
        """`witness`: also take the file's decode.witness, which a write then need not take in
        the main process (a scan's main process is the busier one: it runs the model)."""
        if not specs:
            raise ValueError("DecodeJob needs at least one WindowSpec")
        self.specs, self.witness = specs, witness

    def __call__(self, path: Path) -> Decoded:
        start = time.process_time()
        d = self._decode(path)
        d.cpu_s = time.process_time() - start
        return d

    def _decode(self, path: Path) -> Decoded:
        st = None
        try:
            st = path.stat()
            info = decode.probe(path)  # before the tags: the decoder says best what is wrong with a file
            windows = tuple(self._windows(path, spec, info) for spec in self.specs)
            existing = tags.read(path)
            peak = max((float(np.abs(w).max()) for w in windows if w.size), default=0.0)
            return Decoded(
                path,
                windows,
                existing,
                (st.st_size, st.st_mtime_ns),
                peak=peak,
                witness=self._witness(path),
                heard=len(windows[0]),
            )
        except decode.TooShort as e:
            return Decoded(path, stat=(st.st_size, st.st_mtime_ns), error=str(e), skipped=True)
        except Exception as e:  # a decoder bug must cost one file, not the run
            return failed(path, e)

    def _witness(self, path: Path) -> decode.Witness | None:
        """None when not asked or when it fails: the write takes its own then, and says why."""
        if not self.witness:
            return None
        try:
            return decode.witness(path)
        except Exception:
            return None

    @staticmethod
    def _windows(path: Path, spec: WindowSpec, info: decode.AudioInfo) -> np.ndarray:
        """Real audio only: no window past the end a truncated file really has, no zero padding."""
        return decode.voting_windows(
            path, sample_rate=spec.sample_rate, n_samples=spec.n_samples, n_segments=spec.n_segments, info=info
        )


def decode_all(paths: Iterable[Path], job: Callable[[Path], Decoded], workers: int) -> Iterator[Decoded]:
    """Results in input order; `workers=0` decodes in this process."""
    if workers == 0:
        yield from map(job, paths)
        return
    import multiprocessing as mp

    with ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(os.getpid(),)
    ) as pool:
        window: deque = deque()
        try:
            for p in paths:
                window.append(pool.submit(job, p))
                if len(window) >= IN_FLIGHT_PER_WORKER * workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:  # a caller that stops early waits only for the files being decoded right now
            for future in window:
                future.cancel()


def _worker_init(parent: int) -> None:
    """Ctrl-C reaches the whole process group, but stopping is the main process's business: it
    stops between files and shuts the pool down. (SIGTERM stays fatal: the pool itself uses it
    on workers of a broken pool.) A worker whose parent was killed exits instead of waiting forever.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="mgctag-orphan-watch").start()


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota
    (containers), not os.cpu_count(), which counts the whole machine."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            n = min(n, max(1, -(-int(quota) // int(period))))  # a share of a CPU counts as one
    except (OSError, ValueError):
        pass
    return max(1, n)
