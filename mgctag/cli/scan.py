"""`mgctag scan`: parse the options, run mgctag.scanner.scan, print a line per file and the summary."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    MODEL,
    OUTPUT,
    RAY,
    SELECTION,
    STATE,
    WRITING,
    Albums,
    BatchOpt,
    Device,
    DeviceOpt,
    GenreMapOpt,
    GenresOpt,
    Hardlinks,
    Lines,
    ModelOpt,
    QuietOpt,
    StateOpt,
    VoteMethod,
    VoteOpt,
    WaitOpt,
    WorkersOpt,
    _signal_name,
    app,
    err,
    fail,
    out,
    show_path,
)


def _segments(value: str) -> str:
    if value != "auto" and not (value.isdigit() and int(value) >= 1):
        raise typer.BadParameter(f"{value} is neither auto nor a whole number of 1 or more")
    return value


@app.command()
def scan(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="Files or folders to scan (recursively).")],
    write_tags: Annotated[
        bool,
        typer.Option(
            "--write-tags",
            rich_help_panel=WRITING,
            help="Write the genres into the files. Without it, scan only reports (a dry run).",
        ),
    ] = False,
    top_k: Annotated[
        int, typer.Option(min=1, rich_help_panel=WRITING, help="How many genres to write per file, best first.")
    ] = 1,
    min_confidence: Annotated[
        Optional[float],
        typer.Option(
            min=0.0,
            max=1.0,
            show_default=False,
            rich_help_panel=WRITING,
            help="Don't write genres below this confidence (0-1); such files are skipped, with the best guess in the "
            "note. Default: the model's own (chosen from its precision/coverage curve; `mgctag models` lists it), "
            "else 0.",
        ),
    ] = None,
    keep_existing: Annotated[
        bool,
        typer.Option(
            "--keep-existing/--overwrite",
            rich_help_panel=WRITING,
            help="Keep a genre that mgctag did not write, or overwrite it. Genres mgctag wrote are always updated.",
        ),
    ] = True,
    id3v23: Annotated[
        bool,
        typer.Option(
            "--id3v23",
            rich_help_panel=WRITING,
            help="Write ID3v2.3 (for old players) instead of v2.4 in MP3, WAV and AIFF.",
        ),
    ] = False,
    keep_mtime: Annotated[
        bool,
        typer.Option("--keep-mtime", rich_help_panel=WRITING, help="Keep files' modification times when writing tags."),
    ] = False,
    hardlinks: Annotated[
        Hardlinks,
        typer.Option(
            rich_help_panel=WRITING,
            help="A hard-linked file: skip it (the "
            "link stays intact), or break the link and write this name's "
            "own copy.",
        ),
    ] = Hardlinks.skip,
    model: ModelOpt = None,
    genres: GenresOpt = None,
    genre_map: GenreMapOpt = None,
    segments: Annotated[
        str,
        typer.Option(
            metavar="auto|N",
            callback=_segments,
            rich_help_panel=MODEL,
            help="auto: listen to a track's windows in rounds (middle first) and stop once the rest "
            "could not change the genre written (at most the model's window count). N: exactly N "
            "windows per track.",
        ),
    ] = "auto",
    vote: VoteOpt = VoteMethod.mean,
    albums: Annotated[
        Albums,
        typer.Option(
            rich_help_panel=MODEL,
            help="auto: the tracks of one album (by its "
            "tags, else its folder; disc folders CD1, CD2 join their parent) get "
            "one genre, decided from all of them; compilations and folders of "
            "unrelated tracks stay per track. off: every track is judged "
            "alone.",
        ),
    ] = Albums.auto,
    include_hidden: Annotated[
        bool, typer.Option("--include-hidden", rich_help_panel=SELECTION, help="Also scan hidden files and folders.")
    ] = False,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            rich_help_panel=SELECTION,
            help="Follow symlinked folders (loops are detected either way).",
        ),
    ] = False,
    state: StateOpt = None,
    rescan: Annotated[
        bool,
        typer.Option(
            "--rescan", rich_help_panel=STATE, help="Analyse every file again, even those unchanged since the last run."
        ),
    ] = False,
    wait: WaitOpt = False,
    report: Annotated[
        Optional[Path],
        typer.Option(
            metavar="FILE",
            rich_help_panel=OUTPUT,
            help="Also write a report: out.csv or out.json (one row per "
            "file), or out.html (a page with charts and a table that "
            "sorts and filters).",
        ),
    ] = None,
    quiet: QuietOpt = False,
    log_file: Annotated[
        Optional[Path],
        typer.Option(
            dir_okay=False,
            rich_help_panel=OUTPUT,
            help="Also append plain-text per-file lines and the summary to this file.",
        ),
    ] = None,
    device: DeviceOpt = Device.auto,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            rich_help_panel=RAY,
            help="Decode and run the model on a Ray "
            "cluster (pip install 'mgctag\\[ray]'): a local one, or the one "
            "--ray-address names. The files must be readable at the same paths on "
            "every node.",
        ),
    ] = False,
    ray_address: Annotated[
        Optional[str],
        typer.Option(
            metavar="ADDRESS",
            show_default=False,
            rich_help_panel=RAY,
            help="The Ray cluster to run on (implies --ray): auto (the one running here), HOST:PORT, or "
            "ray://HOST:10001.",
        ),
    ] = None,
    ray_actors: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            show_default=False,
            rich_help_panel=RAY,
            help="Model actors on the Ray cluster (default: one per GPU, else half the CPUs).",
        ),
    ] = None,
):
    """Predict the genre of every audio file under PATHS; print it, and write it with --write-tags.

    Exit status: 0 every file was handled, 1 some files failed (each has a reason), 2 usage error,
    3 another run holds the state database, 130/143 stopped by Ctrl-C/SIGTERM (state saved).
    """
    from ..errors import LockError, MgctagError
    from ..genremap import GenreMap
    from ..interrupt import StopRequest
    from ..report import Report
    from ..scanner import ScanOptions
    from ..scanner import scan as run_scan
    from ..state import default_path

    try:
        if ray_actors is not None and not (ray or ray_address):
            raise MgctagError("--ray-actors needs --ray")
        gmap = GenreMap.load(genre_map) if genre_map else GenreMap()
        options = ScanOptions(
            model=model,
            write_tags=write_tags,
            top_k=top_k,
            min_confidence=min_confidence,
            keep_existing=keep_existing,
            genres=genres,
            genre_map=gmap,
            device=device.value,
            batch_size=batch_size,
            workers=workers,
            segments=None if segments == "auto" else int(segments),
            vote=vote.value,
            albums=albums.value,
            include_hidden=include_hidden,
            follow_symlinks=follow_symlinks,
            id3v23=id3v23,
            keep_mtime=keep_mtime,
            hardlinks=hardlinks.value,
            state=state or default_path(),
            rescan=rescan,
            wait=wait,
            ray=ray_address or ("local" if ray else None),
            ray_actors=ray_actors,
        )
        # the report shows every option the run used; new ScanOptions fields appear by themselves
        settings = {
            "paths": [show_path(p) for p in paths],
            **{f.name: getattr(options, f.name) for f in dataclasses.fields(options)},
            "genre_map": genre_map or "none",
        }
        rep = Report(report, settings=settings) if report else None
        lines = Lines(quiet=quiet, log_file=log_file)
    except MgctagError as e:
        raise fail(str(e))

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    counts: dict[str, int] = {}
    albums_decided: set[str] = set()  # album names; tracks alone are only counted (a library may be flat)
    alone = [0]
    found, run_id = [0], [None]
    resolved: dict[str, object] = {}  # the settings the model decides when the user left them out
    started = time.monotonic()
    stop = StopRequest(
        on_first=lambda s: lines.message(f"{_signal_name(s)}: stopping after the current file (again to stop at once)")
    )
    progress = Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet or not (err.is_terminal and out.is_terminal),
    )
    code = EXIT_OK

    def summary() -> str:
        seen = sum(counts.values())
        text = (
            f"{_n(seen, 'file')} seen: "
            + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("tagged", "would-tag", "kept", "unchanged", "skipped"))
            + f", {_n(counts.get('error', 0), 'error')} in {time.monotonic() - started:.1f} s"
        )
        if options.albums == "auto" and seen:
            text += f"; {_n(len(albums_decided), 'album')} decided, {_n(alone[0], 'track')} alone"
        if run_id[0] is not None:
            text += f" (run {run_id[0]})"
        if not found[0] and not stop():
            text += "; no audio file was found under the paths given (hidden ones need --include-hidden)"
        if stop():
            text += f"; stopped by {_signal_name(stop.signum)}, {max(found[0] - seen, 0)} files left for the next run"
        return text

    with lines, stop.handling():
        try:
            with progress, rep or contextlib.nullcontext() as r:
                lines.above(progress)
                task = progress.add_task("scan", total=None)

                def on_found(n: int) -> None:
                    found[0] = n
                    progress.update(task, total=n)

                def on_model(analyser) -> None:
                    from ..pool import usable_cpus

                    resolved.update(
                        {
                            k: v
                            for k, v in (
                                ("model", analyser.model_id),
                                ("min_confidence", analyser.min_confidence),
                                ("genres", analyser.genres),
                                ("segments", f"auto (at most {', '.join(map(str, analyser.segments))})"),
                                ("batch_size", analyser.batch_sizes),
                                ("workers", None if options.ray else usable_cpus()),
                            )
                            if getattr(options, k) is None
                        }
                    )

                results = run_scan(
                    paths,
                    options,
                    on_found=on_found,
                    should_stop=stop,
                    on_model=on_model,
                    on_run=lambda i: run_id.__setitem__(0, i),
                )
                for n, res in enumerate(results):
                    if n == 0:
                        lines.header()  # once there is a result: not above a model or state error
                    counts[res.status] = counts.get(res.status, 0) + 1
                    if res.status != "error":
                        if res.album:
                            albums_decided.add(res.album)
                        else:
                            alone[0] += 1
                    if r:
                        r.write(res)
                    lines.result(res)
                    progress.advance(task)
                if r:
                    r.finish(summary(), settings=resolved)
        except KeyboardInterrupt:
            stop.signum = stop.signum or signal.SIGINT
        except LockError as e:
            if not stop():
                lines.close()
                raise fail(str(e), EXIT_LOCKED)
        except MgctagError as e:
            lines.close()
            raise fail(str(e))
        if stop():
            code = stop.exit_code
        elif counts.get("error"):
            code = EXIT_SOME_FAILED
        text = summary()
        if model is None and sum(counts.values()):
            from ..weights import INSTALL_HINT, SHIPPED_DEFAULT, default_model

            if default_model() == SHIPPED_DEFAULT:
                text += f"; {INSTALL_HINT}"
        lines.summary(text)
    raise typer.Exit(code)


def _n(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
