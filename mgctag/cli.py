"""The `mgctag` command: parses options, calls the library, prints. No pipeline logic here."""
from __future__ import annotations

import enum
import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import __version__

app = typer.Typer(help="Listen to a music library and write genre tags.", no_args_is_help=True,
                  rich_markup_mode="rich", context_settings={"help_option_names": ["-h", "--help"]})
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


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
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def show_path(p: Path) -> str:
    """A printable form of any file name, including names that are not valid UTF-8."""
    return os.fsdecode(p).encode("utf-8", "backslashreplace").decode("utf-8")


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
):
    """Predict the genre of every audio file under PATHS; print it, and write it with --write-tags.

    Exit status: 0 every file was handled, 1 some files failed (each has a reason), 2 usage error.
    """
    from .errors import MgctagError
    from .genremap import GenreMap
    from .report import Report
    from .scan import ScanOptions, scan as run_scan

    try:
        gmap = GenreMap.load(genre_map) if genre_map else GenreMap()
        options = ScanOptions(model=model, write_tags=write_tags, top_k=top_k, min_confidence=min_confidence,
                              keep_existing=keep_existing, genre_map=gmap, device=device.value,
                              batch_size=batch_size, workers=workers, segments=segments, vote=vote.value,
                              include_hidden=include_hidden, follow_symlinks=follow_symlinks, id3v23=id3v23,
                              keep_mtime=keep_mtime)
        rep = Report(report) if report else None
    except MgctagError as e:
        raise fail(str(e))

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    counts: dict[str, int] = {}
    started = time.monotonic()
    progress = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err, transient=True, disable=not err.is_terminal)
    try:
        with progress, (rep if rep else _Null()) as r:
            task = progress.add_task("scan", total=None)
            results = run_scan(paths, options, on_found=lambda n: progress.update(task, total=n))
            out.print(f"[bold]{'status':<10} {'genre':<16} {'conf':>5}  path[/bold]")
            for res in results:
                counts[res.status] = counts.get(res.status, 0) + 1
                if r:
                    r.write(res)
                conf = "" if res.confidence is None else f"{res.confidence:.2f}"
                extra = f"  [red]{res.error}[/red]" if res.error else ""
                style = STATUS_STYLE.get(res.status, "")
                progress.console.print(f"[{style}]{res.status:<10}[/{style}] {res.genre:<16} {conf:>5}  "
                                       f"{show_path(res.path)}{extra}", markup=True)
                progress.advance(task)
    except MgctagError as e:
        raise fail(str(e))
    seen = sum(counts.values())
    summary = ", ".join(f"{counts[s]} {s}" for s in ("tagged", "would-tag", "kept", "unchanged", "skipped",
                                                     "error") if counts.get(s))
    err.print(f"{seen} files: {summary or 'nothing found'} in {time.monotonic() - started:.1f} s")
    raise typer.Exit(EXIT_SOME_FAILED if counts.get("error") else EXIT_OK)


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


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
        w_table.add_row(name, m.arch, labels, str(m.provenance.get("data", "")),
                        _metrics_text(m.metrics), (m.licence.splitlines() or [""])[0])
    out.print(w_table)


def _metrics_text(metrics: dict) -> str:
    parts = []
    for k, v in metrics.items():
        if isinstance(v, (int, float)):
            parts.append(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}")
        elif isinstance(v, str):
            parts.append(f"{k}: {v}")
    return "; ".join(parts)


def main() -> None:
    app()
