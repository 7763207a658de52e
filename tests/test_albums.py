"""Albums: one genre per album, decided from all its tracks; what is not an album stays per track.

The hand-set band model hears a low tone as Low and a high one as High; a track that is mostly
high with a little low ("weak") is heard as High, less surely, so an album of low tracks
outvotes it. Tracks are written with real album tags (mutagen's easy keys) in several formats.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import audiogen
import mutagen
import numpy as np
import pytest

from mgctag import albums, state, tags
from mgctag.scanner import ScanOptions, scan
from mgctag.undo import pick_run, undo

SR = 22050
LOW, WEAK_HIGH, WEAK_LOW, HIGH = (1.0, 0.0), (0.1, 0.9), (0.2, 0.8), (0.0, 1.0)


def track(
    path: Path, mix=LOW, *, album=None, album_artist=None, artist=None, compilation=False, genre=None, seed=0
) -> Path:
    """A 2.5 s file: `mix` = (low, high) amplitudes of a 150 Hz and a 5 kHz tone, with album tags."""
    t = np.arange(int(2.5 * SR)) / SR + seed * 1e-3  # `seed`: another phase, so no two files are the same
    y = (0.5 * (mix[0] * np.sin(2 * np.pi * 150 * t) + mix[1] * np.sin(2 * np.pi * 5000 * t))).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    audiogen.write_audio(path, y, SR)
    given = {
        "album": album,
        "albumartist": album_artist,
        "artist": artist,
        "genre": genre,
        "compilation": "1" if compilation else None,
    }
    if any(given.values()):
        f = mutagen.File(path, easy=True)
        if f.tags is None:
            f.add_tags()
        for k, v in given.items():
            if v is not None:
                f[k] = [v]
        f.save()
    return path


def run(root, model, **kw):
    kw.setdefault("workers", 0)
    return {r.path: r for r in scan([root], ScanOptions(model=str(model), **kw))}


# --- what an album is ----------------------------------------------------------------------


def test_disc_folders_count_as_their_parent():
    for name in ("CD1", "cd 2", "Disc1", "Disc 2", "DISK-3", "disc_04", "CD1 - Bonus"):
        assert albums.home(Path(f"/m/A/{name}/01.flac")) == Path("/m/A"), name
    for name in ("CDs", "Discography", "Best of CD", "Live"):
        assert albums.home(Path(f"/m/A/{name}/01.flac")) == Path(f"/m/A/{name}"), name


def test_an_album_across_cd1_and_cd2_is_one_album_by_its_tags(tmp_path, band_model):
    tagged = dict(album="Blue Train", album_artist="John Coltrane", artist="John Coltrane")
    a = track(tmp_path / "Blue Train" / "CD1" / "01.flac", LOW, **tagged)
    b = track(tmp_path / "Blue Train" / "CD1" / "02.mp3", LOW, seed=1, **tagged)
    c = track(tmp_path / "Blue Train" / "Disc 2" / "01.ogg", WEAK_HIGH, seed=2, **tagged)
    alone = run(tmp_path, band_model, albums="off")
    assert [alone[p].genre for p in (a, b, c)] == ["Low", "Low", "High"]
    assert {alone[p].decided_by for p in (a, b, c)} == {"track"} and {alone[p].album for p in (a, b, c)} == {""}
    results = run(tmp_path, band_model)
    for p in (a, b, c):
        r = results[p]
        assert (r.status, r.genre, r.decided_by, r.album) == ("would-tag", "Low", "album", "John Coltrane - Blue Train")
    assert results[a].confidence == results[c].confidence < alone[a].confidence
    assert results[c].note == f"its own guess: High ({alone[c].confidence:.2f})"


def test_two_tagged_albums_in_one_folder_are_two(tmp_path, band_model):
    downloads = tmp_path / "Downloads"
    x = [
        track(downloads / f"x{i}.flac", mix, album="Low Album", artist="Ann", seed=i)
        for i, mix in enumerate((LOW, LOW, WEAK_HIGH))
    ]
    y = [
        track(downloads / f"y{i}.flac", mix, album="High Album", artist="Bob", seed=10 + i)
        for i, mix in enumerate((HIGH, HIGH, WEAK_LOW))
    ]
    results = run(downloads, band_model)
    assert [results[p].genre for p in x] == ["Low"] * 3 and {results[p].album for p in x} == {"Ann - Low Album"}
    assert [results[p].genre for p in y] == ["High"] * 3 and {results[p].album for p in y} == {"Bob - High Album"}


def test_an_untagged_album_folder_is_one_album(tmp_path, band_model):
    folder = tmp_path / "Some Album"
    files = [track(folder / f"{i:02d}.wav", mix, seed=i) for i, mix in enumerate((LOW, LOW, LOW, WEAK_HIGH))]
    results = run(tmp_path, band_model)
    assert [results[p].genre for p in files] == ["Low"] * 4
    assert {(results[p].decided_by, results[p].album) for p in files} == {("album", str(folder))}


@pytest.mark.parametrize("how", ["flag", "various artists", "no album artist"])
def test_a_compilation_keeps_per_track_genres(tmp_path, band_model, how):
    tagged = {
        "flag": dict(album="Hits", album_artist="Ann", compilation=True),
        "various artists": dict(album="Hits", album_artist="Various Artists"),
        "no album artist": dict(album="Hits"),
    }[how]
    files = [
        track(tmp_path / "Hits" / f"{i}.flac", mix, artist=f"Artist {i}" if how != "flag" else "Ann", seed=i, **tagged)
        for i, mix in enumerate((LOW, LOW, WEAK_HIGH))
    ]
    results = run(tmp_path, band_model)
    assert [results[p].genre for p in files] == ["Low", "Low", "High"]
    assert {(results[p].decided_by, results[p].album) for p in files} == {("track", "")}


def test_various_artists_by_one_artist_is_still_an_album(tmp_path, band_model):
    files = [
        track(tmp_path / "VA" / f"{i}.flac", mix, album="Hits", album_artist="VA", artist="Ann", seed=i)
        for i, mix in enumerate((LOW, LOW, WEAK_HIGH))
    ]
    results = run(tmp_path, band_model)
    assert [results[p].genre for p in files] == ["Low"] * 3


@pytest.mark.parametrize("how", ["a sure dissenter", "different artists"])
def test_a_folder_of_unrelated_untagged_tracks_is_not_merged(tmp_path, band_model, how):
    mixes = (LOW, LOW, LOW, HIGH) if how == "a sure dissenter" else (LOW, LOW, WEAK_HIGH)
    files = [
        track(
            tmp_path / "misc" / f"{i}.flac", mix, seed=i, artist=f"Artist {i}" if how == "different artists" else None
        )
        for i, mix in enumerate(mixes)
    ]
    results = run(tmp_path, band_model)
    assert [results[p].genre for p in files] == ["Low"] * (len(mixes) - 1) + ["High"]
    assert {results[p].decided_by for p in files} == {"track"}


def test_albums_off_is_every_file_judged_alone(tmp_path, band_model):
    files = [
        track(tmp_path / "A" / f"{i}.flac", mix, album="A", artist="Ann", seed=i)
        for i, mix in enumerate((LOW, WEAK_HIGH, LOW, WEAK_LOW))
    ]
    off = run(tmp_path, band_model, albums="off")
    for p in files:  # each file scanned on its own is the same answer
        (single,) = run(p, band_model).values()
        assert (off[p].status, off[p].genres, off[p].note) == (single.status, single.genres, single.note)
        assert (off[p].decided_by, off[p].album) == ("track", "")


def test_an_album_below_the_minimum_is_skipped_as_a_whole(tmp_path, band_model):
    files = [
        track(tmp_path / "A" / f"{i}.flac", mix, album="A", artist="Ann", seed=i)
        for i, mix in enumerate((LOW, WEAK_HIGH, WEAK_HIGH))
    ]
    results = run(tmp_path, band_model, min_confidence=0.9, write_tags=True)
    for p in files:
        assert results[p].status == "skipped" and "the album's best guess" in results[p].note
        assert tags.read(p).genres == ()


# --- the user's genres -----------------------------------------------------------------------


def test_the_users_genre_on_some_tracks_is_the_albums(tmp_path, band_model):
    tagged = dict(album="A", artist="Ann")
    users = [track(tmp_path / "A" / f"u{i}.mp3", LOW, genre="Jazz", seed=i, **tagged) for i in range(2)]
    rest = [track(tmp_path / "A" / f"r{i}.flac", LOW, seed=5 + i, **tagged) for i in range(2)]
    results = run(tmp_path, band_model, write_tags=True)
    assert {results[p].status for p in users} == {"kept"}
    for p in rest:
        r = results[p]
        assert (r.status, r.genre, r.decided_by) == ("tagged", "Jazz", "album (user genre)")
        assert "the user's genre on 2 of its 4 tracks" in r.note
    assert {tags.read(p).genres for p in users + rest} == {("Jazz",)}  # no second genre in the album
    assert tags.read(rest[0]).model == "band" and tags.read(rest[0]).confidences == ()  # the model cannot name Jazz


# --- later runs --------------------------------------------------------------------------------


def test_a_new_track_that_flips_the_album_refreshes_the_old_ones_without_hearing_them(tmp_path, band_model, decoded):
    db = tmp_path / "state.sqlite"
    tagged = dict(album="A", artist="Ann")
    old = [track(tmp_path / "A" / f"0{i}.flac", WEAK_LOW, seed=i, **tagged) for i in range(2)]
    first = run(tmp_path, band_model, state=db, write_tags=True)
    assert {first[p].genre for p in old} == {"Low"} and {tags.read(p).genres for p in old} == {("Low",)}
    decoded.clear()
    again = run(tmp_path, band_model, state=db, write_tags=True)  # nothing new: nothing heard, nothing written
    assert decoded == [] and {again[p].status for p in old} == {"unchanged"}
    assert {again[p].album for p in old} == {"Ann - A"}

    new = [track(tmp_path / "A" / f"1{i}.flac", HIGH, seed=10 + i, **tagged) for i in range(3)]
    results = run(tmp_path, band_model, state=db, write_tags=True)
    assert sorted(decoded) == sorted(new)  # the old tracks were not heard again
    for p in old + new:
        assert (results[p].status, results[p].genre, results[p].decided_by) == ("tagged", "High", "album"), p
        assert tags.read(p).genres == ("High",)


def test_a_genre_the_user_changed_since_wins_and_the_album_follows_it(tmp_path, band_model):
    db = tmp_path / "state.sqlite"
    files = [track(tmp_path / "A" / f"{i}.mp3", LOW, album="A", artist="Ann", seed=i) for i in range(3)]
    run(tmp_path, band_model, state=db, write_tags=True)
    assert {tags.read(p).genres for p in files} == {("Low",)}
    f = mutagen.File(files[0], easy=True)
    f["genre"] = ["Folk"]
    f.save()
    results = run(tmp_path, band_model, state=db, write_tags=True)
    assert results[files[0]].status == "kept"
    assert [results[p].decided_by for p in files[1:]] == ["album (user genre)"] * 2
    assert {tags.read(p).genres for p in files} == {("Folk",)}


def test_undo_puts_back_every_file_an_album_wrote(tmp_path, band_model):
    db = tmp_path / "state.sqlite"
    files = [
        track(tmp_path / "A" / f"{i}.flac", mix, album="A", artist="Ann", seed=i, genre="Old" if i == 0 else None)
        for i, mix in enumerate((LOW, LOW, WEAK_HIGH))
    ]
    before = {p: p.read_bytes() for p in files}
    ids = []
    results = {
        r.path: r
        for r in scan(
            [tmp_path],
            ScanOptions(model=str(band_model), state=db, write_tags=True, workers=0, keep_existing=False),
            on_run=ids.append,
        )
    }
    assert {results[p].status for p in files} == {"tagged"} and {tags.read(p).genres for p in files} == {("Low",)}
    with state.opened(db) as s:
        assert {u.status for u in undo(s, pick_run(s, ids[0]))} == {"restored"}
    assert {p: p.read_bytes() for p in files} == before


def test_a_folder_too_large_for_an_album_is_judged_per_track(tmp_path, band_model, monkeypatch):
    monkeypatch.setattr(albums, "MAX_TRACKS", 3)
    files = [
        track(tmp_path / "flat" / f"{i}.flac", mix, album="A", artist="Ann", seed=i)
        for i, mix in enumerate((LOW, LOW, LOW, WEAK_HIGH))
    ]
    results = run(tmp_path, band_model)
    assert [results[p].genre for p in files] == ["Low"] * 3 + ["High"]


def test_reports_name_the_album_and_who_decided(tmp_path, band_model):
    import csv
    import json

    from mgctag.report import Report

    files = [track(tmp_path / "lib" / "A" / f"{i}.flac", LOW, album="A", artist="Ann", seed=i) for i in range(2)]
    for ext in ("csv", "json"):
        out = tmp_path / f"report.{ext}"
        with Report(out) as rep:
            for r in scan([tmp_path / "lib"], ScanOptions(model=str(band_model), workers=0)):
                rep.write(r)
        rows = json.loads(out.read_text()) if ext == "json" else list(csv.DictReader(out.open()))
        assert {(Path(r["path"]), r["album"], r["decided_by"]) for r in rows} == {
            (p, "Ann - A", "album") for p in files
        }
    shutil.rmtree(tmp_path / "lib")


# --- album tags, read in the pass that reads the genre ----------------------------------------


def _set_album_tags(path: Path, family: str) -> None:
    from mutagen.asf import ASFBoolAttribute
    from mutagen.id3 import TALB, TCMP, TPE1, TPE2

    f = mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    if family == "id3":
        for frame in (
            TALB(encoding=3, text=["Ærø"]),
            TPE2(encoding=3, text=["Various Artists"]),
            TPE1(encoding=3, text=["Ann"]),
            TCMP(encoding=3, text=["1"]),
        ):
            f.tags.add(frame)
    elif family == "vorbis":
        f["ALBUM"], f["ALBUMARTIST"], f["ARTIST"], f["COMPILATION"] = ["Ærø"], ["Various Artists"], ["Ann"], ["1"]
    elif family == "mp4":
        f["\xa9alb"], f["aART"], f["\xa9ART"], f["cpil"] = ["Ærø"], ["Various Artists"], ["Ann"], True
    else:
        f["WM/AlbumTitle"], f["WM/AlbumArtist"], f["Author"] = ["Ærø"], ["Various Artists"], ["Ann"]
        f["WM/IsCompilation"] = [ASFBoolAttribute(True)]
    f.save()


@pytest.mark.parametrize("fmt", audiogen.FORMATS)
def test_album_tags_are_read_in_every_format(tmp_path, fmt):
    path = audiogen.make(tmp_path / f"song.{fmt}", seconds=1.0, fmt=fmt)
    family = {"mp3": "id3", "wav": "id3", "aiff": "id3", "m4a": "mp4", "alac.m4a": "mp4", "wma": "asf"}.get(
        fmt, "vorbis"
    )
    _set_album_tags(path, family)
    st = tags.read(path)
    assert (st.album, st.album_artist, st.artist, st.compilation) == ("Ærø", "Various Artists", "Ann", True)


def test_tracks_skipped_as_not_sure_enough_still_count_for_their_album_later(tmp_path, band_model, decoded):
    db = tmp_path / "state.sqlite"
    old = [track(tmp_path / "A" / f"0{i}.flac", WEAK_HIGH, album="A", artist="Ann", seed=i) for i in range(2)]
    first = run(tmp_path, band_model, state=db, min_confidence=0.95)
    assert {first[p].status for p in old} == {"skipped"}
    new = track(tmp_path / "A" / "10.flac", HIGH, album="A", artist="Ann", seed=9)
    decoded.clear()
    again = run(tmp_path, band_model, state=db, min_confidence=0.95)
    assert decoded == [new]
    assert {again[p].confidence for p in old + [new]} == {again[new].confidence}  # all decided with the new one
    assert all("unchanged since last run" not in again[p].note for p in old)


def test_in_an_album_a_kept_track_says_what_it_hears_itself_and_an_unnamed_user_genre_has_no_confidence(
    tmp_path, band_model
):
    tagged = dict(album="A", artist="Ann")
    kept = track(tmp_path / "A" / "k.flac", HIGH, genre="Bebop", seed=1, **tagged)
    rest = [track(tmp_path / "A" / f"{i}.flac", LOW, seed=5 + i, **tagged) for i in range(2)]
    results = run(tmp_path, band_model)
    assert results[kept].status == "kept" and results[kept].note.startswith(
        "a genre mgctag did not write; it hears High"
    )
    assert results[kept].confidence is None  # the model cannot name Bebop
    for p in rest:
        assert (results[p].genre, results[p].confidence, results[p].decided_by) == ("Bebop", None, "album (user genre)")
