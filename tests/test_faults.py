"""Fault injection: `scan --write-tags` killed at random moments, and stopped by signals.

After every SIGKILL each file is either byte-identical to its original or fully tagged with
identical audio; the state database still opens; undo of the killed run puts every file's values
back; and a re-run completes the job and leaves no temporary file behind.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from pathlib import Path

import audiogen
import cliproc
import pytest

from mgctag import tags
from mgctag.decode import audio_digest
from mgctag.scanner import ScanOptions, scan
from mgctag.state import State, Values
from mgctag.undo import pick_run, undo

LOW, HIGH = 150.0, 5000.0
FORMATS = ("flac", "mp3", "ogg", "wav", "m4a", "opus", "aiff", "wma")
KILLS = 10


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Eight small files, one per format, and their expected genres."""
    root = tmp_path_factory.mktemp("originals")
    files = {}
    for i, fmt in enumerate(FORMATS):
        freq = (LOW, HIGH)[i % 2]
        files[audiogen.make(root / f"{i}.{fmt}", seconds=1.5, freq=freq, seed=i)] = "Low" if freq == LOW else "High"
    return files


def fresh_copy(originals, lib: Path) -> dict[Path, tuple[str, bytes, str]]:
    """lib/ holding copies of the originals: name -> (genre, bytes, audio digest)."""
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir()
    expected = {}
    for p, genre in originals.items():
        shutil.copy(p, lib / p.name)
        expected[lib / p.name] = (genre, p.read_bytes(), audio_digest(p))
    return expected


def check_each_file_original_or_tagged(expected) -> tuple[int, int]:
    n_original = n_tagged = 0
    for p, (genre, data, digest) in expected.items():
        if p.read_bytes() == data:
            n_original += 1
            continue
        st = tags.read(p)
        assert (st.genres, st.model, len(st.confidences)) == ((genre,), "band", 1), p
        assert audio_digest(p) == digest, p
        n_tagged += 1
    return n_original, n_tagged


def temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".mgctag-" in p.name]


def scan_args(lib, band_model, db, *extra):
    return (
        "scan",
        lib,
        "--model",
        band_model,
        "--state",
        db,
        "--write-tags",
        "--workers",
        0,
        "--batch-size",
        3,
        *extra,
    )


def in_process_scan(lib, band_model, db):
    options = ScanOptions(model=str(band_model), state=db, write_tags=True, workers=0, batch_size=3)
    return {r.path: r for r in scan([lib], options)}


def test_sigkill_at_random_moments_never_leaves_a_half_written_file(tmp_path, originals, band_model):
    rng = random.Random(20240611)
    lib = tmp_path / "lib"
    seen_partial = 0
    for attempt in range(KILLS):
        expected = fresh_copy(originals, lib)
        db = tmp_path / f"state-{attempt}.sqlite"
        proc = cliproc.start(*scan_args(lib, band_model, db))
        # kill after k result lines (k = 0: right after the header) plus a little jitter,
        # so kills land before, between and inside writes
        k = rng.randrange(len(expected))
        for line in proc.stdout:
            if k == 0:
                break
            if line.split()[:1] == ["tagged"]:
                k -= 1
        time.sleep(rng.uniform(0, 0.04))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        n_original, n_tagged = check_each_file_original_or_tagged(expected)
        seen_partial += 0 < n_tagged < len(expected)

        if attempt % 2:  # undo of the killed run puts every value back, pending writes included
            state = State(db)
            try:
                if any(r.changed for r in state.runs()):
                    results = list(undo(state, pick_run(state)))
                    assert {r.status for r in results} <= {"restored", "already"}, results
            finally:
                state.close()
            assert all(Values.of(tags.read(p)) == Values() for p in expected)

        results = in_process_scan(lib, band_model, db)  # the re-run completes the job
        assert set(results) == set(expected)
        assert {r.status for r in results.values()} <= {"tagged", "unchanged", "skipped"}, results
        assert check_each_file_original_or_tagged(expected) == (0, len(expected))
        assert temps(lib) == []
        assert {r.status for r in in_process_scan(lib, band_model, db).values()} == {"unchanged"}
    assert seen_partial > 0  # some kills did land in the middle of the run


@pytest.mark.parametrize("signum, group", [(signal.SIGTERM, False), (signal.SIGINT, True)])
def test_signal_finishes_the_current_file_commits_state_and_exits(tmp_path, originals, band_model, signum, group):
    """SIGTERM to the process, or Ctrl-C to the whole process group (the decode worker too)."""
    lib = tmp_path / "lib"
    expected = fresh_copy(originals, lib)
    for i in range(2):  # more files, so the run is still going when the signal comes
        for p, (genre, data, digest) in list(expected.items()):
            copy = lib / f"{i}-{p.name}"
            copy.write_bytes(data)
            expected[copy] = (genre, data, digest)
    db = tmp_path / "state.sqlite"
    proc = cliproc.start(*scan_args(lib, band_model, db, "--workers", 1), start_new_session=True)
    children = []
    for line in proc.stdout:
        if line.startswith("tagged"):
            children = _children(proc.pid)
            if group:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name}" in err and "files left for the next run" in err
    n_original, n_tagged = check_each_file_original_or_tagged(expected)
    assert n_original > 0 and n_tagged > 0
    assert temps(lib) == []
    assert children and _gone(children)  # the decode worker did not outlive the run
    state = State(db)
    (run,) = state.runs()
    assert run.outcome == "interrupted" and run.counts.get("tagged", 0) == n_tagged
    state.close()
    results = in_process_scan(lib, band_model, db)
    assert sum(r.status == "unchanged" for r in results.values()) == n_tagged
    assert check_each_file_original_or_tagged(expected) == (0, len(expected))


def test_decode_workers_exit_when_the_run_is_killed(tmp_path, originals, band_model):
    """SIGKILL cannot be handled: the workers notice their parent is gone and exit."""
    lib = tmp_path / "lib"
    expected = fresh_copy(originals, lib)
    # --albums off: the first file is written while the others are still being decoded
    proc = cliproc.start(*scan_args(lib, band_model, tmp_path / "state.sqlite", "--workers", 2, "--albums", "off"))
    for line in proc.stdout:
        if line.startswith("tagged"):
            break
    children = [c for c in _children(proc.pid) if "spawn_main" in _cmdline(c)]
    proc.kill()
    proc.communicate()
    assert len(children) == 2 and _gone(children)
    check_each_file_original_or_tagged(expected)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def _gone(pids: list[int], patience: float = 5.0) -> bool:
    """Whether every pid has exited (polls: a process that was told to stop may take a moment)."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
        if not alive:
            return True
        time.sleep(0.1)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
