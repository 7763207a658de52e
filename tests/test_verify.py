"""A write's audio check: what the decoder is fed is compared, a full decode only decides doubt.

For every format the tests can encode and tag: a real tag write passes the fast check and the
decoded audio is unchanged; a big cover (every audio byte moves) never trips it; a copy whose
audio was damaged (a byte flipped inside a packet, a frame dropped, the sample rate changed) is
refused, by the full decode; a fast mismatch alone never refuses; a file the fast check cannot
vouch for is decoded.
"""

from __future__ import annotations

import os
import shutil
import struct

import av
import numpy as np
import pytest
from mutagen.ogg import OggPage
from test_formats import FAMILY, TAGGED, decorated, load_tags, make

from mgctag import decode, formats, safe, tags
from mgctag.decode import compare, opener, payload
from mgctag.errors import TagError

VALUES = dict(genres=["Rock"], confidences=[0.7], model_id="m")
BIG_COVER = os.urandom(1_500_000)
SOUNDFILE_PCM = {"wav", "aiff", "aifc"}


@pytest.fixture
def spy(monkeypatch):
    """Counts full decodes (audio_digest, where compare calls it) and fast digests, by path."""
    calls = {"decode": [], "fast": []}
    real_digest, real_fast = decode.audio_digest, compare.fast_digest

    def digest(path):
        calls["decode"].append(os.fspath(path))
        return real_digest(path)

    def fast(path, name):
        calls["fast"].append(os.fspath(path))
        return real_fast(path, name)

    monkeypatch.setattr(opener, "audio_digest", digest)
    monkeypatch.setattr(compare, "fast_digest", fast)
    return calls


def _temps(folder):
    return [p.name for p in folder.iterdir() if ".mgctag-" in p.name]


def _refused(path, monkeypatch, damage):
    """write_safely with a tag writer that also runs `damage(tmp)` must refuse, leave `path`
    byte-identical and no temp behind."""
    real_write = tags.write

    def write_and_damage(p, **kw):
        real_write(p, **kw)
        damage(p)

    monkeypatch.setattr(tags, "write", write_and_damage)
    data = path.read_bytes()
    with pytest.raises(TagError, match="^verification failed: audio differs$"):
        safe.write_safely(path, **VALUES)
    assert path.read_bytes() == data and _temps(path.parent) == []


# --- the table ---------------------------------------------------------------------------------


def test_every_format_names_a_check_and_libsndfile_formats_compare_payload():
    for f in formats.FORMATS:
        assert f.check in compare.CHECKS, f.name
        if f.tags and f.decoder == "soundfile":  # packets say nothing about what libsndfile decodes
            assert compare.CHECKS[f.check].payload is not None, f.name


# --- real writes pass the fast check -------------------------------------------------------------


@pytest.mark.parametrize("fmt", TAGGED)
def test_a_tag_write_passes_the_fast_check_and_keeps_the_audio(tmp_path, fmt, spy):
    path = decorated(tmp_path, fmt)
    digest = decode.audio_digest(path)
    spy["decode"].clear()
    assert safe.write_safely(path, **VALUES) is True
    assert tags.read(path).genres == ("Rock",)
    assert spy["decode"] == []  # no full decode: the fast check vouched
    assert len(spy["fast"]) == 2 and spy["fast"][0] == os.path.realpath(path)  # the original's, the copy's
    assert decode.audio_digest(path) == digest


@pytest.mark.parametrize("fmt", TAGGED)
def test_a_big_cover_moves_the_audio_but_never_trips_the_check(tmp_path, fmt):
    path = make(tmp_path, fmt)
    original = decode.witness(path)
    assert original.fast is not None and original.check != compare.DECODE
    covered = tmp_path / f"covered.{fmt}"
    shutil.copy(path, covered)
    _add_cover(covered, fmt)
    assert covered.stat().st_size > path.stat().st_size + len(BIG_COVER) // 2
    # libsndfile counts other frames in an MP3-in-WAV once an ID3 chunk follows its data (FFmpeg,
    # mgctag's decoder for it, does not): refused by the other decoder's view
    assert decode.same_audio(original, covered) == (
        (False, "libsndfile") if fmt == "mp3.wav" else (True, original.check)
    )
    assert decode.audio_digest(covered) == decode.audio_digest(path)


def _add_cover(path, fmt):
    """A 1.5 MB picture added with mutagen alone (not mgctag's writer)."""
    from mutagen.apev2 import BINARY, APEValue
    from mutagen.asf import ASFByteArrayAttribute
    from mutagen.flac import Picture
    from mutagen.id3 import APIC
    from mutagen.mp4 import MP4Cover

    f = load_tags(path, fmt)
    if f.tags is None:
        f.add_tags()
    family = FAMILY[fmt]
    if family == "id3":
        f.tags.add(APIC(encoding=3, mime="image/png", type=3, desc="big", data=BIG_COVER))
    elif family == "vorbis":
        pic = Picture()
        pic.type, pic.mime, pic.data = 3, "image/png", BIG_COVER
        if hasattr(f, "add_picture"):
            f.add_picture(pic)
        else:
            import base64

            f.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(pic.write()).decode("ascii")]
    elif family == "mp4":
        f.tags["covr"] = [MP4Cover(BIG_COVER, imageformat=MP4Cover.FORMAT_PNG)]
    elif family == "asf":
        f.tags["WM/Picture"] = [
            ASFByteArrayAttribute(
                b"\x03" + len(BIG_COVER).to_bytes(4, "little") + "image/png\0\0".encode("utf-16-le") + BIG_COVER
            )
        ]
    elif family == "apev2":
        f.tags["Cover Art (Front)"] = APEValue(b"big.png\0" + BIG_COVER, BINARY)
    f.save()


# --- damaged audio is refused, by a decode ---------------------------------------------------------


def _packets(path):
    """(byte position, size) of the audio packets FFmpeg demuxes from `path`."""
    with av.open(os.fspath(path)) as c:
        return [(p.pos, p.size) for p in c.demux(c.streams.audio[0]) if p.size and p.pos is not None and p.pos >= 0]


def flip_a_byte(p):
    pos, size = _packets(p)[len(_packets(p)) // 2]
    with open(p, "r+b") as fh:
        fh.seek(pos + size // 2)
        b = fh.read(1)
        fh.seek(pos + size // 2)
        fh.write(bytes([b[0] ^ 0xFF]))


def drop_a_frame(p, fmt):
    """Cut one packet's bytes out (in PCM, one block of frames), and keep the container well
    formed: a shorter file whose sizes say so, or (MP4, whose sample tables would need rewriting)
    its `mdat` padded back to its size, so the later samples are read shifted."""
    data = bytearray(p.read_bytes())
    pos, size = _packets(p)[len(_packets(p)) // 2]
    if fmt in (*SOUNDFILE_PCM, "mp3.wav"):
        endian = "<" if "wav" in fmt else ">"
        with open(p, "rb") as fh:
            sizes = {cid: (off, n) for cid, off, n in payload._chunks(fh, 12, len(data), endian)}
        off, n = sizes[b"data" if endian == "<" else b"SSND"]
        if fmt in SOUNDFILE_PCM:
            pos, size = off + n // 2 // 4 * 4, 4  # one frame of 16-bit stereo
        del data[pos : pos + size]
        struct.pack_into(endian + "I", data, off - 4, n - size)
        struct.pack_into(endian + "I", data, 4, len(data) - 8)
        if endian == ">":
            comm = sizes[b"COMM"][0]
            struct.pack_into(">I", data, comm + 2, struct.unpack_from(">I", data, comm + 2)[0] - 1)
    elif fmt == "dsf":  # sizes: the file's and the tag's offset (DSD chunk), samples (fmt), data chunk
        del data[pos : pos + size]
        for at, minus in ((12, size), (20, size), (64, size * 8), (84, size)):
            struct.pack_into("<Q", data, at, struct.unpack_from("<Q", data, at)[0] - minus)
    elif FAMILY[fmt] == "mp4":
        with open(p, "rb") as fh:
            mdat = next(stop for kind, _, stop in payload._boxes(fh, 0, len(data)) if kind == b"mdat")
        data[mdat:mdat] = bytes(size)
        del data[pos : pos + size]
    else:  # streams that find their next frame by its sync code
        del data[pos : pos + size]
    p.write_bytes(bytes(data))


def change_the_sample_rate(p, fmt):
    data = bytearray(p.read_bytes())
    if fmt == "wav":
        at = data.index(b"fmt ") + 12
        struct.pack_into("<I", data, at, struct.unpack_from("<I", data, at)[0] * 2)
    elif fmt in ("aiff", "aifc"):
        at = data.index(b"COMM") + 16  # the 80-bit rate's exponent: +1 doubles it
        struct.pack_into(">H", data, at, struct.unpack_from(">H", data, at)[0] + 1)
    elif fmt == "flac":
        at = 8 + 10  # STREAMINFO: 20 bits of rate
        bits = int.from_bytes(data[at : at + 3], "big")
        rate = bits >> 4
        data[at : at + 3] = ((rate * 2) << 4 | bits & 0xF).to_bytes(3, "big")
    elif fmt == "dsf":
        struct.pack_into("<I", data, 56, struct.unpack_from("<I", data, 56)[0] * 2)
    elif fmt == "wma":
        at = data.index(payload.ASF_STREAM_PROPERTIES) + 78 + 4  # its WAVEFORMATEX's rate
        struct.pack_into("<I", data, at, struct.unpack_from("<I", data, at)[0] * 2)
    elif fmt in ("m4a", "m4b", "3g2"):
        with av.open(os.fspath(p)) as c:
            asc = bytes(c.streams.audio[0].codec_context.extradata)
        at = data.index(asc, data.index(b"esds"))
        bits = int.from_bytes(asc[:2], "big")  # 5 bits object type, 4 bits rate index
        index = (bits >> 7) & 0xF
        data[at : at + 2] = ((bits & ~(0xF << 7)) | (index - 3) << 7).to_bytes(2, "big")  # 22050 -> 44100
    elif fmt == "ogg":
        with open(p, "rb") as fh:
            pages = []
            while True:
                try:
                    pages.append(OggPage(fh))
                except EOFError:
                    break
        ident = bytearray(pages[0].packets[0])
        struct.pack_into("<I", ident, 12, struct.unpack_from("<I", ident, 12)[0] * 2)
        pages[0].packets[0] = bytes(ident)
        data = bytearray(b"".join(page.write() for page in pages))  # CRCs computed afresh
    else:
        raise AssertionError(fmt)
    p.write_bytes(bytes(data))


# not MP3 in a WAV: its decoder takes the rate from each frame, so a wrong `fmt ` rate changes nothing
RATE_FORMATS = [
    f for f in TAGGED if f.values[0] in ("wav", "aiff", "aifc", "flac", "dsf", "wma", "m4a", "m4b", "3g2", "ogg")
]


@pytest.mark.parametrize("fmt", TAGGED)
def test_a_flipped_byte_in_a_packet_is_refused(tmp_path, fmt, monkeypatch, spy):
    path = make(tmp_path, fmt)
    _refused(path, monkeypatch, flip_a_byte)
    assert len(spy["decode"]) == 2  # the fast check differed; both decodes said so


@pytest.mark.parametrize("fmt", TAGGED)
def test_a_dropped_frame_is_refused(tmp_path, fmt, monkeypatch, spy):
    path = make(tmp_path, fmt)
    _refused(path, monkeypatch, lambda p: drop_a_frame(p, fmt))
    assert len(spy["decode"]) == 2


@pytest.mark.parametrize("fmt", RATE_FORMATS)
def test_a_changed_sample_rate_is_refused(tmp_path, fmt, monkeypatch, spy):
    path = make(tmp_path, fmt)
    _refused(path, monkeypatch, lambda p: change_the_sample_rate(p, fmt))
    assert len(spy["decode"]) == 2


def test_the_original_wav_check_still_catches_changed_samples(tmp_path):
    """Changed samples in a well-formed WAV: the fast check sees different bytes, the decode refuses."""
    path = make(tmp_path, "wav")
    original = decode.witness(path)
    changed = tmp_path / "changed.wav"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55
    changed.write_bytes(bytes(data))
    assert compare.fast_digest(changed, "riff") not in (None, original.fast)
    assert decode.same_audio(original, changed) == (False, compare.DECODE)


# --- doubt goes to a full decode -----------------------------------------------------------------


def test_a_fast_mismatch_alone_never_refuses(tmp_path, monkeypatch, spy):
    path = make(tmp_path, "mp3")
    real = compare.fast_digest
    monkeypatch.setattr(compare, "fast_digest", lambda p, name: "original" if p == path else real(p, name))
    assert safe.write_safely(path, **VALUES) is True
    assert len(spy["decode"]) == 2 and tags.read(path).genres == ("Rock",)


def test_a_layout_the_fast_check_does_not_trust_is_decoded(tmp_path, spy):
    """A WAV whose RIFF size is wrong: libsndfile reads it, the payload check will not vouch."""
    path = make(tmp_path, "wav")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 4, struct.unpack_from("<I", data, 4)[0] + 100)
    path.write_bytes(bytes(data))
    assert compare.fast_digest(path, "riff") is None
    digest = decode.audio_digest(path)
    spy["decode"].clear()
    assert safe.write_safely(path, **VALUES) is True
    assert len(spy["decode"]) == 2 and decode.audio_digest(path) == digest


def test_a_decode_only_check_decodes(tmp_path, spy):
    path = make(tmp_path, "mp3")
    original = compare.Witness(path, compare.DECODE, compare.fast_digest(path, compare.DECODE))
    assert original.fast is None
    copy = tmp_path / "copy.mp3"
    shutil.copy(path, copy)
    assert decode.same_audio(original, copy) == (True, compare.DECODE)
    assert decode.same_audio(original, copy) == (True, compare.DECODE)
    assert len(spy["decode"]) == 3  # the original's decode is taken once and kept


def test_a_fast_check_that_fails_leaves_the_answer_to_a_decode(tmp_path, monkeypatch):
    path = make(tmp_path, "flac")

    def broken(*args, **kwargs):
        raise OSError("disk hiccup")

    monkeypatch.setitem(compare.CHECKS, "flac", compare.Check("broken", payload=broken))
    assert compare.fast_digest(path, "flac") is None
    assert safe.write_safely(path, **VALUES) is True


# --- a witness taken when the file was analysed ---------------------------------------------------


def test_a_witness_taken_at_analysis_spares_the_write_reading_the_original(tmp_path, monkeypatch):
    path = make(tmp_path, "mp3")
    before = decode.audio_digest(path)
    taken = decode.witness(path)
    monkeypatch.setattr(decode, "witness", lambda p: pytest.fail("the write took a second witness"))
    assert safe.write_safely(path, **VALUES, witness=taken) is True
    assert decode.audio_digest(path) == before and list(tags.read(path).genres) == ["Rock"]


def test_a_witness_that_no_longer_fits_the_file_can_only_refuse(tmp_path):
    path, other = make(tmp_path, "flac"), make(tmp_path, "flac", name="other", seconds=3.0, freq=440.0)
    stale = decode.witness(other)  # another file's audio: what a witness of a changed file is
    data = path.read_bytes()
    with pytest.raises(TagError, match="^verification failed: audio differs$"):
        safe.write_safely(path, **VALUES, witness=stale)
    assert path.read_bytes() == data and _temps(path.parent) == []


def test_a_writing_scan_takes_each_witness_in_the_decoder_once(tmp_path, monkeypatch):
    from mgctag.pool import DecodeJob, WindowSpec

    path = make(tmp_path, "ogg")
    spec = WindowSpec(22050, 22050, 2)
    assert DecodeJob(spec)(path).witness is None
    d = DecodeJob(spec, witness=True)(path)
    assert d.witness is not None and d.witness.fast is not None and not d.error
    monkeypatch.setattr(decode, "witness", lambda p: (_ for _ in ()).throw(OSError("unreadable")))
    failed = DecodeJob(spec, witness=True)(path)
    assert failed.witness is None and not failed.error  # the write takes its own, and says why


# --- what each payload check reads ---------------------------------------------------------------


def test_riff_check_reads_the_data_chunk_not_the_metadata_chunks(tmp_path):
    path = make(tmp_path, "wav")
    base = path.read_bytes()
    riff = lambda b: b[:4] + struct.pack("<I", len(b) - 8) + b[8:]  # noqa: E731
    listed = tmp_path / "listed.wav"  # a LIST chunk inserted before the data chunk moves it
    at = base.index(b"data")
    listed.write_bytes(riff(base[:at] + b"LIST" + struct.pack("<I", 6) + b"INFOab" + base[at:]))
    assert compare.fast_digest(listed, "riff") == compare.fast_digest(path, "riff") is not None
    assert decode.audio_digest(listed) == decode.audio_digest(path)
    two = tmp_path / "two-data.wav"  # a second data chunk: which one a reader takes is not ours to guess
    two.write_bytes(riff(base + b"data" + struct.pack("<I", 4) + b"\0\0\0\0"))
    assert compare.fast_digest(two, "riff") is None


def test_flac_check_reads_streaminfo_and_frames_not_the_other_blocks(tmp_path):
    path = make(tmp_path, "flac")
    padded = tmp_path / "padded.flac"
    shutil.copy(path, padded)
    from mutagen.flac import FLAC

    f = FLAC(padded)
    f.tags["COMMENT"] = ["x" * 5000]
    f.save(padding=lambda info: 12345)
    assert compare.fast_digest(padded, "flac") == compare.fast_digest(path, "flac") is not None
    data = bytearray(path.read_bytes())
    data[8 + 10] ^= 0x10  # a STREAMINFO bit (the rate)
    changed = tmp_path / "changed.flac"
    changed.write_bytes(bytes(data))
    assert compare.fast_digest(changed, "flac") not in (None, compare.fast_digest(path, "flac"))
    noise = tmp_path / "noise.flac"  # no frame sync after the metadata: not a layout to vouch for
    first = _packets(path)[0][0]
    noise.write_bytes(path.read_bytes()[:first] + b"\0\0" + path.read_bytes()[first:])
    assert compare.fast_digest(noise, "flac") is None


def test_vorbis_comment_header_is_left_out_of_the_extradata():
    def laced(*headers):
        out = bytes([len(headers) - 1])
        for h in headers[:-1]:
            n = len(h)
            out += b"\xff" * (n // 255) + bytes([n % 255])
        return out + b"".join(headers)

    ident, setup = b"\x01vorbis" + b"i" * 23, b"\x05vorbis" + b"s" * 100
    short, long = b"\x03vorbis" + b"c" * 10, b"\x03vorbis" + b"C" * 3000
    a = compare.vorbis_without_comments(laced(ident, short, setup))
    assert a == compare.vorbis_without_comments(laced(ident, long, setup))
    assert a != compare.vorbis_without_comments(laced(ident, short, setup[:-1] + b"t"))
    assert compare.vorbis_without_comments(b"\x02junk") == b"\x02junk"  # not three headers: all of it


def test_mp3_inside_a_wav_that_libsndfile_would_read_differently_is_skipped_not_written(tmp_path, band_model):
    """mgctag decodes an MP3-in-WAV with FFmpeg, which an ID3 chunk does not disturb; libsndfile
    reads it too, and counts other frames once the chunk is there: the write is refused, the file
    is skipped with a note and left byte for byte as it was."""
    import av
    import soundfile

    from mgctag.scanner import ScanOptions, scan

    path = tmp_path / "mp3in.wav"
    sr = 22050
    y = (np.sin(2 * np.pi * 150 * np.arange(int(2.5 * sr)) / sr) * 16000).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("libmp3lame", rate=sr)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(y, format="s16p", layout="mono")
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    assert soundfile.info(str(path)).subtype == "MPEG_LAYER_III"
    before = path.read_bytes()
    (r,) = scan([path], ScanOptions(model=str(band_model), workers=0, write_tags=True))
    assert r.status == "skipped" and r.note.startswith("not written: libsndfile would read the tagged copy"), r
    assert path.read_bytes() == before and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
