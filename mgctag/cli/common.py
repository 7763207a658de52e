"""What every mgctag command shares: the Typer app (help and errors in plain words), consoles, exit codes,
shared options, output lines."""

from __future__ import annotations

import enum
import inspect
import logging
import os
import signal
import typing
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from .. import __version__
from ..result import printable as show_path
from ..taxonomy import COMMON


def _in_words(process_value):
    """`process_value`, but a bad number or choice is named in words ("'--top-k': 0 is not a whole
    number of 1 or more"), not in the validation library's ("Input should be greater than or equal to 1")."""

    def checked(self, ctx, value):
        try:
            return process_value(self, ctx, value)
        except typer.BadParameter as e:
            raise _plain_error(self, value, ctx) or e from None

    return checked


class _Option(TyperOption):
    """Help names what an option takes (N, FILE, auto|cpu|cuda; nothing for a flag), not typer's
    <bool> and <int range> [x>=1]."""

    process_value = _in_words(TyperOption.process_value)

    def display_type_rich(self, ctx):
        return _value_name(self)

    def _get_number_range_help_str(self):
        return None  # the help text says the range in words


class _Argument(TyperArgument):
    """An argument is named in capitals (PATHS...), as in its usage line and errors: not {paths}... <list[Path]>."""

    process_value = _in_words(TyperArgument.process_value)

    @property
    def display_name_raw(self) -> str:
        return (self.metavar or self.name or "").upper()

    def display_type_rich(self, ctx):
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def _plain(params: list) -> list:
    """The command's parameters as _Option and _Argument (help and errors only differ)."""
    for p in params:
        if type(p) is TyperOption:
            p.__class__ = _Option
        elif type(p) is TyperArgument:
            p.__class__ = _Argument
    return params


def _reflow(text: str | None) -> str | None:
    """A docstring's paragraphs as single lines: typer's rich help keeps each line break, so a
    paragraph wrapped at 100 columns in the source came out ragged at 80."""
    if not text:
        return text
    return "\n\n".join(" ".join(par.split()) for par in inspect.cleandoc(text).split("\n\n"))


class _Plain:
    """Plain value names in help, plain words in errors (see _Option), paragraphs reflowed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.help = _reflow(self.help)

    def get_params(self, ctx):
        return _plain(super().get_params(ctx))


class Command(_Plain, TyperCommand):
    """Every mgctag command."""


class Group(_Plain, TyperGroup):
    """mgctag itself and `mgctag models`."""


class App(typer.Typer):
    """A Typer whose commands are `Command`s, so no command can miss the plain help."""

    def __init__(self, **kwargs):
        super().__init__(cls=Group, **kwargs)

    def command(self, *args, **kwargs):
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


def _value_name(p) -> str | None:
    """What an option's value is called in help: its metavar, else from its type; None for a flag."""
    if p.metavar is not None:
        return p.metavar or None
    desc = getattr(p, "type_descriptor", None)
    if p.is_flag or desc is None:
        return None
    if desc.is_choice:
        return "|".join(_choice_names(desc))
    kind = typing.get_args(desc.annotation)[0] if desc.is_list else desc.annotation  # a repeatable option's item
    if desc.is_path or kind is Path:
        return {"file": "FILE", "dir": "DIR"}.get(desc.path_type, "PATH")
    return {int: "N", float: "NUMBER"}.get(kind, "TEXT")


def _choice_names(desc) -> list[str]:
    return [str(c.value if isinstance(c, enum.Enum) else c) for c in desc.choices or ()]


def _takes(p) -> str | None:
    """What a number or a choice parameter takes, in words; None for other kinds."""
    desc = getattr(p, "type_descriptor", None)
    if desc is None:
        return None
    if desc.is_choice:
        return "one of " + ", ".join(_choice_names(desc))
    kind = {int: "a whole number", float: "a number"}.get(desc.annotation)
    if kind is None:
        return None
    lo, hi = (f"{v:g}" if v is not None else None for v in (p.min, p.max))
    if lo is not None and hi is not None:
        return f"{kind} from {lo} to {hi}"
    if lo is not None or hi is not None:
        return f"{kind} of {lo} or more" if lo is not None else f"{kind} of {hi} or less"
    return kind


def _plain_error(p, value, ctx) -> typer.BadParameter | None:
    """The error for a bad `value` of a number or a choice; None for other kinds (typer's words stand)."""
    takes = _takes(p)
    if takes is None or not isinstance(value, (str, int, float)):
        return None
    return typer.BadParameter(f"{value} is not {takes}", ctx=ctx, param=p)


app = App(
    help="Listen to a music library and write genre tags.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as a shell reports a process Ctrl-C ended


class Device(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class VoteMethod(str, enum.Enum):
    mean = "mean"
    majority = "majority"


def _version(value: bool):
    if value:
        out.print(f"mgctag {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
):
    """mgctag finds audio files, listens to segments of each with a neural network, votes
    on a genre and writes it into the file's own tags (or a CSV/JSON report)."""


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)  # one line, even in cron mail
    return typer.Exit(code)


# Help panels: scan's options, grouped by what they decide (the other commands reuse them).
WRITING, MODEL, SELECTION, STATE, OUTPUT, PERFORMANCE, RAY, DATA = (
    "Writing",
    "Model and genres",
    "Selection",
    "State",
    "Output",
    "Performance",
    "Ray cluster",
    "Data",
)

ModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        "-m",
        metavar="NAME",
        show_default=False,
        rich_help_panel=MODEL,
        help="Weights to use: an installed name (see `mgctag models`), an architecture name, a .safetensors file, "
        "or NAME+NAME for an ensemble (the mean of the models' genre probabilities). Default: the most accurate "
        "model installed: the AudioSet tagger (mgctag models install efficientat-mn04), else musicnn-gtzan-mini.",
    ),
]
DeviceOpt = Annotated[
    Device, typer.Option(rich_help_panel=PERFORMANCE, help="Where inference runs: auto picks CUDA when available.")
]
BatchOpt = Annotated[
    Optional[int],
    typer.Option(
        min=1,
        show_default=False,
        rich_help_panel=PERFORMANCE,
        help="Segments per inference batch (default: what runs fastest for the model: 8 for the AudioSet model, 64 for "
        "the others).",
    ),
]
GenreMapOpt = Annotated[
    Optional[Path],
    typer.Option(
        exists=True,
        dir_okay=False,
        rich_help_panel=MODEL,
        help="Rename/merge labels: a text file of 'source: Target' lines ('-' drops).",
    ),
]
GenresOpt = Annotated[
    Optional[str],
    typer.Option(
        "--genres",
        metavar="LIST",
        show_default=False,
        rich_help_panel=MODEL,
        help=f"Which genres may be written: gtzan (GTZAN's ten), common (the {len(COMMON)} genres libraries use: the "
        "AudioSet model's default), all (every genre the model knows), or a comma-separated list. Default: the "
        "model's own.",
    ),
]
WorkersOpt = Annotated[
    Optional[int],
    typer.Option(
        min=0,
        show_default=False,
        rich_help_panel=PERFORMANCE,
        help="Decoding processes (default: one per core; 0 decodes in the main process).",
    ),
]
VoteOpt = Annotated[
    VoteMethod, typer.Option(rich_help_panel=MODEL, help="How segments vote: mean of probabilities, or majority.")
]

STATUS_STYLE = {
    "tagged": "green",
    "would-tag": "cyan",
    "kept": "yellow",
    "unchanged": "dim",
    "skipped": "dim",
    "error": "red",
}


StateOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--state",
        envvar="MGCTAG_STATE",
        dir_okay=False,
        show_default=False,
        rich_help_panel=STATE,
        help="State database (unchanged files are skipped, `undo` reads its journal). Default: state.sqlite in "
        "the user data folder, or $MGCTAG_STATE.",
    ),
]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        rich_help_panel=STATE,
        help="If another run holds the state database, wait for it instead of exiting with status 3.",
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", rich_help_panel=OUTPUT, help="Print only errors and the summary.")
]


class Albums(str, enum.Enum):
    auto = "auto"
    off = "off"


class Hardlinks(str, enum.Enum):
    skip = "skip"
    brk = "break"


def _signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class Lines:
    """Where a command's lines go: per-file lines on stdout (only errors with --quiet), messages
    and the summary on stderr, and all of it, plain and time-stamped, appended to --log-file.

    Rich leaves colour out when stdout is not a terminal; soft wrapping keeps one line per file.
    Library log records (waiting for a lock, stale temporaries removed) arrive as messages.
    While a progress bar is live on the terminal stdout also shows, file lines go through the
    bar's own console (`above`), so they scroll above the bar instead of running into it.
    """

    def __init__(self, *, quiet: bool, log_file: Path | None):
        from ..errors import MgctagError

        self.quiet = quiet
        self.out = out
        try:
            self.log = open(log_file, "a", encoding="utf-8", errors="backslashreplace") if log_file else None
        except OSError as e:
            raise MgctagError(f"cannot open log file {log_file}: {e.strerror}") from None
        self.handler = _LogHandler(self)

    def __enter__(self) -> "Lines":
        logger = logging.getLogger("mgctag")
        logger.addHandler(self.handler)
        logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        logging.getLogger("mgctag").removeHandler(self.handler)
        if self.log:
            self.log.close()
            self.log = None

    def above(self, progress) -> None:
        """Print file lines above `progress` (a rich Progress) when it draws on the terminal stdout is on."""
        if not progress.disable and _same_terminal(out, progress.console):
            self.out = progress.console

    def header(self) -> None:
        if not self.quiet:
            self.out.print(f"[bold]{'status':<10} {'genre':<16} {'conf':>5}  path[/bold]")

    def result(self, res) -> None:
        conf = "" if res.confidence is None else f"{res.confidence:.2f}"
        head = f"{res.status:<10}"
        body = f" {res.genre:<16} {conf:>5}  {show_path(res.path)}"
        tail = f"  {res.error}" if res.error else (f"  ({res.note})" if res.note else "")
        if not self.quiet or res.status == "error":
            style = STATUS_STYLE.get(res.status, "")
            self.out.print(Text.assemble((head, style), body, (tail, "red" if res.error else "dim")), soft_wrap=True)
        self._log(head + body + tail)

    def message(self, text: str, *, error: bool = False) -> None:
        if error or not self.quiet:
            err.print(Text(text), soft_wrap=True)
        self._log(text)

    def summary(self, text: str) -> None:
        err.print(Text(text), soft_wrap=True)
        self._log(text)

    def _log(self, text: str) -> None:
        if self.log:
            self.log.write(f"{datetime.now().astimezone().isoformat(timespec='seconds')} {text}\n")
            self.log.flush()


def _same_terminal(a: Console, b: Console) -> bool:
    """Whether two consoles write to the same terminal (stdout and stderr on one tty, as usual)."""
    if not (a.is_terminal and b.is_terminal):
        return False
    try:
        sa, sb = os.fstat(a.file.fileno()), os.fstat(b.file.fileno())
    except (AttributeError, OSError, ValueError):  # not a real file: a test's or an IDE's stream
        return True
    return (sa.st_dev, sa.st_ino, sa.st_rdev) == (sb.st_dev, sb.st_ino, sb.st_rdev)


class _LogHandler(logging.Handler):
    def __init__(self, lines: Lines):
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.message(record.getMessage(), error=record.levelno >= logging.WARNING)
