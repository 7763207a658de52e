"""A corpus of bad and unusual input, generated here, scanned with --write-tags in one run.

Every entry gets a clear status (errors with a one-line reason, never a crash or a decoder's
traceback text); the good and merely unusual files in the same run are tagged with their audio
untouched; refused files stay byte-identical.
"""

from __future__ import annotations

import json
import os
import resource
import signal

import audiogen
import numpy as np
import pytest
import soundfile as sf
from mutagen.id3 import APIC, ID3
from typer.testing import CliRunner

from mgctag import discover as discover_module
from mgctag import safe, tags
from mgctag.cli import app
from mgctag.decode import audio_digest

LOW, HIGH = 150.0, 5000.0
NON_UTF8 = os.fsdecode(b"\xff\xfe-caf\xe9.flac")
DEAD_PID = 99_999_999  # above any pid_max: never a running process


def good(path, **kw):
    kw.setdefault("seconds", 2.5)
    kw.setdefault("freq", LOW)
    return audiogen.make(path, **kw)


def truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[: keep if keep > 1 else int(len(data) * keep)])


def build(lib, outside):
    """The corpus; returns {path: (status, reason part or genre)} for what the run must report."""
    lib.mkdir()
    expect = {}

    def error(name, reason):
        expect[lib / name] = ("error", reason)

    def tagged(name, genre="Low"):
        expect[lib / name] = ("tagged", genre)

    (lib / "zero.mp3").write_bytes(b"")
    error("zero.mp3", "empty file")
    for ext in ("mp3", "flac", "ogg"):
        truncate(good(lib / f"half.{ext}"), 0.5)  # the audio that is there is still usable
        tagged(f"half.{ext}")
        truncate(good(lib / f"head-only.{ext}"), 300)
        error(f"head-only.{ext}", "")
    (lib / "random.wav").write_bytes(np.random.default_rng(0).bytes(20_000))
    error("random.wav", "not an audio file")
    (lib / "text.mp3").write_text("this is not audio\n" * 100)
    error("text.mp3", "looks like text")
    (lib / "x.flac").mkdir()  # a folder with an audio name is walked as a folder
    good(lib / "x.flac" / "inner.wav")
    tagged("x.flac/inner.wav")
    os.mkfifo(lib / "fifo.mp3")
    error("fifo.mp3", "not a regular file")
    (lib / "broken.flac").symlink_to(lib / "nowhere.flac")
    error("broken.flac", "broken symlink")
    (lib / "loop.ogg").symlink_to(lib / "loop.ogg")
    error("loop.ogg", "symlink loop")
    good(lib / "unreadable.wav").chmod(0)
    # root reads anything: then the missing write bits are what stops the write
    error("unreadable.wav", "read-only file" if os.geteuid() == 0 else "permission denied")
    good(lib / "readonly.flac").chmod(0o444)
    error("readonly.flac", "read-only file")
    (lib / "ro").mkdir()
    good(lib / "ro" / "in-read-only-folder.mp3")
    (lib / "ro").chmod(0o555)
    error("ro/in-read-only-folder.mp3", "read-only folder")
    good(lib / "plain.flac", freq=HIGH).rename(lib / NON_UTF8)  # libsndfile cannot create such a name
    tagged(NON_UTF8, "High")
    good(lib / "clip.wav", seconds=0.05)  # a twentieth of the model's window: nothing to vote on
    expect[lib / "clip.wav"] = ("skipped", "too short to analyse: 0.05 s of audio")
    good(lib / "short.wav", seconds=0.7)  # most of a window: repeated to fill it, never padded with silence
    tagged("short.wav")
    audiogen.write_audio(lib / "silence.flac", np.zeros((3 * 22050, 1), np.float32), 22050)
    expect[lib / "silence.flac"] = ("skipped", "silent")
    good(lib / "8k-mono.wav", sr=8000)
    tagged("8k-mono.wav")
    sf.write(lib / "96k-24bit-stereo.flac", audiogen.tone(2.5, 96000, LOW, channels=2), 96000, subtype="PCM_24")
    tagged("96k-24bit-stereo.flac")
    sf.write(lib / "float32.wav", audiogen.tone(2.5, 22050, HIGH), 22050, subtype="FLOAT")
    tagged("float32.wav", "High")
    sf.write(lib / "6-channel.wav", audiogen.tone(2.5, 22050, LOW, channels=6), 22050, subtype="PCM_16")
    tagged("6-channel.wav")
    huge = good(lib / "huge-id3.mp3")
    id3 = ID3()
    id3.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=os.urandom(8 << 20)))
    id3.save(huge)
    tagged("huge-id3.mp3")
    good(lib / "SHOUTING.MP3", freq=HIGH)
    tagged("SHOUTING.MP3", "High")
    (lib / "link-to-outside.ogg").symlink_to(good(outside / "target.ogg"))
    tagged("link-to-outside.ogg")
    os.link(good(lib / "hard-linked.flac"), outside / "other-name.flac")
    expect[lib / "hard-linked.flac"] = ("skipped", "hard-linked (2 names)")
    # races: between discovery and decoding, and between analysis and writing
    good(lib / "vanishes-after-discovery.wav")
    error("vanishes-after-discovery.wav", "no such file")
    good(lib / "rewritten-after-discovery.ogg")
    tagged("rewritten-after-discovery.ogg", "High")  # analysed as it is now
    good(lib / "deleted-before-write.flac")
    error("deleted-before-write.flac", "file not found")
    good(lib / "rewritten-before-write.mp3")
    error("rewritten-before-write.mp3", "changed since it was analysed")
    # a temporary copy that a killed run left behind: removed, never scanned
    good(lib / f".half.flac.mgctag-{DEAD_PID}-abcdefgh.tmp.flac")
    return expect


@pytest.fixture
def races(monkeypatch, tmp_path):
    """Inject the races through the real discovery and write functions."""
    real_discover, real_write = discover_module.discover, safe.write_safely

    def discover(*args, **kw):
        found = list(real_discover(*args, **kw))
        for f in found:
            if f.path.name == "vanishes-after-discovery.wav":
                f.path.unlink()
            elif f.path.name == "rewritten-after-discovery.ogg":
                good(tmp_path / "new.ogg", freq=HIGH).replace(f.path)
        yield from found

    def write_safely(path, **kw):
        if path.name == "deleted-before-write.flac":
            path.unlink()
        elif path.name == "rewritten-before-write.mp3":
            good(tmp_path / "new.mp3", freq=HIGH, seed=3).replace(path)
        return real_write(path, **kw)

    monkeypatch.setattr(discover_module, "discover", discover)
    monkeypatch.setattr(safe, "write_safely", write_safely)


def test_every_bad_input_gets_a_clear_status_and_good_files_are_tagged(tmp_path, band_model, races):
    lib, outside = tmp_path / "lib", tmp_path / "outside"
    outside.mkdir()
    expect = build(lib, outside)
    assert len(expect) >= 30
    readable = {
        p: (p.read_bytes(), audio_digest(p))
        for p, (status, _) in expect.items()
        if status == "tagged"
        or p.name in ("readonly.flac", "hard-linked.flac", "in-read-only-folder.mp3", "silence.flac")
    }
    report = tmp_path / "report.json"
    r = CliRunner().invoke(
        app,
        [
            "scan",
            str(lib),
            "--model",
            str(band_model),
            "--workers",
            "0",
            "--write-tags",
            "--state",
            str(tmp_path / "state.sqlite"),
            "--report",
            str(report),
        ],
    )
    (lib / "ro").chmod(0o755)
    assert r.exit_code == 1, r.output
    with open(report, encoding="utf-8", errors="surrogateescape") as f:
        rows = {os.fsencode(row["path"]): row for row in json.load(f)}
    assert set(rows) == {os.fsencode(p) for p in expect}
    for p, (status, detail) in expect.items():
        row = rows[os.fsencode(p)]
        assert row["status"] == status, (p, row)
        if status == "error":
            assert row["error"] and "\n" not in row["error"] and "unexpected" not in row["error"], row
            assert detail.lower() in row["error"].lower(), row
        elif status == "skipped":
            assert detail in row["note"], row
        else:
            st = tags.read(p)
            assert st.model == "band" and len(st.genres) == 1, p
            assert detail is None or st.genres == (detail,), (p, st)
            if "rewritten" not in p.name:
                assert audio_digest(p) == readable[p][1], p
    for name in ("readonly.flac", "hard-linked.flac", "ro/in-read-only-folder.mp3", "silence.flac"):
        assert (lib / name).read_bytes() == readable[lib / name][0], name
    assert os.stat(lib / "hard-linked.flac").st_nlink == 2
    assert (lib / "link-to-outside.ogg").is_symlink() and tags.read(outside / "target.ogg").model == "band"
    assert len(ID3(lib / "huge-id3.mp3").getall("APIC")[0].data) == 8 << 20
    assert not [p for p in lib.rglob("*") if ".mgctag-" in p.name]


def test_hard_links_can_be_broken_on_request(tmp_path, band_model):
    lib = tmp_path / "lib"
    lib.mkdir()
    song = good(lib / "song.flac")
    other = tmp_path / "other-name.flac"
    os.link(song, other)
    before = other.read_bytes()
    r = CliRunner().invoke(
        app,
        [
            "scan",
            str(lib),
            "--model",
            str(band_model),
            "--workers",
            "0",
            "--write-tags",
            "--hardlinks",
            "break",
            "--state",
            str(tmp_path / "state.sqlite"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert tags.read(song).genres == ("Low",) and song.stat().st_nlink == 1
    assert other.read_bytes() == before  # the other name keeps the untouched file


def test_a_write_that_runs_out_of_space_is_an_error_and_the_run_goes_on(tmp_path, band_model):
    """RLIMIT_FSIZE makes writing past a size fail like a full disk (EFBIG instead of ENOSPC)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    big = good(lib / "big.wav", seconds=30, sr=44100, channels=2)  # ~5 MB: its copy cannot be written
    small = good(lib / "small.flac")
    before = big.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, hard))
    try:
        r = CliRunner().invoke(
            app,
            [
                "scan",
                str(lib),
                "--model",
                str(band_model),
                "--workers",
                "0",
                "--write-tags",
                "--state",
                str(tmp_path / "state.sqlite"),
            ],
        )
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert r.exit_code == 1, r.output
    line = next(line for line in r.output.splitlines() if "big.wav" in line)
    assert line.startswith("error") and "file too large" in line
    assert big.read_bytes() == before
    assert tags.read(small).genres == ("Low",)
    assert not [p for p in lib.iterdir() if ".mgctag-" in p.name]
