"""Decoding: windows equal the matching slice of a full decode, every format, and bad input
gives a one-line DecodeError rather than a hang, a traceback or a decoder's own exception."""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest
import soundfile as sf
from audiogen import FORMATS, make, tone, write_audio

from mgctag import decode
from mgctag.decode import AudioInfo, audio_digest, load, probe, read_windows
from mgctag.errors import DecodeError

LOSSLESS = ("wav", "flac", "aiff", "alac.m4a")
# Lossy decoders whose state after a seek is not bit-exact with a straight decode: AAC's noise
# substitution draws fresh noise (measured 30-46 dB from the full decode, as far as both are from
# the source), Opus converges within the pre-roll only to ~1e-3 at times (~45 dB)
MIN_SNR = {"m4a": 20.0, "opus": 30.0}
STARTS = [0.0, 0.37, 1.5, 2.99, 4.0, 5.2, 3.3]  # unsorted on purpose; some need a seek, one runs past the end


def fname(fmt: str) -> str:
    return "a." + ("alac.m4a" if fmt == "alac.m4a" else fmt)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 6 s stereo tone in every format, 22.05 kHz (Opus: 48 kHz)."""
    d = tmp_path_factory.mktemp("fmt")
    return {fmt: make(d / fname(fmt), seconds=6.0, channels=2, fmt=fmt) for fmt in FORMATS}


def slice_of(full: np.ndarray, start: float, sr: int, n: int) -> np.ndarray:
    s0 = round(start * sr)
    out = np.zeros(n, np.float32)
    seg = full[s0 : s0 + n]
    out[: len(seg)] = seg
    return out


def snr_db(x: np.ndarray, ref: np.ndarray) -> float:
    err = float(((x - ref) ** 2).sum())
    return np.inf if err == 0 else 10 * np.log10(float((ref**2).sum()) / err)


def peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()])


# --- probe ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_probe_reads_headers(files, fmt):
    info = probe(files[fmt])
    assert info.duration == pytest.approx(6.0, abs=0.06)
    assert info.sample_rate == (48000 if fmt == "opus" else 22050)
    assert info.channels == 2
    assert info.backend in ("soundfile", "pyav")


# --- windows against a full decode ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_windows_equal_full_decode_at_native_rate(files, fmt):
    info = probe(files[fmt])
    sr, n = info.sample_rate, info.sample_rate  # 1 s windows
    full = load(files[fmt])
    w = read_windows(files[fmt], sample_rate=sr, starts=STARTS, n_samples=n, info=info)
    assert w.shape == (len(STARTS), n) and w.dtype == np.float32
    for row, start in zip(w, STARTS):
        ref = slice_of(full, start, sr, n)
        if fmt in LOSSLESS:
            np.testing.assert_array_equal(row, ref)
        else:  # lossy decoders: identical in practice, except AAC
            assert snr_db(row, ref) > MIN_SNR.get(fmt, 30), start
    assert len(full) >= 5.9 * sr  # WMA's decoder drops its first frame
    tail = len(full) - round(5.2 * sr)  # where the audio ends inside the last window
    assert np.any(w[STARTS.index(5.2), :tail]) and not np.any(w[STARTS.index(5.2), tail:])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("rate", [16000, 22050])
def test_windows_equal_resampled_full_decode(files, fmt, rate):
    w = read_windows(files[fmt], sample_rate=rate, starts=STARTS, n_samples=rate)
    full = load(files[fmt], sample_rate=rate)
    assert w.shape == (len(STARTS), rate)
    for row, start in zip(w, STARTS):
        assert snr_db(row, slice_of(full, start, rate, rate)) > (60 if fmt in LOSSLESS else MIN_SNR.get(fmt, 30)), start
        if start <= 4.0:
            assert peak_hz(row, rate) == pytest.approx(440, abs=2)


def test_load_resamples_to_the_asked_rate(files):
    native = load(files["flac"])
    assert native.shape == (6 * 22050,) and native.dtype == np.float32
    y = load(files["flac"], sample_rate=16000)
    assert y.shape == (96000,)
    assert peak_hz(y[:16000], 16000) == pytest.approx(440, abs=2)


def test_seeking_is_sample_accurate_many_random_windows(tmp_path):
    """Random and sorted starts through every seeking path: libsndfile (FLAC, Opus), FFmpeg
    with fine pts (MP3, Vorbis, AAC) and coarse pts (WMA's milliseconds)."""
    rng = np.random.default_rng(0)
    for fmt in ("flac", "opus", "mp3", "ogg", "m4a", "wma"):
        p = make(tmp_path / f"long.{fmt}", seconds=30.0, sr=44100 if fmt != "opus" else 48000, channels=2)
        info = probe(p)
        full = load(p)
        starts = list(rng.uniform(0, 29.5, 25))
        for order in (starts, sorted(starts)):
            w = read_windows(p, sample_rate=info.sample_rate, starts=order, n_samples=2000, info=info)
            for row, start in zip(w, order):
                ref = slice_of(full, start, info.sample_rate, 2000)
                if fmt in MIN_SNR:
                    assert snr_db(row, ref) > MIN_SNR[fmt], start
                else:
                    assert np.abs(row - ref).max() < 1e-4, (fmt, start)


def test_mp3_at_8k_needs_preroll(tmp_path):
    """Low-rate MP3 frames lean on many earlier frames (bit reservoir) after a seek."""
    p = make(tmp_path / "low.mp3", seconds=20.0, sr=8000)
    full = load(p)
    starts = list(np.random.default_rng(1).uniform(3, 19, 30))
    w = read_windows(p, sample_rate=8000, starts=starts, n_samples=1000)
    for row, start in zip(w, starts):
        np.testing.assert_allclose(row, slice_of(full, start, 8000, 1000), atol=1e-5)


def test_mp3_and_vorbis_agree_across_backends(files):
    """The FFmpeg decode sits on the same timeline as libsndfile's (no codec delay shift)."""
    for fmt in ("mp3", "ogg"):
        sf_full, sr = sf.read(files[fmt], dtype="float32", always_2d=True)
        ours = read_windows(files[fmt], sample_rate=sr, starts=[1.0, 3.0], n_samples=4096)
        for row, start in zip(ours, [1.0, 3.0]):
            ref = sf_full[round(start * sr) : round(start * sr) + 4096].mean(axis=1)
            assert np.abs(row - ref).max() < 1e-3, fmt


def test_windows_keep_the_callers_order_and_duplicates(files):
    p = files["wav"]
    a = read_windows(p, sample_rate=22050, starts=[4.0, 0.5, 4.0], n_samples=1000)
    b = read_windows(p, sample_rate=22050, starts=[0.5, 4.0], n_samples=1000)
    np.testing.assert_array_equal(a[[1, 0]], b)
    np.testing.assert_array_equal(a[0], a[2])
    assert read_windows(p, sample_rate=22050, starts=[], n_samples=10).shape == (0, 10)


def test_work_is_bounded_to_the_windows(tmp_path, monkeypatch):
    """Ten short windows of a 2-minute file decode a small part of it, not all of it."""
    counted = {"samples": 0}
    from mgctag.decode import pyav as pyav_backend

    real_mono = pyav_backend._frame_mono

    def counting(frame):
        counted["samples"] += frame.samples
        return real_mono(frame)

    monkeypatch.setattr(pyav_backend, "_frame_mono", counting)
    for fmt in ("m4a", "mp3"):
        p = make(tmp_path / f"long.{fmt}", seconds=120.0, sr=22050)
        counted["samples"] = 0
        read_windows(p, sample_rate=16000, starts=list(np.linspace(0, 117, 10)), n_samples=16000)
        assert 10 * 22050 < counted["samples"] < 0.25 * 120 * 22050, fmt


# --- odd but valid audio ------------------------------------------------------------------------


def test_short_clip_is_padded(tmp_path):
    p = make(tmp_path / "short.wav", seconds=0.05, sr=22050)
    assert probe(p).duration == pytest.approx(0.05, abs=1e-3)
    w = read_windows(p, sample_rate=22050, starts=[0.0], n_samples=22050)
    assert np.abs(w[0, :1100]).max() > 0.1
    assert np.all(w[0, 1103:] == 0)
    assert load(p).shape == (1102,)


def test_silence_decodes_to_zeros(tmp_path):
    """Pure silence is valid audio: decode returns zeros (scan decides what to say about it)."""
    p = write_audio(tmp_path / "silence.flac", np.zeros((44100, 2), np.float32), 22050)
    w = read_windows(p, sample_rate=16000, starts=[0.0, 1.0], n_samples=16000)
    assert w.shape == (2, 16000) and not np.any(w) and np.all(np.isfinite(w))


def test_multichannel_is_the_mean_of_channels(tmp_path):
    sr = 48000
    y = np.stack([tone(2.0, sr, 220.0 * (c + 1), seed=c)[:, 0] for c in range(6)], axis=1)
    p = tmp_path / "six.wav"
    sf.write(p, y, sr, subtype="FLOAT")
    assert probe(p).channels == 6
    w = read_windows(p, sample_rate=sr, starts=[0.5], n_samples=4800)
    np.testing.assert_allclose(w[0], y[24000:28800].mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("sr,subtype,channels", [(96000, "PCM_24", 2), (44100, "FLOAT", 1), (8000, "PCM_16", 1)])
def test_unusual_rates_and_depths(tmp_path, sr, subtype, channels):
    y = tone(3.0, sr, 440.0, channels)
    for ext in ("wav", "flac") if subtype != "FLOAT" else ("wav",):
        p = tmp_path / f"x.{ext}"
        sf.write(p, y, sr, subtype=subtype)
        info = probe(p)
        assert (info.sample_rate, info.channels) == (sr, channels)
        assert info.duration == pytest.approx(3.0)
        native = read_windows(p, sample_rate=sr, starts=[1.0], n_samples=1000)
        atol = 2e-4 if subtype == "PCM_16" else 1e-6  # 16-bit quantisation
        np.testing.assert_allclose(native[0], y[sr : sr + 1000].mean(axis=1), atol=atol)
        for rate in (16000, 22050):
            w = read_windows(p, sample_rate=rate, starts=[0.5, 1.5], n_samples=rate)
            assert w.shape == (2, rate)
            assert peak_hz(w[1], rate) == pytest.approx(440, abs=2)


def test_non_utf8_file_name(tmp_path, files):
    path = os.path.join(os.fsencode(tmp_path), b"\xff\xfe-caf\xe9.flac")
    shutil.copy(files["flac"], path)
    name = os.fsdecode(path)  # how discovery hands it over (surrogate escapes)
    assert probe(name).duration == pytest.approx(6.0)
    assert read_windows(name, sample_rate=16000, starts=[1.0], n_samples=100).shape == (1, 100)
    for fmt in ("mp3", "m4a"):  # through FFmpeg too
        p = os.path.join(os.fsencode(tmp_path), b"\xff" + fmt.encode() + b"." + fmt.encode())
        shutil.copy(files[fmt], p)
        assert probe(os.fsdecode(p)).backend == "pyav"


def test_huge_id3_frame(tmp_path, files):
    from mutagen.id3 import APIC, ID3

    p = tmp_path / "cover.mp3"
    shutil.copy(files["mp3"], p)
    tags = ID3()
    tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="", data=os.urandom(16 * 1024 * 1024)))
    tags.save(p)
    assert os.path.getsize(p) > 16 * 1024 * 1024
    assert probe(p).duration == pytest.approx(6.0, abs=0.05)
    np.testing.assert_array_equal(
        read_windows(p, sample_rate=16000, starts=[1.0, 4.0], n_samples=8000),
        read_windows(files["mp3"], sample_rate=16000, starts=[1.0, 4.0], n_samples=8000),
    )
    assert audio_digest(p) == audio_digest(files["mp3"])


def test_non_utf8_tag_does_not_stop_ffmpeg(tmp_path, files):
    from mutagen.id3 import ID3, TIT2

    p = tmp_path / "badtag.mp3"
    shutil.copy(files["mp3"], p)
    tags = ID3()
    tags.add(TIT2(encoding=3, text=["PLACEHOLDER"]))
    tags.save(p)
    p.write_bytes(p.read_bytes().replace(b"PLACEHOLDER", b"\xff\xfe\xc3(XYZABCD"))  # declared UTF-8, is not
    assert probe(p).backend == "pyav"
    assert audio_digest(p) == audio_digest(files["mp3"])


def test_mpg123_chatter_does_not_reach_stderr(tmp_path, files, capfd):
    """libsndfile's MP3 decoder prints notes to fd 2 on corrupt data; they must not reach a user."""
    p = tmp_path / "cut.mp3"
    p.write_bytes(files["mp3"].read_bytes()[:20000])
    for backend in ("soundfile", "pyav"):
        info = AudioInfo(6.0, 22050, 2, backend)
        read_windows(p, sample_rate=16000, starts=[0.0, 0.5, 3.0], n_samples=16000, info=info)
    os.write(2, b"still-here\n")  # and stderr works afterwards
    assert capfd.readouterr().err == "still-here\n"


# --- audio_digest ---------------------------------------------------------------------------------


def add_genre_tag(path) -> None:
    import mutagen
    from mutagen.id3 import TCON

    f = mutagen.File(path, easy=True)
    if f.tags is None:
        f.add_tags()
    if path.suffix in (".wav", ".aiff"):
        f.tags.add(TCON(encoding=3, text=["Rock"]))
    else:
        f["genre"] = ["Rock"]
    f.save()


@pytest.mark.parametrize("fmt", FORMATS)
def test_audio_digest_ignores_tags_and_sees_audio(files, tmp_path, fmt):
    p = files[fmt]
    tagged = tmp_path / p.name
    shutil.copy(p, tagged)
    add_genre_tag(tagged)
    assert tagged.read_bytes() != p.read_bytes()
    d = audio_digest(p)
    assert len(d) == 64 and int(d, 16) >= 0
    assert audio_digest(tagged) == d
    other = make(tmp_path / ("b." + p.name), seconds=6.0, channels=2, freq=450, fmt=fmt)
    assert audio_digest(other) != d


def test_audio_digest_equal_for_identical_audio_in_different_files(tmp_path):
    """Same PCM in WAV, FLAC and AIFF decodes to the same samples, so the same digest."""
    y = (tone(1.0, 22050, 330.0, 2) * 32767).astype(np.int16)  # integers: no float->PCM rounding choices
    for ext in ("wav", "flac", "aiff"):
        sf.write(tmp_path / f"same.{ext}", y, 22050)
    digests = {audio_digest(tmp_path / f"same.{ext}") for ext in ("wav", "flac", "aiff")}
    assert len(digests) == 1
    y[100, 1] += 1  # one step of one sample of one channel
    sf.write(tmp_path / "changed.flac", y, 22050)
    assert audio_digest(tmp_path / "changed.flac") not in digests


# --- bad input ------------------------------------------------------------------------------------


def expect(reason: str, path, *, also_windows: bool = True) -> str:
    with pytest.raises(DecodeError) as e:
        probe(path)
    msg = str(e.value)
    assert reason in msg and "\n" not in msg and str(path) not in msg, msg
    if also_windows:
        for call in (
            lambda: read_windows(path, sample_rate=16000, starts=[0.0], n_samples=100),
            lambda: load(path),
            lambda: audio_digest(path),
        ):
            with pytest.raises(DecodeError, match=reason.replace("(", r"\(").replace(")", r"\)")):
                call()
    return msg


def test_empty_file(tmp_path):
    (tmp_path / "zero.mp3").write_bytes(b"")
    expect("empty file (0 bytes)", tmp_path / "zero.mp3")


@pytest.mark.parametrize("ext", ["mp3", "flac", "wav", "ogg", "m4a", "wma", "opus", "aiff"])
def test_random_bytes(tmp_path, ext):
    p = tmp_path / f"noise.{ext}"
    p.write_bytes(np.random.default_rng(3).bytes(40000))
    expect("not an audio file", p)


def test_text_named_mp3(tmp_path):
    p = tmp_path / "readme.mp3"
    p.write_text("These are not the droids you are looking for.\n" * 50)
    expect("not an audio file (looks like text)", p)


def test_folder_named_flac(tmp_path):
    (tmp_path / "x.flac").mkdir()
    expect("is a directory", tmp_path / "x.flac")


def test_broken_symlink_and_loop(tmp_path):
    (tmp_path / "gone.mp3").symlink_to(tmp_path / "nothing.mp3")
    expect("broken symlink", tmp_path / "gone.mp3")
    (tmp_path / "loop.mp3").symlink_to(tmp_path / "loop.mp3")
    expect("symlink loop", tmp_path / "loop.mp3")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_not_opened(tmp_path):
    fifo = tmp_path / "pipe.flac"
    os.mkfifo(fifo)
    result = {}

    def attempt():
        try:
            probe(fifo)
        except DecodeError as e:
            result["error"] = str(e)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(20)
    if t.is_alive():  # it blocked in open(): unblock it, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("opened the FIFO")
    assert result["error"] == "not a regular file (FIFO)"


def test_unreadable_file(tmp_path, files, monkeypatch):
    p = tmp_path / "secret.flac"
    shutil.copy(files["flac"], p)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # chmod 000 does not stop root
    expect("permission denied", p)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_file_for_real(tmp_path, files):
    p = tmp_path / "secret.flac"
    shutil.copy(files["flac"], p)
    p.chmod(0)
    expect("permission denied", p)


@pytest.mark.parametrize("fmt", ["mp3", "flac", "ogg", "wav", "wma"])
def test_truncated_file_gives_what_is_there(files, tmp_path, fmt):
    """Cut in half: the header may still claim 6 s; windows in the first part are intact and
    the rest is zeros."""
    p = tmp_path / f"half.{fmt}"
    data = files[fmt].read_bytes()
    p.write_bytes(data[: len(data) // 2])
    full = load(files[fmt])
    info = probe(p)
    assert 1.0 < info.duration <= 6.1
    w = read_windows(p, sample_rate=info.sample_rate, starts=[0.2, 1.0, 5.0], n_samples=2000, info=info)
    for row, start in zip(w[:2], [0.2, 1.0]):
        assert snr_db(row, slice_of(full, start, info.sample_rate, 2000)) > 30
    assert not np.any(w[2])
    assert 1.0 * info.sample_rate < len(load(p)) < 4.0 * info.sample_rate


@pytest.mark.parametrize("fmt", ["mp3", "flac", "ogg", "m4a", "opus"])
def test_truncated_to_its_first_bytes(files, tmp_path, fmt):
    p = tmp_path / f"stub.{fmt}"
    p.write_bytes(files[fmt].read_bytes()[:60])
    msg = expect("", p, also_windows=False)
    assert msg.startswith(("truncated or corrupt", "not an audio file", "no audio")), msg


def test_m4a_cut_before_its_index(files, tmp_path):
    p = tmp_path / "cut.m4a"
    data = files["m4a"].read_bytes()
    p.write_bytes(data[: len(data) // 2])  # PyAV writes the index (moov) last
    expect("truncated or corrupt", p)


def test_header_only_wav(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros((0, 1), np.float32), 22050)
    expect("no audio", p)


def test_no_audio_stream(tmp_path):
    av = pytest.importorskip("av")
    p = tmp_path / "video.mp4"
    with av.open(str(p), "w") as out:
        s = out.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode(None):
            out.mux(packet)
    expect("no audio stream", p)


def test_decoder_errors_are_wrapped(files, monkeypatch):
    """Whatever a decoder raises, callers see DecodeError (or get the other backend's result)."""
    import av

    def boom(*a, **k):
        raise KeyError("surprise")

    monkeypatch.setattr(sf, "SoundFile", boom)
    assert probe(files["flac"]).backend == "pyav"  # libsndfile refused: FFmpeg reads it
    monkeypatch.setattr(av, "open", boom)
    with pytest.raises(DecodeError):
        probe(files["flac"])
    with pytest.raises(DecodeError):
        read_windows(files["m4a"], sample_rate=16000, starts=[0.0], n_samples=10)


def test_bad_arguments_are_not_decode_errors(files):
    with pytest.raises(ValueError):
        read_windows(files["wav"], sample_rate=0, starts=[0.0], n_samples=10)


# --- the codec decides the backend, not the name ----------------------------------------------------


def test_mp3_inside_a_wav_is_read_by_ffmpeg_and_its_write_is_refused_for_libsndfile(tmp_path, capfd):
    """libsndfile misreads MP3-in-WAV once a chunk follows the audio, so mgctag decodes it with
    FFmpeg; and a player that uses libsndfile would misread the tagged file, so it is not written
    (Unwritable: the scan skips it with that note). libsndfile's mpg123 printed "Illegal
    Audio-MPEG-Header" notes for names not ending in .mp3: none may reach the terminal."""
    from mgctag import safe, tags

    p = make(tmp_path / "song.mp3.wav", seconds=1.5, channels=2)
    bare = tmp_path / "bare-mp3-named.wav"
    shutil.copy(make(tmp_path / "x.mp3", seconds=1.5), bare)
    for path in (p, bare):
        assert probe(path).backend == "pyav"
        w = read_windows(path, sample_rate=16000, starts=[0.2, 0.9], n_samples=4000)
        assert peak_hz(w[0], 16000) == pytest.approx(440, abs=5)
    before = p.read_bytes()
    with pytest.raises(tags.Unwritable, match="libsndfile would read the tagged copy differently"):
        safe.write_safely(p, genres=["Rock"], confidences=[0.5], model_id="m")
    assert p.read_bytes() == before
    audio_digest(p)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("case", ["asf-unknown-codec", "asf-decoder-refuses", "adif", "optimfrog"])
def test_audio_in_a_codec_this_build_cannot_decode_is_said_so(tmp_path, case):
    """Not "not an audio file (unrecognised format)": these are audio, in a codec FFmpeg lacks here."""
    if case.startswith("asf"):
        data = make(tmp_path / "a.wma", seconds=1.0, channels=2).read_bytes()
        at = data.find(b"\x61\x01\x02\x00\x22\x56\x00\x00")  # WAVEFORMATEX: wmav2, 2 channels, 22050 Hz
        assert at > 0
        tag = 0x1234 if case == "asf-unknown-codec" else 0x0162  # WMA 9 Pro with WMA 2's codec data
        p = tmp_path / "wma9.wma"
        p.write_bytes(data[:at] + tag.to_bytes(2, "little") + data[at + 2 :])
        name = "" if case == "asf-unknown-codec" else "(wmapro)"
    elif case == "adif":
        p = tmp_path / "adif.aac"
        p.write_bytes(b"ADIF" + bytes(20) + np.random.default_rng(0).bytes(4000))
        name = "(ADIF AAC)"
    else:
        p = tmp_path / "song.ofr"
        p.write_bytes(b"OFR " + bytes(12) + np.random.default_rng(0).bytes(4000))
        name = "(OptimFROG)"
    msg = expect("audio in a codec this build cannot decode", p)
    assert name in msg, msg


# --- windows that vote hold real audio only --------------------------------------------------------


def job_windows(path, *, rate=16000, n=16000, segments=5):
    from mgctag.pool import DecodeJob, WindowSpec

    d = DecodeJob(WindowSpec(rate, n, segments))(path)
    assert not d.error, d.error
    return d.windows[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_voting_window_ends_in_padding(files, fmt):
    """Opus (pre-skip) and WMA (its first frame) decode a little less than their headers say: the
    last window moves back inside the audio instead of ending in zeros."""
    w = job_windows(files[fmt])
    assert len(w) == 5 and not np.any(np.all(w[:, -16:] == 0, axis=1)), fmt


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_truncated_file_votes_only_over_the_audio_it_has(files, tmp_path, fmt):
    """Cut in half, the header still claims more than it holds: every window is a stretch of the
    audio the file really has (matched against the untruncated original), none is padding."""
    p = tmp_path / f"half.{fmt}"
    data = files[fmt].read_bytes()
    p.write_bytes(data[: len(data) // 2])
    original = load(files[fmt], sample_rate=16000)
    assert probe(p).duration > 3.2
    w = job_windows(p)
    assert len(w) >= 2 and not np.any(np.all(w[:, -16:] == 0, axis=1))
    heads = np.lib.stride_tricks.sliding_window_view(original, 64)
    for row in w:
        at = np.nonzero(np.abs(heads - row[1000:1064]).max(axis=1) < 1e-3)[0] - 1000
        assert any(snr_db(row[100:-100], original[s + 100 : s + 16000 - 100]) > 40 for s in at if s >= 0)
        assert at.min() + 16000 <= 0.55 * len(original)  # inside the half that is there


def test_a_clip_shorter_than_a_window_is_repeated_not_padded(tmp_path):
    p = make(tmp_path / "jingle.wav", seconds=0.7, sr=16000)
    clip = load(p)
    w = job_windows(p)
    assert w.shape == (1, 16000)
    np.testing.assert_array_equal(w[0, : len(clip)], clip)
    np.testing.assert_array_equal(w[0, len(clip) :], clip[: 16000 - len(clip)])


def test_a_clip_too_short_to_hear_is_skipped_with_a_note(tmp_path):
    from mgctag.pool import DecodeJob, WindowSpec

    p = make(tmp_path / "click.wav", seconds=0.1, sr=16000)
    with pytest.raises(decode.TooShort, match="too short to analyse: 0.10 s of audio"):
        decode.voting_windows(p, sample_rate=16000, n_samples=16000, n_segments=3)
    d = DecodeJob(WindowSpec(16000, 16000, 3))(p)
    assert d.skipped and d.windows == () and d.error.startswith("too short to analyse") and d.stat
