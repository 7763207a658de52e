"""APEv2: WavPack, Monkey's Audio, Musepack, True Audio, OptimFROG, TAK share one handler.

Items may hold several text values (NUL-separated; mutagen splits and joins them), keys are
case-insensitive. mutagen's writer truncates the file where the APEv2 tag starts, dropping an
ID3v1 (or Lyrics3) tag behind it: those bytes are set aside and appended again, exactly. A file
whose genre is in an ID3v2 tag (at the start, as some True Audio files have, or appended after
the audio) is not written: mgctag would leave that genre stale.
"""

from __future__ import annotations

import base64

import mutagen
from mutagen.apev2 import BINARY, APEv2File, APEValue

from . import trailing
from .base import ALBUM, ALBUM_ARTIST, ARTIST, COMPILATION, CONFIDENCE, GENRE, MODEL, KeyedFormat
from .id3 import leading_genre


class Apev2Format(KeyedFormat):
    name = key = "apev2"
    genre_words = "APEv2 `Genre`"
    keys = {
        GENRE: "Genre",
        CONFIDENCE: "MGCTAG_CONFIDENCE",
        MODEL: "MGCTAG_MODEL",
        ARTIST: "Artist",
        ALBUM: "Album",
        ALBUM_ARTIST: "Album Artist",
        COMPILATION: "Compilation",
    }

    def open(self, path, detected):
        # True Audio is an ID3 file to mutagen; its players (and FFmpeg's muxer) use APEv2
        return detected if isinstance(detected, APEv2File) else APEv2File(path)

    def blocked(self, f):
        if any(t.kind == "id3v2" for t in trailing.trailers(f.filename)):
            return "its tags are in an ID3v2 tag after the audio, which mgctag would not update: not written"
        try:
            genre_in_id3 = leading_genre(f.filename)
        except mutagen.MutagenError:
            return "an unreadable ID3v2 tag at the start: not written"
        if genre_in_id3:
            return "its genre is in an ID3v2 tag, which mgctag does not write for this format (APEv2): not written"
        return ""

    def get(self, f, field):
        key = self.keys[field]
        if f.tags is None or key not in f.tags or f.tags[key].kind == BINARY:
            return []
        return list(f.tags[key])

    def snapshot_field(self, f, field):
        key = self._stored_key(f, field)
        if key is None:
            return None
        value = f.tags[key]
        data = base64.b64encode(bytes(value)).decode("ascii") if value.kind == BINARY else str(value)
        return [key, value.kind, data]

    def restore_field(self, f, field, stored, extra=None):
        key = self._stored_key(f, field)
        if key is not None:
            del f.tags[key]
        if stored is None:
            return
        if f.tags is None:
            f.add_tags()
        key, kind, data = stored
        f.tags[key] = APEValue(base64.b64decode(data) if kind == BINARY else data, kind)

    def _stored_key(self, f, field) -> str | None:
        """The key as the file spells it ("GENRE", "Genre"), None when absent."""
        want = self.keys[field].lower()
        return next((k for k in (f.tags.keys() if f.tags is not None else ()) if k.lower() == want), None)

    def save(self, f, *, id3v23):
        keep_from = None  # the ID3v1 / Lyrics3 tags behind the APEv2 tag (or at the end, if none yet)
        for t in trailing.trailers(f.filename):
            if t.kind == "apev2":
                break
            keep_from = t.start
        tail = b""
        if keep_from is not None:
            with open(f.filename, "rb+") as fh:
                fh.seek(keep_from)
                tail = fh.read()
                fh.truncate(keep_from)
        f.save()
        if tail:
            with open(f.filename, "ab") as fh:
                fh.write(tail)


HANDLER = Apev2Format()
