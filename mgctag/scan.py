"""The scan flow: discover -> decode -> segment -> features+model -> vote -> tags/report.

`scan()` yields one FileResult per file as soon as its segments are voted, so a caller can
print, report or stop at any point. Decoding runs in worker processes that feed a bounded
window of tracks; the main process fills model batches with segments of many tracks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import discover, tags
from .errors import MgctagError
from .genremap import GenreMap
from .pool import Decoded, DecodeJob, decode_all
from .vote import top_k, vote

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
    from . import weights
    from .infer import BatchedInference

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
    job = DecodeJob(sample_rate=spec.sample_rate, n_samples=spec.segment_samples, n_segments=n_segments)
    run = BatchedInference(model, batch_size=options.batch_size)
    for d in decode_all(files, job, workers):
        if d.error:
            yield FileResult(d.path, "error", model=model_id, error=d.error)
            continue
        for done, seg_probs in run.feed(d, d.windows):
            yield _decide(done, seg_probs, meta.labels, model_id, options)
    for done, seg_probs in run.flush():
        yield _decide(done, seg_probs, meta.labels, model_id, options)


def _default_segments(arch: str) -> int:
    from .models import get_architecture

    return get_architecture(arch).default_segments


def _decide(d: Decoded, seg_probs: np.ndarray, labels: list[str], model_id: str,
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
