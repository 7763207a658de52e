"""`mgctag undo`: put back what a run changed, or list the runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Optional

import typer
from rich.text import Text

from .common import (
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    Lines,
    QuietOpt,
    StateOpt,
    WaitOpt,
    app,
    err,
    fail,
    out,
    show_path,
)


@app.command()
def undo(
    run: Annotated[
        Optional[int],
        typer.Option("--run", help="The run to undo (see --list). Default: the newest run with changes left to undo."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Also restore files whose genre changed since that run (by a tag editor or a later run)."
        ),
    ] = False,
    list_runs: Annotated[
        bool, typer.Option("--list", help="List the runs and how many changes each has left to undo, then exit.")
    ] = False,
    state: StateOpt = None,
    wait: WaitOpt = False,
    quiet: QuietOpt = False,
):
    """Put back the genre values a scan replaced (and remove the mgctag fields it added).

    Only files that still hold what that run wrote are restored; others are refused unless --force.
    Exit status: 0 done (or nothing to undo), 1 some files refused or failed, 2 usage or setup
    error (no such run, no state database: undo never creates one), 3 another run holds it.
    """
    from ..errors import LockError, MgctagError
    from ..state import default_path, opened
    from ..undo import NothingToUndo, pick_run
    from ..undo import undo as run_undo

    counts: dict[str, int] = {}
    lines = Lines(quiet=quiet, log_file=None)
    try:
        with lines, opened(state or default_path(), wait=wait, create=False) as db:  # undo never makes one
            if list_runs:
                _print_runs(db.runs())
                raise typer.Exit(EXIT_OK)
            picked = pick_run(db, run)
            for res in run_undo(db, picked, force=force):
                counts[res.status] = counts.get(res.status, 0) + 1
                if not quiet or res.status in ("refused", "error"):
                    tail = f"  {res.reason}" if res.reason else ""
                    out.print(
                        Text.assemble((f"{res.status:<9}", UNDO_STYLE[res.status]), f" {show_path(res.path)}{tail}"),
                        soft_wrap=True,
                    )
    except LockError as e:
        raise fail(str(e), EXIT_LOCKED)
    except NothingToUndo as e:  # not a failure
        err.print(str(e))
        raise typer.Exit(EXIT_OK)
    except MgctagError as e:
        raise fail(str(e))
    from ..undo import STATUSES

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
        out.print(
            Text(f"{r.id:>5}  {when:<19}  {r.outcome:<11}  {r.changed:>7}  {mode}{seen} seen: {roots}"), soft_wrap=True
        )
