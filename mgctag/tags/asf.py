"""ASF attributes: WMA.

Attributes may repeat, so several genres are several WM/Genre values (mutagen moves
multi-valued attributes into the metadata library object as needed).
"""
from __future__ import annotations

from mutagen.asf import ASF

from .base import ARTIST, CONFIDENCE, GENRE, MODEL, KeyedFormat


class AsfFormat(KeyedFormat):
    name = "asf"
    types = (ASF,)
    keys = {GENRE: "WM/Genre", CONFIDENCE: "MGCTAG/Confidence", MODEL: "MGCTAG/Model", ARTIST: "Author"}


HANDLER = AsfFormat()
