"""Build a benchmark library: ~4-minute tracks in mixed formats, made of gtzan-mini's real clips.

Track i joins `--clips` (default 8) 30-second clips of genre i mod 10, a different choice and
order per track, resampled to 44.1 kHz stereo (as most libraries are; both channels the same)
and encoded in the i-th of eight formats in turn: MP3 at 128, 192 and 320 kbps CBR, FLAC, Ogg
Vorbis, Opus, M4A (AAC 128 kbps) and WAV, written by tests/audiogen.py's writers (MP3 through
libsndfile's LAME at a compression level that gives the bitrate). Files go to
OUT/<genre>/<genre>-NNNN.<ext> with OUT/manifest.csv; tracks already there are kept, so an
interrupted build resumes. Encoding runs in a process pool. 200 tracks take ~2 GB and about
10-20 minutes on 2 cores.

    .venv/bin/python bench/make_library.py /tmp/mgctag-bench/lib --tracks 200
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import audiogen  # noqa: E402

GTZAN_MINI = ROOT.parent / "shared" / "data" / "gtzan-mini"
# label, extension, MP3 bitrate (kbps) or None
FORMATS = (
    ("mp3-128", "mp3", 128),
    ("flac", "flac", None),
    ("mp3-192", "mp3", 192),
    ("ogg", "ogg", None),
    ("mp3-320", "mp3", 320),
    ("opus", "opus", None),
    ("m4a", "m4a", None),
    ("wav", "wav", None),
)
# libsndfile maps a compression level to a CBR bitrate for MP3 (1.2.2: 320 - level * 288, rounded
# down to an MPEG rate); these give exactly 128, 192 and 320 kbps.
MP3_LEVELS = {128: 0.65, 192: 0.4, 320: 0.0}


def gtzan_clips(data: Path) -> dict[str, list[Path]]:
    return {d.name: sorted(d.glob("*.ogg")) for d in sorted(data.iterdir()) if d.is_dir() and any(d.glob("*.ogg"))}


def read_clips(paths: list[Path], sr: int) -> np.ndarray:
    """The clips one after another, mono float32 at `sr`."""
    import soundfile as sf
    import soxr

    parts = []
    for p in paths:
        y, native = sf.read(p, dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        parts.append(soxr.resample(y, native, sr).astype(np.float32) if native != sr else y)
    return np.concatenate(parts)


def encode(path: Path, y: np.ndarray, sr: int, fmt: str) -> Path:
    """Write `y` (samples, channels) as format label `fmt` (one of FORMATS), via a hidden temp name."""
    label, ext, kbps = next(f for f in FORMATS if f[0] == fmt)
    tmp = path.with_name(f".{path.name}")  # hidden: a scan of a half-built library skips it
    if kbps:
        import soundfile as sf

        with sf.SoundFile(
            tmp,
            "w",
            samplerate=sr,
            channels=y.shape[1],
            format="MP3",
            subtype="MPEG_LAYER_III",
            compression_level=MP3_LEVELS[kbps],
            bitrate_mode="CONSTANT",
        ) as f:
            for i in range(0, len(y), audiogen.CHUNK):
                f.write(y[i : i + audiogen.CHUNK])
    else:
        audiogen.write_audio(tmp, y, sr, fmt=ext)
    os.replace(tmp, path)
    return path


def build_track(path: Path, clips: list[Path], fmt: str, sr: int, channels: int, seconds: float | None) -> float:
    """Encode one track from `clips`; returns its duration in seconds."""
    y = read_clips(clips, sr)
    if seconds:
        y = y[: int(seconds * sr)]
    encode(path, np.repeat(y[:, None], channels, axis=1), sr, fmt)
    return len(y) / sr


def plan(data: Path, n_tracks: int, n_clips: int) -> list[tuple[str, str, list[Path]]]:
    """(name, format label, clips) per track: genre and format rotate, clips are a seeded choice."""
    by_genre = gtzan_clips(data)
    genres = list(by_genre)
    out = []
    for i in range(n_tracks):
        genre = genres[i % len(genres)]
        pool = by_genre[genre]
        rng = np.random.default_rng(i)
        chosen = [pool[j] for j in rng.permutation(len(pool))[: min(n_clips, len(pool))]]
        out.append((f"{genre}/{genre}-{i:04d}", FORMATS[i % len(FORMATS)][0], chosen))
    return out


def extension(fmt: str) -> str:
    return next(f[1] for f in FORMATS if f[0] == fmt)


def make_short_files(
    out: Path, seconds: float, *, data: Path = GTZAN_MINI, sr: int = 44100, channels: int = 2
) -> list[Path]:
    """One `seconds`-long file per format (for large link-tree runs), from the first clips of each genre."""
    out.mkdir(parents=True, exist_ok=True)
    clips = [v[0] for v in gtzan_clips(data).values()]
    files = []
    for i, (fmt, ext, _) in enumerate(FORMATS):
        path = out / f"short-{i}-{fmt}.{ext}"
        if not path.exists():
            build_track(path, [clips[i % len(clips)], clips[(i + 1) % len(clips)]], fmt, sr, channels, seconds)
        files.append(path)
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="library folder to create (or complete)")
    ap.add_argument("--tracks", type=int, default=200)
    ap.add_argument("--clips", type=int, default=8, help="30-s clips per track (8: about 4 minutes)")
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--channels", type=int, default=2, choices=(1, 2))
    ap.add_argument("--data", type=Path, default=GTZAN_MINI, help="genre folders of clips")
    ap.add_argument("--jobs", type=int, default=os.cpu_count(), help="encoding processes")
    args = ap.parse_args()
    if not args.data.is_dir() or not gtzan_clips(args.data):
        print(f"make_library: skipped: no gtzan-mini clips at {args.data} (needs ../shared/data)", file=sys.stderr)
        return 0
    tracks = plan(args.data, args.tracks, args.clips)
    rows, todo = [], []
    for name, fmt, chosen in tracks:
        path = args.out / f"{name}.{extension(fmt)}"
        rows.append([str(path.relative_to(args.out)), name.split("/")[0], fmt, " ".join(c.name for c in chosen)])
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            todo.append((path, chosen, fmt))
    print(
        f"{len(tracks)} tracks in {args.out}: {len(tracks) - len(todo)} already there, encoding {len(todo)} "
        f"with {args.jobs} processes ({args.sample_rate} Hz, {args.channels} ch)",
        flush=True,
    )
    start = time.perf_counter()
    total = 0.0
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(build_track, p, c, f, args.sample_rate, args.channels, None): (p, f) for p, c, f in todo}
        for k, fut in enumerate(as_completed(futures), 1):
            p, f = futures[fut]
            total += fut.result()
            print(f"[{k}/{len(todo)}] {p.relative_to(args.out)} ({f}) {time.perf_counter() - start:.0f} s", flush=True)
    with open(args.out / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "genre", "format", "clips"], *rows])
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(
        f"done: {len(tracks)} tracks, {size / 1e9:.2f} GB in {args.out}; encoded {total / 3600:.1f} h of audio "
        f"in {time.perf_counter() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
