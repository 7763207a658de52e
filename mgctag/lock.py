"""One run per state database at a time: an exclusive flock on a file beside the database.

The kernel drops a flock when its holder exits, however it exits (SIGKILL included), so a killed
run never leaves a stale lock. The lock file is never deleted: a run that deleted it while
another waited would let the two lock two different files. The holder writes its pid into it,
for the message a second run prints. The descriptor is not inherited by decode workers (Python
opens files non-inheritable), so an orphaned worker cannot keep holding the lock. POSIX only.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path
from typing import Callable

from .errors import LockError, MgctagError

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2  # how often a waiting run tries again (and checks whether it was told to stop)


class RunLock:
    """`with RunLock(path, wait=...):` holds the lock; raises LockError when another run has it
    (MgctagError when the lock file cannot even be opened: a setup problem, not a busy lock)."""

    def __init__(self, path: str | os.PathLike, *, wait: bool = False, should_stop: Callable[[], bool] | None = None):
        self.path, self.wait = Path(path), wait
        self.should_stop = should_stop or (lambda: False)
        self.fd: int | None = None

    @classmethod
    def beside(cls, state_path: str | os.PathLike, **kw) -> "RunLock":
        """The lock of a state database: `<state>.lock` in the same folder."""
        p = Path(state_path)
        return cls(p.with_name(p.name + ".lock"), **kw)

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise MgctagError(f"cannot open lock file {self.path}: {e.strerror}") from None
        try:
            told = False
            while not self._try(fd):
                holder = self.holder()
                if not self.wait:
                    raise LockError(
                        f"another mgctag run{holder} is using this state database ({self.path}); "
                        "try again later or pass --wait"
                    )
                if self.should_stop():
                    raise LockError("stopped while waiting for another mgctag run to finish")
                if not told:
                    log.info("waiting for another mgctag run%s to finish (%s)", holder, self.path)
                    told = True
                time.sleep(POLL_SECONDS)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None

    def holder(self) -> str:
        """' (pid N)' from the lock file, or '' when it cannot be read."""
        try:
            pid = self.path.read_text().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    @staticmethod
    def _try(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
