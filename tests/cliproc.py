"""The mgctag CLI in a child process, for tests that kill it or run two at once.

A child does not inherit the test-only "test-band" architecture that conftest registers, so it
starts through a two-line bootstrap that imports conftest (registering it) and then runs the
real console entry point, mgctag.cli.main, with the given arguments.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
BOOT = (
    "import sys; sys.path.insert(0, {tests!r}); import conftest; "
    "from mgctag.cli import main; sys.argv[0] = 'mgctag'; main()"
)


def command(*args) -> list[str]:
    return [
        sys.executable,
        "-c",
        BOOT.format(tests=str(TESTS)),
        *(os.fspath(a) if isinstance(a, Path) else str(a) for a in args),
    ]


def start(*args, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """`mgctag ARGS...` running, with text pipes for stdout and stderr (line-buffered output);
    `env`: variables to set besides this process's. Ctrl-C reaches it as it would from a terminal
    even when the tests run in the background (`&` starts them with SIGINT ignored, and an
    ignored signal stays ignored in every child)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    popen.setdefault("preexec_fn", _default_sigint)
    return subprocess.Popen(
        command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="backslashreplace",
        env=env,
        **popen,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = start(*args)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
