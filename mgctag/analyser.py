"""The models a scan listens with, and how their outputs become one score per genre.

`Analyser.load` takes `--model` (one model, or `A+B` for an ensemble), loads each model once and
fixes the genres it may write: each model's labels in canonical names (`taxonomy`), through the
`--genres` preset and the user's `--genre-map`. Labels merged into one genre add up when a
model's classes exclude each other (softmax) and take the maximum when they do not (a multi-label
tagger's sigmoids: the genre is as likely as its likeliest member). `feed` takes a decoded file's
windows and yields, once every model has heard them, the file's confidence per genre: each
model's vote over its segments, made a distribution over the genres that may be written, and for
an ensemble the mean of its models' distributions. So a confidence is always "how much of the
model's belief goes to this genre rather than the others it may write": for a softmax model that
keeps all its labels it is its probability unchanged; for a multi-label tagger its sigmoids'
share, which ranks right and wrong answers far better than the raw sigmoid does (gtzan-mini,
efficientat-mn04: precision 0.93 against 0.73 on the 30% most confident files; weights/README.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Hashable

import numpy as np

from . import taxonomy, weights
from .errors import MgctagError
from .genremap import GenreMap
from .pool import DecodeJob, WindowSpec
from .vote import vote

ENSEMBLE_SEP = "+"
log = logging.getLogger(__name__)


@dataclass
class Member:
    """One model of the analyser, with the projection of its labels onto written genres."""

    path: Path | None  # its weights file (None: a model built in memory)
    model: object  # mgctag.model.Classifier, eval mode, on its device
    meta: weights.WeightsMeta
    window: WindowSpec
    genres: list[str]  # what its labels become, in first-label order
    groups: list[np.ndarray]  # per genre: indices of the labels merged into it
    multilabel: bool

    def genre_probs(self, seg_probs: np.ndarray) -> np.ndarray:
        """(segments, labels) probabilities -> (segments, genres)."""
        merge = np.max if self.multilabel else np.sum
        return np.stack([merge(seg_probs[:, idx], axis=1) for idx in self.groups], axis=1)


class Analyser:
    """Batched inference for every member, and the projection of their outputs onto `genres`."""

    def __init__(
        self,
        members: list[Member],
        genres: list[str],
        *,
        vote_method: str = "mean",
        batch_size: int | None = None,
        min_confidence: float = 0.0,
    ):
        from .infer import BatchedInference, Together
        from .models import get_architecture

        self.members, self.genres, self.vote_method = members, genres, vote_method
        self.min_confidence = min_confidence  # the model's own default; 0 for an ensemble
        self.columns = [[m.genres.index(g) for g in genres] for m in members]
        # segments per batch, per member: `batch_size`, or None for each model's own (Architecture.batch_size)
        self.batch_sizes = [batch_size or get_architecture(m.meta.arch).batch_size for m in members]
        self.batchers = [BatchedInference(m.model, batch_size=b) for m, b in zip(members, self.batch_sizes)]
        self.together = Together(self.batchers)

    @classmethod
    def load(
        cls,
        model: str | None = None,
        *,
        device: str = "cpu",
        genres: str | None = None,
        genre_map: GenreMap = GenreMap(),
        segments: int | None = None,
        vote_method: str = "mean",
        batch_size: int | None = None,
        only: Sequence[str] | None = None,
    ) -> "Analyser":
        """Load the model(s) `model` names (None: the default model) onto `device`.

        `only` restricts the genres to these (a closed set, for evaluation on data that has no other).
        """
        members = []
        for path in resolve(model):
            net, meta = weights.load(path, device)
            members.append(member(net, meta, path=path, genres=genres, genre_map=genre_map, segments=segments))
        _warn_unused(genre_map, members)
        return cls.of(members, vote_method=vote_method, batch_size=batch_size, only=only)

    @classmethod
    def of(
        cls,
        members: list[Member],
        *,
        vote_method: str = "mean",
        batch_size: int | None = None,
        only: Sequence[str] | None = None,
    ) -> "Analyser":
        """An analyser over members already built (`member`), e.g. a model just trained."""
        shared = [g for g in members[0].genres if all(g in m.genres for m in members[1:])]
        if only is not None:
            wanted = {GenreMap.key(g): g for g in only}
            missing = sorted(g for k, g in wanted.items() if k not in {GenreMap.key(s) for s in shared})
            if missing:
                raise MgctagError(f"the model cannot name {', '.join(missing)} (it names: {', '.join(shared)})")
            shared = [g for g in shared if GenreMap.key(g) in wanted]
        if not shared:
            what = "the models share no genre" if len(members) > 1 else "no label of the model is left"
            raise MgctagError(f"{what} after --genres and --genre-map: nothing could be written")
        floor = members[0].meta.defaults.get("min_confidence", 0.0) if len(members) == 1 else 0.0
        return cls(members, shared, vote_method=vote_method, batch_size=batch_size, min_confidence=float(floor))

    # --- what the scan needs to know --------------------------------------------------------

    @property
    def model_id(self) -> str:
        """What is written into tags: one model's id, or the ensemble's ids joined by '+'."""
        return ENSEMBLE_SEP.join(m.meta.model_id for m in self.members)

    @property
    def weights_files(self) -> list[Path]:
        return [m.path for m in self.members]

    @property
    def segments(self) -> list[int]:
        return [m.window.n_segments for m in self.members]

    def job(self, *, witness: bool = False) -> DecodeJob:
        return DecodeJob(*(m.window for m in self.members), witness=witness)

    # --- listening ---------------------------------------------------------------------------

    def feed(self, key: Hashable, windows: Sequence[np.ndarray]) -> Iterator[tuple[Hashable, np.ndarray]]:
        """Queue one file's windows (one array per member, as its DecodeJob gives them); yield
        (key, scores over `genres`) for every file all members have heard, in feeding order.
        (Iterate it: nothing is queued until then.)"""
        return ((k, self.scores(p)) for k, p in self.listen(key, windows))

    def flush(self) -> Iterator[tuple[Hashable, np.ndarray]]:
        """Run what is queued and yield every remaining file."""
        return ((k, self.scores(p)) for k, p in self.listen_flush())

    def listen(self, key: Hashable, windows: Sequence[np.ndarray]) -> Iterator[tuple[Hashable, list[np.ndarray]]]:
        """As `feed`, but yield each member's (segments, labels) probabilities (for evaluation)."""
        if len(windows) != len(self.members):
            raise ValueError(f"{len(windows)} window arrays for {len(self.members)} models")
        return self.together.feed(key, windows)

    def listen_flush(self) -> Iterator[tuple[Hashable, list[np.ndarray]]]:
        return self.together.flush()

    def segment_scores(self, seg_probs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each member's (segments, labels) probabilities -> (segments, genres) over `genres`."""
        return [m.genre_probs(p)[:, cols] for m, cols, p in zip(self.members, self.columns, seg_probs)]

    def scores(self, seg_probs: Sequence[np.ndarray]) -> np.ndarray:
        """Each member's segment probabilities -> the file's score per genre (see the module doc)."""
        return self.vote_members(self.segment_scores(seg_probs))

    def vote_members(self, segment_scores: Sequence[np.ndarray]) -> np.ndarray:
        """Each member's (segments, genres) scores -> one confidence per genre (the module doc)."""
        return np.mean([v / max(v.sum(), 1e-12) for v in (vote(s, self.vote_method) for s in segment_scores)], axis=0)


def resolve(model: str | None) -> list[Path]:
    """The weights file(s) of a `--model` value: a name or path, or names joined by '+'."""
    if model and ENSEMBLE_SEP in model and not Path(model).expanduser().exists():
        names = [part.strip() for part in model.split(ENSEMBLE_SEP)]
        if not all(names):
            raise MgctagError(f"--model {model!r}: an ensemble is NAME+NAME")
        return [weights.resolve(n) for n in names]
    return [weights.resolve(model)]


def member(
    model,
    meta: weights.WeightsMeta,
    *,
    path: Path | None = None,
    genres: str | None = None,
    genre_map: GenreMap = GenreMap(),
    segments: int | None = None,
) -> Member:
    """One model (a Classifier) with its labels projected onto genres: its `genres` preset (None:
    the model's default), then `genre_map`; `segments` per track (None: the model's default)."""
    from .models import get_architecture

    preset = genres or meta.defaults.get("genres")
    maps = ([GenreMap.preset(preset, meta.labels)] if preset else []) + [genre_map]
    genres_out: list[str] = []
    groups: dict[str, list[int]] = {}
    # a tagger's own parent class already hears its children: only the softmax model's share moves up
    has = {taxonomy.canonical(label) for label in meta.labels} if model.multilabel else set()
    for i, label in enumerate(meta.labels):
        target = _target(label, maps, skip=has)
        if target is not None:
            if target not in groups:
                genres_out.append(target)
            groups.setdefault(target, []).append(i)
    n = segments or meta.defaults.get("segments") or get_architecture(meta.arch).default_segments
    return Member(
        path,
        model,
        meta,
        WindowSpec.of(model, int(n)),
        genres_out,
        [np.array(groups[g]) for g in genres_out],
        model.multilabel,
    )


def _target(label: str, maps: Sequence[GenreMap], *, skip: set[str] = frozenset()) -> str | None:
    """The genre `label` is written as: through every map in turn; a label they drop counts for its
    nearest ancestor in the genre tree (taxonomy.PARENT) that they keep, else for nothing.

    `skip`: ancestors that are outputs of a multi-label tagger. Such a parent class already hears
    its children (AudioSet's "Rock music" fires on punk), and adding a child's sigmoid to it by
    their maximum cost 8 tracks of 100 on gtzan-mini under `--genres gtzan` (0.76 -> 0.68, zero-shot,
    tools/album_table.py); a softmax model's child probability adds up exactly."""
    for name in (label, *(a for a in taxonomy.ancestors(label) if a not in skip)):
        target: str | None = name
        for m in maps:
            target = m.apply(target) if target is not None else None
        if target is not None:
            return target
    return None


def _warn_unused(genre_map: GenreMap, members: Sequence[Member]) -> None:
    """A --genre-map line whose source no model names does nothing: most likely a misspelling."""
    known = {
        GenreMap.key(name) for m in members for label in m.meta.labels for name in (label, *taxonomy.ancestors(label))
    }
    unused = [source for source in genre_map.table if source not in known]
    if unused:
        log.warning(
            "--genre-map: no model here names %s; %s nothing",
            ", ".join(repr(s) for s in unused),
            "that line does" if len(unused) == 1 else "those lines do",
        )
