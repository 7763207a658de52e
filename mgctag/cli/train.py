"""`mgctag train`: parse, call mgctag.train, print; the options and helpers `mgctag evaluate` shares are here too."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from .common import (
    DATA,
    EXIT_INTERRUPTED,
    Device,
    DeviceOpt,
    GenreMapOpt,
    app,
    err,
    fail,
    out,
)

DataArg = Annotated[
    Optional[Path],
    typer.Argument(
        show_default=False,
        help="Labelled audio: a folder with one folder per genre (the GTZAN layout), or a CSV "
        "manifest of path,genre[,split] rows.",
    ),
]
FromTagsOpt = Annotated[
    Optional[list[Path]],
    typer.Option(
        "--from-tags",
        exists=True,
        show_default=False,
        rich_help_panel=DATA,
        help="Take the labels from the genre tags already in this library instead of DATA (repeatable).",
    ),
]
MinCountOpt = Annotated[
    int, typer.Option(min=1, rich_help_panel=DATA, help="Leave out genres with fewer tracks than this.")
]
SplitDirOpt = Annotated[
    Optional[Path],
    typer.Option(
        exists=True,
        file_okay=False,
        show_default=False,
        rich_help_panel=DATA,
        help="A folder of train/valid/test split lists (e.g. the fault-filtered GTZAN ones); files are matched "
        "by genre and name.",
    ),
]
TrainWorkersOpt = Annotated[int, typer.Option(min=0, help="Decoding processes (0 decodes in the main process).")]


@app.command()
def train(
    data: DataArg = None,
    arch: Annotated[
        str, typer.Option("--arch", "-a", metavar="NAME", help="Architecture to train (see `mgctag models`).")
    ] = ...,
    out_path: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            dir_okay=False,
            show_default=False,
            help="Where to write the weights (.safetensors); the history (.history.json) and curves (.curves.png) "
            "go beside them. Default: <arch>-<data>.safetensors in the current folder.",
        ),
    ] = None,
    from_tags: FromTagsOpt = None,
    genre_map: GenreMapOpt = None,
    min_count: MinCountOpt = 2,
    folds: Annotated[
        int,
        typer.Option(
            min=0,
            help="Cross-validate with K stratified folds (tracks and artists "
            "never straddle folds) before training the final model on all tracks. "
            "0: no cross-validation.",
        ),
    ] = 0,
    split_dir: SplitDirOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for weights, batch order and random splits.")] = 0,
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs per model.")] = 100,
    patience: Annotated[
        int,
        typer.Option(
            min=1, help="Stop after this many epochs without a lower validation loss; the best epoch is kept."
        ),
    ] = 5,
    batch_size: Annotated[int, typer.Option(min=2, help="Segments per training step, at most (2 or more).")] = 128,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam's learning rate.")] = 1e-3,
    valid_fraction: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.5,
            help="Share of the training tracks held out for early stopping when no split says (0-0.5).",
        ),
    ] = 0.1,
    test_fraction: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.5, help="Share held out for the test figures (0-0.5; random split only, without --folds)."
        ),
    ] = 0.1,
    param: Annotated[
        Optional[list[str]],
        typer.Option(
            "--param",
            metavar="KEY=VALUE",
            show_default=False,
            help="An architecture setting, KEY=VALUE (JSON value), e.g. dropout=0.3.",
        ),
    ] = None,
    device: DeviceOpt = Device.auto,
    amp: Annotated[bool, typer.Option(help="Mixed precision on CUDA.")] = True,
    workers: TrainWorkersOpt = 0,
    cache_dir: Annotated[
        Optional[Path],
        typer.Option(file_okay=False, show_default=False, help="Feature cache folder (default: the user cache)."),
    ] = None,
    teacher: Annotated[
        Optional[str],
        typer.Option(
            "--teacher",
            metavar="NAME",
            show_default=False,
            help="Distil from this model (any --model value, e.g. efficientat-mn04, or A+B): each training segment "
            "also learns the teacher's distribution over the genres, which it must be able to name.",
        ),
    ] = None,
    teacher_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="With --teacher: how much of each labelled segment's target is the teacher's "
            "(0-1; the rest is its label).",
        ),
    ] = 0.5,
    temperature: Annotated[
        float,
        typer.Option(
            min=0.01,
            help="With --teacher: softening of the student's logits and the teacher's distribution "
            "(Hinton et al.; 0.01 or more: 1 leaves them as they are, higher is flatter).",
        ),
    ] = 1.0,
    unlabelled: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--unlabelled",
            exists=True,
            show_default=False,
            help="With --teacher: audio without labels (a folder or file, repeatable), learnt from the teacher "
            "alone; it only ever trains, never validates or tests.",
        ),
    ] = None,
):
    """Train an architecture on labelled audio and write its weights, history and curves.

    Prints each epoch's loss and accuracy, the cross-validation figures with --folds, and the
    test split's figures when there is one. With --teacher, the targets mix the labels with the
    teacher's outputs (knowledge distillation), and --unlabelled adds audio that only the
    teacher labels. Exit status: 0 trained, 2 bad data or options.
    """
    from .. import dataset
    from ..errors import MgctagError
    from ..genremap import GenreMap
    from ..train import TrainOptions, fit, save_run

    try:
        if unlabelled and not teacher:
            raise MgctagError("--unlabelled needs --teacher: unlabelled audio is learnt from a teacher's outputs alone")
        params = _params(param or [])
        gmap = GenreMap.load(genre_map) if genre_map else GenreMap()
        tracks = dataset.load_tracks(data, tag_roots=from_tags or (), genre_map=gmap, min_count=min_count)
        options = TrainOptions(
            lr=lr,
            batch_size=batch_size,
            max_epochs=epochs,
            patience=patience,
            seed=seed,
            arch_params=params,
            valid_fraction=valid_fraction,
            device=device.value,
            amp=amp,
            cache_dir=cache_dir,
            workers=workers,
        )
        target = out_path or Path(f"{arch}-{_data_name(data, from_tags)}.safetensors")
        check_writable(target)  # before hours of training, not after
        counts = ", ".join(f"{g} {n}" for g, n in sorted(tracks.counts().items()))
        err.print(Text(f"{len(tracks.tracks)} tracks, {len(tracks.labels)} genres ({counts})"), soft_wrap=True)
        taught = extra = None
        if teacher:
            from ..infer import pick_device
            from ..teacher import Teacher

            taught = Teacher.load(
                teacher,
                weight=teacher_weight,
                temperature=temperature,
                genre_map=gmap,
                device=pick_device(device.value),
            )
            taught.columns(tracks.labels)  # a genre it cannot name fails now, not after decoding
            if unlabelled:
                extra = dataset.unlabelled(unlabelled, exclude=tracks.tracks)
                err.print(Text(f"{len(extra.tracks)} unlabelled tracks, taught by {taught.name} alone"), soft_wrap=True)
        with _TrainProgress() as progress:
            result = fit(
                tracks,
                arch,
                options,
                folds=folds,
                split_dir=split_dir,
                test_fraction=test_fraction,
                progress=progress,
                command=portable_command(["mgctag", *sys.argv[1:]]),
                teacher=taught,
                unlabelled=extra,
            )
        written = save_run(result, target)
    except MgctagError as e:
        raise fail(str(e))
    except KeyboardInterrupt:
        raise fail("stopped by Ctrl-C: nothing was written", EXIT_INTERRUPTED) from None
    if result.cv:
        _print_cv(result.cv)
    if result.valid:
        out.print(
            f"final model: best epoch {result.best_epoch} of {len(result.history)}, validation "
            f"{headline(result.valid)}",
            soft_wrap=True,
        )
    if result.test:
        out.print(f"test split: {headline(result.test)}", soft_wrap=True)
    left_out = [(g, reason) for g, _, reason in tracks.left_out] + [
        (t.label or "unlabelled", reason) for t, reason in result.skipped
    ]
    for line in dataset.left_out_summary(left_out):
        err.print(Text(line, style="yellow"), soft_wrap=True)
    for kind, path in written.items():
        out.print(Text(f"{kind}: {path}"), soft_wrap=True)


def check_writable(path: Path) -> None:
    """That a file can be created where `path` will go (its folder is made if missing), as a one-line error."""
    import tempfile

    from ..errors import writing

    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass


def portable_command(argv: list[str]) -> str:
    """The command as provenance records it: an absolute path becomes relative to the current folder
    when it lies inside it, else its name, so no weights file carries the training machine's folders."""
    import os

    def portable(arg: str) -> str:
        opt, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if not os.path.isabs(value):
            return arg
        rel = os.path.relpath(value)
        return opt + eq + (rel if not rel.startswith("..") else os.path.basename(value.rstrip("/")) or value)

    return shlex.join(portable(a) for a in argv)


def _params(items: list[str]) -> dict:
    from ..errors import MgctagError

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise MgctagError(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def _data_name(data: Path | None, from_tags: list[Path] | None) -> str:
    if data is not None:
        return Path(data).resolve().stem or "data"
    return "tags-" + (Path(from_tags[0]).resolve().name if from_tags else "library")


def headline(rep) -> str:
    """A report's figures in one line: train's validation and test split, evaluate's report."""
    return (
        f"track accuracy {rep.track_accuracy:.3f}, segment accuracy {rep.segment_accuracy:.3f}, "
        f"macro-F1 {rep.macro_f1:.3f} ({rep.n_tracks} tracks)"
    )


def _print_cv(cv: dict) -> None:
    table = Table(title=f"{cv['folds']}-fold cross-validation, {cv['tracks']} tracks", title_justify="left")
    for col in ("fold", "tracks", "epochs", "best", "track acc", "segment acc", "macro-F1"):
        table.add_column(col, justify="right")
    for f in cv["per_fold"]:
        table.add_row(
            str(f["fold"]),
            str(f["test_tracks"]),
            str(f["epochs"]),
            str(f["best_epoch"]),
            f"{f['track_accuracy']:.3f}",
            f"{f['segment_accuracy']:.3f}",
            f"{f['macro_f1']:.3f}",
        )
    table.add_row(
        "mean ± sd",
        "",
        "",
        "",
        *(f"{cv[k + '_mean']:.3f} ± {cv[k + '_std']:.3f}" for k in ("track_accuracy", "segment_accuracy", "macro_f1")),
        style="bold",
    )
    out.print(table)


class _TrainProgress:
    """Draws training's progress: a bar for features, one line per epoch (plain lines off a terminal)."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from ..train import Progress as Base

        owner = self

        class Reporter(Base):
            def stage(self, name, *, epochs):
                owner.stage = name
                err.print(f"[bold]{name}[/bold] (at most {epochs} epochs)", soft_wrap=True)

            def features(self, done, total):
                owner.bar.update(owner.task, completed=done, total=total, visible=done < total)

            def epoch(self, r):
                valid = (
                    f", valid loss {r['valid_loss']:.3f} acc {r['valid_segment_accuracy']:.3f} "
                    f"track acc {r['valid_track_accuracy']:.3f}"
                    if "valid_loss" in r
                    else ""
                )
                err.print(
                    f"  {owner.stage} epoch {r['epoch']:>3}: train loss {r['train_loss']:.3f} "
                    f"acc {r['train_segment_accuracy']:.3f}{valid} ({r['seconds']:.1f} s)",
                    soft_wrap=True,
                )

            def note(self, text):
                err.print(Text(text, style="yellow"), soft_wrap=True)

        self.stage = ""
        self.bar = Progress(
            TextColumn("features"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        )
        self.task = self.bar.add_task("features", total=None, visible=False)
        self.reporter = Reporter()

    def __enter__(self):
        self.bar.__enter__()
        return self.reporter

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)
