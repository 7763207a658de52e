"""Genre tags in every format: written where each format keeps them, and nothing else touched."""

from __future__ import annotations

import base64
import struct

import mutagen
import pytest
from audiogen import FORMATS, make
from mutagen.asf import ASFByteArrayAttribute
from mutagen.flac import Picture
from mutagen.id3 import APIC, COMM, ID3, RVAD, TALB, TCON, TDRC, TIT2, TPE1, TRCK, TSOP, TXXX, TYER
from mutagen.mp4 import MP4Cover, MP4FreeForm

from mgctag import tags
from mgctag.decode import audio_digest
from mgctag.errors import TagError

TITLE = "Motörhead — Ærø 東京"
ARTIST = "Motörhead"
ALBUM = "Ærø 東京 Live"
COVER = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
GENRES, CONFS, MODEL = ["Rock", "Jazz"], [0.8234, 0.1], "musicnn-msd"
FAMILY = {
    "mp3": "id3",
    "wav": "id3",
    "aiff": "id3",
    "flac": "vorbis",
    "ogg": "vorbis",
    "opus": "vorbis",
    "m4a": "mp4",
    "alac.m4a": "mp4",
    "wma": "asf",
}
# the keys the issue names for genre / confidence / model, per format family
KEYS = {
    "id3": ("TCON", "TXXX:MGCTAG_CONFIDENCE", "TXXX:MGCTAG_MODEL"),
    "vorbis": ("genre", "mgctag_confidence", "mgctag_model"),
    "mp4": ("\xa9gen", "----:com.mgctag:confidence", "----:com.mgctag:model"),
    "asf": ("WM/Genre", "MGCTAG/Confidence", "MGCTAG/Model"),
}
ID3_FORMATS = [f for f in FORMATS if FAMILY[f] == "id3"]


# --- fixtures: files that already carry a user's tags ----------------------------------------


def _tag_id3(f):
    f.add_tags()
    for frame in (
        TIT2(encoding=3, text=[TITLE]),
        TPE1(encoding=3, text=[ARTIST, "Ærø"]),
        TALB(encoding=3, text=[ALBUM]),
        TRCK(encoding=3, text=["3/12"]),
        TDRC(encoding=3, text=["1980"]),
        COMM(encoding=3, lang="eng", desc="", text=["a comment"]),
        APIC(encoding=3, mime="image/png", type=3, desc="front", data=COVER),
        TXXX(encoding=3, desc="OTHER_TOOL", text=["keep me"]),
        TCON(encoding=3, text=["Old Genre"]),
    ):
        f.tags.add(frame)


def _picture() -> Picture:
    pic = Picture()
    pic.type, pic.mime, pic.desc, pic.data = 3, "image/png", "front", COVER
    return pic


def _tag_vorbis(f):
    if f.tags is None:
        f.add_tags()
    f["TITLE"], f["ARTIST"], f["ALBUM"] = [TITLE], [ARTIST, "Ærø"], [ALBUM]
    f["TRACKNUMBER"], f["OTHER_TOOL"], f["Genre"] = ["3"], ["keep me"], ["Old Genre"]
    if hasattr(f, "add_picture"):  # FLAC: a picture block
        f.add_picture(_picture())
    else:  # Ogg: the base64 picture comment
        f["METADATA_BLOCK_PICTURE"] = [base64.b64encode(_picture().write()).decode("ascii")]


def _tag_mp4(f):
    f["\xa9nam"], f["\xa9ART"], f["\xa9alb"], f["trkn"] = [TITLE], [ARTIST, "Ærø"], [ALBUM], [(3, 12)]
    f["covr"] = [MP4Cover(COVER, imageformat=MP4Cover.FORMAT_PNG)]
    f["----:com.other:tool"] = [MP4FreeForm(b"keep me")]
    f["\xa9gen"] = ["Old Genre"]


def _asf_picture() -> bytes:
    """WM/Picture: type, size, mime and description (UTF-16LE, NUL-ended), data."""
    text = "image/png\0".encode("utf-16-le") + "front\0".encode("utf-16-le")
    return struct.pack("<BI", 3, len(COVER)) + text + COVER


def _tag_asf(f):
    f["Title"], f["Author"], f["WM/AlbumTitle"], f["WM/TrackNumber"] = [TITLE], [ARTIST], [ALBUM], ["3"]
    f["WM/Picture"] = [ASFByteArrayAttribute(_asf_picture())]
    f["OtherTool/Thing"], f["WM/Genre"] = ["keep me"], ["Old Genre"]


DECORATE = {"id3": _tag_id3, "vorbis": _tag_vorbis, "mp4": _tag_mp4, "asf": _tag_asf}


def _bare(tmp_path, fmt, name="song"):
    return make(tmp_path / f"{name}.{fmt}", seconds=1.0, fmt=fmt)


def _tagged(tmp_path, fmt, name="song"):
    path = _bare(tmp_path, fmt, name)
    f = mutagen.File(path)
    DECORATE[FAMILY[fmt]](f)
    f.save()
    return path


# --- what is stored, seen through mutagen itself ---------------------------------------------


def _raw(path, key) -> list[str]:
    """Values stored under `key`, as text, read by mutagen without mgctag."""
    value = mutagen.File(path).tags.get(key)
    if value is None:
        return []
    values = value.text if hasattr(value, "text") else value
    return [bytes(v).decode() if isinstance(v, bytes) else str(v) for v in values]


def _others(path, fmt) -> list[tuple[str, str]]:
    """Every tag except the three mgctag writes, comparable; FLAC pictures included."""
    f = mutagen.File(path)
    managed = {k.lower() for k in KEYS[FAMILY[fmt]]}
    pairs = list(f.tags.items()) if FAMILY[fmt] in ("id3", "mp4") else list(f.tags)
    out = sorted((k.lower(), repr(v)) for k, v in pairs if k.lower() not in managed)
    return out + [("picture-block", repr((p.type, p.mime, p.desc, p.data))) for p in getattr(f, "pictures", [])]


COVERS = {
    "id3": lambda f: [f.tags["APIC:front"].data],
    "vorbis": lambda f: (
        [p.data for p in getattr(f, "pictures", [])]
        + [Picture(base64.b64decode(v)).data for v in f.tags.get("METADATA_BLOCK_PICTURE", [])]
    ),
    "mp4": lambda f: [bytes(c) for c in f.tags["covr"]],
    "asf": lambda f: [a.value[-len(COVER) :] for a in f.tags["WM/Picture"]],
}


def _covers(path) -> list[bytes]:
    """The picture data stored in the file, read by mutagen."""
    f = mutagen.File(path)
    return COVERS[FAMILY[_fmt(path)]](f)


def _fmt(path) -> str:
    return "alac.m4a" if path.name.endswith(".alac.m4a") else path.suffix[1:]


# --- writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_sets_genres_and_fields_and_keeps_everything_else(tmp_path, fmt):
    path = _tagged(tmp_path, fmt)
    before, digest = _others(path, fmt), audio_digest(path)
    assert _covers(path) == [COVER]
    genre_key, conf_key, model_key = KEYS[FAMILY[fmt]]
    assert _raw(path, genre_key) == ["Old Genre"]

    tags.write(path, genres=GENRES, confidences=CONFS, model_id=MODEL)

    assert _raw(path, genre_key) == GENRES  # separate values, not "Rock/Jazz"
    assert _raw(path, conf_key) == ["0.823", "0.100"]
    assert _raw(path, model_key) == [MODEL]
    assert _others(path, fmt) == before  # titles, artists, cover, custom fields: identical
    assert _covers(path) == [COVER]
    assert audio_digest(path) == digest
    state = tags.read(path)
    assert state == tags.TagState(
        genres=tuple(GENRES),
        confidences=("0.823", "0.100"),
        model=MODEL,
        artist=ARTIST,
        format=FAMILY[fmt],
        album=ALBUM,
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_without_tags_gets_a_tag(tmp_path, fmt):
    path = _bare(tmp_path, fmt)
    digest = audio_digest(path)
    tags.write(path, genres=["Blues"], confidences=[0.5], model_id=MODEL)
    assert _raw(path, KEYS[FAMILY[fmt]][0]) == ["Blues"]
    assert tags.read(path) == tags.TagState(("Blues",), ("0.500",), MODEL, None, FAMILY[fmt])
    assert audio_digest(path) == digest


@pytest.mark.parametrize("fmt", FORMATS)
def test_removing_fields(tmp_path, fmt):
    path = _tagged(tmp_path, fmt)
    tags.write(path, genres=GENRES, confidences=CONFS, model_id=MODEL)
    before = _others(path, fmt)
    tags.write(path, genres=[], confidences=None, model_id=None)
    assert all(_raw(path, key) == [] for key in KEYS[FAMILY[fmt]])
    assert tags.read(path) == tags.TagState((), (), None, ARTIST, FAMILY[fmt], album=ALBUM)
    assert _others(path, fmt) == before


def test_removing_only_mgctag_fields_keeps_the_genre(tmp_path):
    path = _tagged(tmp_path, "flac")
    tags.write(path, genres=GENRES, confidences=CONFS, model_id=MODEL)
    tags.write(path, genres=GENRES, confidences=None, model_id=None)
    state = tags.read(path)
    assert (state.genres, state.confidences, state.model) == (tuple(GENRES), (), None)


def test_vorbis_genre_key_in_any_case_is_replaced_not_duplicated(tmp_path):
    path = _tagged(tmp_path, "ogg")  # the fixture stores "Genre"
    tags.write(path, genres=["Metal"], confidences=None, model_id=None)
    assert [v for k, v in mutagen.File(path).tags if k.lower() == "genre"] == ["Metal"]


# --- ID3 versions and ID3v1 ------------------------------------------------------------------


def _id3(path):
    return mutagen.File(path, easy=False).tags


@pytest.mark.parametrize("fmt", ID3_FORMATS)
def test_id3_defaults_to_v24(tmp_path, fmt):
    path = _bare(tmp_path, fmt)
    tags.write(path, genres=GENRES, confidences=CONFS, model_id=MODEL)
    assert _id3(path).version == (2, 4, 0)


@pytest.mark.parametrize("fmt", ID3_FORMATS)
def test_id3v23_on_request(tmp_path, fmt):
    path = _tagged(tmp_path, fmt)
    old = _id3(path)
    tags.write(path, genres=GENRES, confidences=CONFS, model_id=MODEL, id3v23=True)
    new = type(mutagen.File(path))(path, translate=False).tags
    assert new.version == (2, 3, 0)
    assert new["TCON"].text == ["Rock/Jazz"]  # v2.3 has no multi-value text: mutagen joins with "/"
    assert tags.read(path).genres == tuple(GENRES)
    assert tags.read(path).confidences == ("0.823", "0.100")
    for key in ("TIT2", "TPE1", "TALB", "TXXX:OTHER_TOOL", "COMM::eng"):
        assert str(new[key]) == str(old[key]).replace("\0", "/")
    assert new["APIC:front"].data == COVER


def test_existing_v23_tag_stays_v23_with_frames_intact(tmp_path):
    """Converting to v2.4 would drop RVAD and fold TYER into TDRC: a file keeps its version."""
    path = _bare(tmp_path, "mp3")
    f = mutagen.File(path)
    f.add_tags()
    f.tags.add(TIT2(encoding=1, text=[TITLE]))
    f.tags.add(TYER(encoding=0, text=["1980"]))
    f.tags.add(TSOP(encoding=1, text=["Motorhead"]))  # a v2.4 frame some taggers put in v2.3
    f.tags.add(RVAD(adjustments=[0, 0]))
    f.save(v2_version=3)
    before = ID3(path, translate=False)
    tags.write(path, genres=GENRES, confidences=CONFS, model_id=MODEL)
    after = ID3(path, translate=False)
    assert after.version == (2, 3, 0)
    assert {k: repr(v) for k, v in after.items() if not k.startswith(("TCON", "TXXX"))} == {
        k: repr(v) for k, v in before.items()
    }
    assert tags.read(path).genres == tuple(GENRES)


def test_mp3_id3v1_kept_byte_for_byte(tmp_path):
    path = _tagged(tmp_path, "mp3")
    f = mutagen.File(path)
    f.save(v1=2)  # add an ID3v1 tag
    v1 = path.read_bytes()[-128:]
    assert v1.startswith(b"TAG")
    digest = audio_digest(path)
    tags.write(path, genres=GENRES, confidences=CONFS, model_id=MODEL)
    data = path.read_bytes()
    assert data[-128:] == v1 and data[-256:-128] != v1
    assert audio_digest(path) == digest
    assert ID3(path, load_v1=False)["TCON"].text == GENRES


def test_mp3_without_id3v1_gets_none(tmp_path):
    path = _tagged(tmp_path, "mp3")
    tags.write(path, genres=GENRES, confidences=CONFS, model_id=MODEL)
    assert not path.read_bytes()[-128:].startswith(b"TAG")


def test_id3_numeric_genre_reads_as_name(tmp_path):
    path = _bare(tmp_path, "mp3")
    f = mutagen.File(path)
    f.add_tags()
    f.tags.add(TCON(encoding=0, text=["(17)"]))
    f.save()
    assert tags.read(path).genres == ("Rock",)


# --- diff before write -----------------------------------------------------------------------


def test_would_change():
    state = tags.TagState(("Rock", "Jazz"), ("0.823", "0.100"), MODEL, None, "id3")
    assert not tags.would_change(state, genres=GENRES, confidences=CONFS, model_id=MODEL)
    assert not tags.would_change(state, genres=GENRES, confidences=[0.82349, 0.0999], model_id=MODEL)
    assert tags.would_change(state, genres=["Jazz", "Rock"], confidences=CONFS, model_id=MODEL)
    assert tags.would_change(state, genres=GENRES, confidences=[0.9, 0.1], model_id=MODEL)
    assert tags.would_change(state, genres=GENRES, confidences=None, model_id=MODEL)
    assert tags.would_change(state, genres=GENRES, confidences=CONFS, model_id="other")
    assert tags.would_change(state, genres=GENRES, confidences=CONFS, model_id=None)
    empty = tags.TagState((), (), None, None, "id3")
    assert not tags.would_change(empty, genres=[], confidences=None, model_id=None)
    assert tags.would_change(empty, genres=["Rock"], confidences=None, model_id=None)


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_after_write_means_nothing_would_change(tmp_path, fmt):
    path = _tagged(tmp_path, fmt)
    assert tags.would_change(tags.read(path), genres=GENRES, confidences=CONFS, model_id=MODEL)
    tags.write(path, genres=GENRES, confidences=CONFS, model_id=MODEL)
    assert not tags.would_change(tags.read(path), genres=GENRES, confidences=CONFS, model_id=MODEL)


def test_bad_arguments():
    with pytest.raises(ValueError):
        tags.would_change(tags.TagState((), (), None, None, "id3"), genres=GENRES, confidences=[0.5], model_id=None)
    with pytest.raises(TypeError):
        tags.would_change(tags.TagState((), (), None, None, "id3"), genres="Rock", confidences=None, model_id=None)


# --- unreadable files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,data",
    [
        ("notes.txt", b"just some text\n"),
        ("broken.mp3", b"\x00" * 300),
        ("cut.flac", b"fLaC\x00\x00\x00\x22" + b"\x01" * 10),
    ],
)
def test_unreadable_files_give_one_line_tag_errors(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    for call in (lambda: tags.read(path), lambda: tags.write(path, genres=GENRES, confidences=None, model_id=None)):
        with pytest.raises(TagError) as err:
            call()
        assert "\n" not in str(err.value) and str(err.value)
    assert path.read_bytes() == data


def test_missing_file(tmp_path):
    with pytest.raises(TagError, match="no such file"):
        tags.read(tmp_path / "gone.flac")


def test_every_handler_is_registered_by_type():
    for handler in tags.HANDLERS:
        assert handler.types and all(tags.REGISTRY[t] is handler for t in handler.types)


# --- tags after the audio ----------------------------------------------------------------------


def _syncsafe(n: int) -> bytes:
    return bytes((n >> s) & 0x7F for s in (21, 14, 7, 0))


def appended_id3v24(frames: dict[str, str]) -> bytes:
    """An ID3v2.4 tag with a footer, as appended after the audio (mutagen cannot write one)."""
    body = b""
    for fid, text in frames.items():
        data = b"\x03" + text.encode("utf-8")
        body += fid.encode("ascii") + _syncsafe(len(data)) + b"\x00\x00" + data
    return b"ID3\x04\x00\x10" + _syncsafe(len(body)) + body + b"3DI\x04\x00\x10" + _syncsafe(len(body))


def apev2_bytes(tmp_path, items: dict[str, str]) -> bytes:
    from mutagen.apev2 import APEv2

    ape = APEv2()
    for k, v in items.items():
        ape[k] = v
    holder = tmp_path / "ape.tag"
    holder.write_bytes(b"")
    ape.save(holder)
    return holder.read_bytes()


def test_mp3_with_its_tags_after_the_audio_is_not_given_a_second_tag(tmp_path, band_model):
    """The user's genre sat in an ID3v2 tag at the end (and in APEv2): mgctag saw no genre and added
    a leading tag holding only its own. Now such a file is skipped with a note, byte for byte kept."""
    from mgctag.scanner import ScanOptions, scan

    lib = tmp_path / "lib"
    lib.mkdir()
    trailing = make(lib / "id3-at-the-end.mp3", seconds=1.5, freq=150)
    with open(trailing, "ab") as fh:
        fh.write(appended_id3v24({"TIT2": TITLE, "TCON": "Jazz"}) + apev2_bytes(tmp_path, {"Genre": "Jazz"}))
    ape_genre = make(lib / "ape-genre.mp3", seconds=1.5, freq=150)
    with open(ape_genre, "ab") as fh:
        fh.write(apev2_bytes(tmp_path, {"Genre": "Jazz", "Title": TITLE}))
    gain = make(lib / "replaygain.mp3", seconds=1.5, freq=150)  # an APEv2 tag without a genre: fine
    ape = apev2_bytes(tmp_path, {"REPLAYGAIN_TRACK_GAIN": "-3.2 dB"})
    with open(gain, "ab") as fh:
        fh.write(ape)
    data = {p: p.read_bytes() for p in (trailing, ape_genre)}
    results = {
        r.path.name: r
        for r in scan(
            [lib], ScanOptions(model=str(band_model), state=tmp_path / "s.sqlite", write_tags=True, workers=0)
        )
    }
    assert (results["id3-at-the-end.mp3"].status, results["ape-genre.mp3"].status) == ("skipped", "skipped")
    assert "ID3v2 tag after the audio" in results["id3-at-the-end.mp3"].note
    assert "APEv2 tag after the audio" in results["ape-genre.mp3"].note
    assert all(p.read_bytes() == d for p, d in data.items())
    assert results["replaygain.mp3"].status == "tagged"
    assert gain.read_bytes().endswith(ape) and tags.read(gain).genres == ("Low",)
    with pytest.raises(tags.Unwritable, match="after the audio"):
        tags.write(trailing, genres=["Rock"], confidences=None, model_id=None)


def test_apev2_format_with_a_genre_in_an_id3v2_tag_is_not_written(tmp_path):
    """True Audio files often carry an ID3v2 tag: writing APEv2 beside it would leave two genres."""
    path = make(tmp_path / "a.tta", seconds=1.0)
    id3 = ID3()
    id3.add(TCON(encoding=3, text=["Jazz"]))
    id3.save(path)
    assert "ID3v2 tag" in tags.read(path).unwritable
    with pytest.raises(tags.Unwritable):
        tags.write(path, genres=["Rock"], confidences=None, model_id=None)


def test_trailing_tags_are_told_apart(tmp_path):
    """Stacked tags are peeled from the end; "TAG" 128 bytes before the end of an APEv2 tag is a
    value, not an ID3v1 tag (cutting there would have broken the APEv2 tag on the next write)."""
    from mutagen.apev2 import APEv2File

    from mgctag.tags import trailing

    path = make(tmp_path / "a.wv", seconds=0.5)
    f = APEv2File(path)  # FFmpeg's WavPack muxer wrote an APEv2 tag already
    audio_end = len(path.read_bytes()) - sum(t.end - t.start for t in trailing.trailers(path))
    f.tags["Comment"] = "x" * 400 + "TAG" + "y" * 93  # the longest item: mutagen puts it last
    f.save()
    assert path.read_bytes()[-128:].startswith(b"TAG")
    assert [t.kind for t in trailing.trailers(path)] == ["apev2"]
    tags.write(path, genres=["Rock"], confidences=None, model_id=None)
    assert tags.read(path).genres == ("Rock",)
    v1 = b"TAG" + bytes(124) + b"\x11"
    with open(path, "ab") as fh:
        fh.write(appended_id3v24({"TIT2": "t"}) + v1)
    kinds = trailing.trailers(path)
    assert [t.kind for t in kinds] == ["id3v1", "id3v2", "apev2"] and kinds[-1].start == audio_end


def test_an_id3v1_genre_is_the_users_and_is_kept(tmp_path, band_model):
    """A file whose only genre is in its ID3v1 tag: read as its genre, so --keep-existing keeps it,
    and an --overwrite writes ID3v2 and leaves the ID3v1 bytes as they were."""
    from mutagen.id3 import MakeID3v1

    from mgctag.scanner import ScanOptions, scan

    path = make(tmp_path / "old.mp3", seconds=2.5, freq=150.0)
    v1 = MakeID3v1({"TCON": TCON(encoding=0, text=["Abstract"]), "TIT2": TIT2(encoding=0, text=["Old"])})
    with open(path, "ab") as fh:
        fh.write(v1)
    assert tags.read(path).genres == ("Abstract",)
    (kept,) = scan([path], ScanOptions(model=str(band_model), workers=0, write_tags=True))
    assert (kept.status, kept.genre) == ("kept", "Abstract") and path.read_bytes().endswith(v1)
    (written,) = scan([path], ScanOptions(model=str(band_model), workers=0, write_tags=True, keep_existing=False))
    assert written.status == "tagged" and tags.read(path).genres == ("Low",) and path.read_bytes().endswith(v1)
