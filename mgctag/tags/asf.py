"""ASF attributes: WMA.

Attributes may repeat, so several genres are several WM/Genre values (mutagen moves
multi-valued attributes into the metadata library object as needed). An exact snapshot keeps
each value's attribute type, language and stream.
"""

from __future__ import annotations

import base64

from mutagen.asf import ASFValue

from .base import ALBUM, ALBUM_ARTIST, ARTIST, COMPILATION, CONFIDENCE, GENRE, MODEL, KeyedFormat

BINARY_TYPES = (1, 6)  # BYTEARRAY, GUID: stored as base64


class AsfFormat(KeyedFormat):
    name = key = "asf"
    genre_words = "`WM/Genre`"
    keys = {
        GENRE: "WM/Genre",
        CONFIDENCE: "MGCTAG/Confidence",
        MODEL: "MGCTAG/Model",
        ARTIST: "Author",
        ALBUM: "WM/AlbumTitle",
        ALBUM_ARTIST: "WM/AlbumArtist",
        COMPILATION: "WM/IsCompilation",
    }

    def to_raw(self, value):
        v = value.value
        v = base64.b64encode(v).decode("ascii") if value.TYPE in BINARY_TYPES else v
        return [value.TYPE, v, value.language, value.stream]

    def from_raw(self, raw):
        kind, v, language, stream = raw
        v = base64.b64decode(v) if kind in BINARY_TYPES else v
        return ASFValue(v, kind, language=language, stream=stream)

    def has_tag(self, f):
        return True  # the header always has room for attributes: nothing to remove afterwards


HANDLER = AsfFormat()
