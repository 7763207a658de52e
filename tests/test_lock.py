"""The run lock: one holder at a time, a clear refusal, waiting, and no stale lock after a kill."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from mgctag.errors import LockError, MgctagError
from mgctag.lock import RunLock


def test_second_holder_is_refused_with_the_holders_pid(tmp_path):
    import os

    state = tmp_path / "state.sqlite"
    with RunLock.beside(state) as held:
        assert held.path == tmp_path / "state.sqlite.lock"
        with pytest.raises(LockError, match=rf"another mgctag run \(pid {os.getpid()}\).*--wait"):
            RunLock.beside(state).acquire()
    with RunLock.beside(state):  # released: free again
        pass
    assert held.path.exists()  # never deleted, so no run can lock a different file


def test_wait_takes_the_lock_once_it_is_released(tmp_path):
    state = tmp_path / "state.sqlite"
    holder = RunLock.beside(state)
    holder.acquire()
    polled, got = threading.Event(), threading.Event()

    def waiter():
        def should_stop():
            polled.set()  # called on every poll: the waiter is waiting
            return False

        with RunLock.beside(state, wait=True, should_stop=should_stop):
            got.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert polled.wait(30)
    assert not got.is_set()
    holder.release()
    t.join(30)
    assert got.is_set()


def test_waiting_ends_when_told_to_stop(tmp_path):
    state = tmp_path / "state.sqlite"
    with RunLock.beside(state):
        with pytest.raises(LockError, match="stopped while waiting"):
            RunLock.beside(state, wait=True, should_stop=lambda: True).acquire()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    state = tmp_path / "state.sqlite"
    code = (
        "import sys, time; from mgctag.lock import RunLock; "
        f"RunLock.beside({str(state)!r}).acquire(); print('locked', flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockError, match=f"pid {proc.pid}"):
            RunLock.beside(state).acquire()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    with RunLock.beside(state):
        pass


def test_unusable_lock_folder_is_a_setup_error_not_a_busy_lock(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(MgctagError, match="cannot open lock file") as e:
        RunLock.beside(tmp_path / "file" / "state.sqlite").acquire()
    assert not isinstance(e.value, LockError)
