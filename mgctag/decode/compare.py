"""Whether a tag write left the audio alone, without decoding the file twice.

mgctag.safe proves every write by comparing the edited copy's audio with the original's. A full
decode of both (`audio_digest`) costs more than analysing the track, so each format's entry in
the format table names a cheaper check (`AudioFormat.check`, a key of CHECKS) that compares what
the decoder is *fed* rather than what it puts out. Decoders are deterministic, so equal input
means equal samples; a fast match therefore has to cover every input the decoder reads, which is
argued per check below. A fast mismatch proves nothing (a container may lay the same audio out
differently) and is only a reason to decode: `same_audio` refuses a copy only when the two full
decodes differ, and decodes whenever the fast check cannot vouch for a file (a layout it does not
trust, a read error).

Every fast digest starts with what mgctag's decoding would choose and see, from the same
`mgctag.decode.opener`: the backend, then its view of the stream (libsndfile: format, subtype,
endianness, rate, channels, frames; FFmpeg: container format, decoder, codec tag, rate, channels,
layout, sample format, bit rate, frame size, profile, delay, time base, extradata). Then:

- packets (MP3; Ogg Vorbis, Opus, FLAC, Speex): an FFmpeg decoder is opened with the codec
  parameters and fed the demuxed packets; each packet's bytes, pts, dts, duration, flags and side
  data are hashed, and how the stream ended (end of file, or an error, where mgctag's decode stops
  too). Side data carries what a demuxer derives from headers and tags for the decoder: a LAME
  header's encoder delay and padding, Opus pre-skip, an MP4's iTunSMPB priming. Not hashed: side
  data that is the tags themselves (the Ogg demuxer attaches the comments to the first packet),
  which libavcodec copies into the frames' metadata and never into their samples. MP3's decoder
  takes nothing else (no extradata: every frame carries its own header). Ogg Vorbis: FFmpeg's
  extradata holds all three Vorbis headers, the comment header (the tags) among them; the decoder
  reads only the identification and setup headers, so those two are hashed and the comment header
  is not. Opus's extradata is OpusHead alone (OpusTags is a packet the demuxer consumes), Ogg
  FLAC's is STREAMINFO, Speex's its header: hashed whole.
- packets+head (WavPack, Monkey's Audio, Musepack, True Audio, OptimFROG, TAK): their APEv2 tag
  sits after the audio, so every byte before the first packet is stream header; it is hashed too,
  because some of it reaches the decoder outside what PyAV shows (APE's bits per sample).
- mp4: the packets, the `ftyp` box and every track's `stsd` (codec, bits per sample, decoder
  configuration). Tags live in moov/udta; writing them moves `mdat` and rewrites the `stco`
  offsets, which changes where the packets are read from, not what they hold.
- asf (WMA): the packets and every stream properties object (the WAVEFORMATEX whose block align
  and bit rate the WMA decoder uses). Tags live in other header objects.
- dsf: the packets and the `fmt ` chunk (the DSD chunk before it holds the file size and the
  ID3 tag's offset, which a tag write changes).
- riff (WAV), aiff (AIFF, AIFF-C), when libsndfile decodes them: libsndfile makes samples from the
  `data`/`SSND` chunk by the `fmt `/`COMM` chunk (and `fact`/`FVER`); the other chunks (ID3, LIST,
  bext, PEAK, cue...) are metadata it never mixes into samples. Only a strict layout is trusted
  (the RIFF/FORM size is the file's, chunks tile the file, one data chunk after the format chunk),
  and for PCM libsndfile's frame count must be the one those chunks give. MP3 inside a WAV goes
  to FFmpeg: its packets, with the `fmt ` and `fact` chunks.
- flac, when libsndfile decodes it: libFLAC decodes the frames after the last metadata block by
  STREAMINFO; SEEKTABLE serves seeks (a full decode makes none), and the other blocks are tags,
  pictures and padding. Hashed: STREAMINFO and every byte from the first frame (whose sync code
  must follow the last block) to the end of the file.
- decode: no fast check; both files are decoded.

The decoder mgctag uses is not the only one a player may use: an MP3 inside a WAV is FFmpeg's to
mgctag, but libsndfile reads it too, and an ID3 chunk after its data makes libsndfile count other
frames. So the witness also keeps how the other decoder sees the original (`views`), and a copy
that decoder sees differently is not the same audio, whatever the first one says.
"""

from __future__ import annotations

import array
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

from mgctag import formats
from mgctag.errors import DecodeError

from . import opener, payload

log = logging.getLogger(__name__)

NONE = -(1 << 63)  # pts/dts unknown
# packet side data that is the tags themselves (the Ogg demuxer hands the comment header to the first
# packet so): libavcodec only copies it into the frames' metadata, never into samples
TAG_SIDE_DATA = frozenset({"strings_metadata", "metadata_update"})
PCM_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"})
DECODE = "decode"


@dataclass(frozen=True)
class Check:
    words: str  # README: what is compared
    payload: Callable | None = None  # libsndfile files: (fh, size, h) -> frames | True, None: not strict
    header: Callable | None = None  # FFmpeg streams: container bytes hashed beside the packets
    head: bool = False  # FFmpeg streams: also every byte before the first packet
    fast: bool = True  # False: always decode


CHECKS: dict[str, Check] = {
    "packets": Check("demuxed packets"),
    "packets+head": Check("demuxed packets and the stream header before them", head=True),
    "mp4": Check("demuxed packets, `ftyp` and each track's `stsd`", header=payload.mp4),
    "asf": Check("demuxed packets and the stream properties objects", header=payload.asf),
    "dsf": Check("demuxed packets and the `fmt ` chunk", header=payload.dsf),
    "riff": Check(
        "`fmt `, `fact` and `data` chunks",
        payload=partial(payload.riff, data=True),
        header=partial(payload.riff, data=False),
    ),
    "aiff": Check(
        "`COMM`, `FVER` and `SSND` chunks",
        payload=partial(payload.aiff, data=True),
        header=partial(payload.aiff, data=False),
    ),
    "flac": Check("STREAMINFO and the frames", payload=payload.flac),
    DECODE: Check("a full decode of both", fast=False),
}


class Verdict(NamedTuple):
    same: bool
    by: str  # the check that decided: a key of CHECKS, "decode", or the other decoder that reads the copy differently


@dataclass
class Witness:
    """The original's audio, taken before its copy is edited, for `same_audio` to compare with."""

    path: Path
    check: str  # its format's check
    fast: str | None  # the fast digest; None when that check cannot vouch for this file
    digest: str | None = None  # the full decode's, taken the first time a comparison needs it
    views: dict[str, tuple] | None = None  # the other decoder's view of it, when it reads it (`_views`)


def witness(path: str | os.PathLike) -> Witness:
    """Take `path`'s fast digest now; its full decode waits until a comparison needs one."""
    name = check_for(path)
    return Witness(Path(path), name, fast_digest(path, name), views=_views(path))


def same_audio(original: Witness, path: str | os.PathLike) -> Verdict:
    """Whether `path` holds the original's audio: by the fast check when both digests agree, else
    by decoding both (the original's decode kept for another comparison). A copy that does not
    decode while the original does differs; DecodeError when the original does not decode."""
    verdict = _same_for_mgctag(original, path)
    if verdict.same and original.views:
        now = _views(path, only=original.views)
        for name, view in original.views.items():
            if now.get(name) != view:
                return Verdict(False, name)
    return verdict


def _same_for_mgctag(original: Witness, path) -> Verdict:
    """The comparison by the decoder mgctag uses: the fast check, else two full decodes."""
    if original.fast is not None and fast_digest(path, original.check) == original.fast:
        return Verdict(True, original.check)
    log.debug("%s: %s cannot tell, decoding", path, original.check)
    if original.digest is None:
        original.digest = opener.audio_digest(original.path)
    try:
        return Verdict(opener.audio_digest(path) == original.digest, DECODE)
    except DecodeError:
        return Verdict(False, DECODE)


def _views(path: str | os.PathLike, only=None) -> dict[str, tuple]:
    """How libsndfile sees `path` (format, subtype, rate, channels, frames) when it is not the
    decoder mgctag uses for it but can read it; {} otherwise. Never raises."""
    if only is not None and "libsndfile" not in only:
        return {}
    try:
        entry = formats.for_path(path)
        if entry is None or entry.decoder == "soundfile":  # unless it hands the file over (MP3 inside a WAV)
            with opener.reading(path) as r:
                if r.backend == "soundfile":
                    return {}
        import soundfile

        info = soundfile.info(os.fsdecode(path))
        return {"libsndfile": (info.format, info.subtype, info.samplerate, info.channels, info.frames)}
    except Exception:  # it cannot read it (or cannot any more): that is a view too
        return {"libsndfile": ("unreadable",)} if only else {}


def check_for(path: str | os.PathLike) -> str:
    entry = formats.for_path(path)
    return entry.check if entry else DECODE


def fast_digest(path: str | os.PathLike, name: str) -> str | None:
    """sha256 (hex) of what the decoder is fed from `path`, by check `name`; None when it cannot
    vouch for this file. Never raises: a fast check that fails leaves the answer to a decode."""
    check = CHECKS[name]
    if not check.fast:
        return None
    try:
        with opener.reading(path) as r, open(os.fsencode(path), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            h = hashlib.sha256(name.encode())
            ok = _sndfile(check, r, fh, size, h) if r.backend == "soundfile" else _ffmpeg(check, r, fh, size, h)
            return h.hexdigest() if ok else None
    except Exception as e:  # anything: the full decode will say what is wrong, if anything is
        log.debug("%s: fast check %s failed: %s", path, name, e)
        return None


# --- libsndfile: its view and the payload bytes --------------------------------------------------


def _sndfile(check: Check, r, fh, size: int, h) -> bool:
    if check.payload is None:
        return False
    f = r.f
    h.update(repr(("soundfile", f.format, f.subtype, f.endian, f.samplerate, f.channels, f.frames)).encode())
    got = check.payload(fh, size, h)
    if not _vouched(got):
        return False
    # the frames the chunks hold must be the frames libsndfile counts: then it reads these bytes
    return got is True or f.subtype not in PCM_SUBTYPES or got == f.frames


def _vouched(got) -> bool:
    """A payload reader's answer: frames (0 too) or True vouch, None or False do not."""
    return got is not None and got is not False


# --- FFmpeg: its view and the packets ------------------------------------------------------------


def _ffmpeg(check: Check, r, fh, size: int, h) -> bool:
    s = r.stream
    cc = s.codec_context
    view = (
        "pyav",
        r.c.format.name,
        cc.name,
        cc.codec_tag,
        cc.sample_rate,
        cc.channels,
        cc.layout.name,
        cc.format.name if cc.format else None,
        cc.bit_rate,
        cc.frame_size,
        cc.profile,
        cc.delay,
        s.time_base,
    )
    h.update(repr(view).encode())
    extradata = bytes(cc.extradata or b"")
    h.update(b"extradata" + len(extradata).to_bytes(8, "little"))
    h.update(vorbis_without_comments(extradata) if cc.name.endswith("vorbis") else extradata)
    first = _packets(r, h)
    if first is None:
        return False
    if check.head:
        if first < 0:
            return False
        payload.feed(h, fh, b"head", 0, first)
    return check.header is None or _vouched(check.header(fh, size, h))


def _packets(r, h) -> int | None:
    """Hash every packet of the stream as the decoder gets it; the first packet's byte position
    (-1 when unknown), None when there is no audio packet at all."""
    av = r._av
    meta = array.array("q")
    side = hashlib.sha256()
    first, n = None, 0
    try:
        for p in r.c.demux(r.stream):
            size = p.size
            if size and first is None:
                first = p.pos if p.pos is not None else -1
            h.update(p)
            pts, dts = p.pts, p.dts
            meta.extend(
                (
                    size,
                    NONE if pts is None else pts,
                    NONE if dts is None else dts,
                    p.duration,
                    p.is_keyframe | p.is_corrupt << 1 | p.is_discard << 2 | p.is_disposable << 3,
                )
            )
            for sd in p.iter_sidedata():
                if sd.data_type in TAG_SIDE_DATA:
                    continue
                side.update(repr((n, sd.data_type, sd.data_size)).encode())
                side.update(sd)
            n += 1
    except av.error.FFmpegError as e:  # the decode ends here as well (PyavReader._frames)
        meta.extend((-1, e.errno or 0))
    h.update(meta.tobytes())
    h.update(side.digest())
    return first


def vorbis_without_comments(extradata: bytes) -> bytes:
    """The identification and setup headers of FFmpeg's Vorbis extradata (three headers, Xiph
    laced), without the comment header; the whole extradata when it is not laid out so."""
    if len(extradata) < 3 or extradata[0] != 2:
        return extradata
    sizes, pos = [], 1
    for _ in range(2):
        n = 0
        while pos < len(extradata) and extradata[pos] == 255:
            n, pos = n + 255, pos + 1
        if pos >= len(extradata):
            return extradata
        sizes.append(n + extradata[pos])
        pos += 1
    ident, comment = pos, pos + sizes[0]
    setup = comment + sizes[1]
    if (
        setup >= len(extradata)
        or extradata[ident : ident + 7] != b"\x01vorbis"
        or extradata[comment : comment + 7] != b"\x03vorbis"
        or extradata[setup : setup + 7] != b"\x05vorbis"
    ):
        return extradata
    ident_header = extradata[ident:comment]
    return len(ident_header).to_bytes(8, "little") + ident_header + extradata[setup:]
