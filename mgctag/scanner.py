"""The scan flow: discover -> triage -> decode -> segment -> features+model -> vote -> albums -> tags/report.

`scan()` yields one FileResult per file as soon as it is decided: alone, as soon as its segments
are voted (`albums="off"`), or with its album once the rest of its folder is heard (mgctag.albums),
so a caller can print, report or stop at any point. Triage costs one stat per file: files the state database
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from . import albums, decide, discover, listen, safe, state, sure, tags
from .analyser import Analyser
from .decide import SILENT_PEAK
from .errors import MgctagError
from .genremap import GenreMap
from .pool import Decoded, usable_cpus
from .result import FileResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanOptions:
    model: str | None = None  # weights name or path, or NAME+NAME (an ensemble); None: the default
    write_tags: bool = False  # False: a dry run that only reports
    top_k: int = 1  # genres written per file, best first
    min_confidence: float | None = None  # below this the top genre is not written (skipped); None: the model's own
    keep_existing: bool = True  # keep a genre that mgctag did not write
    genres: str | None = None  # preset (gtzan, common, all) or a comma list; None: the model's own
    genre_map: GenreMap = field(default_factory=GenreMap)
    device: str = "auto"  # auto | cpu | cuda
    batch_size: int | None = None  # segments per model batch; None: each model's own
    workers: int | None = None  # decoding processes; None: one per usable core, 0: decode inline
    segments: int | None = None  # windows heard per track: N exactly; None listens until sure, up to the model's count
    albums: str = "auto"  # auto: an album's tracks get one genre, decided from all of them; off: each alone
    vote: str = "mean"  # mean | majority
    include_hidden: bool = False
    follow_symlinks: bool = False
    id3v23: bool = False  # write ID3v2.3 instead of v2.4
    keep_mtime: bool = False  # keep the file's timestamps when writing tags
    state: Path | None = None  # state database (skips, undo journal, run lock); None: in memory
    rescan: bool = False  # analyse files the state says are unchanged
    wait: bool = False  # wait for a run holding the state's lock instead of failing
    hardlinks: str = "skip"  # skip | break: a hard-linked file is not written / gets its own copy
    ray: str | None = None  # decode and listen on a Ray cluster: "local", "auto" or an address; None: here
    ray_actors: int | None = None  # with ray: model actors; None: one per GPU, else half the CPUs


def scan(
    paths: Sequence[str | Path],
    options: ScanOptions = ScanOptions(),
    *,
    on_found: Callable[[int], None] | None = None,
    on_run: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_model: Callable[[Analyser], None] | None = None,
    albums_of: Mapping[Path, str] | None = None,
) -> Iterator[FileResult]:
    """Analyse every audio file under `paths` and (optionally) write their genres.

    Yields a FileResult per file, errors included; raises only for problems that stop the
    whole run (no model, bad options, a path that does not exist, LockError when another run
    holds the state). `on_model` gets the loaded Analyser, `on_run` the run id (for `undo`);
    once `should_stop()` is true no new file is started, the state is committed and the
    generator ends. `albums_of` names the album of some files (a beets album), which then
    stands for their tags and folder (mgctag.albums).
    """
    from .infer import pick_device

    if options.hardlinks not in safe.HARDLINK_POLICIES:
        raise MgctagError(f"hardlinks must be one of {', '.join(safe.HARDLINK_POLICIES)}")
    if options.albums not in albums.MODES:
        raise MgctagError(f"albums must be one of {', '.join(albums.MODES)}")
    stop = should_stop or (lambda: False)
    with state.opened(options.state, wait=options.wait, should_stop=stop) as db:
        device = "cpu" if options.ray else pick_device(options.device)  # with ray, each actor picks its own
        analyser = Analyser.load(
            options.model,
            device=device,
            genres=options.genres,
            genre_map=options.genre_map,
            segments=options.segments,
            vote_method=options.vote,
            batch_size=options.batch_size,
        )
        if on_model:
            on_model(analyser)
        run = _Run(db, paths, options, analyser, albums_of or {})
        if on_run:
            on_run(run.id)
        try:
            found = _discover(paths, options)
            db.prune(paths, [f.path for f in found if not f.problem])
            if on_found:
                on_found(len(found))
            todo, early = [], []
            for f in found:
                result = run.triage(f)
                if result is None:
                    todo.append(f.path)
                else:
                    early.append(result)
            folders = albums.Folders(todo if options.albums == "auto" else (), [f.path for f in found], run.unit)
            for result in early:  # an unchanged track waits for its folder only when something there is new
                if not folders.hold(result.path, result):
                    yield result
            for d, scores in _until(stop, _analyse(todo, analyser, options, stop)):
                if options.albums == "off":
                    yield run.failed(d) if scores is None else run.finish(d, scores)
                    continue
                done = folders.add(d.path, (d, scores))
                if done:  # a stop leaves the rest of the folder for the next run, as it leaves unheard files
                    yield from run.settle(done, stop)
            run.complete = not stop()
        except BrokenProcessPool:
            if not stop():  # a SIGTERM sent to the whole process group also ends the workers
                raise
        finally:
            run.close()


def _analyse(todo: list[Path], analyser: Analyser, options: ScanOptions, stop: Callable[[], bool]):
    """Here (mgctag.listen), or with `options.ray` on a Ray cluster (mgctag.ray_runner, imported
    only then: the driver's analyser only names the genres there, the actors load their own)."""
    rule = _rule(analyser, options)
    if options.ray is None:
        return listen.analyse(
            todo, analyser, workers=_workers(options), witness=options.write_tags, rule=rule, stop=stop
        )
    from . import ray_runner

    return ray_runner.analyse(todo, analyser, options, rule=rule, stop=stop)


def _rule(analyser: Analyser, options: ScanOptions) -> sure.Rule | None:
    """`--segments auto` (None): listen until the written genres are sure; N: exactly N windows."""
    if options.segments is not None:
        return None
    return sure.Rule(options.top_k, _floor(analyser, options), options.vote)


def _discover(paths: Sequence[str | Path], options: ScanOptions) -> list[discover.Found]:
    """The files to scan, without mgctag's own temporary files; with --write-tags, the stale
    temporaries a killed run left beside them (or beside their symlinks' targets) are removed."""
    found = list(
        discover.discover(paths, include_hidden=options.include_hidden, follow_symlinks=options.follow_symlinks)
    )
    if options.write_tags:
        folders = {f.path.parent for f in found}
        folders |= {Path(os.path.realpath(f.path)).parent for f in found if f.path.is_symlink()}
        removed = sum(len(safe.cleanup_temps(folder)) for folder in sorted(folders))
        if removed:
            log.info("removed %d temporary file(s) left by an interrupted run", removed)
    return [f for f in found if not safe.TEMP_PATTERN.match(f.path.name)]


def _settings(analyser: Analyser, options: ScanOptions) -> str:
    """What a file's result depends on besides the file: the weights and the decision options."""
    return state.settings_key(
        analyser.weights_files,
        top_k=options.top_k,
        min_confidence=_floor(analyser, options),
        keep_existing=options.keep_existing,
        genres=analyser.genres,
        genre_map=options.genre_map.table,
        segments=analyser.segments if options.segments is not None else ["auto", *analyser.segments],
        vote=options.vote,
        albums=options.albums,
    )


def _floor(analyser: Analyser, options: ScanOptions) -> float:
    return decide.confidence_floor(options.min_confidence, analyser.min_confidence)


def _until(stop: Callable[[], bool], items: Iterable) -> Iterator:
    """`items` until `stop()` is true: checked before each one, so a stop takes no new file."""
    for item in items:
        if stop():
            return
        yield item


def _workers(options: ScanOptions) -> int:
    return options.workers if options.workers is not None else usable_cpus()


class _Run:
    """One run's bookkeeping: triage by stat, decisions, journalled writes, state rows, counts."""

    def __init__(
        self,
        db: state.State,
        roots: Sequence[str | Path],
        options: ScanOptions,
        analyser: Analyser,
        albums_of: Mapping[Path, str],
    ):
        self.db, self.options, self.analyser, self.albums_of = db, options, analyser, albums_of
        self.model_id, self.settings = analyser.model_id, _settings(analyser, options)
        self.floor = _floor(analyser, options)
        self.writing = dict(hardlinks=options.hardlinks, id3v23=options.id3v23, keep_mtime=options.keep_mtime)
        self.id = db.start_run(
            roots=roots,
            model=self.model_id,
            settings=self.settings,
            write_tags=options.write_tags,
            writing=self.writing,
        )
        self.counts: Counter[str] = Counter()
        self.complete = False
        self.known: dict[Path, state.Seen] = {}  # unchanged files' earlier results, for their albums

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
            return self._count(
                FileResult(
                    f.path,
                    "skipped",
                    model=self.model_id,
                    note=f"hard-linked ({st.st_nlink} names): not written "
                    "(--hardlinks break gives this name its own copy)",
                )
            )
        if not o.rescan:
            seen = self.db.lookup(f.path, st, model=self.model_id, settings=self.settings, write_tags=o.write_tags)
            if seen:
                self.known[f.path] = seen
                return self._count(decide.remembered(f.path, seen, self.model_id))
        return None

    def settle(self, items: list, stop: Callable[[], bool] = lambda: False) -> Iterator[FileResult]:
        """Decide one folder: each album from all its tracks (mgctag.albums), the other files alone.

        `items` are the folder's files heard now, as (Decoded, scores), and its unchanged files'
        earlier results (FileResult); an unchanged file is decided again, from the evidence the
        state kept, only when its album has a track heard now. Once `stop()` is true no further
        file is decided (nor written): they are left for the next run."""
        tracks: dict[Path, albums.Track] = {}
        owned: dict[Path, bool] = {}  # _ours per heard file, asked of the journal once
        for item in items:
            if isinstance(item, FileResult):
                seen = self.known.get(item.path)
                if seen and seen.evidence:
                    tracks[item.path] = replace(
                        albums.Track.from_json(item.path, seen.evidence), given=self.albums_of.get(item.path)
                    )
            elif item[1] is not None and item[0].peak > SILENT_PEAK:
                d, scores = item
                owned[d.path] = self._ours(d)
                tracks[d.path] = self._track(d, scores, owned[d.path])
        verdicts = albums.decide(list(tracks.values()), self.analyser.genres)
        fresh = {verdicts[p].album for p in tracks if p in verdicts and p not in self.known}
        for item in items:
            if stop():
                return
            if isinstance(item, FileResult):
                verdict = verdicts.get(item.path)
                if verdict is None or verdict.album not in fresh:
                    yield item
                else:
                    self.counts[item.status] -= 1
                    yield self._again(tracks[item.path], verdict)
            else:
                d, scores = item
                yield (
                    self.failed(d)
                    if scores is None
                    else self.finish(d, scores, verdicts.get(d.path), tracks.get(d.path), owned.get(d.path))
                )

    def _track(self, d: Decoded, scores: np.ndarray, ours: bool) -> albums.Track:
        e = d.existing
        users = decide.keeps_users(e.genres, keep_existing=self.options.keep_existing, ours=ours)
        user = tuple(e.genres) if users else ()
        return albums.Track(
            d.path,
            scores,
            d.planned,
            e.album,
            e.album_artist,
            e.artist,
            e.compilation,
            user,
            self.albums_of.get(d.path),
        )

    def unit(self, path: Path) -> object:
        """What a file waits for (albums.unit), known from its path before it is heard."""
        return self.albums_of.get(path) or albums.home(path)

    def _ours(self, d: Decoded) -> bool:
        """Whether the file's genre is one mgctag wrote (and nobody changed since): mgctag's to refresh."""
        return bool(d.existing.model) and self.db.wrote(d.path, d.existing.genres)

    def _again(self, track: albums.Track, verdict: albums.Verdict) -> FileResult:
        """An unchanged file whose album gained a track: decided again from its kept evidence."""
        try:
            st = os.stat(track.path)
            existing = tags.read(track.path)
        except (OSError, MgctagError) as e:
            result = FileResult(
                track.path,
                "error",
                model=self.model_id,
                error=str(e) if isinstance(e, MgctagError) else (e.strerror or str(e)).lower(),
            )
            return self._count(result)
        windows = self.known[track.path].evidence.get("windows", 0)  # a track has one only with evidence
        d = Decoded(track.path, existing=existing, stat=(st.st_size, st.st_mtime_ns), peak=1.0, heard=windows)
        return self.finish(d, track.scores, verdict, track)

    def failed(self, d: Decoded) -> FileResult:
        if d.skipped:  # decodable, but nothing a model can honestly vote on (too short): settled, not an error
            result = FileResult(d.path, "skipped", model=self.model_id, note=d.error)
            self.db.record(result, d.stat, run_id=self.id, settings=self.settings)
            return self._count(result)
        result = FileResult(d.path, "error", model=self.model_id, error=d.error)
        self.db.record(result, None, run_id=self.id, settings=self.settings)
        return self._count(result)

    def finish(
        self,
        d: Decoded,
        scores: np.ndarray,
        verdict: albums.Verdict | None = None,
        track: albums.Track | None = None,
        ours: bool | None = None,
    ) -> FileResult:
        """Decide (alone, or by its album's `verdict`), write if asked, record with the file's
        evidence (`track`). `ours`: _ours(d), when the caller asked already. Whatever goes wrong
        here is this file's error, not the run's."""
        stat, written, evidence = d.stat, None, None
        try:
            ours = self._ours(d) if ours is None else ours
            if d.peak > SILENT_PEAK:
                evidence = (track or self._track(d, scores, ours)).to_json()
            result, values = decide.decide(
                d,
                scores,
                self.analyser.genres,
                self.model_id,
                top_k=self.options.top_k,
                keep_existing=self.options.keep_existing,
                floor=self.floor,
                ours=ours,
                verdict=verdict,
            )
            if values is not None and d.existing.unwritable:  # "no tag container", tags after the audio, ...
                result, values = replace(result, status="skipped", note=d.existing.unwritable), None
            if values is not None and self.options.write_tags:
                result, stat, written = self._write(d, result, values)
        except Exception as e:  # a bug must cost one file; BaseException (Ctrl-C) still ends the run
            log.debug("unexpected failure on %s", d.path, exc_info=True)
            result = FileResult(d.path, "error", model=self.model_id, error=_unexpected(e))
        result.windows = d.heard
        if evidence is not None:
            evidence["decided"] = {"album": result.album, "by": result.decided_by}
            evidence["windows"] = d.heard
        self.db.record(result, stat, run_id=self.id, settings=self.settings, written=written, evidence=evidence)
        return self._count(result)

    def _write(self, d: Decoded, result: FileResult, values: dict):
        """Write through mgctag.safe, journalled: the row is committed before the file changes."""
        after = state.Values(
            tuple(values["genres"]), tags.format_confidences(values["confidences"]), values["model_id"]
        )
        real = Path(os.path.realpath(d.path))  # journalled as the real file: a symlink to it may go
        self.db.journal_pending(self.id, real, before=state.Values.of(d.existing), after=after, seen_as=d.path)
        try:
            changed = safe.write_safely(
                d.path, **values, **self.writing, expect=d.stat, witness=d.witness, keep=self.db.keeper(self.id, real)
            )
        except Exception as e:  # the original is untouched whatever was raised (write_safely's promise)
            self.db.journal_set(self.id, real, None)
            if isinstance(e, tags.Unwritable):  # found only by trying: skipped, as a blocked file is
                return replace(result, status="skipped", note=str(e)), d.stat, None
            return (
                replace(result, status="error", error=str(e) if isinstance(e, MgctagError) else _unexpected(e)),
                d.stat,
                None,
            )
        if not changed:
            self.db.journal_set(self.id, real, None)
            return replace(result, status="unchanged"), d.stat, None
        self.db.journal_set(self.id, real, "done")
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


def _unexpected(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"unexpected {type(e).__name__}" + (f": {text[:160]}" if text else "")
