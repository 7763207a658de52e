"""What one file is told: the keep / confidence rules over its scores, or over its album's.

The scan (mgctag.scanner) calls `decide` for every file it heard, alone or with its album's
verdict (mgctag.albums), and `remembered` for a file the state says is unchanged since the last
run, whose stored answer is shown again without hearing it. What a result means once decided
(which genres it writes, whether the file holds them) is asked here too (`written`, `holds`,
`heard_otherwise`), so the beets plugin and the reports do not re-derive the rule.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import albums, state, tags, taxonomy
from .pool import Decoded
from .result import FileResult
from .vote import top_k as ranked

UNCHANGED_NOTE = "unchanged since last run"
SILENT_PEAK = 1e-4  # no sample above about -80 dBFS in the voted windows: any genre would be a guess
OWN_GUESS = "its own guess"  # the note of a track its album outvoted starts so (`heard_otherwise`)
WRITES = ("tagged", "would-tag", "unchanged")  # statuses whose genres are mgctag's answer, in the file or to be


def confidence_floor(min_confidence: float | None, model_default: float) -> float:
    """The floor `decide` is given: --min-confidence, or the model's own default when none was
    given. One rule, so that a caller reading results (beets) judges them by the scan's floor."""
    return model_default if min_confidence is None else min_confidence


def keeps_users(genres, *, keep_existing: bool, ours: bool) -> bool:
    """Whether a file keeps the genre it has: one mgctag did not write (or someone changed since),
    under --keep-existing. The scan asks it of the tags, the beets plugin of beets' fields."""
    return bool(keep_existing and genres and not ours)


def written(result: FileResult, floor: float) -> list[str]:
    """The genres `decide` writes for `result` (or found written already), [] when it writes none.

    For a caller that has only the result (beets sets the genres itself): its top-k at or above
    `floor`, or all of the user's genre an album follows (the model may not name it).
    """
    if result.status not in WRITES:
        return []
    if result.decided_by == albums.ALBUM_USER:
        return [g for g, _ in result.genres]
    return [g for g, p in result.genres if p >= floor]


def holds(result: FileResult) -> bool:
    """Whether the file holds `result.genres` once the run is done: written, to be written (a dry
    run), already there, or the user's, kept."""
    return result.status in WRITES or result.status == "kept"


def heard_otherwise(result: FileResult) -> bool:
    """Whether a track decided by its album heard another genre itself. Told by the note, which
    the state keeps, so a result shown again from an earlier run says it as well."""
    return result.note.startswith(OWN_GUESS)


def remembered(path: Path, seen: state.Seen, model_id: str) -> FileResult:
    """An unchanged file's answer from the state, without listening again: what the last run
    decided, and why (a file it wrote now holds that, so it is "unchanged")."""
    evidence = seen.evidence or {}
    decided = evidence.get("decided", {})
    status = "unchanged" if seen.status == "tagged" else seen.status
    return FileResult(
        path,
        status,
        seen.genres,
        seen.existing_genre,
        model_id,
        note=seen.note or UNCHANGED_NOTE,
        album=decided.get("album", ""),
        decided_by=decided.get("by", albums.TRACK),
        windows=evidence.get("windows", 0),
    )


def decide(
    d: Decoded,
    scores: np.ndarray,
    genres: list[str],
    model_id: str,
    *,
    top_k: int,
    keep_existing: bool,
    floor: float,
    ours: bool,
    verdict: albums.Verdict | None = None,
) -> tuple[FileResult, dict | None]:
    """The keep / confidence rules over a file's genre scores, or over its album's (`verdict`).

    `ours`: the file's current genre is one mgctag wrote (and nobody changed since), so it may
    be refreshed even with --keep-existing. Returns the result and, when it is "would-tag", the
    values to write (write_safely's keywords).
    """
    own = ranked(scores, genres, len(genres))
    scored = own if verdict is None else ranked(verdict.scores, genres, len(genres))
    chosen = [(g, p) for g, p in scored[:top_k] if p >= floor]
    existing = d.existing
    users = keeps_users(existing.genres, keep_existing=keep_existing, ours=ours)
    result = FileResult(
        d.path,
        "",
        scored[:top_k],
        existing_genre="; ".join(existing.genres),
        model=model_id,
        album=verdict.album if verdict else "",
        decided_by=albums.ALBUM if verdict else albums.TRACK,
    )
    if d.peak <= SILENT_PEAK:
        result.status, result.note = "skipped", "silent: nothing to hear in the analysed segments"
        return result, None
    if verdict and verdict.user and not users:  # the album follows the genre the user gave some of its tracks
        share = {g: float(verdict.scores[genres.index(g)]) for g in verdict.user if g in genres}
        chosen = [(g, share.get(g)) for g in verdict.user]  # None: a genre the model cannot name
        result.genres, result.decided_by = chosen, albums.ALBUM_USER
        result.note = f"source: album (the user's genre on {verdict.user_tracks} of its {verdict.tracks} tracks)"
        values = dict(
            genres=list(verdict.user),
            model_id=model_id,
            confidences=[round(p, 3) for _, p in chosen] if len(share) == len(chosen) else None,
        )
        return _changes(result, existing, values)
    whose = "the album's " if verdict else ""
    if not chosen:
        best, p = scored[0]
        shown = math.floor(p * 1000) / 1000  # rounded down, so it never reads as reaching the minimum
        result.status, result.note = (
            "skipped",
            f"not sure enough: {whose}best guess {best} ({shown:.3f}) is below --min-confidence {floor:g}",
        )
        return result, None
    values = dict(genres=[g for g, _ in chosen], confidences=[round(p, 3) for _, p in chosen], model_id=model_id)
    if users:  # the line shows the genre kept; the model's guess goes in the note
        heard = dict(own)
        result.genres = [(g, heard.get(taxonomy.canonical(g))) for g in existing.genres]
        mine = [(g, p) for g, p in own[:top_k] if p >= floor] or own[:1]  # this file's own, not its album's
        guess = ", ".join(f"{g} ({p:.2f})" for g, p in mine)
        result.status = "kept"
        if [taxonomy.key(g) for g in existing.genres] == [taxonomy.key(g) for g, _ in mine]:
            result.note = f"mgctag hears the same: {guess}"
        else:
            result.note = f"a genre mgctag did not write; it hears {guess} (--overwrite replaces it)"
        return result, None
    notes = []
    if verdict and own[0][0] != scored[0][0]:
        notes.append(f"{OWN_GUESS}: {own[0][0]} ({own[0][1]:.2f})")
    if len(chosen) < min(top_k, len(scored)):
        g, p = scored[len(chosen)]
        notes.append(
            f"not written: {g} ({math.floor(p * 1000) / 1000:.3f}) and below, under --min-confidence {floor:g}"
        )
    result.note = "; ".join(notes)
    return _changes(result, existing, values)


def _changes(result: FileResult, existing: tags.TagState, values: dict) -> tuple[FileResult, dict | None]:
    """ "unchanged" when the file already holds `values`, else "would-tag" and the values."""
    if not tags.would_change(existing, **values):
        result.status = "unchanged"
        return result, None
    result.status = "would-tag"
    return result, values
