"""Time musicnn's own TensorFlow tagger over a list of files (run with the .tfenv python).

This is the reference mgctag's default model was converted from: for every file
`musicnn.extractor.extractor(path, model=...)` loads the whole track with librosa at 16 kHz,
computes its log-mel and tags every 3-second patch. One warm-up file first (TensorFlow's and
librosa's first-call costs), then the whole list is timed. Prints one JSON line.

librosa needs a system FFmpeg for M4A/AAC, which this machine lacks; with --pyav DIR (a folder
holding PyAV, e.g. links to mgctag's own venv's `av` and `av.libs`), a file librosa cannot open
is decoded whole by PyAV and resampled by librosa.resample, as librosa.load itself would.

    .tfenv/bin/python bench/musicnn_tf.py FILE_LIST [--model MSD_musicnn] [--pyav DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _patch_librosa_load(pyav_dir: str) -> list:
    """Give librosa.load a PyAV fallback; returns the list the fallback appends file names to."""
    sys.path.append(pyav_dir)  # after the venv's own packages: its numpy stays first
    import av
    import librosa
    import numpy as np

    original, used = librosa.load, []

    def load(path, *, sr=22050, **kw):
        try:
            return original(path, sr=sr, **kw)
        except Exception:
            with av.open(str(path)) as c:
                stream = c.streams.audio[0]
                native = stream.codec_context.sample_rate
                to_float = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=native)
                planes = [f.to_ndarray() for frame in c.decode(stream) for f in to_float.resample(frame)]
            y = np.concatenate(planes, axis=1).mean(axis=0).astype(np.float32)
            used.append(str(path))
            return (librosa.resample(y, orig_sr=native, target_sr=sr) if sr else y), (sr or native)

    librosa.load = load
    return used


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file_list", help="text file, one audio path per line")
    ap.add_argument("--model", default="MSD_musicnn")
    ap.add_argument("--pyav", default=None, help="folder holding PyAV, for files librosa cannot open")
    args = ap.parse_args()
    paths = [line for line in open(args.file_list, encoding="utf-8").read().splitlines() if line]
    fallback = _patch_librosa_load(args.pyav) if args.pyav else []
    from musicnn.extractor import extractor

    t = time.perf_counter()
    extractor(paths[0], model=args.model)
    warm = time.perf_counter() - t
    errors = []
    start = time.perf_counter()
    for p in paths:
        try:
            extractor(p, model=args.model)
        except Exception as e:  # count it and go on, as mgctag's scan does
            errors.append(f"{p}: {type(e).__name__}: {str(e)[:100]}")
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "files": len(paths),
                "seconds": seconds,
                "warmup_seconds": warm,
                "errors": errors,
                "pyav_fallback": len(set(fallback)),
            }
        )
    )


if __name__ == "__main__":
    main()
