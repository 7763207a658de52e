"""Two runs on one library: the lock refuses or queues the second; files are never corrupted."""

from __future__ import annotations

import audiogen
import cliproc
import pytest
from typer.testing import CliRunner

from mgctag import tags
from mgctag.cli import app
from mgctag.decode import audio_digest
from mgctag.lock import RunLock
from mgctag.state import State

LOW, HIGH = 150.0, 5000.0


@pytest.fixture
def lib(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    for i, fmt in enumerate(("flac", "mp3", "ogg", "wav", "m4a", "aiff")):
        audiogen.make(root / f"{i}.{fmt}", seconds=1.5, freq=(LOW, HIGH)[i % 2], seed=i)
    return root


def snapshot(root):
    return {p: (p.read_bytes(), audio_digest(p)) for p in sorted(root.iterdir())}


def assert_all_tagged_with_audio_intact(before):
    for p, (_, digest) in before.items():
        st = tags.read(p)
        assert st.genres == (("Low",) if int(p.name[0]) % 2 == 0 else ("High",)) and st.model == "band", p
        assert audio_digest(p) == digest, p
    assert not [p for p in next(iter(before)).parent.iterdir() if ".mgctag-" in p.name]


def scan_args(lib, model, db, *extra):
    return ("scan", lib, "--model", model, "--state", db, "--write-tags", "--workers", 0, *extra)


def test_second_run_exits_3_at_once_while_the_state_is_locked(tmp_path, lib, band_model):
    db = tmp_path / "state.sqlite"
    before = snapshot(lib)
    runner = CliRunner()
    with RunLock.beside(db):
        r = runner.invoke(app, [str(a) for a in scan_args(lib, band_model, db)])
        assert r.exit_code == 3, r.output
        assert "another mgctag run" in r.output and "--wait" in r.output
        assert runner.invoke(app, ["undo", "--state", str(db)]).exit_code == 3
    assert snapshot(lib) == before
    r = runner.invoke(app, [str(a) for a in scan_args(lib, band_model, db)])
    assert r.exit_code == 0, r.output
    assert_all_tagged_with_audio_intact(before)


def test_wait_queues_the_second_run_until_the_first_is_done(tmp_path, lib, band_model):
    db = tmp_path / "state.sqlite"
    before = snapshot(lib)
    lock = RunLock.beside(db)
    lock.acquire()
    try:
        proc = cliproc.start(*scan_args(lib, band_model, db, "--wait"))
        for line in proc.stderr:
            if "waiting for another mgctag run" in line:
                break
        assert snapshot(lib) == before  # it waits and touches nothing
    finally:
        lock.release()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert_all_tagged_with_audio_intact(before)


def test_two_runs_started_together_on_one_state(tmp_path, lib, band_model):
    """With --wait both finish; one tags everything, the other finds nothing left to do."""
    db = tmp_path / "state.sqlite"
    before = snapshot(lib)
    procs = [cliproc.start(*scan_args(lib, band_model, db, "--wait")) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert_all_tagged_with_audio_intact(before)
    state = State(db)
    runs = state.runs()
    state.close()
    assert sorted(r.counts.get("tagged", 0) for r in runs) == [0, len(before)]
    assert sorted(r.counts.get("unchanged", 0) for r in runs) == [0, len(before)]


def test_two_runs_without_a_shared_lock_still_never_corrupt(tmp_path, lib, band_model):
    """Different state databases (so no lock between them) racing over the same files: the
    write guard refuses a file that changed after it was analysed; nothing is half-written."""
    before = snapshot(lib)
    procs = [cliproc.start(*scan_args(lib, band_model, tmp_path / f"state-{i}.sqlite")) for i in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert {p.returncode for p in procs} <= {0, 1}, outputs
    for out, _ in outputs:
        for line in out.splitlines()[1:]:
            status = line.split()[0]
            assert status in ("tagged", "unchanged", "error"), line
            if status == "error":
                assert "changed since it was analysed" in line or "deleted since" in line, line
    assert_all_tagged_with_audio_intact(before)
