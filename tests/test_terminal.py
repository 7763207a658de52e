"""In a real terminal: the progress bar and the per-file lines never run into each other.

The CLI runs in a child process whose stdout and stderr are one pseudo-terminal, as in a
user's shell, so rich draws its live bar. The raw bytes are played through a minimal terminal
(carriage return, newline, cursor up, erase line; other escapes ignored) and the final screen
is checked: every file line starts its own line, and no bar is left on the screen.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

import audiogen
import cliproc
import pytest

CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def run_in_terminal(*args, columns: int = 160, limit: float = 180.0) -> tuple[int, str]:
    """(exit status, raw output) of `mgctag ARGS` with stdout and stderr on one pty."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")}
    env.update(TERM="xterm-256color", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cliproc.command(*args), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + limit  # a guard against a hang, not a timed assertion
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(), b"".join(chunks).decode("utf-8", "replace")


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after `raw` (scrollback included)."""
    rows, row, col = [""], 0, 0

    def put(ch: str) -> None:
        nonlocal col
        line = rows[row].ljust(col)
        rows[row] = line[:col] + ch + line[col + 1 :]
        col += 1

    i = 0
    while i < len(raw):
        m = CSI.match(raw, i)
        if m:
            arg, code = m.groups()
            if code == "A":
                row = max(row - int(arg or 1), 0)
            elif code == "K" and arg == "2":
                rows[row] = ""
            i = m.end()
            continue
        ch = raw[i]
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row += 1
            if row == len(rows):
                rows.append("")
        elif ch == "\x1b":  # another escape (e.g. OSC): skip its introducer
            pass
        elif ch >= " ":
            put(ch)
        i += 1
    return [r.rstrip() for r in rows]


def test_screen_emulation_keeps_what_a_terminal_keeps():
    # (the pty turns each "\n" into "\r\n")
    assert screen("scan 0/3\r\x1b[2Kline one\r\nscan 1/3") == ["line one", "scan 1/3"]
    assert screen("scan 0/3line one\r\n\r\x1b[2Kscan 1/3") == ["scan 0/3line one", "scan 1/3"]
    assert screen("a\r\nb\r\n\x1b[1A\x1b[2Kc\x1b[1;31m!\x1b[0m") == ["a", "c!", ""]


@pytest.fixture
def music(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    for i in range(6):
        audiogen.make(root / f"{i:02d} tune.flac", seconds=2.0, freq=200.0 + 900 * i)
    return root


def test_file_lines_scroll_above_the_progress_bar(music, band_model, tmp_path):
    code, raw = run_in_terminal(
        "scan", music, "--model", band_model, "--workers", 0, "--state", tmp_path / "state.sqlite"
    )
    shown = screen(raw)
    assert code == 0, raw
    assert "scanning" in raw, "no progress bar was drawn: the test did not run in a terminal"
    files = [ln for ln in shown if "tune.flac" in ln]
    assert len(files) == 6, shown
    assert all(ln.startswith("would-tag ") for ln in files), shown  # nothing ran into a line
    assert not [ln for ln in shown if "scanning" in ln], shown  # the bar is gone at the end
    assert shown.index(next(ln for ln in shown if ln.startswith("status"))) < shown.index(files[0])


def test_an_unknown_model_prints_no_table_header(music, tmp_path):
    code, raw = run_in_terminal("scan", music, "--model", "no-such-model", "--state", tmp_path / "state.sqlite")
    shown = [ln for ln in screen(raw) if ln]
    assert code == 2, raw
    assert len(shown) == 1 and shown[0].startswith("error: no model named 'no-such-model'"), shown
