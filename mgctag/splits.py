"""Train / validation / test splits that never let one song (or one artist) sit on both sides.

Splits are made over tracks, never segments, so a track's segments always stay together; tracks
are grouped by artist when their tags name one (`Track.group`). Random splits are stratified
by genre and seeded, so a run can be repeated. Split files (e.g. the artist-filtered GTZAN lists
of Kereliuk, Sturm & Larsen 2015) name tracks as ``genre/stem.ext``; they match ours by genre
folder and stem, ignoring the extension (gtzan-mini is .ogg, the lists say .wav).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from .dataset import SPLITS, Track
from .errors import DataError


def described(folder: str | Path) -> str:
    """How a weights file's provenance names split files: the folder's name, never its path
    (train writes it, evaluate reads it to tell held-out lists from trained-on data)."""
    return f"split files {Path(folder).name}/"


def track_key(path: Path) -> str:
    """``genre/stem`` as split files name a track: the parent folder and the name without extension."""
    return f"{path.parent.name}/{path.stem}"


def apply_split_files(tracks: Sequence[Track], folder: str | Path) -> tuple[list[Track], list[str]]:
    """Assign splits from ``train*.txt``, ``valid*.txt`` and ``test*.txt`` in `folder`.

    Returns the tracks named in a list (others are left out) and notes for the user: how many
    were left out, how many listed names are not in the data. A list naming a genre folder the
    data does not have is a DataError (it is the wrong list for this data).
    """
    folder = Path(folder)
    files = {s: sorted(folder.glob(f"{s}*.txt")) for s in SPLITS}
    if not files["train"]:
        raise DataError(f"{folder}: no train*.txt split file")
    by_key = {track_key(t.path): t for t in tracks}
    genres = {t.path.parent.name for t in tracks}
    assigned: dict[str, str] = {}
    missing = 0
    for split, paths in files.items():
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise DataError(f"cannot read split file {path}: {e}") from None
            for n, line in enumerate(text.splitlines(), 1):
                name = line.strip()
                if not name or name.startswith("#"):
                    continue
                key = track_key(Path(name))
                genre = key.split("/", 1)[0]
                if genre not in genres:
                    raise DataError(
                        f"{path}, line {n}: genre {genre!r} of {name!r} is not a genre folder of the data "
                        f"({', '.join(sorted(genres))})"
                    )
                if key in assigned and assigned[key] != split:
                    raise DataError(f"{path}, line {n}: {name!r} is also in the {assigned[key]} split")
                assigned[key] = split
                missing += key not in by_key
    out = [replace(t, split=assigned[k]) for k, t in by_key.items() if k in assigned]
    notes = []
    if len(out) < len(tracks):
        notes.append(f"{len(tracks) - len(out)} track(s) not named in any split file left out")
    if missing:
        notes.append(f"{missing} name(s) in the split files are not in the data")
    if not any(t.split == "train" for t in out):
        raise DataError(f"{folder}: no track of the data is in the train split")
    return out, notes


def random_split(tracks: Sequence[Track], *, valid: float = 0.1, test: float = 0.1, seed: int = 0) -> list[Track]:
    """Grouped, stratified split into train / valid / test (default 80 / 10 / 10), seeded.

    Each fraction is rounded to 1/k for a whole number k of folds (0.1 -> one fold of 10),
    so a held-out part is one fold of a stratified grouped K-fold.
    """
    tracks = list(tracks)
    out = [replace(t, split="train") for t in tracks]
    rest = list(range(len(tracks)))
    for name, fraction in (("test", test), ("valid", valid)):
        if fraction <= 0:
            continue
        share = fraction / (1.0 - (test if name == "valid" else 0.0))  # of what is left
        k = max(2, round(1.0 / share))
        held = _first_fold([tracks[i] for i in rest], k, seed)
        held_idx = {rest[i] for i in held}
        for i in held_idx:
            out[i] = replace(out[i], split=name)
        rest = [i for i in rest if i not in held_idx]
    return out


def kfold(tracks: Sequence[Track], folds: int, *, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, test indices) for stratified grouped K-fold cross-validation, seeded."""
    if folds < 2:
        raise DataError("cross-validation needs at least 2 folds")
    most = _most_folds(tracks)
    if folds > most:
        raise DataError(
            f"{folds} folds asked for, but the data allows at most {most} "
            "(independent tracks/artists, and tracks of the largest genre)"
        )
    return list(_splitter(tracks, folds, seed))


def by_split(tracks: Sequence[Track]) -> dict[str, list[Track]]:
    return {s: [t for t in tracks if t.split == s] for s in SPLITS}


def _groups(tracks: Sequence[Track]) -> np.ndarray:
    return np.array([t.group for t in tracks])


def _splitter(tracks: Sequence[Track], folds: int, seed: int):
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.array([t.label for t in tracks])
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "least populated class has fewer members than n_splits": fine, said below
        warnings.simplefilter("ignore", UserWarning)
        yield from cv.split(np.zeros(len(y)), y, _groups(tracks))


def _most_folds(tracks: Sequence[Track]) -> int:
    """The most folds StratifiedGroupKFold can make: each needs a group, and the largest class a member in each."""
    largest = max(Counter(t.label for t in tracks).values(), default=0)
    return min(len(set(_groups(tracks))), largest)


def _first_fold(tracks: list[Track], k: int, seed: int) -> np.ndarray:
    """One fold of k; on small data fewer, larger folds (the held-out share grows)."""
    most = _most_folds(tracks)
    if most < 2:
        raise DataError("too few independent tracks/artists to hold some out for validation or testing")
    return next(_splitter(tracks, min(k, most), seed))[1]
