"""MP4 atoms: M4A/MP4 with AAC or ALAC.

Genre text is the ©gen atom, which holds several values. Old iTunes files may carry the
numeric `gnre` atom (ID3v1 genre number + 1) instead: it is read as a genre name, and removed
when mgctag writes ©gen so the file never carries two different genres. mgctag's own fields
are freeform `----:com.mgctag:*` atoms with UTF-8 text values.
"""
from __future__ import annotations

from mutagen._constants import GENRES
from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm

from .base import ARTIST, CONFIDENCE, GENRE, MODEL, KeyedFormat

GENRE_ID = "gnre"  # legacy numeric genre


class Mp4Format(KeyedFormat):
    name = "mp4"
    types = (MP4,)
    keys = {GENRE: "\xa9gen", CONFIDENCE: "----:com.mgctag:confidence", MODEL: "----:com.mgctag:model",
            ARTIST: "\xa9ART"}

    def to_text(self, field, value):
        return bytes(value).decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    def from_text(self, field, text):
        if self.keys[field].startswith("----"):
            return MP4FreeForm(text.encode("utf-8"), dataformat=AtomDataType.UTF8)
        return text

    def get(self, f, field):
        values = super().get(f, field)
        if field == GENRE and not values and f.tags is not None and GENRE_ID in f.tags:
            values = [GENRES[n - 1] for n in f.tags[GENRE_ID] if 0 < n <= len(GENRES)]
        return values

    def set(self, f, field, values):
        super().set(f, field, values)
        if field == GENRE and f.tags is not None and GENRE_ID in f.tags:
            del f.tags[GENRE_ID]


HANDLER = Mp4Format()
