"""`scan --ray`: the same scan on a small local Ray cluster, one per module (raycluster.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import audiogen
import cliproc
import numpy as np
import pytest
import raycluster  # first: it keeps Ray on loopback, which must be set before ray is imported
from conftest import make_band_model
from test_scan import LOW, make_library
from typer.testing import CliRunner

from mgctag import ray_runner, tags
from mgctag.cli import app
from mgctag.decode import audio_digest
from mgctag.errors import MgctagError
from mgctag.genremap import GenreMap
from mgctag.pool import DecodeJob, WindowSpec
from mgctag.scanner import ScanOptions, scan
from mgctag.state import State, Values
from mgctag.undo import pick_run, undo

KILL_WAIT_S = 120.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two CPUs: one model actor, one decoding task at a time; its address and the gate folder of
    the test-band-gated models this process runs."""
    import ray

    gate = tmp_path_factory.mktemp("gate")
    address = raycluster.start(num_cpus=2, gate=gate)
    yield SimpleNamespace(address=address, gate=gate)
    ray.shutdown()


def library(root: Path) -> None:
    """Good files in several formats, one with a user's genre, and broken ones."""
    root.mkdir()
    make_library(root, formats=("mp3", "flac", "ogg", "m4a", "wav"))
    users = audiogen.make(root / "users.flac", seconds=2.5, freq=LOW)
    tags.write(users, genres=["Polka"], confidences=None, model_id=None)
    (root / "empty.mp3").write_bytes(b"")
    (root / "noise.flac").write_bytes(b"\x00\x01garbage" * 100)
    (root / "notes.ogg").write_text("this is text, not audio")
    trunc = audiogen.make(root / "trunc.flac", seconds=2.5, freq=LOW)
    trunc.write_bytes(trunc.read_bytes()[:200])


def by_name(results) -> dict:
    return {r.path.name: r for r in results}


def scan_lib(root: Path, model: Path, db: Path, **kw) -> dict:
    return by_name(scan([root], ScanOptions(model=str(model), state=db, write_tags=True, **kw)))


def same_answers(local: dict, remote: dict) -> None:
    assert set(local) == set(remote)
    for name, a in local.items():
        b = remote[name]
        assert (b.status, b.error, b.note, b.existing_genre, b.model, b.album, b.decided_by) == (
            a.status,
            a.error,
            a.note,
            a.existing_genre,
            a.model,
            a.album,
            a.decided_by,
        ), name
        assert [g for g, _ in b.genres] == [g for g, _ in a.genres], name
        assert b.windows == a.windows, name
        np.testing.assert_allclose(
            np.array([p for _, p in b.genres], dtype=float),  # None (kept, unnamed): nan
            np.array([p for _, p in a.genres], dtype=float),
            atol=1e-5,
            err_msg=name,
        )


def test_ray_gives_the_local_answers_writes_the_same_tags_and_undo_works(tmp_path, band_model, cluster):
    here, there = tmp_path / "here", tmp_path / "there"
    library(here)
    shutil.copytree(here, there)
    before = {p.name: (Values.of(tags.read(p)), audio_digest(p)) for p in there.iterdir() if p.stat().st_size > 1000}
    local = scan_lib(here, band_model, tmp_path / "here.sqlite", workers=0)
    remote = scan_lib(there, band_model, tmp_path / "there.sqlite", ray="local", batch_size=4)
    same_answers(local, remote)
    statuses = {r.status for r in remote.values()}
    assert {"tagged", "kept", "error"} <= statuses
    for name, r in remote.items():
        if r.status != "error":
            assert tags.read(there / name) == tags.read(here / name), name
    state = State(tmp_path / "there.sqlite")
    try:
        undone = {r.path.name: r.status for r in undo(state, pick_run(state))}
    finally:
        state.close()
    assert undone == {name: "restored" for name, r in remote.items() if r.status == "tagged"}
    for name, (values, digest) in before.items():
        assert Values.of(tags.read(there / name)) == values and audio_digest(there / name) == digest, name


def test_an_ensemble_and_the_genre_options_on_ray_give_the_local_answers(tmp_path, band_model, cluster):
    """The actors build the driver's Analyser from the weights and options it sends: two models,
    a genre map (merging by sum) and the segment count."""
    root = tmp_path / "lib"
    root.mkdir()
    make_library(root, formats=("mp3", "flac", "wav"))
    other = make_band_model(tmp_path / "other.safetensors", labels=("Low", "High", "Mid"), low=(0.02, -0.03, 0.01))
    gmap = GenreMap.parse("Mid: High")
    opts = dict(model=f"{band_model}+{other}", genre_map=gmap, segments=2, top_k=2)
    local = by_name(scan([root], ScanOptions(workers=0, **opts)))
    remote = by_name(scan([root], ScanOptions(ray="local", batch_size=3, **opts)))
    same_answers(local, remote)
    assert {r.status for r in remote.values()} == {"would-tag"} and all(len(r.genres) == 2 for r in remote.values())


def test_listening_until_sure_on_ray_hears_what_a_local_scan_hears(tmp_path, cluster, monkeypatch):
    """`--segments auto` runs on Ray in passes, a round each, tested on the driver as locally; the
    decoding tasks take each file's witness, so the driver decodes no file again to write it."""
    from test_sure import long_track

    from mgctag import decode

    model = make_band_model(tmp_path / "band4.safetensors", defaults={"segments": 4})  # at most 3 passes
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    for i, parts in enumerate([[(12.0, LOW)], [(6.0, LOW), (6.0, 5000.0)], [(4.0, 5000.0), (8.0, LOW)]]):
        long_track(here / f"{i}.flac", parts)
    shutil.copytree(here, there)
    local = scan_lib(here, model, tmp_path / "here.sqlite", workers=0, albums="off")
    taken = []
    real = decode.witness
    monkeypatch.setattr(decode, "witness", lambda path: taken.append(path) or real(path))
    remote = scan_lib(there, model, tmp_path / "there.sqlite", ray="local", albums="off", batch_size=4)
    same_answers(local, remote)
    assert {r.status for r in remote.values()} == {"tagged"}
    assert remote["0.flac"].windows == 2 and max(r.windows for r in remote.values()) > 2
    assert taken == []


def test_cuda_on_a_cluster_without_gpus_is_a_clear_error(tmp_path, band_model, cluster):
    make_library(tmp_path, formats=("wav",))
    with pytest.raises(MgctagError, match="the Ray cluster has no GPU"):
        list(scan([tmp_path], ScanOptions(model=str(band_model), ray="local", device="cuda")))


def test_a_killed_model_worker_is_restarted_and_every_file_is_right(tmp_path, cluster):
    """The actor is killed in the middle of a batch (held there by test-band-gated's gate); Ray
    restarts it and retries the batch."""
    gate = cluster.gate
    root = tmp_path / "lib"
    root.mkdir()
    expected = make_library(root, formats=("mp3", "flac", "wav", "ogg", "m4a", "aiff"))
    gated = make_band_model(tmp_path / "gated" / "band.safetensors", arch="test-band-gated")
    killed: list[int] = []

    def kill_the_waiting_worker() -> None:
        deadline = time.monotonic() + KILL_WAIT_S
        while time.monotonic() < deadline:
            waiting = sorted(gate.glob("waiting-*"))
            if waiting:
                pid = int(waiting[0].name.split("-")[1])
                assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::")  # a Ray worker process
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.05)
        (gate / "open").touch()

    killer = threading.Thread(target=kill_the_waiting_worker)
    killer.start()
    try:
        results = {r.path: r for r in scan([root], ScanOptions(model=str(gated), write_tags=True, ray="local"))}
    finally:
        killer.join()
    assert killed and not Path(f"/proc/{killed[0]}").exists()
    assert set(results) == set(expected)
    for p, genre in expected.items():
        assert (results[p].status, results[p].genre) == ("tagged", genre), results[p]
        assert tags.read(p).genres == (genre,)


def test_a_stop_ends_the_ray_job_between_files_and_saves_the_state(tmp_path, band_model, cluster):
    root = tmp_path / "lib"
    root.mkdir()
    expected = make_library(root, formats=("mp3", "flac", "wav", "ogg", "m4a", "aiff") * 2)
    db = tmp_path / "state.sqlite"
    seen = []
    for r in scan(
        [root],
        ScanOptions(model=str(band_model), write_tags=True, state=db, ray="local", batch_size=3),
        should_stop=lambda: len(seen) >= 1,
    ):
        seen.append(r)
    assert len(seen) == 1 and seen[0].status == "tagged"
    for p, genre in expected.items():
        assert tags.read(p).genres == ((genre,) if p == seen[0].path else ())
    state = State(db)
    (run,) = state.runs()
    state.close()
    assert run.outcome == "interrupted" and run.counts == {"tagged": 1}
    again = scan_lib(root, band_model, db, ray="local")  # the cluster is free for the next run
    assert sorted(r.status for r in again.values()) == ["tagged"] * (len(expected) - 1) + ["unchanged"]


def test_a_node_that_cannot_read_the_files_stops_the_run_before_it_starts(tmp_path, cluster, monkeypatch):
    """The driver believes it can read a path that no node has: the probe says which node and why."""
    missing = tmp_path / "only-on-the-driver.flac"
    monkeypatch.setattr(ray_runner.os, "access", lambda path, mode: True)
    with pytest.raises(MgctagError, match="cannot read .*only-on-the-driver.flac.*same path on every node"):
        ray_runner.check_nodes([missing])


def test_a_file_missing_on_a_worker_says_the_files_must_be_shared(tmp_path, cluster):
    job = DecodeJob(WindowSpec(16000, 16000, 1))
    out = ray_runner._decode(
        {"i": np.array([0]), "path": np.array([os.fsencode(tmp_path / "gone.mp3")], dtype=object)}, job
    )
    (d,) = out["decoded"]
    assert d.error.startswith(job(tmp_path / "gone.mp3").error) and "same path on every node" in d.error


def test_cli_ray_flag_and_options(tmp_path, band_model, cluster):
    root = tmp_path / "lib"
    root.mkdir()
    expected = make_library(root, formats=("mp3", "flac"))
    runner = CliRunner()
    res = runner.invoke(
        app, ["scan", str(root), "--model", str(band_model), "--ray", "--ray-actors", "1", "--batch-size", "2"]
    )
    assert res.exit_code == 0, res.output
    for p, genre in expected.items():
        assert any(
            line.startswith("would-tag") and genre in line and p.name in line for line in res.stdout.splitlines()
        )
    assert "Ray: 2 files decoded on 1 node" in res.stderr
    res = runner.invoke(app, ["scan", str(root), "--model", str(band_model), "--ray", "--ray-actors", "2", "--rescan"])
    assert res.exit_code == 2 and "leaves no CPU to decode with" in res.stderr


def test_ray_is_imported_only_when_asked():
    code = "import sys, mgctag.cli, mgctag.cli.scan, mgctag.scanner; assert 'ray' not in sys.modules, 'ray imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_ray_options_need_ray(tmp_path, band_model):
    (tmp_path / "a.wav").write_bytes(b"")
    res = CliRunner().invoke(app, ["scan", str(tmp_path), "--model", str(band_model), "--ray-actors", "2"])
    assert res.exit_code == 2 and "--ray-actors needs --ray" in res.stderr


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"]
)
def test_a_signal_or_a_lost_driver_ends_the_ray_job(tmp_path, cluster, signum):
    """The CLI in a child process joins the cluster (--ray-address); Ctrl-C (SIGINT to its process
    group), SIGTERM or SIGKILL comes while the model actor is in the middle of a batch. The first
    two stop the run and save the state (ray.init puts its own SIGTERM handler in, which aborts:
    the runner puts mgctag's back); after any of them the job's actor is gone and every file is
    original or tagged."""
    gate = tmp_path / "gate"
    gate.mkdir()
    root = tmp_path / "lib"
    root.mkdir()
    expected = make_library(root, formats=("mp3", "flac", "wav", "ogg", "m4a", "aiff") * 2)
    gated = make_band_model(tmp_path / "m" / "band.safetensors", arch="test-band-gated")
    db = tmp_path / "state.sqlite"
    proc = cliproc.start(
        "scan",
        root,
        "--model",
        gated,
        "--write-tags",
        "--state",
        db,
        "--ray-address",
        cluster.address,
        "--batch-size",
        "3",
        env=raycluster.job_env(gate),
        start_new_session=True,
    )
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr))
    reader.start()
    try:
        assert until(lambda: list(gate.glob("waiting-*")) or proc.poll() is not None) and proc.poll() is None, err
        (waiting,) = gate.glob("waiting-*")
        os.killpg(proc.pid, signum)
        if signum != signal.SIGKILL:
            assert until(lambda: any("stopping after the current file" in line for line in err)), err
        (gate / "open").touch()  # the batch the driver waits on comes back after the signal was taken
        out = proc.stdout.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        reader.join()
    err_text = "".join(err)
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL, err_text
    else:
        assert proc.returncode == 128 + signum, err_text
        assert f"stopped by {signal.Signals(signum).name}" in err_text and "files left for the next run" in err_text
        state = State(db)
        (run,) = state.runs()
        state.close()
        assert run.outcome == "interrupted" and run.counts.get("tagged", 0) == out.count("tagged")
    assert not [p for p in root.iterdir() if p not in expected]  # no temporary copy left behind
    for p, genre in expected.items():
        assert tags.read(p).genres in ((), (genre,)), p
    actor = Path("/proc", waiting.name.split("-")[1])
    assert until(lambda: not actor.exists()), "the job's model actor outlived its driver"


def until(condition, timeout: float = KILL_WAIT_S) -> bool:
    """Poll `condition` until it holds or `timeout` passes; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_albums_are_decided_on_the_driver_as_locally(tmp_path, band_model, cluster):
    """Results come back from Ray in any order; each folder's albums are decided once it is all back."""
    from test_albums import LOW, WEAK_HIGH, track

    root = tmp_path / "lib"
    for n, album in enumerate(("A", "B")):
        for i, mix in enumerate((LOW, LOW, WEAK_HIGH)):
            track(
                root / album / ("CD1" if i < 2 else "CD2") / f"{album}{i}.flac",
                mix,
                album=album,
                artist="Ann",
                seed=10 * n + i,
            )
    track(root / "misc" / "x.flac", WEAK_HIGH, seed=99)
    local = by_name(scan([root], ScanOptions(model=str(band_model), workers=0)))
    remote = by_name(scan([root], ScanOptions(model=str(band_model), ray="local", batch_size=2)))
    same_answers(local, remote)
    assert {(r.album, r.decided_by) for r in remote.values()} == {
        ("Ann - A", "album"),
        ("Ann - B", "album"),
        ("", "track"),
    }
    assert {r.genre for n, r in remote.items() if n != "x.flac"} == {"Low"} and remote["x.flac"].genre == "High"
