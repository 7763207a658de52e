"""Features computed once: each track cut into back-to-back segments, through the front-end, kept on disk.

Training runs many epochs (and K folds) over the same audio, and a user retrains with other
options; decoding and the STFT would dominate if repeated. One float16 array per track and
front-end is stored under a key made of the file's resolved path, size and mtime plus the
FrontendSpec, so an edited file or another front-end simply misses. Normalisation is not
applied here: its statistics depend on the training split, which the cache must not know.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import platformdirs

from .dataset import Track
from .plans import Tiles
from .pool import DecodeJob, decode_all

if TYPE_CHECKING:  # decoding workers import this module: keep torch out of it
    from .frontends import FrontendSpec

CACHE_VERSION = 1  # bump when what is stored changes meaning
ENV_VAR = "MGCTAG_CACHE"


def default_dir() -> Path:
    """$MGCTAG_CACHE, else the platform's user cache folder (~/.cache/mgctag/features on Linux)."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path(platformdirs.user_cache_dir("mgctag")) / "features"


@dataclass
class FeatureSet:
    """Segments of many tracks in one array, each row knowing its track.

    x : (segments, n_features, n_frames) float16 front-end output (or (segments, dim) embeddings)
    owner : (segments,) index into `tracks`
    soft : (segments, labels) a teacher's distribution over the student's labels, when distilling
    """

    tracks: list[Track]
    x: np.ndarray
    owner: np.ndarray
    skipped: list[tuple[Track, str]] = field(default_factory=list)  # (track, one-line reason)
    computed: int = 0  # tracks decoded and computed by this call
    reused: int = 0  # tracks read from the cache
    soft: np.ndarray | None = None

    def subset(self, indices: Sequence[int]) -> "FeatureSet":
        """The tracks at `indices` (in that order) with all, and only, their segments."""
        indices = list(indices)
        remap = np.full(len(self.tracks), -1)
        remap[indices] = np.arange(len(indices))
        rows = np.flatnonzero(remap[self.owner] >= 0)
        rows = rows[np.argsort(remap[self.owner[rows]], kind="stable")]
        return FeatureSet(
            [self.tracks[i] for i in indices],
            self.x[rows],
            remap[self.owner[rows]],
            soft=None if self.soft is None else self.soft[rows],
        )

    def plus(self, other: "FeatureSet") -> "FeatureSet":
        """Both sets' tracks and segments, this one's first (labelled training tracks + unlabelled ones)."""
        if (self.soft is None) != (other.soft is None):
            raise ValueError("cannot join a feature set with a teacher's targets to one without")
        return FeatureSet(
            self.tracks + other.tracks,
            np.concatenate([self.x, other.x]),
            np.concatenate([self.owner, other.owner + len(self.tracks)]),
            self.skipped + other.skipped,
            soft=None if self.soft is None else np.concatenate([self.soft, other.soft]),
        )

    def targets(self, labels: Sequence[str]) -> np.ndarray:
        """(segments,) class index of each segment's track in `labels`; -1 for an unlabelled track."""
        index = {g: i for i, g in enumerate(labels)}
        return np.array([index[t.label] if t.label is not None else -1 for t in self.tracks], dtype=np.int64)[
            self.owner
        ]


def cache_key(path: Path, spec: FrontendSpec) -> str | None:
    """Hash of what the features depend on; None when the file cannot be stat'ed."""
    return file_key(path, spec.to_dict())


def file_key(path: Path, *what) -> str | None:
    """Hash of a file's identity (resolved path, size, mtime) and `what` (JSON): any edit misses."""
    try:
        real = Path(os.path.realpath(path))
        st = real.stat()
    except OSError:
        return None
    blob = json.dumps([CACHE_VERSION, os.fsdecode(real), st.st_size, st.st_mtime_ns, *what], sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8", "surrogateescape")).hexdigest()


def features(
    tracks: Sequence[Track],
    spec: FrontendSpec,
    *,
    cache_dir: Path | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    workers: int = 0,
    on_track: Callable[[int, int], None] | None = None,
) -> FeatureSet:
    """Front-end features of every track's back-to-back segments, from the cache or computed and stored.

    Tracks that cannot be decoded are left out and listed in `skipped`. `on_track(done, total)`
    reports progress. `workers` decoding processes (0: decode in this process).
    """

    def run(items: Iterator[tuple[int, tuple[np.ndarray, ...]]]) -> Iterator[tuple[int, list[np.ndarray]]]:
        from .frontends import Frontend
        from .infer import BatchedInference, batched_map

        frontend = BatchedInference(Frontend(spec).to(device).eval(), batch_size=batch_size, activation=False)
        for i, (x,) in batched_map([frontend], items):
            yield i, [x.astype(np.float16)]

    got = cached_map(
        [t.path for t in tracks],
        [[cache_key(t.path, spec)] for t in tracks],
        DecodeJob(Tiles.of(spec), tags=False),
        run,
        folder=Path(cache_dir) if cache_dir else default_dir(),
        workers=workers,
        on_track=on_track,
    )
    kept = [i for i, v in enumerate(got.values) if v is not None]
    arrays = [got.values[i][0] for i in kept]
    x = np.concatenate(arrays) if kept else np.zeros((0, spec.n_features, spec.n_frames), np.float16)
    owner = np.concatenate([np.full(len(a), k) for k, a in enumerate(arrays)]) if kept else np.zeros(0, int)
    return FeatureSet(
        [tracks[i] for i in kept],
        x,
        owner,
        [(tracks[i], r) for i, r in sorted(got.errors.items())],
        computed=got.computed,
        reused=got.reused,
    )


@dataclass
class Mapped:
    """What `cached_map` gives back: per item its arrays (one per key), or why there are none."""

    values: list[list[np.ndarray] | None]
    errors: dict[int, str]  # item index -> one-line reason
    computed: int = 0  # items decoded and computed by this call
    reused: int = 0  # items read from the cache


def cached_map(
    paths: Sequence[Path],
    keys: Sequence[Sequence[str | None]],
    job: DecodeJob,
    run: Callable[[Iterator[tuple[int, tuple[np.ndarray, ...]]]], Iterator[tuple[int, Sequence[np.ndarray]]]],
    *,
    folder: Path,
    workers: int = 0,
    on_track: Callable[[int, int], None] | None = None,
) -> Mapped:
    """Each file's arrays, one per key in `keys[i]`: read from the cache in `folder` when every
    one is there, else the file decoded by `job` and computed by `run`, then stored.

    The one read-cache-or-compute loop of the feature cache and a teacher's outputs. `run` takes
    a stream of (index, the decoded windows of each of `job`'s plans) and yields (index, arrays)
    in the same order, however it batches them (mgctag.infer.batched_map); it is called only when
    something is missing, so a test can tell that nothing was computed. A file without a key
    (cannot be stat'ed) or that fails to decode is listed in `errors`. `on_track(done, total)`
    counts every file, whichever way it went.
    """
    values: list[list[np.ndarray] | None] = [None] * len(paths)
    errors: dict[int, str] = {}
    todo = []
    for i, ks in enumerate(keys):
        if not all(ks):
            errors[i] = "cannot read the file"
            continue
        got = [read(folder, k) for k in ks]
        if all(a is not None for a in got):
            values[i] = got
        else:
            todo.append(i)
    reused, done = len(paths) - len(todo) - len(errors), len(paths) - len(todo)
    if on_track:
        on_track(done, len(paths))

    def tick() -> None:
        nonlocal done
        done += 1
        if on_track:
            on_track(done, len(paths))

    def decoded() -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        for i, d in zip(todo, decode_all((paths[i] for i in todo), job, workers)):
            if d.error:
                errors[i] = d.error
                tick()
            else:
                yield i, d.windows

    if todo:
        for i, arrays in run(decoded()):
            values[i] = list(arrays)
            for k, a in zip(keys[i], values[i]):
                write(folder, k, a)
            tick()
    return Mapped(values, errors, computed=sum(values[i] is not None for i in todo), reused=reused)


def _path(folder: Path, key: str) -> Path:
    return folder / key[:2] / f"{key}.npy"


def read(folder: Path, key: str) -> np.ndarray | None:
    try:
        return np.load(_path(folder, key), allow_pickle=False)
    except (OSError, ValueError):  # missing, or a torn write from a killed run: compute again
        return None


def write(folder: Path, key: str, x: np.ndarray) -> None:
    """Atomic (temp file, rename), so a killed run never leaves half an array; a full disk only costs speed."""
    path = _path(folder, key)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.save(f, x, allow_pickle=False)
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
