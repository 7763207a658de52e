"""MP4 atoms: M4A/MP4/M4B/3G2 with AAC or ALAC.

Genre text is the ©gen atom, which holds several values (mutagen already reads a legacy
numeric `gnre` atom as ©gen, and writes it back as ©gen). mgctag's own fields are freeform
`----:com.mgctag:*` atoms with UTF-8 text values. An exact snapshot keeps a freeform value's
bytes and data type.
"""

from __future__ import annotations

import base64

from mutagen.mp4 import AtomDataType, MP4FreeForm

from .base import ALBUM, ALBUM_ARTIST, ARTIST, COMPILATION, CONFIDENCE, GENRE, MODEL, KeyedFormat


class Mp4Format(KeyedFormat):
    name = key = "mp4"
    genre_words = "`©gen` atom"
    keys = {
        GENRE: "\xa9gen",
        CONFIDENCE: "----:com.mgctag:confidence",
        MODEL: "----:com.mgctag:model",
        ARTIST: "\xa9ART",
        ALBUM: "\xa9alb",
        ALBUM_ARTIST: "aART",
        COMPILATION: "cpil",
    }

    def to_text(self, field, value):
        return bytes(value).decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    def from_text(self, field, text):
        if self.keys[field].startswith("----"):
            return MP4FreeForm(text.encode("utf-8"), dataformat=AtomDataType.UTF8)
        return text

    def to_raw(self, value):
        if isinstance(value, MP4FreeForm):
            return [int(value.dataformat), base64.b64encode(bytes(value)).decode("ascii"), value.version]
        return str(value)

    def from_raw(self, raw):
        if isinstance(raw, list):
            dataformat, data, version = raw
            return MP4FreeForm(base64.b64decode(data), dataformat=dataformat, version=version)
        return raw

    def remove_tag(self, f):
        f.delete()  # mutagen keeps an empty metadata atom: the nearest it comes to none


HANDLER = Mp4Format()
