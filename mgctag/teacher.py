"""A teacher's outputs as soft targets for training (knowledge distillation, `train --teacher`).

Hinton, Vinyals & Dean (2015): a student learns more from a teacher's whole distribution over
the classes than from one label, and can learn from audio nobody labelled. The teacher is any
model `--model` accepts (an ensemble too). Its labels meet the student's through the analyser's
own projection (canonical genre names, then the user's `--genre-map`: AudioSet's "Hip hop
music" is GTZAN's `hiphop`), so the teacher must name every genre the student learns.

The target of a segment is the teacher's distribution over the student's genres, as a scan's
confidences are made: each member's probabilities merged into genres (sum for a softmax model,
max for a multi-label tagger), its share of what the student's genres get, and the mean over an
ensemble's members. The temperature T then softens it as q^(1/T), renormalised: for a softmax
teacher whose labels are the student's genres that is exactly Hinton's softmax(logits / T); for
a multi-label tagger, whose sigmoids have no common softmax, it flattens (T > 1) or sharpens
(T < 1) its genre shares the same way.

A teacher member hears each student segment through its own windows: one window of its length
centred on the segment (clamped to the track) when the segment is shorter, so a 3 s segment is
heard with the 10 s of context an AudioSet model was trained on; windows spread over it when
it is longer, their outputs averaged. What each member outputs for each window is cached on disk
beside the features, keyed by the member's weights (their content hash) and the track's file and
segment layout, so a second run, or another student with the same segment length, never runs
the teacher again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import cache
from .analyser import Analyser, member, resolve
from .cache import FeatureSet
from .errors import DataError, MgctagError
from .frontends import FrontendSpec
from .genremap import GenreMap
from .plans import Centred, WindowSpec
from .pool import DecodeJob
from .segment import window_starts  # noqa: F401  (named from here by callers)

TEACHER_CACHE_VERSION = 1  # bump when what is stored for a teacher changes meaning


@dataclass
class Targets:
    """Per-track teacher targets: (segments, student labels) rows, None for a track the teacher could not hear."""

    per_track: list[np.ndarray | None]
    errors: dict[int, str] = field(default_factory=dict)  # track index -> why the teacher could not hear it
    computed: int = 0  # tracks the teacher was run on
    reused: int = 0  # tracks whose teacher outputs came from the cache


class Teacher:
    """Loaded teacher model(s), how much of a target is theirs (`weight`), and the temperature."""

    def __init__(
        self,
        analyser: Analyser,
        hashes: list[str],
        *,
        weight: float = 0.5,
        temperature: float = 1.0,
        device: str = "cpu",
    ):
        if not 0.0 <= weight <= 1.0:
            raise MgctagError(f"--teacher-weight {weight:g}: expected a share between 0 and 1")
        if not temperature > 0 or not math.isfinite(temperature):
            raise MgctagError(f"--temperature {temperature:g}: expected a positive number")
        self.analyser, self.hashes = analyser, hashes
        self.weight, self.temperature, self.device = float(weight), float(temperature), device

    @classmethod
    def load(
        cls,
        model: str,
        *,
        weight: float = 0.5,
        temperature: float = 1.0,
        genre_map: GenreMap = GenreMap(),
        device: str = "cpu",
    ) -> "Teacher":
        """The model(s) `model` names (as `--model`), their labels renamed by `genre_map` as the student's were.

        Every label competes: a model's `--genres` default (what a scan may write) is not applied,
        so a student may learn any genre the teacher knows.
        """
        from . import weights
        from .install import sha256_of

        members, hashes = [], []
        for path in resolve(model):
            net, meta = weights.load(path, device)
            meta = replace(meta, defaults={k: v for k, v in meta.defaults.items() if k != "genres"})
            members.append(member(net, meta, path=path, genre_map=genre_map))
            hashes.append(sha256_of(path))
        return cls(Analyser.of(members), hashes, weight=weight, temperature=temperature, device=device)

    @property
    def name(self) -> str:
        return self.analyser.model_id

    def provenance(self) -> dict:
        """What the weights' provenance says about their teacher (names and hashes, never paths)."""
        return {"model": self.name, "sha256": self.hashes, "weight": self.weight, "temperature": self.temperature}

    def columns(self, labels: Sequence[str]) -> list[int]:
        """Where each student label is among the teacher's genres; a one-line error naming those it lacks."""
        where = {GenreMap.key(g): i for i, g in enumerate(self.analyser.genres)}
        missing = [g for g in labels if GenreMap.key(g) not in where]
        if missing:
            raise DataError(
                f"the teacher {self.name} cannot name {', '.join(missing)}: a teacher must name every "
                f"genre the student learns (--genre-map can rename or merge them; it names: "
                f"{', '.join(self.analyser.genres)})"
            )
        return [where[GenreMap.key(g)] for g in labels]

    def targets(
        self,
        tracks: Sequence,
        labels: Sequence[str],
        student: FrontendSpec,
        *,
        cache_dir: Path | None = None,
        workers: int = 0,
        on_track: Callable[[int, int], None] | None = None,
    ) -> Targets:
        """The tempered teacher distribution over `labels` for every back-to-back `student` segment of each track."""
        columns = self.columns(labels)
        specs = [m.window for m in self.analyser.members]
        seconds = student.segment_samples / student.sample_rate
        plans = [Centred(seconds, s) for s in specs]
        got = cache.cached_map(
            [t.path for t in tracks],
            [[_key(t.path, h, student, s) for h, s in zip(self.hashes, specs)] for t in tracks],
            DecodeJob(*plans, tags=False),
            lambda items: self._run(items, plans),
            folder=Path(cache_dir) if cache_dir else cache.default_dir(),
            workers=workers,
            on_track=on_track,
        )
        per_track = [None if o is None else self._distribution(o, columns) for o in got.values]
        return Targets(per_track, got.errors, computed=got.computed, reused=got.reused)

    def attach(self, fs: FeatureSet, labels: Sequence[str], student: FrontendSpec, **kw) -> tuple[FeatureSet, Targets]:
        """`fs` with its teacher targets (`soft`), less the tracks the teacher could not hear (listed in `skipped`)."""
        got = self.targets(fs.tracks, labels, student, **kw)
        counts = np.bincount(fs.owner, minlength=len(fs.tracks))
        keep, skipped = [], []
        for i, (t, soft) in enumerate(zip(fs.tracks, got.per_track)):
            if soft is None:
                skipped.append((t, f"the teacher could not hear it: {got.errors.get(i, 'unknown reason')}"))
            elif len(soft) != counts[i]:  # the same file, decoded twice: only a changed file can differ
                skipped.append((t, f"the teacher heard {len(soft)} segments, the student {counts[i]}"))
            else:
                keep.append(i)
        out = fs.subset(keep)
        out.soft = (
            np.concatenate([got.per_track[i] for i in keep]).astype(np.float32)
            if keep
            else np.zeros((0, len(labels)), np.float32)
        )
        out.skipped = fs.skipped + skipped
        return out, got

    def _run(self, items: Iterator, plans: Sequence[Centred]) -> Iterator[tuple[int, list[np.ndarray]]]:
        """Each member's label probabilities for each (track, windows per plan) of `items`:
        (segments, windows per segment, labels) per member, many tracks to a batch.

        In float32 wherever it runs (never the bf16 a scan may use on CUDA): what is stored must
        not depend on the device, since the cache key does not name it."""
        from .infer import BatchedInference, batched_map

        members, sizes = self.analyser.members, self.analyser.batch_sizes
        batchers = [BatchedInference(m.model, batch_size=b, precision="fp32") for m, b in zip(members, sizes)]
        for i, outputs in batched_map(batchers, items):
            shapes = [(-1, p.per_segment, len(m.meta.labels)) for m, p in zip(members, plans)]
            yield i, [probs.reshape(shape).astype(np.float32) for probs, shape in zip(outputs, shapes)]

    def _distribution(self, outputs: list[np.ndarray], columns: list[int]) -> np.ndarray:
        """Members' (segments, windows, labels) probabilities -> (segments, student labels), tempered."""
        shares = []
        for (s, w, n), scores in zip(
            (o.shape for o in outputs), self.analyser.segment_scores([o.reshape(-1, o.shape[-1]) for o in outputs])
        ):
            g = scores.reshape(s, w, -1).mean(axis=1)[:, columns]
            shares.append(_normalise(g))
        return temper(np.mean(shares, axis=0), self.temperature)


def temper(q: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of distributions softened (T > 1) or sharpened (T < 1): q^(1/T), renormalised (= softmax(log q / T))."""
    if temperature == 1.0:
        return _normalise(q)
    z = np.log(np.maximum(q, 1e-30)) / temperature
    z -= z.max(axis=1, keepdims=True)
    return _normalise(np.exp(z))


def _normalise(g: np.ndarray) -> np.ndarray:
    """Rows summing to one; a row that is all zero (the teacher hears none of the genres) becomes uniform."""
    g = np.asarray(g, dtype=np.float64)
    total = g.sum(axis=1, keepdims=True)
    return np.where(total > 0, g / np.where(total > 0, total, 1.0), 1.0 / g.shape[1])


def _key(path: Path, weights_hash: str, student: FrontendSpec, window: WindowSpec) -> str | None:
    """A track's teacher outputs depend on the file, the teacher's weights and where its windows are."""
    layout = {
        "segment_samples": student.segment_samples,
        "segment_rate": student.sample_rate,
        "window_samples": window.n_samples,
        "window_rate": window.sample_rate,
    }
    return cache.file_key(path, "teacher", TEACHER_CACHE_VERSION, weights_hash, layout)
