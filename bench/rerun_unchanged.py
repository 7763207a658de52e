"""How long a re-run over an unchanged, already tagged library takes (the cron case).

Makes N tiny WAV files, tags them once with `scan --write-tags` (state in a temporary folder),
then times a second identical run, which should answer every file from the state database
with one stat each and decode nothing. Uses the hand-set test model from tests/conftest.py, so
the figure is mgctag's own overhead, not a model's.

    .venv/bin/python bench/rerun_unchanged.py --files 10000
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import audiogen  # noqa: E402
import conftest  # noqa: E402  (registers the "test-band" architecture)

from mgctag.scanner import ScanOptions, scan  # noqa: E402


def timed_run(lib: Path, options: ScanOptions) -> tuple[float, Counter]:
    start = time.perf_counter()
    counts = Counter(r.status for r in scan([lib], options))
    return time.perf_counter() - start, counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--per-folder", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lib = root / "lib"
        y = audiogen.tone(0.3, 8000, 150.0)
        for i in range(args.files):
            folder = lib / f"album-{i // args.per_folder:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            audiogen.write_audio(folder / f"{i:05d}.wav", y, 8000)
        model = conftest.make_band_model(root / "band.safetensors")
        options = ScanOptions(model=str(model), write_tags=True, workers=0, state=root / "state.sqlite")
        first, c1 = timed_run(lib, options)
        again, c2 = timed_run(lib, options)
        print(
            f"{date.today()} {platform.node()} {platform.processor() or platform.machine()}, "
            f"python {platform.python_version()}"
        )
        print(f"first run (decode + tag {args.files} files): {first:.1f} s {dict(c1)}")
        print(f"re-run, nothing changed:                  {again:.2f} s {dict(c2)}")


if __name__ == "__main__":
    main()
