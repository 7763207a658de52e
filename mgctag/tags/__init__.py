"""Genre tags in every format: read what is there, write genres + mgctag's own fields, touch nothing else.

One logical field (genre, confidence, model, artist) maps to each format's own key in a small
handler per format family (id3, vorbis, mp4, asf, apev2); which handler tags which mutagen file
type comes from the format table (mgctag.formats). Every mutagen or OS failure leaves this
package as a TagError with a one-line reason. `write` and `restore` work in place on the path
they are given: mgctag.safe runs them on a temporary copy.

Reading also takes an exact snapshot (`TagState.raw`) of what the written fields hold as stored
— ID3's "35" and "(3)Dance", not mutagen's "House" and "Dance"; each value's key spelling and type
— and whether the file had a tag at all, so `restore` (undo) puts back exactly that and removes a
tag mgctag created.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mutagen

from mgctag import formats
from mgctag.errors import TagError

from . import apev2, asf, id3, mp4, vorbis
from .base import ALBUM, ALBUM_ARTIST, ARTIST, COMPILATION, CONFIDENCE, GENRE, MODEL, WRITTEN, Format

HANDLERS: tuple[Format, ...] = (
    id3.MP3_HANDLER,
    id3.CHUNK_HANDLER,
    vorbis.HANDLER,
    mp4.HANDLER,
    asf.HANDLER,
    apev2.HANDLER,
)
BY_KEY: dict[str, Format] = {h.key: h for h in HANDLERS}
CONFIDENCE_FORMAT = "{:.3f}"  # "0.823": enough to rank, short enough to read in a tag editor
NO_CONTAINER_FORMAT = "none"  # TagState.format of a file that has no tag container


def _registry() -> tuple[dict[type[mutagen.FileType], Format], dict[type[mutagen.FileType], formats.AudioFormat]]:
    """mutagen file type -> its handler, and the types of formats without a tag container."""
    handlers, bare = {}, {}
    for fmt in formats.FORMATS:
        for spec in fmt.mutagen:
            module, name = spec.split(":")
            kind = getattr(importlib.import_module(f"mutagen.{module}"), name)
            if fmt.tags is None:
                bare[kind] = fmt
            else:
                handlers[kind] = BY_KEY[fmt.tags]
    for h in HANDLERS:
        h.types = tuple(kind for kind, owner in handlers.items() if owner is h)
    return handlers, bare


REGISTRY, NO_CONTAINER = _registry()


class Unwritable(TagError):
    """This file's tags are not to be written (no container; its real tags are where mgctag cannot update them)."""


@dataclass(frozen=True)
class TagState:
    genres: tuple[str, ...]  # current genre values, in order
    confidences: tuple[str, ...]  # mgctag confidence values as stored (text), () if none
    model: str | None  # mgctag model id field, None if absent
    artist: str | None  # first artist value (training uses it for artist-grouped splits)
    format: str  # short format name: "id3", "vorbis", "mp4", "asf", "apev2"; "none" without a tag container
    unwritable: str = ""  # why a write would be refused ("no tag container", ...), "" when it would not
    album: str | None = None  # album title, album artist and compilation flag: mgctag.albums groups by them
    album_artist: str | None = None
    compilation: bool = False
    raw: str | None = field(default=None, compare=False, repr=False)  # exact snapshot (JSON), for undo


def read(path: str | os.PathLike) -> TagState:
    """The genre, mgctag fields and artist as stored in `path`; TagError if unreadable or unsupported."""
    with _errors("cannot read tags"):
        handler, f = _open(path)
        if handler is None:
            return TagState((), (), None, None, NO_CONTAINER_FORMAT, unwritable=formats.NO_TAG_CONTAINER)
        first = {
            name: next(iter(handler.get(f, name)), None) for name in (MODEL, ARTIST, ALBUM, ALBUM_ARTIST, COMPILATION)
        }
        genres = handler.get(f, GENRE) or handler.older_genres(f)
        return TagState(
            genres=tuple(genres),
            confidences=tuple(handler.get(f, CONFIDENCE)),
            model=first[MODEL],
            artist=first[ARTIST],
            format=handler.name,
            unwritable=handler.blocked(f),
            album=first[ALBUM],
            album_artist=first[ALBUM_ARTIST],
            compilation=_flag(first[COMPILATION]),
            raw=_snapshot(handler, f),
        )


def write(
    path: str | os.PathLike,
    *,
    genres: Sequence[str],
    confidences: Sequence[float] | None,
    model_id: str | None,
    id3v23: bool = False,
) -> None:
    """Set the genres and mgctag fields of `path` in place; every other tag stays as it is.

    `genres=[]` removes the genre field, `confidences=None` / `model_id=None` remove mgctag's
    fields. Confidences go one per genre. `id3v23` saves an ID3 tag as v2.3 (converting it).
    Unwritable (a TagError) for a file that must not be written. Not atomic: use
    mgctag.safe.write_safely on a user's file.
    """
    fields = _field_values(genres=genres, confidences=confidences, model_id=model_id)
    with _errors("cannot write tags"):
        handler, f = _writable(path)
        for name, values in fields.items():
            handler.set(f, name, values)
        if f.tags is not None:  # None: the file has no tag and nothing is to be added
            handler.save(f, id3v23=id3v23)


def restore(path: str | os.PathLike, raw: str, *, id3v23: bool = False) -> None:
    """Put back the written fields exactly as `raw` (a TagState.raw) holds them; a tag that `raw`
    says was not there, and that holds nothing else now, is removed. Not atomic (see `write`)."""
    snap = json.loads(raw)
    with _errors("cannot write tags"):
        handler, f = _writable(path)
        if handler.name != snap["format"]:
            raise TagError(f"the earlier values are from a {snap['format']} tag, this file has {handler.name}")
        for name in WRITTEN:
            handler.restore_field(f, name, snap["fields"].get(name), snap["extra"].get(name))
        if not snap["tag"] and handler.has_tag(f) and handler.is_empty(f):
            handler.remove_tag(f)
        elif f.tags is not None:
            handler.save(f, id3v23=id3v23)


def same_values(a: str, b: str) -> bool:
    """Whether two snapshots (TagState.raw) hold the same stored values (how they are encoded aside)."""
    x, y = json.loads(a), json.loads(b)
    return (x["format"], x["fields"]) == (y["format"], y["fields"])


def would_change(
    state: TagState, *, genres: Sequence[str], confidences: Sequence[float] | None, model_id: str | None
) -> bool:
    """True when writing these values would change what `state` holds (diff before write)."""
    fields = _field_values(genres=genres, confidences=confidences, model_id=model_id)
    current = {GENRE: state.genres, CONFIDENCE: state.confidences, MODEL: (state.model,) if state.model else ()}
    return any(tuple(values) != current[name] for name, values in fields.items())


def format_confidences(confidences: Sequence[float] | None) -> tuple[str, ...]:
    """Confidences as they are stored: text with three decimals, () for None."""
    return tuple(CONFIDENCE_FORMAT.format(c) for c in confidences or ())


def _field_values(*, genres, confidences, model_id) -> dict[str, tuple[str, ...]]:
    """The text values each mgctag field should hold; an empty tuple means "remove"."""
    if isinstance(genres, str):
        raise TypeError("genres must be a sequence of strings, not a string")
    genres = tuple(genres)
    if any(not isinstance(g, str) or not g.strip() for g in genres):
        raise ValueError(f"genre names must be non-empty strings: {genres!r}")
    if confidences is not None and len(confidences) != len(genres):
        raise ValueError(f"{len(confidences)} confidences for {len(genres)} genres")
    return {GENRE: genres, CONFIDENCE: format_confidences(confidences), MODEL: (model_id,) if model_id else ()}


def _flag(text: str | None) -> bool:
    """A compilation flag as tag editors store it: "1", "True" (MP4's cpil), "yes"."""
    return (text or "").strip().casefold() in ("1", "true", "yes")


def _snapshot(handler: Format, f: mutagen.FileType) -> str:
    snap = {
        "format": handler.name,
        "tag": handler.has_tag(f),
        "fields": {name: handler.snapshot_field(f, name) for name in WRITTEN},
        "extra": {name: handler.snapshot_extra(f, name) for name in WRITTEN},
    }
    return json.dumps(snap, sort_keys=True)  # ASCII: a stray surrogate must not fail SQLite


def _open(path) -> tuple[Format | None, mutagen.FileType | None]:
    """Detect the file type, then load it the way its handler needs; (None, _) for a format without tags."""
    path = Path(path)
    detected = mutagen.File(path)
    if detected is None:
        entry = formats.for_path(path)
        if entry is not None and entry.tags is None:
            return None, None
        raise TagError("unsupported file type for tags")
    for kind in type(detected).__mro__:
        if kind in REGISTRY:
            handler = REGISTRY[kind]
            return handler, handler.open(path, detected)
        if kind in NO_CONTAINER:
            return None, detected
    raise TagError(f"unsupported file type for tags ({type(detected).__name__})")


def _writable(path) -> tuple[Format, mutagen.FileType]:
    handler, f = _open(path)
    if handler is None:
        raise Unwritable(formats.NO_TAG_CONTAINER)
    note = handler.blocked(f)
    if note:
        raise Unwritable(note)
    return handler, f


@contextmanager
def _errors(doing: str):
    """Turn mutagen, OS and tag-parsing failures into one-line TagErrors."""
    try:
        yield
    except TagError:
        raise
    except (mutagen.MutagenError, OSError, struct.error, ValueError, IndexError, EOFError) as e:
        raise TagError(f"{doing}: {_one_line(e)}") from e


def _one_line(exc: BaseException) -> str:
    """An OS error's strerror, else the exception's first line, without the path it may repeat."""
    os_error = exc if isinstance(exc, OSError) else exc.__cause__ or exc.__context__
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror.lower()
    text = str(exc).splitlines()[0].strip() if str(exc).strip() else type(exc).__name__
    return text[:160]


__all__ = [
    "TagState",
    "Unwritable",
    "read",
    "write",
    "restore",
    "same_values",
    "would_change",
    "format_confidences",
    "REGISTRY",
    "HANDLERS",
    "BY_KEY",
]
