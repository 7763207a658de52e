"""The scan flow: discover -> decode -> segment -> features+model -> vote -> tags/report.

`scan()` yields one FileResult per file as soon as its segments are voted, so a caller can
print, report or stop at any point. Decoding runs in worker processes that feed a bounded
window of tracks; the main process fills model batches with segments of many tracks.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import decode, discover, segment, tags
from .errors import MgctagError
from .genremap import GenreMap
from .vote import softmax, top_k, vote

STATUSES = ("tagged", "would-tag", "kept", "unchanged", "skipped", "error")


@dataclass(frozen=True)
class ScanOptions:
    model: str | None = None            # weights name or path; None: the default model
    write_tags: bool = False            # False: a dry run that only reports
    top_k: int = 1                      # genres written per file, best first
    min_confidence: float = 0.0         # below this the top genre is not written (status skipped)
    keep_existing: bool = True          # keep a genre that mgctag did not write
    genre_map: GenreMap = field(default_factory=GenreMap)
    device: str = "auto"                # auto | cpu | cuda
    batch_size: int = 64                # segments per model batch
    workers: int | None = None          # decoding processes; None: one per core, 0: decode inline
    segments: int | None = None         # segments voted per track; None: the architecture's default
    vote: str = "mean"                  # mean | majority
    include_hidden: bool = False
    follow_symlinks: bool = False
    id3v23: bool = False                # write ID3v2.3 instead of v2.4
    keep_mtime: bool = False            # keep the file's timestamps when writing tags


@dataclass
class FileResult:
    path: Path
    status: str
    genres: list[tuple[str, float]] = field(default_factory=list)  # top-k, best first
    existing_genre: str = ""
    model: str = ""
    error: str = ""                     # one-line reason when status is error
    note: str = ""                      # why a file was skipped or kept

    @property
    def genre(self) -> str:
        return self.genres[0][0] if self.genres else ""

    @property
    def confidence(self) -> float | None:
        return self.genres[0][1] if self.genres else None


@dataclass
class _Decoded:
    """What a worker sends back for one file: its windows, or why there are none."""
    path: Path
    windows: np.ndarray | None = None
    existing: tags.TagState | None = None
    stat: tuple[int, int] | None = None   # (size, mtime_ns) at analysis time
    error: str = ""


def _decode_one(path: Path, sample_rate: int, n_samples: int, seconds: float, n_segments: int) -> _Decoded:
    """Worker: probe, read the voted windows, read existing tags. Never raises."""
    try:
        st = path.stat()
        existing = tags.read(path)
        info = decode.probe(path)
        starts = segment.segment_starts(info.duration, seconds, n_segments)
        windows = decode.read_windows(path, sample_rate=sample_rate, starts=starts, n_samples=n_samples, info=info)
        return _Decoded(path, windows, existing, (st.st_size, st.st_mtime_ns))
    except MgctagError as e:
        return _Decoded(path, error=str(e))
    except OSError as e:
        return _Decoded(path, error=e.strerror or str(e))
    except Exception as e:  # a decoder bug must cost one file, not the run
        return _Decoded(path, error=f"unexpected {type(e).__name__}: {e}")


def _decoded_stream(paths: Iterable[Path], job: Callable[[Path], _Decoded], workers: int) -> Iterator[_Decoded]:
    """Decode in order with at most a few tracks per worker in flight (bounded memory)."""
    if workers == 0:
        yield from map(job, paths)
        return
    import multiprocessing as mp

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        window: deque = deque()
        for p in paths:
            window.append(pool.submit(job, p))
            if len(window) >= 4 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


class _Job:
    """Picklable decode job bound to the model's front-end."""

    def __init__(self, sample_rate: int, n_samples: int, seconds: float, n_segments: int):
        self.args = (sample_rate, n_samples, seconds, n_segments)

    def __call__(self, path: Path) -> _Decoded:
        return _decode_one(path, *self.args)


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise MgctagError("--device cuda asked for, but no CUDA GPU is available")
    return device


def scan(paths: Iterable[str | Path], options: ScanOptions = ScanOptions(), *,
         on_found: Callable[[int], None] | None = None) -> Iterator[FileResult]:
    """Analyse every audio file under `paths` and (optionally) write their genres.

    Yields a FileResult per file, errors included; raises only for problems that stop the
    whole run (no model, bad options, a path that does not exist).
    """
    import torch

    from . import weights

    model, meta = weights.load(weights.resolve(options.model), pick_device(options.device))
    spec = model.spec
    n_segments = options.segments or _default_segments(meta.arch)
    model_id = meta.model_id

    found = list(discover.discover(paths, include_hidden=options.include_hidden,
                                   follow_symlinks=options.follow_symlinks))
    if on_found:
        on_found(len(found))
    for f in found:
        if f.problem:
            yield FileResult(f.path, "error", model=model_id, error=f.problem)
    files = [f.path for f in found if not f.problem]

    workers = options.workers if options.workers is not None else (os.cpu_count() or 1)
    job = _Job(spec.sample_rate, spec.segment_samples, spec.segment_seconds, n_segments)
    device = next(model.parameters()).device
    pending: deque[tuple[_Decoded, int]] = deque()   # tracks whose segments sit in `queue`
    queue: list[np.ndarray] = []
    logits: list[np.ndarray] = []

    def run_batches(final: bool) -> Iterator[FileResult]:
        while queue and (final or sum(len(w) for w in queue) >= options.batch_size):
            batch = np.concatenate(queue)
            queue.clear()
            with torch.inference_mode():
                for i in range(0, len(batch), options.batch_size):
                    x = torch.from_numpy(batch[i : i + options.batch_size]).to(device)
                    logits.append(model(x).float().cpu().numpy())
            out = np.concatenate(logits)
            logits.clear()
            start = 0
            while pending:
                d, n = pending.popleft()
                yield _decide(d, softmax(out[start : start + n]), meta.labels, model_id, options)
                start += n

    for d in _decoded_stream(files, job, workers):
        if d.error:
            yield FileResult(d.path, "error", model=model_id, error=d.error)
            continue
        pending.append((d, len(d.windows)))
        queue.append(d.windows)
        yield from run_batches(final=False)
    yield from run_batches(final=True)


def _default_segments(arch: str) -> int:
    from .models import get_architecture

    return get_architecture(arch).default_segments


def _decide(d: _Decoded, seg_probs: np.ndarray, labels: list[str], model_id: str,
            options: ScanOptions) -> FileResult:
    """Vote, apply the genre map and the keep/confidence rules, then write if asked."""
    scored = top_k(vote(seg_probs, options.vote), labels, len(labels))
    scored = options.genre_map.apply_scores(scored)
    chosen = [(g, p) for g, p in scored[: options.top_k] if p >= options.min_confidence]
    existing = d.existing
    result = FileResult(d.path, "", scored[: options.top_k], existing_genre="; ".join(existing.genres), model=model_id)
    if not chosen:
        result.status, result.note = "skipped", f"confidence {scored[0][1]:.2f} is below --min-confidence"
        return result
    genres, confs = [g for g, _ in chosen], [round(p, 3) for _, p in chosen]
    if options.keep_existing and existing.genres and not existing.model:
        result.status, result.note = "kept", "has a genre mgctag did not write (use --overwrite)"
        return result
    if not tags.would_change(existing, genres=genres, confidences=confs, model_id=model_id):
        result.status = "unchanged"
        return result
    if not options.write_tags:
        result.status = "would-tag"
        return result
    from .safe import write_safely

    try:
        write_safely(d.path, genres=genres, confidences=confs, model_id=model_id, id3v23=options.id3v23,
                     keep_mtime=options.keep_mtime, expect=d.stat)
    except MgctagError as e:
        return replace(result, status="error", error=str(e))
    result.status = "tagged"
    return result
