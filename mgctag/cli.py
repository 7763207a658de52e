"""The `mgctag` command: parses options, calls the library, prints. No pipeline logic here."""
from __future__ import annotations

import contextlib
import enum
import logging
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__

app = typer.Typer(help="Listen to a music library and write genre tags.", no_args_is_help=True,
                  rich_markup_mode="rich", context_settings={"help_option_names": ["-h", "--help"]})
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3


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
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
):
    """mgctag finds audio files, listens to segments of each with a neural network, votes
    on a genre and writes it into the file's own tags (or a CSV/JSON report)."""


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)  # one line, even in cron mail
    return typer.Exit(code)


def show_path(p: Path) -> str:
    """A printable form of any file name, including names that are not valid UTF-8."""
    return os.fsencode(p).decode("utf-8", "backslashreplace")  # undecodable bytes show as \xNN


ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Weights to use: an installed name (see `mgctag models`), an architecture name, "
                          "or a .safetensors file. Default: the shipped default model.")]
DeviceOpt = Annotated[Device, typer.Option(help="Where inference runs: auto picks CUDA when available.")]
BatchOpt = Annotated[int, typer.Option(min=1, help="Segments per inference batch.")]
GenreMapOpt = Annotated[Optional[Path], typer.Option(
    exists=True, dir_okay=False, help="Rename/merge labels: a text file of 'source: Target' lines ('-' drops).")]
VoteOpt = Annotated[VoteMethod, typer.Option(help="How segments vote: mean of probabilities, or majority.")]

STATUS_STYLE = {"tagged": "green", "would-tag": "cyan", "kept": "yellow", "unchanged": "dim",
                "skipped": "dim", "error": "red"}


StateOpt = Annotated[Optional[Path], typer.Option(
    "--state", envvar="MGCTAG_STATE", dir_okay=False, show_default=False,
    help="State database (unchanged files are skipped, `undo` reads its journal). Default: state.sqlite in "
         "the user data folder, or $MGCTAG_STATE.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="If another run holds the state database, wait for it "
                                       "instead of exiting with status 3.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and the summary.")]


class Hardlinks(str, enum.Enum):
    skip = "skip"
    brk = "break"


@app.command()
def scan(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="Files or folders to scan (recursively).")],
    write_tags: Annotated[bool, typer.Option("--write-tags", help="Write the genres into the files. "
                                             "Without it, scan only reports (a dry run).")] = False,
    model: ModelOpt = None,
    top_k: Annotated[int, typer.Option(min=1, help="How many genres to write per file, best first.")] = 1,
    min_confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="Don't write genres below this "
                                                  "confidence (0-1); such files are reported as skipped.")] = 0.0,
    keep_existing: Annotated[bool, typer.Option("--keep-existing/--overwrite", help="Keep a genre that "
                             "mgctag did not write, or overwrite it. Genres mgctag wrote are always updated.")] = True,
    genre_map: GenreMapOpt = None,
    report: Annotated[Optional[Path], typer.Option(help="Also write a report: out.csv or out.json "
                                                   "(one row per file).")] = None,
    device: DeviceOpt = Device.auto,
    batch_size: BatchOpt = 64,
    workers: Annotated[Optional[int], typer.Option(min=0, help="Decoding processes (default: one per core; "
                                                   "0 decodes in the main process).")] = None,
    segments: Annotated[Optional[int], typer.Option(min=1, help="Segments per track to vote over "
                                                    "(default: the model's).")] = None,
    vote: VoteOpt = VoteMethod.mean,
    include_hidden: Annotated[bool, typer.Option("--include-hidden", help="Also scan hidden files and "
                                                 "folders.")] = False,
    follow_symlinks: Annotated[bool, typer.Option("--follow-symlinks", help="Follow symlinked folders "
                                                  "(loops are detected either way).")] = False,
    id3v23: Annotated[bool, typer.Option("--id3v23", help="Write ID3v2.3 (for old players) instead of "
                                         "v2.4 in MP3, WAV and AIFF.")] = False,
    keep_mtime: Annotated[bool, typer.Option("--keep-mtime", help="Keep files' modification times when "
                                             "writing tags.")] = False,
    hardlinks: Annotated[Hardlinks, typer.Option(help="A hard-linked file: skip it (the link stays intact), or "
                                                 "break the link and write this name's own copy.")] = Hardlinks.skip,
    state: StateOpt = None,
    rescan: Annotated[bool, typer.Option("--rescan", help="Analyse every file again, even those unchanged "
                                         "since the last run.")] = False,
    wait: WaitOpt = False,
    quiet: QuietOpt = False,
    log_file: Annotated[Optional[Path], typer.Option(dir_okay=False, help="Also append plain-text per-file "
                                                     "lines and the summary to this file.")] = None,
):
    """Predict the genre of every audio file under PATHS; print it, and write it with --write-tags.

    Exit status: 0 every file was handled, 1 some files failed (each has a reason), 2 usage error,
    3 another run holds the state database, 130/143 stopped by Ctrl-C/SIGTERM (state saved).
    """
    from .errors import LockError, MgctagError
    from .genremap import GenreMap
    from .interrupt import StopRequest
    from .report import Report
    from .scan import ScanOptions, scan as run_scan
    from .state import default_path

    try:
        gmap = GenreMap.load(genre_map) if genre_map else GenreMap()
        options = ScanOptions(model=model, write_tags=write_tags, top_k=top_k, min_confidence=min_confidence,
                              keep_existing=keep_existing, genre_map=gmap, device=device.value,
                              batch_size=batch_size, workers=workers, segments=segments, vote=vote.value,
                              include_hidden=include_hidden, follow_symlinks=follow_symlinks, id3v23=id3v23,
                              keep_mtime=keep_mtime, hardlinks=hardlinks.value, state=state or default_path(),
                              rescan=rescan, wait=wait)
        rep = Report(report) if report else None
        lines = Lines(quiet=quiet, log_file=log_file)
    except MgctagError as e:
        raise fail(str(e))

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    counts: dict[str, int] = {}
    found, run_id = [0], [None]
    started = time.monotonic()
    stop = StopRequest(on_first=lambda s: lines.message(f"{_signal_name(s)}: stopping after the current file "
                                                        "(again to stop at once)"))
    progress = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err, transient=True, disable=quiet or not err.is_terminal)
    code = EXIT_OK
    with lines, stop.handling():
        try:
            with progress, (rep or contextlib.nullcontext()) as r:
                task = progress.add_task("scan", total=None)

                def on_found(n: int) -> None:
                    found[0] = n
                    progress.update(task, total=n)

                results = run_scan(paths, options, on_found=on_found, should_stop=stop,
                                   on_run=lambda i: run_id.__setitem__(0, i))
                lines.header()
                for res in results:
                    counts[res.status] = counts.get(res.status, 0) + 1
                    if r:
                        r.write(res)
                    lines.result(res)
                    progress.advance(task)
        except KeyboardInterrupt:
            stop.signum = stop.signum or signal.SIGINT
        except LockError as e:
            if not stop():
                lines.close()
                raise fail(str(e), EXIT_LOCKED)
        except MgctagError as e:
            lines.close()
            raise fail(str(e))
        seen = sum(counts.values())
        summary = f"{seen} files seen: " + ", ".join(
            f"{counts.get(s, 0)} {s}" for s in ("tagged", "would-tag", "kept", "unchanged", "skipped")) + \
            f", {counts.get('error', 0)} errors in {time.monotonic() - started:.1f} s"
        if run_id[0] is not None:
            summary += f" (run {run_id[0]})"
        if stop():
            summary += f"; stopped by {_signal_name(stop.signum)}, {max(found[0] - seen, 0)} files left for the next run"
            code = stop.exit_code
        elif counts.get("error"):
            code = EXIT_SOME_FAILED
        lines.summary(summary)
    raise typer.Exit(code)


def _signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class Lines:
    """Where a command's lines go: per-file lines on stdout (only errors with --quiet), messages
    and the summary on stderr, and all of it, plain and time-stamped, appended to --log-file.

    Rich leaves colour out when stdout is not a terminal; soft wrapping keeps one line per file.
    Library log records (waiting for a lock, stale temporaries removed) arrive as messages.
    """

    def __init__(self, *, quiet: bool, log_file: Path | None):
        from .errors import MgctagError

        self.quiet = quiet
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

    def header(self) -> None:
        if not self.quiet:
            out.print(f"[bold]{'status':<10} {'genre':<16} {'conf':>5}  path[/bold]")

    def result(self, res) -> None:
        conf = "" if res.confidence is None else f"{res.confidence:.2f}"
        head = f"{res.status:<10}"
        body = f" {res.genre:<16} {conf:>5}  {show_path(res.path)}"
        tail = f"  {res.error}" if res.error else (f"  ({res.note})" if res.note else "")
        if not self.quiet or res.status == "error":
            style = STATUS_STYLE.get(res.status, "")
            out.print(Text.assemble((head, style), body, (tail, "red" if res.error else "dim")), soft_wrap=True)
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


class _LogHandler(logging.Handler):
    def __init__(self, lines: Lines):
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.message(record.getMessage(), error=record.levelno >= logging.WARNING)


@app.command()
def undo(
    run: Annotated[Optional[int], typer.Option("--run", help="The run to undo (see --list). Default: the "
                                               "newest run with changes left to undo.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Also restore files whose genre changed since that run "
                                        "(by a tag editor or a later run).")] = False,
    list_runs: Annotated[bool, typer.Option("--list", help="List the runs and how many changes each has "
                                            "left to undo, then exit.")] = False,
    state: StateOpt = None,
    wait: WaitOpt = False,
    quiet: QuietOpt = False,
):
    """Put back the genre values a scan replaced (and remove the mgctag fields it added).

    Only files that still hold what that run wrote are restored; others are refused unless --force.
    Exit status: 0 done, 1 some files refused or failed, 2 usage error (no such run), 3 another
    run holds the state database.
    """
    from .errors import LockError, MgctagError
    from .state import default_path, opened
    from .undo import pick_run, undo as run_undo

    counts: dict[str, int] = {}
    lines = Lines(quiet=quiet, log_file=None)
    try:
        with lines, opened(state or default_path(), wait=wait) as db:
            if list_runs:
                _print_runs(db.runs())
                raise typer.Exit(EXIT_OK)
            picked = pick_run(db, run)
            for res in run_undo(db, picked, force=force):
                counts[res.status] = counts.get(res.status, 0) + 1
                if not quiet or res.status in ("refused", "error"):
                    tail = f"  {res.reason}" if res.reason else ""
                    out.print(Text.assemble((f"{res.status:<9}", UNDO_STYLE[res.status]),
                                            f" {show_path(res.path)}{tail}"), soft_wrap=True)
    except LockError as e:
        raise fail(str(e), EXIT_LOCKED)
    except MgctagError as e:
        if run is None and not counts:  # nothing to undo is not a failure
            err.print(str(e))
            raise typer.Exit(EXIT_OK)
        raise fail(str(e))
    from .undo import STATUSES

    err.print(f"run {picked.id}: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES))
    raise typer.Exit(EXIT_SOME_FAILED if counts.get("refused") or counts.get("error") else EXIT_OK)


UNDO_STYLE = {"restored": "green", "already": "dim", "refused": "yellow", "error": "red"}


def _print_runs(runs) -> None:
    if not runs:
        out.print("no runs yet")
        return
    out.print(f"[bold]{'run':>5}  {'started':<19}  {'outcome':<11}  {'changes':>7}  files[/bold]")
    for r in runs:
        when = datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M:%S")
        seen = sum(r.counts.values())
        mode = "" if r.write_tags else "dry run, "
        roots = ", ".join(r.roots)
        out.print(Text(f"{r.id:>5}  {when:<19}  {r.outcome:<11}  {r.changed:>7}  {mode}{seen} seen: {roots}"),
                  soft_wrap=True)


@app.command()
def models():
    """List the architectures and the installed weights, with their labels, data and metrics."""
    from . import weights
    from .errors import WeightsError
    from .models import ARCHITECTURES, architecture_names

    arch_table = Table(title="Architectures", title_justify="left")
    for col in ("name", "front-end", "segment", "paper"):
        arch_table.add_column(col)
    for name in architecture_names():
        a = ARCHITECTURES[name]
        fe = a.frontend
        arch_table.add_row(name, f"{fe.kind} {fe.n_features}x{fe.n_frames} @ {fe.sample_rate} Hz",
                           f"{fe.segment_seconds:.2f} s", a.citation)
    out.print(arch_table)

    w_table = Table(title=f"Installed weights (default: {weights.DEFAULT_MODEL})", title_justify="left")
    for col in ("name", "arch", "labels", "trained on", "metrics", "licence"):
        w_table.add_column(col, overflow="fold")
    for name, path in weights.installed().items():
        try:
            m = weights.read_meta(path)
        except WeightsError as e:
            w_table.add_row(name, "[red]unreadable[/red]", str(e), "", "", "")
            continue
        labels = ", ".join(m.labels[:12]) + (f" (+{len(m.labels) - 12})" if len(m.labels) > 12 else "")
        data = str(m.provenance.get("data", ""))
        kind, _, where = data.partition(":")
        data = f"{kind}:{Path(where).name}" if kind == "folders" else data   # the data set, not this machine's path
        w_table.add_row(name, m.arch, labels, data,
                        _metrics_text(m.metrics), (m.licence.splitlines() or [""])[0])
    out.print(w_table)


def _metrics_text(metrics: dict) -> str:
    """The headline figures: cross-validation (mean ± sd) and test split when present, else every number."""
    if "cv_folds" in metrics:
        m = metrics
        text = (f"{m['cv_folds']}-fold CV: track acc {m['cv_track_accuracy_mean']:.2f} ± "
                f"{m['cv_track_accuracy_std']:.2f}, macro-F1 {m['cv_macro_f1_mean']:.2f} ± {m['cv_macro_f1_std']:.2f}")
        if "test_track_accuracy" in m:
            text += f"; test track acc {m['test_track_accuracy']:.2f}"
        return text
    parts = []
    for k, v in metrics.items():
        if isinstance(v, (int, float)):
            parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
        elif isinstance(v, str):
            parts.append(f"{k}: {v}")
    return "; ".join(parts)


from . import cli_train  # noqa: E402,F401  (registers `train` and `evaluate` on app)


def main() -> None:
    app()
