"""Ctrl-C and SIGTERM end a run between files, not in the middle of one.

The first signal only sets a flag that the scan polls (`should_stop`): the file being written is
finished (writes are atomic renames anyway), the state is committed and a summary printed. A
second signal raises KeyboardInterrupt at once; even then a write in progress is rolled back
(mgctag.safe removes its temporary copy) and the original stays untouched.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Callable flag: `stop()` is True once a handled signal arrived; `signum` says which."""

    def __init__(self, *, on_first: Callable[[int], None] | None = None):
        self.signum: int | None = None
        self.on_first = on_first

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (130, 143)."""
        return 128 + (self.signum or 0)

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        if self.on_first:
            self.on_first(signum)

    @contextlib.contextmanager
    def handling(self) -> Iterator["StopRequest"]:
        """Install the handlers for the block; the previous ones come back afterwards."""
        if threading.current_thread() is not threading.main_thread():  # signals only reach the main thread
            yield self
            return
        previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
