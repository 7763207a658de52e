"""Where training labels come from: genre folders, a CSV manifest, or the genre tags already in a library.

Every source becomes a list of `Track`s; nothing is decoded here. Problems that stop training
raise DataError with one line; problems that only cost some files (unreadable tags, a class too
small to learn) come back as `warnings` for the caller to show, so the library prints nothing.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import discover, tags
from .errors import DataError, MgctagError
from .genremap import GenreMap

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Track:
    path: Path  # absolute, as found (not resolved through symlinks)
    label: str | None  # the genre to learn, after the genre map; None: unlabelled (a teacher's alone)
    split: str | None = None  # one of SPLITS when the source fixes it (manifest column, split files)
    artist: str | None = None  # from the file's tags; splits keep an artist's tracks together

    @property
    def group(self) -> str:
        """What must never straddle a split: the artist when known, else the track itself."""
        return f"artist:{self.artist.casefold()}" if self.artist else f"track:{self.path}"


@dataclass(frozen=True)
class TrackSet:
    tracks: tuple[Track, ...]
    source: str  # for provenance, e.g. "folders:gtzan" (names, never paths)
    warnings: tuple[str, ...] = field(default=())
    left_out: tuple[tuple[str, Path, str], ...] = field(default=())  # (genre, path, reason): files not listed

    @property
    def labels(self) -> list[str]:
        return sorted({t.label for t in self.tracks})

    def counts(self) -> Counter:
        return Counter(t.label for t in self.tracks)


def from_folders(root: str | Path, *, genre_map: GenreMap = GenreMap()) -> TrackSet:
    """One folder per genre (the GTZAN layout): ``root/<genre>/**/<audio file>``."""
    root = Path(root).absolute()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    tracks, warnings, left_out = [], [], []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        label = genre_map.apply(folder.name)
        for found in discover.discover([folder]):
            if found.problem:
                warnings.append(f"{found.path}: {found.problem}")
                if label is not None:
                    left_out.append((label, found.path, found.problem))
            elif label is not None:
                tracks.append(Track(found.path, label))
        if label is not None:  # a genre the map drops is left out whole, on purpose
            left_out += [(label, p, "not an audio file name") for p in _other_files(folder)]
    loose = [p.name for p in root.iterdir() if p.is_file() and discover.is_audio_name(p.name)]
    if loose:
        warnings.append(f"{len(loose)} audio file(s) directly in {root} ignored (no genre folder)")
    if not tracks:
        raise DataError(f"{root}: no audio files in genre folders (expected {root}/<genre>/<file>)")
    return TrackSet(tuple(_with_artists(tracks)), f"folders:{data_name(root)}", tuple(warnings), tuple(left_out))


def _audio(roots: Sequence[str | Path], warnings: list[str]) -> list[discover.Found]:
    """The audio files discovery finds under `roots`; each one it could not use is a warning."""
    try:
        found = list(discover.discover(roots))
    except FileNotFoundError as e:
        raise DataError(f"{e.filename}: no such file or folder") from None
    warnings += [f"{f.path}: {f.problem}" for f in found if f.problem]
    return [f for f in found if not f.problem]


def data_name(path: str | Path) -> str:
    """What provenance says about a data source: its name, never the training machine's path to it."""
    p = Path(path)
    return Path(os.path.abspath(p)).name or str(p)


def _other_files(folder: Path) -> list[Path]:
    """Files under `folder` that discovery passes over for their names (covers, playlists, .txt), not hidden."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(top) / f for f in files if not f.startswith(".") and not discover.is_audio_name(f)]
    return sorted(found)


def left_out_summary(left_out: Iterable[tuple[str, str]]) -> list[str]:
    """One line per genre from (genre, reason) pairs: how many files were left out, and why.

    "blues: 3 file(s) left out (not an audio file name 2, truncated or corrupt 1)".
    """
    by_genre: dict[str, Counter] = {}
    for genre, reason in left_out:
        by_genre.setdefault(genre, Counter())[reason] += 1
    return [
        f"{g}: {sum(c.values())} file(s) left out ("
        + ", ".join(f"{r} {n}" for r, n in sorted(c.items(), key=lambda rn: (-rn[1], rn[0])))
        + ")"
        for g, c in sorted(by_genre.items())
    ]


def from_manifest(csv_path: str | Path, *, genre_map: GenreMap = GenreMap()) -> TrackSet:
    """A CSV of ``path,genre[,split[,artist]]`` rows; relative paths are relative to the CSV's folder.

    A first row naming the columns (starting with ``path``) is optional; an empty split or artist
    cell means none.
    """
    csv_path = Path(csv_path).absolute()
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read manifest {csv_path}: {e}") from None
    first = 1 if rows and rows[0][0].strip().lower() == "path" else 0
    tracks = []
    for n, row in enumerate(rows[first:], first + 1):
        cells = [c.strip() for c in row] + ["", ""]
        path, genre, split, artist = cells[:4]
        if not path or not genre:
            raise DataError(f"{csv_path}, row {n}: expected 'path,genre[,split[,artist]]', got {','.join(row)!r}")
        if split and split not in SPLITS:
            raise DataError(f"{csv_path}, row {n}: split {split!r} is not one of {', '.join(SPLITS)}")
        p = Path(path).expanduser()
        p = p if p.is_absolute() else csv_path.parent / p
        if not p.is_file():
            raise DataError(f"{csv_path}, row {n}: no such file {p}")
        label = genre_map.apply(genre)
        if label is not None:
            tracks.append(Track(p, label, split or None, artist or None))
    if not tracks:
        raise DataError(f"{csv_path}: the manifest lists no tracks")
    return TrackSet(tuple(_with_artists(tracks)), f"manifest:{data_name(csv_path)}")


def from_tags(roots: Sequence[str | Path], *, genre_map: GenreMap = GenreMap(), min_count: int = 5) -> TrackSet:
    """A library's own genre tags as labels, so mgctag learns the user's taxonomy.

    The first genre value that the map keeps is the label. Genres mgctag itself wrote are not
    used: learning from its own guesses would only teach it to repeat them. Classes with fewer
    than `min_count` tracks are dropped (with a warning): they cannot be learnt or split.
    """
    tracks, warnings = [], []
    untagged = own = 0
    for f in _audio(roots, warnings):
        try:
            state = tags.read(f.path)
        except MgctagError as e:
            warnings.append(f"{f.path}: {e}")
            continue
        if state.model:
            own += 1
            continue
        label = next((g for g in map(genre_map.apply, state.genres) if g), None)
        if label is None:
            untagged += 1
            continue
        tracks.append(Track(f.path, label, artist=state.artist))
    if untagged:
        warnings.append(f"{untagged} file(s) without a (kept) genre tag left out")
    if own:
        warnings.append(f"{own} file(s) whose genre mgctag wrote left out")
    source = "tags:" + ",".join(data_name(r) for r in roots)
    kept, dropped = drop_rare(tracks, min_count)
    if not kept:
        raise DataError(f"no genre has at least {min_count} tagged tracks under {', '.join(map(str, roots))}")
    return TrackSet(tuple(kept), source, tuple(warnings + dropped))


def unlabelled(roots: Sequence[str | Path], *, exclude: Iterable[Track] = ()) -> TrackSet:
    """Audio without labels under `roots` (`train --unlabelled`): learnt from a teacher's outputs alone.

    A file that is also one of the labelled tracks in `exclude` (the same file, however reached)
    is left out, so no labelled validation or test track can be trained on through this door.
    """
    labelled = {os.path.realpath(t.path) for t in exclude}
    tracks, warnings, dropped = [], [], 0
    for f in _audio(roots, warnings):
        if os.path.realpath(f.path) in labelled:
            dropped += 1
        else:
            tracks.append(Track(f.path, None))
    if dropped:
        warnings.append(f"{dropped} unlabelled file(s) left out: they are labelled tracks too")
    if not tracks:
        raise DataError(f"no audio files to learn from under {', '.join(map(str, roots))} (--unlabelled)")
    return TrackSet(
        tuple(_with_artists(tracks)), "unlabelled:" + ",".join(data_name(r) for r in roots), tuple(warnings)
    )


def drop_rare(tracks: Sequence[Track], min_count: int) -> tuple[list[Track], list[str]]:
    """Tracks of classes with at least `min_count` tracks, and one warning per dropped class."""
    counts = Counter(t.label for t in tracks)
    rare = {g: n for g, n in counts.items() if n < min_count}
    warnings = [
        f"genre {g!r} dropped: {n} track(s), fewer than the minimum {min_count}" for g, n in sorted(rare.items())
    ]
    return [t for t in tracks if t.label not in rare], warnings


def load_tracks(
    source: str | Path | None = None,
    *,
    tag_roots: Sequence[str | Path] = (),
    genre_map: GenreMap = GenreMap(),
    min_count: int = 1,
) -> TrackSet:
    """Pick the source by what it is: `tag_roots` -> from_tags, a .csv file -> manifest, a folder -> genre folders.

    `min_count` drops small classes whatever the source (at least 2 are needed to split a class).
    """
    if tag_roots:
        if source is not None:
            raise DataError("give either DATA or --from-tags, not both")
        return from_tags(tag_roots, genre_map=genre_map, min_count=max(min_count, 1))
    if source is None:
        raise DataError("no training data: give a genre folder, a CSV manifest or --from-tags LIBRARY")
    p = Path(source)
    if p.is_dir():
        ts = from_folders(p, genre_map=genre_map)
    elif p.is_file() and p.suffix.lower() == ".csv":
        ts = from_manifest(p, genre_map=genre_map)
    elif p.exists():
        raise DataError(f"{p}: expected a folder of genre folders or a .csv manifest")
    else:
        raise DataError(f"{p}: no such file or folder")
    kept, dropped = drop_rare(ts.tracks, min_count)
    if not kept:
        raise DataError(f"{p}: no genre has at least {min_count} tracks")
    return replace(ts, tracks=tuple(kept), warnings=ts.warnings + tuple(dropped))


def _with_artists(tracks: list[Track]) -> list[Track]:
    """Fill in artists from the files' tags where the source gave none (unreadable tags: none)."""
    out = []
    for t in tracks:
        if t.artist is None:
            try:
                t = replace(t, artist=tags.read(t.path).artist)
            except MgctagError:
                pass
        out.append(t)
    return out
