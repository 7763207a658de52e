"""What a tag format handler is: one logical field -> that format's key, and how to load/save.

Handlers see only mutagen objects; error translation and the public API live in the package
__init__, so each format module stays a small table plus its quirks.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import mutagen

# The logical fields mgctag reads or writes. Every handler maps each of them to one key.
GENRE = "genre"
CONFIDENCE = "confidence"  # mgctag's own: one value per genre, "0.823"
MODEL = "model"  # mgctag's own: the model id that chose the genre
ARTIST = "artist"  # read only (training groups by artist)


class Format:
    """A tag format family. Subclasses set `name`, `types` and override what differs.

    `get` returns a field's values as text (empty list when absent); `set` with an empty list
    removes the field. Nothing else in the tag is touched.
    """

    name: str = ""
    types: tuple[type[mutagen.FileType], ...] = ()

    def open(self, path: Path, detected: mutagen.FileType) -> mutagen.FileType:
        """The file loaded for reading or writing tags; `detected` is mutagen.File's default load."""
        return detected

    def get(self, f: mutagen.FileType, field: str) -> list[str]:
        raise NotImplementedError

    def set(self, f: mutagen.FileType, field: str, values: Sequence[str]) -> None:
        raise NotImplementedError

    def save(self, f: mutagen.FileType, *, id3v23: bool) -> None:
        f.save()


class KeyedFormat(Format):
    """Formats whose tag is a multi-valued mapping (Vorbis comments, MP4 atoms, ASF attributes).

    `keys` is the field -> key table; `to_text`/`from_text` convert one stored value.
    """

    keys: Mapping[str, str] = {}

    def to_text(self, field: str, value: object) -> str:
        return str(value)

    def from_text(self, field: str, text: str) -> object:
        return text

    def get(self, f: mutagen.FileType, field: str) -> list[str]:
        key = self.keys[field]
        if f.tags is None or key not in f.tags:
            return []
        return [self.to_text(field, v) for v in f.tags[key]]

    def set(self, f: mutagen.FileType, field: str, values: Sequence[str]) -> None:
        key = self.keys[field]
        if values:
            if f.tags is None:
                f.add_tags()
            f.tags[key] = [self.from_text(field, v) for v in values]
        elif f.tags is not None and key in f.tags:
            del f.tags[key]
