"""Vorbis comments: FLAC, Ogg Vorbis, Ogg Opus, Ogg FLAC.

Keys are case-insensitive and every key may repeat, so several genres are several GENRE
entries and confidences several MGCTAG_CONFIDENCE entries. FLAC pictures live in their own
metadata blocks and Ogg pictures in METADATA_BLOCK_PICTURE; neither is touched here.
"""
from __future__ import annotations

from mutagen.flac import FLAC
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

from .base import ARTIST, CONFIDENCE, GENRE, MODEL, KeyedFormat


class VorbisFormat(KeyedFormat):
    name = "vorbis"
    types = (FLAC, OggVorbis, OggOpus, OggFLAC)
    keys = {GENRE: "GENRE", CONFIDENCE: "MGCTAG_CONFIDENCE", MODEL: "MGCTAG_MODEL", ARTIST: "ARTIST"}


HANDLER = VorbisFormat()
