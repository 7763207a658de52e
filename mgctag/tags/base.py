"""What a tag format handler is: one logical field -> that format's key, and how to load/save.

Handlers see only mutagen objects (and, for tags mutagen does not parse, the file's bytes);
error translation and the public API live in the package __init__, so each format module stays a
small table plus its quirks. Besides the text of a field (`get`/`set`), a handler can take a
field's stored values exactly as they are (`snapshot_field`: JSON, undo's journal) and put them
back (`restore_field`): undo must return what was there, not mutagen's reading of it.
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
ALBUM = "album"  # read only, as are the next two: which album a track belongs to (mgctag.albums)
ALBUM_ARTIST = "album_artist"
COMPILATION = "compilation"  # the format's compilation flag ("1", True)
WRITTEN = (GENRE, CONFIDENCE, MODEL)  # the fields a write (and undo) changes


class Format:
    """A tag format family. Subclasses set `name`, `key`, `genre_words` and override what differs.

    `get` returns a field's values as text (empty list when absent); `set` with an empty list
    removes the field. Nothing else in the tag is touched. `types` (the mutagen FileTypes it
    tags) come from mgctag.formats.
    """

    name: str = ""  # the family, as TagState.format says it: "id3", "vorbis", ...
    key: str = ""  # what mgctag.formats calls this handler
    genre_words: str = ""  # README: where the genre goes
    keys: Mapping[str, str] = {}
    types: tuple[type[mutagen.FileType], ...] = ()

    def own_keys(self) -> tuple[str, ...]:
        """README: the keys of mgctag's own fields."""
        return (self.keys[CONFIDENCE], self.keys[MODEL])

    def open(self, path: Path, detected: mutagen.FileType) -> mutagen.FileType:
        """The file loaded for reading or writing tags; `detected` is mutagen.File's default load."""
        return detected

    def older_genres(self, f: mutagen.FileType) -> list[str]:
        """A genre the file keeps in an older tag beside the one mgctag writes (MP3's ID3v1): the
        user's genre too, read when the main tag has none."""
        return []

    def blocked(self, f: mutagen.FileType) -> str:
        """Why this file's tags must not be written (one line), "" when they may be."""
        return ""

    def get(self, f: mutagen.FileType, field: str) -> list[str]:
        raise NotImplementedError

    def set(self, f: mutagen.FileType, field: str, values: Sequence[str]) -> None:
        raise NotImplementedError

    # exact values, for undo ------------------------------------------------------------------

    def has_tag(self, f: mutagen.FileType) -> bool:
        """Whether the file holds a tag (container) at all."""
        return f.tags is not None

    def snapshot_field(self, f: mutagen.FileType, field: str):
        """A field's stored values as JSON-able data, None when absent."""
        raise NotImplementedError

    def snapshot_extra(self, f: mutagen.FileType, field: str):
        """How the values are stored (an ID3 text encoding), not part of what they are; None if nothing."""
        return None

    def restore_field(self, f: mutagen.FileType, field: str, stored, extra=None) -> None:
        """Put back what `snapshot_field` returned (None: remove the field)."""
        raise NotImplementedError

    def is_empty(self, f: mutagen.FileType) -> bool:
        """Whether the tag holds nothing at all (then a tag mgctag created can go again)."""
        return f.tags is None or len(f.tags) == 0

    def remove_tag(self, f: mutagen.FileType) -> None:
        """Delete the (empty) tag from the file, as if it had never been added."""
        f.delete()

    def save(self, f: mutagen.FileType, *, id3v23: bool) -> None:
        f.save()


class KeyedFormat(Format):
    """Formats whose tag is a multi-valued mapping (Vorbis comments, MP4 atoms, ASF attributes).

    `keys` is the field -> key table; `to_text`/`from_text` convert one stored value,
    `to_raw`/`from_raw` between a stored value and JSON, exactly.
    """

    def to_text(self, field: str, value: object) -> str:
        return str(value)

    def from_text(self, field: str, text: str) -> object:
        return text

    def to_raw(self, value: object):
        return str(value)

    def from_raw(self, raw) -> object:
        return raw

    def get(self, f: mutagen.FileType, field: str) -> list[str]:
        key = self.keys[field]
        if f.tags is None or key not in f.tags:
            return []
        values = f.tags[key]  # a list, but MP4's flags (cpil) are a bare bool
        return [self.to_text(field, v) for v in (values if isinstance(values, list) else [values])]

    def set(self, f: mutagen.FileType, field: str, values: Sequence[str]) -> None:
        key = self.keys[field]
        if values:
            if f.tags is None:
                f.add_tags()
            f.tags[key] = [self.from_text(field, v) for v in values]
        elif f.tags is not None and key in f.tags:
            del f.tags[key]

    def snapshot_field(self, f, field):
        key = self.keys[field]
        if f.tags is None or key not in f.tags:
            return None
        return [self.to_raw(v) for v in f.tags[key]]

    def restore_field(self, f, field, stored, extra=None):
        key = self.keys[field]
        if stored is None:
            if f.tags is not None and key in f.tags:
                del f.tags[key]
            return
        if f.tags is None:
            f.add_tags()
        f.tags[key] = [self.from_raw(v) for v in stored]
