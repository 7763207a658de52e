"""The format table, and every format the tests can encode: found, decoded, tagged and undone exactly.

Each format gets a file carrying a user's tags and a cover, is scanned with --write-tags and then
undone; other tags, the cover and the audio must be identical throughout, and the genre must come
back as it was. Formats without a tag container are analysed and skipped with a note.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import audiogen
import mutagen
import numpy as np
import pytest
from mutagen.apev2 import BINARY, APEv2File, APEValue
from mutagen.asf import ASFByteArrayAttribute
from mutagen.flac import Picture
from mutagen.id3 import APIC, COMM, TALB, TCON, TIT2, TPE1, TRCK, TXXX
from mutagen.mp4 import MP4Cover, MP4FreeForm

from mgctag import discover, formats, formats_readme, tags
from mgctag.decode import audio_digest, load, probe, voting_windows
from mgctag.scanner import ScanOptions, scan
from mgctag.state import State
from mgctag.undo import pick_run, undo

README = Path(__file__).resolve().parents[1] / "README.md"
TITLE, ARTIST, COVER = "Motörhead — Ærø 東京", "Motörhead", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
FAMILY = {
    "mp3": "id3",
    "wav": "id3",
    "aiff": "id3",
    "aifc": "id3",
    "mp3.wav": "id3",
    "dsf": "id3",
    "flac": "vorbis",
    "ogg": "vorbis",
    "opus": "vorbis",
    "oga": "vorbis",
    "spx": "vorbis",
    "m4a": "mp4",
    "alac.m4a": "mp4",
    "m4b": "mp4",
    "3g2": "mp4",
    "wma": "asf",
    "wv": "apev2",
    "tta": "apev2",
    "au": None,
    "aac": None,
    "ac3": None,
    "dff": None,
}
KEYS = {
    "id3": ("TCON", "TXXX:MGCTAG_CONFIDENCE", "TXXX:MGCTAG_MODEL"),
    "vorbis": ("genre", "mgctag_confidence", "mgctag_model"),
    "mp4": ("\xa9gen", "----:com.mgctag:confidence", "----:com.mgctag:model"),
    "asf": ("WM/Genre", "MGCTAG/Confidence", "MGCTAG/Model"),
    "apev2": ("genre", "mgctag_confidence", "mgctag_model"),
}


def _param(fmt):
    return pytest.param(
        fmt, marks=pytest.mark.skipif(not audiogen.can_write(fmt), reason=f"this FFmpeg build cannot encode {fmt}")
    )


ALL = [_param(f) for f in audiogen.FORMATS + audiogen.MORE_FORMATS]
TAGGED = [_param(f) for f in audiogen.FORMATS + audiogen.MORE_FORMATS if FAMILY[f]]
BARE = [_param(f) for f in audiogen.MORE_FORMATS if not FAMILY[f]]


def make(folder: Path, fmt: str, name: str = "song", **kw) -> Path:
    kw.setdefault("seconds", 1.5)
    kw.setdefault("freq", 150.0)  # the band model's "Low"
    kw.setdefault("channels", 1 if fmt in ("dsf", "dff") else 2)  # DSD is 2.8 Mbit/s a channel
    return audiogen.make(folder / f"{name}.{fmt}", fmt=fmt, **kw)


def load_tags(path: Path, fmt: str):
    """The file as mutagen sees its tag container (True Audio's APEv2, not the ID3 mutagen assumes)."""
    return APEv2File(path) if FAMILY[fmt] == "apev2" else mutagen.File(path)


# --- a user's tags, per family ----------------------------------------------------------------


def _picture() -> Picture:
    pic = Picture()
    pic.type, pic.mime, pic.desc, pic.data = 3, "image/png", "front", COVER
    return pic


def _decorate(f, family):
    if f.tags is None:
        f.add_tags()
    t = f.tags
    if family == "id3":
        for frame in (
            TIT2(encoding=3, text=[TITLE]),
            TPE1(encoding=3, text=[ARTIST]),
            TALB(encoding=1, text=["Ærø"]),
            TRCK(encoding=0, text=["3/12"]),
            COMM(encoding=3, lang="eng", desc="", text=["a comment"]),
            APIC(encoding=3, mime="image/png", type=3, desc="front", data=COVER),
            TXXX(encoding=3, desc="OTHER_TOOL", text=["keep me"]),
            TCON(encoding=0, text=["Old Genre"]),
        ):
            t.add(frame)
    elif family == "vorbis":
        t["TITLE"], t["ARTIST"], t["OTHER_TOOL"], t["Genre"] = [TITLE], [ARTIST, "Ærø"], ["keep me"], ["Old Genre"]
        if hasattr(f, "add_picture"):
            f.add_picture(_picture())
        else:
            t["METADATA_BLOCK_PICTURE"] = [base64.b64encode(_picture().write()).decode("ascii")]
    elif family == "mp4":
        t["\xa9nam"], t["\xa9ART"], t["trkn"] = [TITLE], [ARTIST], [(3, 12)]
        t["covr"] = [MP4Cover(COVER, imageformat=MP4Cover.FORMAT_PNG)]
        t["----:com.other:tool"], t["\xa9gen"] = [MP4FreeForm(b"keep me")], ["Old Genre"]
    elif family == "asf":
        t["Title"], t["Author"], t["OtherTool/Thing"], t["WM/Genre"] = [TITLE], [ARTIST], ["keep me"], ["Old Genre"]
        t["WM/Picture"] = [
            ASFByteArrayAttribute(
                b"\x03" + len(COVER).to_bytes(4, "little") + "image/png\0front\0".encode("utf-16-le") + COVER
            )
        ]
    elif family == "apev2":
        t["Title"], t["Artist"], t["OTHER_TOOL"], t["GENRE"] = TITLE, [ARTIST, "Ærø"], "keep me", "Old Genre"
        t["Cover Art (Front)"] = APEValue(b"front.png\0" + COVER, BINARY)
    f.save()


def decorated(folder: Path, fmt: str) -> Path:
    path = make(folder, fmt)
    _decorate(load_tags(path, fmt), FAMILY[fmt])
    return path


def others(path: Path, fmt: str) -> list:
    """Every tag except the three mgctag writes, and the cover, as comparable text."""
    f = load_tags(path, fmt)
    managed = {k.lower() for k in KEYS[FAMILY[fmt]]}
    pairs = list(f.tags.items()) if FAMILY[fmt] in ("id3", "mp4", "apev2") else list(f.tags)
    out = sorted((k.lower(), repr(v)) for k, v in pairs if k.lower() not in managed)
    return out + [("picture-block", repr((p.type, p.mime, p.desc, p.data))) for p in getattr(f, "pictures", [])]


COVERS = {
    "id3": lambda f: [frame.data for frame in f.tags.getall("APIC")],
    "vorbis": lambda f: (
        [p.data for p in getattr(f, "pictures", [])]
        + [Picture(base64.b64decode(v)).data for v in f.tags.get("METADATA_BLOCK_PICTURE", [])]
    ),
    "mp4": lambda f: [bytes(c) for c in f.tags["covr"]],
    "asf": lambda f: [a.value[-len(COVER) :] for a in f.tags["WM/Picture"]],
    "apev2": lambda f: [bytes(f.tags["Cover Art (Front)"]).split(b"\0", 1)[1]],
}


def covers(path: Path, fmt: str) -> list[bytes]:
    """The picture data stored in the file, read by mutagen."""
    return COVERS[FAMILY[fmt]](load_tags(path, fmt))


def stored(path: Path, fmt: str, which: int) -> list[str]:
    """The text stored under genre (0), confidence (1) or model (2), read by mutagen alone."""
    f = load_tags(path, fmt)
    key = KEYS[FAMILY[fmt]][which]
    if f.tags is None or key not in f.tags:
        return []
    value = f.tags[key]
    values = value.text if hasattr(value, "text") else list(value) if FAMILY[fmt] == "apev2" else value
    return [bytes(v).decode() if isinstance(v, bytes) else str(v) for v in values]


def scan_all(root, model, db, **kw):
    return list(scan([root], ScanOptions(model=str(model), state=db, workers=0, **kw)))


def undo_all(db):
    state = State(db)
    try:
        return list(undo(state, pick_run(state)))
    finally:
        state.close()


# --- the table ----------------------------------------------------------------------------------


def test_readme_table_is_the_format_table():
    text = README.read_text(encoding="utf-8")
    table = re.search(r"<!-- formats-table[^>]*-->\n(.*?)<!-- /formats-table -->", text, re.S)
    assert table, "README lost its formats-table markers"
    assert table.group(1) == formats_readme.readme_table(), "regenerate it: python -m mgctag.formats_readme"


def test_the_table_is_what_discovery_decoding_and_tagging_use():
    assert discover.AUDIO_EXTENSIONS == formats.EXTENSIONS
    for fmt in formats.FORMATS:
        assert fmt.decoder in formats.DECODERS and all(e == e.lower() and e.startswith(".") for e in fmt.extensions)
        if fmt.tags is not None:
            handler = tags.BY_KEY[fmt.tags]
            assert fmt.mutagen and all(tags.REGISTRY[kind] is handler for kind in handler.types)
    for ext in ".ape .wv .mpc .tta .ofr .ofs .tak .dsf .m4b .3g2 .oga .spx .aifc .au .aac .ac3 .dff".split():
        assert discover.is_audio_name("x" + ext.upper()), ext
    assert [f.tags for f in formats.FORMATS if set(f.extensions) & {".ape", ".wv", ".mpc", ".tta", ".ofr", ".tak"}] == [
        "apev2"
    ] * 6  # one APEv2 handler they all share, whatever mutagen calls their files
    from mutagen.monkeysaudio import MonkeysAudio
    from mutagen.musepack import Musepack
    from mutagen.optimfrog import OptimFROG
    from mutagen.tak import TAK
    from mutagen.trueaudio import TrueAudio
    from mutagen.wavpack import WavPack

    assert {tags.REGISTRY[kind] for kind in (MonkeysAudio, Musepack, OptimFROG, TAK, TrueAudio, WavPack)} == {
        tags.BY_KEY["apev2"]
    }


@pytest.mark.parametrize("fmt", ALL)
def test_every_format_is_found_and_decodes(tmp_path, fmt):
    path = make(tmp_path, fmt, seconds=1.2, freq=440.0)
    assert [f.path for f in discover.discover([tmp_path])] == [path]
    info = probe(path)
    assert info.duration == pytest.approx(1.2, abs=0.08)
    w = voting_windows(path, sample_rate=16000, n_samples=16000, n_segments=3, info=info)
    assert w.shape[1] == 16000 and w.shape[0] >= 1
    spec = np.abs(np.fft.rfft(w[0] * np.hanning(16000)))
    assert np.fft.rfftfreq(16000, 1 / 16000)[spec.argmax()] == pytest.approx(440, abs=2)
    assert audio_digest(path) == audio_digest(path) and len(load(path)) > 0


# --- scan --write-tags and undo, every family ------------------------------------------------------


@pytest.mark.parametrize("fmt", TAGGED)
def test_write_and_undo_round_trip_keeps_everything_else(tmp_path, fmt, band_model):
    lib = tmp_path / "lib"
    lib.mkdir()
    path = decorated(lib, fmt)
    before, digest = others(path, fmt), audio_digest(path)
    assert stored(path, fmt, 0) == ["Old Genre"] and covers(path, fmt) == [COVER]
    db = tmp_path / "state.sqlite"
    results = scan_all(lib, band_model, db, write_tags=True, keep_existing=False)
    assert [(r.status, r.genre) for r in results] == [("tagged", "Low")], results
    assert stored(path, fmt, 0) == ["Low"] and stored(path, fmt, 2) == ["band"] and len(stored(path, fmt, 1)) == 1
    assert others(path, fmt) == before and covers(path, fmt) == [COVER]
    assert audio_digest(path) == digest
    assert [r.status for r in undo_all(db)] == ["restored"]
    assert stored(path, fmt, 0) == ["Old Genre"] and stored(path, fmt, 1) == [] and stored(path, fmt, 2) == []
    assert others(path, fmt) == before and covers(path, fmt) == [COVER]
    assert audio_digest(path) == digest


@pytest.mark.parametrize("fmt", BARE)
def test_a_format_without_a_tag_container_is_analysed_and_skipped(tmp_path, fmt, band_model):
    lib = tmp_path / "lib"
    lib.mkdir()
    path = make(lib, fmt)
    data = path.read_bytes()
    for write in (False, True):
        results = scan_all(lib, band_model, tmp_path / f"state-{write}.sqlite", write_tags=write)
        assert [(r.status, r.note, r.genre) for r in results] == [("skipped", formats.NO_TAG_CONTAINER, "Low")]
    assert path.read_bytes() == data
    with pytest.raises(tags.Unwritable, match="no tag container"):
        tags.write(path, genres=["Rock"], confidences=None, model_id=None)


def test_undo_removes_the_tag_it_created(tmp_path, band_model):
    """Files that had no tag at all are byte for byte what they were (MP4 and Ogg always keep a
    metadata box or comment header, so they are left out here)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    fmts = ["mp3", "wav", "aiff", "aifc", "dsf", "wv", "tta"]  # an MP3-in-WAV is not written (test_verify)
    files = {fmt: make(lib, fmt, name=f"bare-{fmt.replace('.', '-')}") for fmt in fmts}
    original = {fmt: p.read_bytes() for fmt, p in files.items()}
    db = tmp_path / "state.sqlite"
    assert {r.status for r in scan_all(lib, band_model, db, write_tags=True)} == {"tagged"}
    assert all(p.read_bytes() != original[fmt] for fmt, p in files.items())
    assert {r.status for r in undo_all(db)} == {"restored"}
    for fmt, p in files.items():
        assert p.read_bytes() == original[fmt], fmt


# --- the APEv2 handler that the decode-only formats share -------------------------------------


@pytest.mark.parametrize("fmt", ["wv", "tta"])
def test_apev2_keeps_the_id3v1_tag_behind_it(tmp_path, fmt):
    path = make(tmp_path, fmt)
    v1 = (
        b"TAG"
        + b"Title".ljust(30, b"\0")
        + b"Artist".ljust(30, b"\0")
        + b"Album".ljust(30, b"\0")
        + b"1999"
        + b"comment".ljust(30, b"\0")
        + bytes([17])
    )
    with open(path, "ab") as fh:
        fh.write(v1)
    digest = audio_digest(path)
    for genres in (["Rock"], ["Jazz", "Blues"]):  # a new APEv2 item, then a changed one
        tags.write(path, genres=genres, confidences=None, model_id="m")
        data = path.read_bytes()
        assert data.endswith(v1) and data[-128 - 32 : -128 - 24] == b"APETAGEX"  # the APEv2 footer, then ID3v1
        assert tags.read(path).genres == tuple(genres)
    assert audio_digest(path) == digest


def test_apev2_key_spelling_and_multiple_values_round_trip(tmp_path):
    path = make(tmp_path, "wv")
    f = APEv2File(path)
    f.tags["GENRE"] = ["Rock", "Pop"]
    f.save()
    raw = tags.read(path).raw
    assert tags.read(path).genres == ("Rock", "Pop")
    tags.write(path, genres=["Jazz"], confidences=[0.5], model_id="m")
    tags.restore(path, raw)
    assert tags.same_values(tags.read(path).raw, raw)
    assert [k for k in APEv2File(path).tags.keys() if k.lower() == "genre"] == ["GENRE"]
