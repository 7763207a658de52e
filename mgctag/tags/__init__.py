"""Genre tags in every format: read what is there, write genres + mgctag's own fields, touch nothing else.

One logical field (genre, confidence, model, artist) maps to each format's own key in a small
handler per format family (id3, vorbis, mp4, asf); the registry below picks the handler by the
mutagen file type. Every mutagen or OS failure leaves this package as a TagError with a one-line
reason. `write` works in place on the path it is given: mgctag.safe runs it on a temporary copy.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mutagen

from mgctag.errors import TagError

from . import asf, id3, mp4, vorbis
from .base import ARTIST, CONFIDENCE, GENRE, MODEL, Format

HANDLERS: tuple[Format, ...] = (id3.MP3_HANDLER, id3.CHUNK_HANDLER, vorbis.HANDLER, mp4.HANDLER, asf.HANDLER)
# mutagen file type -> the handler for its tag format
REGISTRY: dict[type[mutagen.FileType], Format] = {kind: h for h in HANDLERS for kind in h.types}
CONFIDENCE_FORMAT = "{:.3f}"  # "0.823": enough to rank, short enough to read in a tag editor


@dataclass(frozen=True)
class TagState:
    genres: tuple[str, ...]  # current genre values, in order
    confidences: tuple[str, ...]  # mgctag confidence values as stored (text), () if none
    model: str | None  # mgctag model id field, None if absent
    artist: str | None  # first artist value (training uses it for artist-grouped splits)
    format: str  # short format name: "id3", "vorbis", "mp4", "asf"


def read(path: str | os.PathLike) -> TagState:
    """The genre, mgctag fields and artist as stored in `path`; TagError if unreadable or unsupported."""
    with _errors("cannot read tags"):
        handler, f = _open(path)
        model, artist = handler.get(f, MODEL), handler.get(f, ARTIST)
        return TagState(genres=tuple(handler.get(f, GENRE)), confidences=tuple(handler.get(f, CONFIDENCE)),
                        model=model[0] if model else None, artist=artist[0] if artist else None,
                        format=handler.name)


def write(path: str | os.PathLike, *, genres: Sequence[str], confidences: Sequence[float] | None,
          model_id: str | None, id3v23: bool = False) -> None:
    """Set the genres and mgctag fields of `path` in place; every other tag stays as it is.

    `genres=[]` removes the genre field, `confidences=None` / `model_id=None` remove mgctag's
    fields. Confidences go one per genre. `id3v23` saves an ID3 tag as v2.3 (converting it).
    Not atomic: use mgctag.safe.write_safely on a user's file.
    """
    fields = _field_values(genres=genres, confidences=confidences, model_id=model_id)
    with _errors("cannot write tags"):
        handler, f = _open(path)
        for field, values in fields.items():
            handler.set(f, field, values)
        if f.tags is not None:  # None: the file has no tag and nothing is to be added
            handler.save(f, id3v23=id3v23)


def would_change(state: TagState, *, genres: Sequence[str], confidences: Sequence[float] | None,
                 model_id: str | None) -> bool:
    """True when writing these values would change what `state` holds (diff before write)."""
    fields = _field_values(genres=genres, confidences=confidences, model_id=model_id)
    current = {GENRE: state.genres, CONFIDENCE: state.confidences, MODEL: (state.model,) if state.model else ()}
    return any(tuple(values) != current[field] for field, values in fields.items())


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


def _open(path) -> tuple[Format, mutagen.FileType]:
    """Detect the file type, then load it the way its handler needs."""
    path = Path(path)
    detected = mutagen.File(path)
    if detected is None:
        raise TagError("unsupported file type for tags")
    handler = next((REGISTRY[t] for t in type(detected).__mro__ if t in REGISTRY), None)
    if handler is None:
        raise TagError(f"unsupported file type for tags ({type(detected).__name__})")
    return handler, handler.open(path, detected)


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


__all__ = ["TagState", "read", "write", "would_change", "format_confidences", "REGISTRY", "HANDLERS"]
