"""Albums: which tracks are one album, and how the album decides one genre for all of them.

A library is albums, and a track judged alone throws away what its album's other tracks say.

What an album is (`identity`, `split`):
- By tags first: tracks with one album title and one album artist (or, without an album artist,
  one track artist) are one album. Two tagged albums in one folder are two.
- By folder, for tracks without an album title: the tracks directly in one folder.
- Either way, disc folders (CD1, CD 2, Disc1, Disc 2 - Bonus, ...) count as their parent folder
  (`home`), and an album's tracks lie in one such folder: a scan streams folder by folder, and a
  track's decision waits only for the rest of its folder. A folder of more than MAX_TRACKS files
  holds no album.
- Not an album (each track keeps its own decision): a compilation (the compilation flag, or an
  album artist "Various Artists"/"VA" over differing track artists, or one album title over
  differing track artists and no album artist), untagged tracks of different artists, and a
  folder album that fails the coherence test (`coherent`).

How it decides (`pool`): the album's evidence is each track's genre distribution (its scores
over the genres that may be written, summing to one), weighted by its length in windows (the
plan's count, however few `--segments auto` needed to be sure); the pooled
distribution then goes through the same rule as a track's (--top-k, --min-confidence).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODES = ("auto", "off")
# A folder with more files than this (disc folders counted in) is a flat library or a downloads
# folder, not an album: its tracks are judged alone, so that results stream and memory stays small.
MAX_TRACKS = 100
DISC_FOLDER = re.compile(r"(cd|dis[ck])\s*[-_.]?\s*\d+\b.*", re.IGNORECASE)
VARIOUS = frozenset({"various artists", "various", "va", "v.a.", "v/a", "varios artistas", "divers"})
# The coherence test for a folder without album tags. Each track's support is the score it gives
# the album's genre over the score it gives its own top genre (1 when it agrees). The folder is one
# album when the mean support is at least COHERENCE and no track's support is below DISSENT (a
# track sure of another genre means a folder of unrelated tracks more often than a misjudged one).
# Chosen on gtzan-mini with the AudioSet model (tools/album_table.py; rough, in-sample for the
# choice): its 20 same-genre five-clip albums have mean support 0.61-1.0 and minimum 0.06-1.0 (19
# kept as albums by decide(), whose mean is weighted by windows); of 40 folders of five
# different genres none is kept, of 40 of four of one genre plus one other, about half.
COHERENCE = 0.6
DISSENT = 0.05

TRACK, ALBUM, ALBUM_USER = "track", "album", "album (user genre)"  # FileResult.decided_by


@dataclass
class Track:
    """One track's evidence: its scores over the written genres and its album tags."""

    path: Path
    scores: np.ndarray
    heard: int  # windows its plan holds (its length, up to the model's count): its evidence's weight
    album: str | None = None  # album title, as tagged
    album_artist: str | None = None
    artist: str | None = None
    compilation: bool = False
    user_genres: tuple[str, ...] = ()  # a genre the user set (not mgctag's): the album follows it
    given: str | None = None  # the album a caller says it is in (beets' albums), instead of its tags

    def to_json(self) -> dict:
        """What the state database keeps, so a later run need not hear the track again."""
        return {
            "scores": [round(float(p), 6) for p in self.scores],
            "heard": self.heard,
            "album": self.album,
            "album_artist": self.album_artist,
            "artist": self.artist,
            "compilation": self.compilation,
            "user_genres": list(self.user_genres),
        }

    @classmethod
    def from_json(cls, path: Path, d: dict) -> "Track":
        return cls(
            path,
            np.asarray(d["scores"], dtype=np.float64),
            int(d["heard"]),
            d["album"],
            d["album_artist"],
            d["artist"],
            bool(d["compilation"]),
            tuple(d["user_genres"]),
        )


@dataclass(frozen=True)
class Verdict:
    """An album's decision, shared by its tracks."""

    album: str  # its identity, as reports show it
    scores: np.ndarray  # the pooled distribution over the genres
    tracks: int  # how many tracks it was decided from
    user: tuple[str, ...] = ()  # the user's genre(s) the album follows; () for the model's answer
    user_tracks: int = 0  # ... set on this many of its tracks


def unit(t: Track) -> object:
    """What a track waits for before its album is decided: the album it was given, else its home folder."""
    return t.given if t.given else home(t.path)


def home(path: Path) -> Path:
    """The folder an album is looked for in: the file's folder, or its parent for a disc folder."""
    folder = Path(os.path.abspath(path)).parent
    return folder.parent if DISC_FOLDER.fullmatch(folder.name) else folder


def _norm(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


def decide(tracks: Sequence[Track], genres: Sequence[str]) -> dict[Path, Verdict]:
    """Each track that belongs to an album -> that album's verdict; tracks judged alone are left out."""
    by_home: dict[object, list[Track]] = {}
    for t in tracks:
        by_home.setdefault(unit(t), []).append(t)
    out: dict[Path, Verdict] = {}
    for members_of_home in by_home.values():
        for name, (members, tagged) in split(members_of_home)[0].items():
            pooled = pool(members)
            if pooled is None or not (tagged or coherent(members, pooled)):
                continue
            user = user_choice(members, genres, pooled) or ()
            verdict = Verdict(
                name, pooled, len(members), user, sum(t.user_genres == user for t in members) if user else 0
            )
            out.update((t.path, verdict) for t in members)
    return out


def split(tracks: Sequence[Track]) -> tuple[dict[str, tuple[list[Track], bool]], list[Track]]:
    """One home folder's tracks -> {album identity: (its tracks, whether by tags)} and the tracks
    judged alone. An identity is what reports show: "Album Artist - Album" for a tagged album, the
    folder for an untagged one."""
    groups: dict[tuple, list[Track]] = {}
    for t in tracks:
        if t.given:
            groups.setdefault(("given", t.given), []).append(t)
        elif t.album and _norm(t.album):
            groups.setdefault(("tags", _norm(t.album), _norm(t.album_artist)), []).append(t)
        else:
            groups.setdefault(("folder",), []).append(t)
    albums: dict[str, tuple[list[Track], bool]] = {}
    alone: list[Track] = []
    for k, members in groups.items():
        artists = {_norm(t.artist) for t in members if _norm(t.artist)}
        if k[0] == "given":  # the caller's album (its compilations already left out)
            name = k[1]
        elif k[0] == "tags":
            first = members[0]
            by = first.album_artist if _norm(first.album_artist) else (first.artist or "")
            various = k[2] in VARIOUS or not k[2]  # no album artist: the tracks must share an artist
            if any(t.compilation for t in members) or (various and len(artists) > 1):
                alone += members
                continue
            name = f"{by.strip()} - {first.album.strip()}" if by.strip() else first.album.strip()
        else:
            if len(artists) > 1:  # untagged singles of different artists
                alone += members
                continue
            name = os.fsdecode(home(members[0].path))
        if len(members) < 2:
            alone += members
            continue
        albums[name] = (members, k[0] != "folder")
    return albums, alone


def pool(tracks: Sequence[Track]) -> np.ndarray | None:
    """The album's genre distribution: its tracks' distributions, weighted by their windows."""
    heard = [t for t in tracks if t.heard > 0]
    if not heard:
        return None
    weights = np.array([t.heard for t in heard], dtype=np.float64)
    return np.average(np.stack([t.scores for t in heard]), axis=0, weights=weights)


def coherent(tracks: Sequence[Track], pooled: np.ndarray) -> bool:
    """Whether tracks grouped only by their folder sound like one album (COHERENCE, DISSENT)."""
    heard = [t for t in tracks if t.heard > 0]
    if not heard:
        return False
    g = int(np.argmax(pooled))
    support = [float(t.scores[g]) / max(float(t.scores.max()), 1e-12) for t in heard]
    return float(np.average(support, weights=[t.heard for t in heard])) >= COHERENCE and min(support) >= DISSENT


def user_choice(tracks: Sequence[Track], genres: Sequence[str], pooled: np.ndarray | None) -> tuple[str, ...] | None:
    """The genre(s) the user set on some of the album's tracks, for the others to follow: the most
    common, ties broken by the album's own evidence; None when the user set none."""
    counts = Counter(t.user_genres for t in tracks if t.user_genres)
    if not counts:
        return None
    index = {g: i for i, g in enumerate(genres)}

    def evidence(choice: tuple[str, ...]) -> float:
        i = index.get(choice[0])
        return float(pooled[i]) if pooled is not None and i is not None else -1.0

    return max(counts, key=lambda c: (counts[c], evidence(c)))


class Folders:
    """Files waiting for the rest of their folder (home), so that an album is decided from
    all its tracks: memory holds the folders being heard, never the library. Results may come in
    any order (Ray): a folder is complete when every file of it that is being heard is back. A
    folder of more than MAX_TRACKS files (a flat library, a downloads folder) is no album:
    its files are decided alone as they come."""

    def __init__(self, todo: Iterable[Path], everything: Iterable[Path], unit: Callable[[Path], object]):
        self.unit = unit
        self.big = {folder for folder, n in Counter(map(unit, everything)).items() if n > MAX_TRACKS}
        self.left = Counter(folder for folder in map(unit, todo) if folder not in self.big)
        self.waiting: dict[object, list] = {}

    def hold(self, path: Path, item) -> bool:
        """Keep `item` (an unchanged file's result) with its folder when something there is being heard."""
        folder = self.unit(path)
        if not self.left[folder]:
            return False
        self.waiting.setdefault(folder, []).append(item)
        return True

    def add(self, path: Path, item) -> list | None:
        """A heard file; its folder's items once this was the folder's last."""
        folder = self.unit(path)
        if folder in self.big:
            return [item]
        self.waiting.setdefault(folder, []).append(item)
        self.left[folder] -= 1
        if self.left[folder] > 0:
            return None
        del self.left[folder]
        return self.waiting.pop(folder)
