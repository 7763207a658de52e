"""Every audio format mgctag handles, in one table: extension -> decoder -> tag handler.

Discovery takes its extensions from here, decoding the backend to try first, tagging the handler
for a file's mutagen type (and, from the handler, where each logical field lives); mgctag.safe
proves a write by the entry's audio check, and the README's "What gets written where" table is
made from it (mgctag.formats_readme; a test keeps the two equal). Adding a format is one entry.
Plain data on purpose: `mgctag --help` imports this, so no mutagen or numpy here, and nothing of
mgctag's: the modules that use the table import it, never the other way round.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DECODERS = ("soundfile", "pyav")  # libsndfile through soundfile; FFmpeg through PyAV (its wheel bundles it)


@dataclass(frozen=True)
class AudioFormat:
    name: str  # for people: "WavPack"
    extensions: tuple[str, ...]  # lower-case, with the dot
    decoder: str  # tried first; the other backend is the fallback
    tags: str | None  # key in mgctag.tags.HANDLERS; None: the format has no tag container
    mutagen: tuple[str, ...] = ()  # mutagen FileTypes ("module:Class") whose files this entry tags
    where: str = ""  # README: the container, when the handler's own words are not enough
    remark: str = ""  # README: what a user should know about this format
    check: str = "packets"  # how a write is proved to leave the audio alone: a key of
    # mgctag.decode.compare.CHECKS (why each is exact: its docstring)
    kept: str = ""  # README: what the state keeps so undo gives back the original's
    # bytes (mgctag.delta finds it in any format; this says what it is)


# What undo keeps (measured: tests/test_undo_bytes.py writes and undoes each format, cmp-equal)
ID3_KEPT = "the ID3v2 tag (what of it changed)"
OGG_KEPT = "the header pages; every later page's number and checksum when those pages were re-laid"
APE_KEPT = "the APEv2 tag at the end (what of it changed)"

# Decoders (why): libsndfile is exact and fastest for PCM and FLAC; FFmpeg for every lossy codec
# and the rest. Measured with libsndfile 1.2.2: its MP3 reads go wrong at some read boundaries and
# after seeks, ~10% of its Vorbis seeks land wrongly, its Opus decode is 2x slower, and MP3 inside
# a WAV is misread once a chunk follows the audio (so the decoder also looks at the codec).
FORMATS: tuple[AudioFormat, ...] = (
    AudioFormat("MP3", (".mp3",), "pyav", "id3", ("mp3:MP3",), kept=ID3_KEPT),
    AudioFormat(
        "FLAC",
        (".flac",),
        "soundfile",
        "vorbis",
        ("flac:FLAC",),
        check="flac",
        kept="the metadata blocks (what of them changed)",
    ),
    AudioFormat("Ogg Vorbis", (".ogg",), "pyav", "vorbis", ("oggvorbis:OggVorbis",), kept=OGG_KEPT),
    AudioFormat("Opus", (".opus",), "pyav", "vorbis", ("oggopus:OggOpus",), kept=OGG_KEPT),
    AudioFormat("Ogg FLAC", (".oga",), "pyav", "vorbis", ("oggflac:OggFLAC",), kept=OGG_KEPT),
    AudioFormat("Speex", (".spx",), "pyav", "vorbis", ("oggspeex:OggSpeex",), kept=OGG_KEPT),
    AudioFormat(
        "MP4 / M4A (AAC, ALAC)",
        (".m4a", ".mp4", ".m4b", ".3g2"),
        "pyav",
        "mp4",
        ("mp4:MP4",),
        check="mp4",
        kept="what changed in `moov`: the tags, and the chunk offsets when the audio moved",
    ),
    AudioFormat(
        "WAV",
        (".wav",),
        "soundfile",
        "id3-chunk",
        ("wave:WAVE",),
        where="ID3 chunk",
        remark="MP3 inside a WAV is decoded by FFmpeg",
        check="riff",
        kept="the ID3 chunk and the RIFF size (what of them changed)",
    ),
    AudioFormat(
        "AIFF, AIFF-C",
        (".aif", ".aiff", ".aifc"),
        "soundfile",
        "id3-chunk",
        ("aiff:AIFF",),
        where="ID3 chunk",
        check="aiff",
        kept="the ID3 chunk and the FORM size (what of them changed)",
    ),
    AudioFormat(
        "DSF (DSD)",
        (".dsf",),
        "pyav",
        "id3-chunk",
        ("dsf:DSF",),
        where="ID3v2 tag at the end",
        check="dsf",
        kept="the ID3v2 tag and the header's sizes (what of them changed)",
    ),
    AudioFormat("WMA", (".wma",), "pyav", "asf", ("asf:ASF",), check="asf", kept="the ASF header object"),
    AudioFormat("WavPack", (".wv",), "pyav", "apev2", ("wavpack:WavPack",), check="packets+head", kept=APE_KEPT),
    AudioFormat(
        "Monkey's Audio",
        (".ape",),
        "pyav",
        "apev2",
        ("monkeysaudio:MonkeysAudio",),
        check="packets+head",
        kept=APE_KEPT,
    ),
    AudioFormat("Musepack", (".mpc",), "pyav", "apev2", ("musepack:Musepack",), check="packets+head", kept=APE_KEPT),
    AudioFormat(
        "True Audio", (".tta",), "pyav", "apev2", ("trueaudio:TrueAudio",), check="packets+head", kept=APE_KEPT
    ),
    AudioFormat(
        "OptimFROG",
        (".ofr", ".ofs"),
        "pyav",
        "apev2",
        ("optimfrog:OptimFROG",),
        remark="FFmpeg has no decoder for it: reported as an error",
        check="packets+head",
        kept=APE_KEPT,
    ),
    AudioFormat("TAK", (".tak",), "pyav", "apev2", ("tak:TAK",), check="packets+head", kept=APE_KEPT),
    AudioFormat("AAC (ADTS)", (".aac",), "pyav", None, ("aac:AAC",), remark="ADIF AAC: FFmpeg has no decoder for it"),
    AudioFormat("AC-3", (".ac3",), "pyav", None, ("ac3:AC3",)),
    AudioFormat("Sun AU", (".au",), "soundfile", None),
    AudioFormat("DSDIFF (DSD)", (".dff",), "pyav", None, ("dsdiff:DSDIFF",), remark="its spec has no tag chunk"),
)
NO_TAG_CONTAINER = "no tag container"  # the note a format without tags gets from --write-tags

BY_EXTENSION: dict[str, AudioFormat] = {ext: f for f in FORMATS for ext in f.extensions}
EXTENSIONS: frozenset[str] = frozenset(BY_EXTENSION)


def for_path(path: str | bytes | os.PathLike) -> AudioFormat | None:
    """The entry for a file name's extension (case-insensitive), None for an unknown one."""
    return BY_EXTENSION.get(os.path.splitext(os.fsdecode(path))[1].lower())


def extensions_for(decoder: str) -> frozenset[str]:
    """The extensions whose files go to `decoder` first."""
    return frozenset(ext for f in FORMATS if f.decoder == decoder for ext in f.extensions)
