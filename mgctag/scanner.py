"""The scan flow: discover -> triage -> decode -> segment -> features+model -> vote -> tags/report.

`scan()` yields one FileResult per file as soon as its segments are voted, so a caller can
print, report or stop at any point. Triage costs one stat per file: files the state database
knows unchanged since the last run, and hard-linked files a write would split, are answered
before any decoding. Decoding runs in worker processes that feed a bounded window of tracks;
the main process fills model batches with segments of many tracks. Every write is journalled
(for `undo`) and recorded in the state; `should_stop` ends the run between files.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from . import discover, safe, state, tags
from .errors import MgctagError
from .genremap import GenreMap
from .pool import Decoded, DecodeJob, WindowSpec, decode_all
from .result import FileResult
from .vote import top_k, vote

log = logging.getLogger(__name__)
UNCHANGED_NOTE = "unchanged since last run"
SILENT_PEAK = 1e-4   # no sample above about -80 dBFS in the voted windows: any genre would be a guess


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
    state: Path | None = None           # state database (skips, undo journal, run lock); None: in memory
    rescan: bool = False                # analyse files the state says are unchanged
    wait: bool = False                  # wait for a run holding the state's lock instead of failing
    hardlinks: str = "skip"             # skip | break: a hard-linked file is not written / gets its own copy


def scan(paths: Sequence[str | Path], options: ScanOptions = ScanOptions(), *,
         on_found: Callable[[int], None] | None = None, on_run: Callable[[int], None] | None = None,
         should_stop: Callable[[], bool] | None = None) -> Iterator[FileResult]:
    """Analyse every audio file under `paths` and (optionally) write their genres.

    Yields a FileResult per file, errors included; raises only for problems that stop the
    whole run (no model, bad options, a path that does not exist, LockError when another run
    holds the state). `on_run` gets the run id (for `undo`); once `should_stop()` is true no
    new file is started, the state is committed and the generator ends.
    """
    from . import weights
    from .infer import BatchedInference, pick_device

    if options.hardlinks not in safe.HARDLINK_POLICIES:
        raise MgctagError(f"hardlinks must be one of {', '.join(safe.HARDLINK_POLICIES)}")
    stop = should_stop or (lambda: False)
    with state.opened(options.state, wait=options.wait, should_stop=stop) as db:
        weights_file = weights.resolve(options.model)
        model, meta = weights.load(weights_file, pick_device(options.device))
        n_segments = options.segments or _default_segments(meta.arch)
        run = _Run(db, paths, options, model_id=meta.model_id, labels=meta.labels,
                   settings=_settings(weights_file, options, n_segments))
        if on_run:
            on_run(run.id)
        try:
            found = _discover(paths, options)
            db.prune(paths, [f.path for f in found if not f.problem])
            if on_found:
                on_found(len(found))
            todo = []
            for f in found:
                early = run.triage(f)
                if early is None:
                    todo.append(f.path)
                else:
                    yield early
            job = DecodeJob(WindowSpec.of(model, n_segments))
            batcher = BatchedInference(model, batch_size=options.batch_size)
            with closing(decode_all(_until(stop, todo), job, _workers(options))) as decoded:
                for d in _until(stop, decoded):
                    if d.error:
                        yield run.failed(d)
                        continue
                    for done, seg_probs in _until(stop, batcher.feed(d, d.windows[0])):
                        yield run.finish(done, seg_probs)
                for done, seg_probs in _until(stop, batcher.flush()):
                    yield run.finish(done, seg_probs)
            run.complete = not stop()
        except BrokenProcessPool:
            if not stop():  # a SIGTERM sent to the whole process group also ends the workers
                raise
        finally:
            run.close()


def _discover(paths: Sequence[str | Path], options: ScanOptions) -> list[discover.Found]:
    """The files to scan, without mgctag's own temporary files; with --write-tags, the stale
    temporaries a killed run left beside them (or beside their symlinks' targets) are removed."""
    found = list(discover.discover(paths, include_hidden=options.include_hidden,
                                   follow_symlinks=options.follow_symlinks))
    if options.write_tags:
        folders = {f.path.parent for f in found}
        folders |= {Path(os.path.realpath(f.path)).parent for f in found if f.path.is_symlink()}
        removed = sum(len(safe.cleanup_temps(folder)) for folder in sorted(folders))
        if removed:
            log.info("removed %d temporary file(s) left by an interrupted run", removed)
    return [f for f in found if not safe.TEMP_PATTERN.match(f.path.name)]


def _settings(weights_file: Path, options: ScanOptions, n_segments: int) -> str:
    """What a file's result depends on besides the file: the weights and the decision options."""
    return state.settings_key(weights_file, top_k=options.top_k, min_confidence=options.min_confidence,
                              keep_existing=options.keep_existing, genre_map=options.genre_map.table,
                              segments=n_segments, vote=options.vote)


def _until(stop: Callable[[], bool], items: Iterable) -> Iterator:
    """`items` until `stop()` is true: checked before each one, so a stop takes no new file."""
    for item in items:
        if stop():
            return
        yield item


def _workers(options: ScanOptions) -> int:
    return options.workers if options.workers is not None else (os.cpu_count() or 1)


def _default_segments(arch: str) -> int:
    from .models import get_architecture

    return get_architecture(arch).default_segments


class _Run:
    """One run's bookkeeping: triage by stat, decisions, journalled writes, state rows, counts."""

    def __init__(self, db: state.State, roots: Sequence[str | Path], options: ScanOptions, *, model_id: str,
                 labels: list[str], settings: str):
        self.db, self.options, self.model_id, self.labels, self.settings = db, options, model_id, labels, settings
        self.writing = dict(hardlinks=options.hardlinks, id3v23=options.id3v23, keep_mtime=options.keep_mtime)
        self.id = db.start_run(roots=roots, model=model_id, settings=settings, write_tags=options.write_tags,
                               writing=self.writing)
        self.counts: Counter[str] = Counter()
        self.complete = False

    def triage(self, f: discover.Found) -> FileResult | None:
        """The result for a file that needs no decoding, or None when it must be analysed."""
        o = self.options
        if f.problem:
            return self._count(FileResult(f.path, "error", model=self.model_id, error=f.problem))
        try:
            st = os.stat(f.path)
        except OSError as e:
            return self._count(FileResult(f.path, "error", model=self.model_id, error=(e.strerror or str(e)).lower()))
        if o.write_tags and o.hardlinks == "skip" and st.st_nlink > 1:
            return self._count(FileResult(f.path, "skipped", model=self.model_id,
                                          note=f"hard-linked ({st.st_nlink} names): not written "
                                               "(--hardlinks break gives this name its own copy)"))
        if not o.rescan:
            seen = self.db.lookup(f.path, st, model=self.model_id, settings=self.settings, write_tags=o.write_tags)
            if seen:
                return self._count(FileResult(f.path, "skipped", seen.genres, seen.existing_genre, self.model_id,
                                              note=UNCHANGED_NOTE))
        return None

    def failed(self, d: Decoded) -> FileResult:
        if d.skipped:  # decodable, but nothing a model can honestly vote on (too short): settled, not an error
            result = FileResult(d.path, "skipped", model=self.model_id, note=d.error)
            self.db.record(result, d.stat, run_id=self.id, settings=self.settings)
            return self._count(result)
        result = FileResult(d.path, "error", model=self.model_id, error=d.error)
        self.db.record(result, None, run_id=self.id, settings=self.settings)
        return self._count(result)

    def finish(self, d: Decoded, seg_probs: np.ndarray) -> FileResult:
        result, values = _decide(d, seg_probs, self.labels, self.model_id, self.options)
        if values is not None and d.existing.unwritable:  # "no tag container", tags after the audio, ...
            result, values = replace(result, status="skipped", note=d.existing.unwritable), None
        stat, written = d.stat, None
        if values is not None and self.options.write_tags:
            result, stat, written = self._write(d, result, values)
        self.db.record(result, stat, run_id=self.id, settings=self.settings, written=written)
        return self._count(result)

    def _write(self, d: Decoded, result: FileResult, values: dict):
        """Write through mgctag.safe, journalled: the row is committed before the file changes."""
        after = state.Values(tuple(values["genres"]), tags.format_confidences(values["confidences"]),
                             values["model_id"])
        self.db.journal_pending(self.id, d.path, before=state.Values.of(d.existing), after=after)
        try:
            changed = safe.write_safely(d.path, **values, **self.writing, expect=d.stat)
        except MgctagError as e:
            self.db.journal_set(self.id, d.path, None)
            return replace(result, status="error", error=str(e)), d.stat, None
        if not changed:
            self.db.journal_set(self.id, d.path, None)
            return replace(result, status="unchanged"), d.stat, None
        self.db.journal_set(self.id, d.path, "done")
        try:
            st = os.stat(d.path)
        except OSError:  # gone right after the write: nothing to remember
            return replace(result, status="tagged"), None, after
        return replace(result, status="tagged"), (st.st_size, st.st_mtime_ns), after

    def _count(self, result: FileResult) -> FileResult:
        self.counts[result.status] += 1
        return result

    def close(self) -> None:
        self.db.finish_run(self.id, counts=dict(self.counts), outcome="done" if self.complete else "interrupted")


def _decide(d: Decoded, seg_probs: np.ndarray, labels: list[str], model_id: str,
            options: ScanOptions) -> tuple[FileResult, dict | None]:
    """Vote, apply the genre map and the keep/confidence rules.

    Returns the result and, when it is "would-tag", the values to write (write_safely's keywords).
    """
    scored = top_k(vote(seg_probs, options.vote), labels, len(labels))
    scored = options.genre_map.apply_scores(scored)
    chosen = [(g, p) for g, p in scored[: options.top_k] if p >= options.min_confidence]
    existing = d.existing
    result = FileResult(d.path, "", scored[: options.top_k], existing_genre="; ".join(existing.genres), model=model_id)
    if not any(np.any(np.abs(w) > SILENT_PEAK) for w in d.windows):
        result.status, result.note = "skipped", "silent: nothing to hear in the analysed segments"
        return result, None
    if not chosen:
        result.status, result.note = "skipped", f"confidence {scored[0][1]:.2f} is below --min-confidence"
        return result, None
    values = dict(genres=[g for g, _ in chosen], confidences=[round(p, 3) for _, p in chosen], model_id=model_id)
    if options.keep_existing and existing.genres and not existing.model:
        result.status, result.note = "kept", "has a genre mgctag did not write (use --overwrite)"
        return result, None
    if not tags.would_change(existing, **values):
        result.status = "unchanged"
        return result, None
    result.status = "would-tag"
    return result, values
