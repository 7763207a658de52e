"""Decoding worker processes: each reads a file's windows (mgctag.plans) and its current tags.

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
from .plans import WindowSpec  # noqa: F401  (named from here by callers)

# Files decoded ahead per worker: two keep every worker busy while the model works, and each file's
# windows (7.7 MB for the AudioSet model's six 10 s windows) wait in the main process; four held
# about 30 MB more in a scan's peak for no speed (bench/RESULTS.md).
IN_FLIGHT_PER_WORKER = 2
ORPHAN_CHECK_SECONDS = 1.0


@dataclass
class Decoded:
    """What a worker sends back for one file (or one round of it): its windows (one array per
    plan), or why there are none."""

    path: Path
    windows: tuple[np.ndarray, ...] = ()  # per plan: (windows, samples) float32 at that plan's rate
    existing: tags.TagState | None = None  # (DecodeJob(tags=True), first round)
    stat: tuple[int, int] | None = None  # (size, mtime_ns) at analysis time
    error: str = ""
    peak: float = 0.0  # largest |sample| in the windows: kept when they are dropped
    skipped: bool = False  # `error` is why the file was skipped, not an error (too short)
    cpu_s: float = 0.0  # CPU seconds the decoding took (the scan shares cores by it)
    heard: int = 0  # windows of the first plan heard (in all rounds, once the scan has merged them)
    witness: decode.Witness | None = None  # the file's audio as analysed, for a write's check (DecodeJob(witness=True))
    planned: int = 0  # windows in the first plan's whole: a track's weight in its album, whatever was heard
    whole: bool = False  # a round that came back as the whole plan (the audio ended early): replaces earlier rounds


def failed(path: Path, e: Exception) -> Decoded:
    """A file that could not be decoded, with the one-line reason: mgctag's own message, the OS's
    (no such file, permission denied), or for anything else (a decoder bug) its type and text."""
    if isinstance(e, MgctagError):
        return Decoded(path, error=str(e))
    if isinstance(e, OSError):
        return Decoded(path, error=e.strerror or str(e))
    return Decoded(path, error=f"unexpected {type(e).__name__}: {e}")


class DecodeJob:
    """Picklable: decode one file into the windows of each plan (mgctag.plans), and read its tags.

    The one decode job of a scan (voting windows, in rounds), training (tiles) and a teacher
    (centred windows): errors read the same everywhere, and a decoder bug costs one file."""

    def __init__(self, *plans, witness: bool = False, tags: bool = True):
        """`witness`: also take the file's decode.witness, which a write then need not take in
        the main process (a scan's main process is the busier one: it runs the model). `tags`:
        read the file's tags (a scan's; training reads its labels elsewhere)."""
        if not plans:
            raise ValueError("DecodeJob needs at least one plan")
        self.plans, self.witness, self.tags = plans, witness, tags

    def __call__(self, path: Path, part: tuple[int, int] | None = None) -> Decoded:
        """`part` (a, b): one round of a scan's voting windows (mgctag.decode.windows.voting); the
        first round (a == 0) also reads the tags and takes the witness."""
        start = time.process_time()
        d = self._decode(path, part)
        d.cpu_s = time.process_time() - start
        return d

    def _decode(self, path: Path, part: tuple[int, int] | None) -> Decoded:
        st = None
        first = part is None or part[0] == 0
        try:
            st = path.stat()
            info = decode.probe(path)  # before the tags: the decoder says best what is wrong with a file
            read = [plan.read(path, info, part) for plan in self.plans]
            windows = tuple(w for w, _ in read)
            existing = tags.read(path) if self.tags and first else None
            peak = max((float(np.abs(w).max()) for w in windows if w.size), default=0.0)
            return Decoded(
                path,
                windows,
                existing,
                (st.st_size, st.st_mtime_ns),
                peak=peak,
                witness=self._witness(path) if first else None,
                heard=len(windows[0]),
                planned=read[0][1] if read[0][1] >= 0 else len(windows[0]),
                whole=read[0][1] < 0,
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


def decode_all(paths: Iterable[Path], job: Callable[[Path], Decoded], workers: int) -> Iterator[Decoded]:
    """Results in input order; `workers=0` decodes in this process."""
    if workers == 0:
        yield from map(job, paths)
        return
    with spawn_pool(workers) as pool:
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


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """Decoding processes, spawned (not forked: no torch threads inherited), that leave Ctrl-C to us."""
    import multiprocessing as mp

    return ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(os.getpid(),)
    )


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
