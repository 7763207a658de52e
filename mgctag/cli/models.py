"""`mgctag models`: list the architectures and installed weights; `install` and `remove` pretrained models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from .common import EXIT_OK, App, Lines, app, err, fail, out

models_app = App(help="List, install and remove models.", no_args_is_help=False)
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context):
    """List the architectures and the installed weights (where, licence, labels, data, metrics).

    `mgctag models install NAME` adds a pretrained model; `mgctag models remove NAME` deletes one.
    """
    if ctx.invoked_subcommand is None:
        _list()


@models_app.command()
def install(
    name: Annotated[
        str,
        typer.Argument(
            help="The model to install, e.g. efficientat-mn04 (`mgctag models` lists the names).", show_default=False
        ),
    ],
    from_file: Annotated[
        Optional[Path],
        typer.Option(
            "--from",
            metavar="FILE",
            show_default=False,
            help="Import this checkpoint file (downloaded by hand) instead of downloading it.",
        ),
    ] = None,
    url: Annotated[
        Optional[str],
        typer.Option(
            metavar="URL",
            show_default=False,
            help="Download from this address instead of the official release (a mirror).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Accept a file whose sha256 is unknown or not the official one (its tensors are still "
            "checked), and replace an installed model of that name.",
        ),
    ] = False,
):
    """Install a pretrained model: import a checkpoint (--from FILE) or download it from its official release.

    The file is verified (sha256), loaded without running any code, checked against the network
    and converted into the user data folder. Nothing is ever downloaded unless you run this.
    Exit status: 0 installed (or already there), 2 a bad file, an unknown name or no network.
    """
    from .. import install as inst
    from ..errors import WeightsError

    if from_file is not None and url is not None:
        raise fail("give --from FILE or --url URL, not both")
    try:
        ck = inst.checkpoint(name)
        with _DownloadBar() as bar:
            path = inst.install(
                name, source=from_file, url=url, force=force, progress=None if from_file is not None else bar.update
            )
    except inst.AlreadyInstalled as e:
        err.print(str(e), soft_wrap=True)
        raise typer.Exit(EXIT_OK)
    except WeightsError as e:
        raise fail(str(e))
    meta = _meta(path)
    check = (
        "sha256 verified" if meta and meta.provenance.get("sha256_verified") else "[yellow]sha256 not verified[/yellow]"
    )
    licence = (meta.licence.splitlines() or ["?"])[0] if meta else "?"
    out.print(f"installed {name} ({ck.title}; {check}; licence: {licence}) at {path}", soft_wrap=True)


@models_app.command()
def remove(name: Annotated[str, typer.Argument(help="An installed model's name.", show_default=False)]):
    """Delete an installed model from the user data folder (shipped models cannot be removed)."""
    from .. import install as inst
    from ..errors import WeightsError

    try:
        path = inst.remove(name)
    except WeightsError as e:
        raise fail(str(e))
    out.print(f"removed {name} ({path})", soft_wrap=True)


class _DownloadBar:
    """A rich download bar on stderr, only when stderr is a terminal."""

    def __init__(self):
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.bar = Progress(
            TextColumn("downloading"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        )
        self.task = None

    def __enter__(self) -> "_DownloadBar":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def update(self, done: int, total: int | None) -> None:
        if self.task is None:
            self.task = self.bar.add_task("download", total=total)
        self.bar.update(self.task, completed=done, total=total)


def _meta(path: Path):
    from .. import weights
    from ..errors import WeightsError

    try:
        return weights.read_meta(path)
    except WeightsError:
        return None


def _list() -> None:
    from .. import install as inst
    from .. import weights
    from ..errors import WeightsError
    from ..models import ARCHITECTURES, architecture_names

    arch_table = Table(title="Architectures", title_justify="left")
    for col in ("name", "front-end", "segment", "paper"):
        arch_table.add_column(col)
    for name in architecture_names():
        a = ARCHITECTURES[name]
        fe = a.frontend
        arch_table.add_row(
            name,
            f"{fe.kind} {fe.n_features}x{fe.n_frames} @ {fe.sample_rate} Hz",
            f"{fe.segment_seconds:.2f} s",
            a.citation,
        )
    out.print(arch_table)

    user = weights.user_dir()
    wide = out.width >= WIDE
    w_table = Table(title=f"Installed weights (default: {weights.default_model()})", title_justify="left")
    w_table.add_column("name", no_wrap=True)  # a name is what the user types: never split
    for col in FIELDS if wide else ("about",):
        w_table.add_column(col, overflow="fold")
    with Lines(quiet=False, log_file=None):  # a weights file left out is a warning on stderr
        found = weights.installed()
    for name, path in found.items():
        where = "user" if path.parent == user else "shipped"
        try:
            m = weights.read_meta(path)
        except WeightsError as e:
            w_table.add_row(
                Text(name),
                *(
                    [Text("unreadable", "red"), Text(str(e))] + [""] * 5
                    if wide
                    else [Text(f"{where}; unreadable: {e}", "red")]
                ),
            )
            continue
        labels = ", ".join(m.labels[:12]) + (f" (+{len(m.labels) - 12})" if len(m.labels) > 12 else "")
        data = str(m.provenance.get("data", ""))
        kind, _, folder = data.partition(":")
        data = f"{kind}:{Path(folder).name}" if kind == "folders" else data  # the data set, not this machine's path
        cells = dict(
            zip(
                FIELDS,
                (
                    where,
                    m.arch,
                    labels,
                    data,
                    _metrics_text(m.metrics),
                    f"{m.defaults.get('min_confidence', 0):g}",
                    weights.licence_line(m, path),
                ),
            )
        )
        if wide:  # the file's words, never markup
            w_table.add_row(Text(name), *map(Text, cells.values()))
        else:
            c = cells
            w_table.add_row(
                Text(name),
                Text(
                    "\n".join(
                        line
                        for line in (
                            f"{c['where']}, {c['arch']}"
                            + (f", trained on {c['trained on']}" if c["trained on"] else ""),
                            f"labels: {c['labels']}",
                            c["metrics"],
                            f"min-confidence {c['min-confidence']}; licence: {c['licence']}",
                        )
                        if line
                    )
                ),
            )
    out.print(w_table)
    out.print(f"user models: {user}", soft_wrap=True)
    missing = [c for c in inst.CHECKPOINTS.values() if c.name not in found]
    if missing:
        out.print(
            "can be installed (`mgctag models install NAME`, or `--from FILE` for a file you downloaded): "
            + ", ".join(c.name for c in missing),
            soft_wrap=True,
        )


WIDE = 150  # terminal columns from which the weights table has a column per field, else one cell per model
FIELDS = ("where", "arch", "labels", "trained on", "metrics", "min-confidence", "licence")


def _metrics_text(metrics: dict) -> str:
    """The headline figures: cross-validation (mean ± sd) and test split when present, else every number."""
    m = metrics
    if "cv_folds" in m and all(
        isinstance(m.get(f"cv_{k}"), (int, float))
        for k in ("track_accuracy_mean", "track_accuracy_std", "macro_f1_mean", "macro_f1_std")
    ):
        text = (
            f"{m['cv_folds']}-fold CV: track acc {m['cv_track_accuracy_mean']:.2f} ± "
            f"{m['cv_track_accuracy_std']:.2f}, macro-F1 {m['cv_macro_f1_mean']:.2f} ± {m['cv_macro_f1_std']:.2f}"
        )
        if isinstance(m.get("test_track_accuracy"), (int, float)):
            text += f"; test track acc {m['test_track_accuracy']:.2f}"
        return text
    parts = []
    for k, v in metrics.items():
        if isinstance(v, (int, float)):
            parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
        elif isinstance(v, str):
            parts.append(f"{k}: {v}")
    return "; ".join(parts)
