"""MP4 atoms: M4A/MP4 with AAC or ALAC.

Genre text is the ©gen atom, which holds several values (mutagen already reads a legacy
numeric `gnre` atom as ©gen). mgctag's own fields are freeform `----:com.mgctag:*` atoms
with UTF-8 text values.
"""
from __future__ import annotations

from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm

from .base import ARTIST, CONFIDENCE, GENRE, MODEL, KeyedFormat


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


HANDLER = Mp4Format()
