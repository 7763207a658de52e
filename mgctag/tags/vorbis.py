"""Vorbis comments: FLAC, Ogg Vorbis, Ogg Opus, Ogg FLAC, Speex.

Keys are case-insensitive and every key may repeat, so several genres are several GENRE
entries and confidences several MGCTAG_CONFIDENCE entries. FLAC pictures live in their own
metadata blocks and Ogg pictures in METADATA_BLOCK_PICTURE; neither is touched here. A field's
exact snapshot keeps each entry's key as spelled ("Genre", "GENRE"), so undo puts back that too.
"""

from __future__ import annotations

from .base import ALBUM, ALBUM_ARTIST, ARTIST, COMPILATION, CONFIDENCE, GENRE, MODEL, KeyedFormat


class VorbisFormat(KeyedFormat):
    name = key = "vorbis"
    genre_words = "Vorbis comment `GENRE`, one per genre"
    keys = {
        GENRE: "GENRE",
        CONFIDENCE: "MGCTAG_CONFIDENCE",
        MODEL: "MGCTAG_MODEL",
        ARTIST: "ARTIST",
        ALBUM: "ALBUM",
        ALBUM_ARTIST: "ALBUMARTIST",
        COMPILATION: "COMPILATION",
    }

    def snapshot_field(self, f, field):
        key = self.keys[field].lower()
        pairs = [[k, v] for k, v in (f.tags if f.tags is not None else ()) if k.lower() == key]
        return pairs or None

    def restore_field(self, f, field, stored, extra=None):
        if f.tags is None:
            if stored is None:
                return
            f.add_tags()
        if self.keys[field] in f.tags:
            del f.tags[self.keys[field]]
        for k, v in stored or ():
            f.tags.append((k, v))

    def is_empty(self, f):
        return f.tags is None or not list(f.tags)


HANDLER = VorbisFormat()
