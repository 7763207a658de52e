"""`mgctag evaluate`: parse, call mgctag.evaluate, print the figures (and write the PNGs asked for)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from .common import (
    DATA,
    EXIT_INTERRUPTED,
    MODEL,
    OUTPUT,
    BatchOpt,
    Device,
    DeviceOpt,
    GenreMapOpt,
    GenresOpt,
    ModelOpt,
    VoteMethod,
    VoteOpt,
    WorkersOpt,
    app,
    err,
    fail,
    out,
)
from .train import DataArg, FromTagsOpt, MinCountOpt, SplitDirOpt, check_writable, headline


@app.command()
def evaluate(
    data: DataArg = None,
    model: ModelOpt = None,
    from_tags: FromTagsOpt = None,
    genre_map: GenreMapOpt = None,
    min_count: MinCountOpt = 1,
    split_dir: SplitDirOpt = None,
    split: Annotated[
        str,
        typer.Option(
            metavar="NAME",
            rich_help_panel=DATA,
            help="With --split-dir: which list to evaluate (train, valid or test).",
        ),
    ] = "test",
    as_json: Annotated[
        bool, typer.Option("--json", rich_help_panel=OUTPUT, help="Print the whole report as JSON instead of tables.")
    ] = False,
    confusion: Annotated[
        Optional[Path],
        typer.Option(
            dir_okay=False,
            show_default=False,
            rich_help_panel=OUTPUT,
            help="Also write the confusion matrix as a PNG here.",
        ),
    ] = None,
    coverage: Annotated[
        Optional[Path],
        typer.Option(
            dir_okay=False,
            show_default=False,
            rich_help_panel=OUTPUT,
            help="Also write the precision/coverage curve as a PNG here.",
        ),
    ] = None,
    out_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            show_default=False,
            rich_help_panel=OUTPUT,
            help="Write both PNGs into this folder, as <model>-confusion.png and <model>-coverage.png (--confusion "
            "and --coverage name them apart). Without any of these, evaluate writes no file.",
        ),
    ] = None,
    genres: GenresOpt = None,
    closed_set: Annotated[
        bool,
        typer.Option(
            "--closed-set",
            rich_help_panel=MODEL,
            help="Let only the data's own genres compete (by default the model picks among every genre it would "
            "write in a scan, as a scan does).",
        ),
    ] = False,
    segments: Annotated[
        Optional[int],
        typer.Option(
            min=1, rich_help_panel=MODEL, help="Segments per track to vote over (default: the model's, as in scan)."
        ),
    ] = None,
    vote: VoteOpt = VoteMethod.mean,
    device: DeviceOpt = Device.auto,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
):
    """Measure a model on labelled audio, hearing each track exactly as `scan` does.

    Prints track-level and segment-level accuracy, macro-F1, per-class precision and recall, the
    confusion matrix and precision against coverage (how right the written genres are when only
    the most confident files are written, i.e. what --min-confidence trades); --confusion,
    --coverage or --out also write the matrix and the curve as PNGs. A model whose provenance
    says it was trained on this data gets a warning: its figures are in-sample. Exit status:
    0 done, 2 bad data or model.
    """
    from .. import dataset, splits
    from ..analyser import Analyser
    from ..errors import MgctagError
    from ..evaluate import evaluate as run_evaluate
    from ..evaluate import in_sample
    from ..genremap import GenreMap
    from ..infer import pick_device

    try:
        gmap = GenreMap.load(genre_map) if genre_map else GenreMap()
        tracks = dataset.load_tracks(data, tag_roots=from_tags or (), genre_map=gmap, min_count=min_count)
        chosen = list(tracks.tracks)
        if split_dir:
            chosen, _ = splits.apply_split_files(chosen, split_dir)
            chosen = splits.by_split(chosen).get(split, [])
            if not chosen:
                raise MgctagError(f"{split_dir}: no track of DATA is in the {split} list")
        png = confusion or (out_dir / f"{_name(model)}-confusion.png" if out_dir else None)
        curve_png = coverage or (out_dir / f"{_name(model)}-coverage.png" if out_dir else None)
        for path in (png, curve_png):
            if path:
                check_writable(path)
        analyser = Analyser.load(
            model,
            device=pick_device(device.value),
            genres=genres,
            genre_map=gmap,
            segments=segments,
            vote_method=vote.value,
            batch_size=batch_size,
            only=sorted({t.label for t in chosen}) if closed_set else None,
        )
        name = analyser.model_id
        learnt = in_sample(
            [m.meta for m in analyser.members], tracks.source, split_dir=split_dir, split=split if split_dir else None
        )
        rep = run_evaluate(analyser, chosen, workers=workers)
        if png:
            png = rep.save_confusion_png(
                png,
                title=f"{name} on {len(chosen)} tracks: track accuracy "
                f"{rep.track_accuracy:.3f}, macro-F1 {rep.macro_f1:.3f}",
            )
        if curve_png:
            marks = [analyser.min_confidence] if analyser.min_confidence else []
            curve_png = rep.save_coverage_png(
                curve_png, marks=marks, title=f"{name} on {rep.n_tracks} tracks (numbers: min-confidence)"
            )
    except MgctagError as e:
        raise fail(str(e))
    except KeyboardInterrupt:
        raise fail("stopped by Ctrl-C", EXIT_INTERRUPTED) from None
    if learnt:
        one = len(learnt) == 1
        err.print(
            Text(
                f"warning: in-sample: {' and '.join(learnt)} {'was' if one else 'were'} trained on this data "
                f"({tracks.source}, says {'its' if one else 'their'} provenance): these figures show how well "
                f"{'it' if one else 'they'} learnt these tracks, not how {'it does' if one else 'they do'} on "
                "new music",
                style="yellow",
            ),
            soft_wrap=True,
        )
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "model": name,
                    "weights": [str(p) for p in analyser.weights_files],
                    "genres": analyser.genres,
                    "in_sample": learnt,
                    "confusion_png": str(png) if png else None,
                    "coverage_png": str(curve_png) if curve_png else None,
                    **rep.to_dict(),
                }
            )
        )
        return
    scope = "the data's genres only (closed set)" if closed_set else f"the {len(analyser.genres)} genres a scan writes"
    out.print(Text(f"{name}: {rep.n_tracks} tracks; the model picks among {scope}"), soft_wrap=True)
    _print_report(rep, in_sample=bool(learnt))
    _print_coverage(rep, analyser.min_confidence)
    for s in rep.skipped:
        err.print(Text(f"left out {s['path']}: {s['reason']}"), soft_wrap=True)
    if png:
        out.print(Text(f"confusion matrix: {png}"), soft_wrap=True)
    if curve_png:
        out.print(Text(f"precision/coverage: {curve_png}"), soft_wrap=True)


def _name(model: str | None) -> str:
    """The stem of a model's default output files: its weights' name ('A+B' for an ensemble)."""
    from ..analyser import ENSEMBLE_SEP, resolve

    return ENSEMBLE_SEP.join(
        p.name[: -len(".safetensors")] if p.name.endswith(".safetensors") else p.stem for p in resolve(model)
    )


def _print_report(rep, *, in_sample: bool = False) -> None:
    out.print(headline(rep) + f", vote {rep.vote}" + (" (in-sample)" if in_sample else ""), soft_wrap=True)
    per_class = Table(title="Per class (track level)", title_justify="left")
    for col in ("genre", "precision", "recall", "F1", "tracks"):
        per_class.add_column(col, justify="left" if col == "genre" else "right")
    used = [
        i
        for i, g in enumerate(rep.labels)  # genres that occur, as truth or as prediction
        if any(rep.confusion[i]) or any(row[i] for row in rep.confusion)
    ]
    for i in used:  # genre names are data, never rich markup
        m = rep.per_class[rep.labels[i]]
        per_class.add_row(
            Text(rep.labels[i]), f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"])
        )
    out.print(per_class)
    conf = Table(title="Confusion matrix (rows: true genre, columns: predicted)", title_justify="left")
    conf.add_column("")
    for i in used:
        conf.add_column(Text(rep.labels[i][:6]), justify="right")
    for i in used:
        conf.add_row(Text(rep.labels[i]), *(str(rep.confusion[i][j]) if rep.confusion[i][j] else "." for j in used))
    out.print(conf)


COVERAGE_POINTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _print_coverage(rep, default: float) -> None:
    """Precision at round coverages, and at the model's own --min-confidence when it has one."""
    table = Table(
        title="Precision of the top genre when only the most confident files are written", title_justify="left"
    )
    for col in ("files written", "min-confidence", "precision"):
        table.add_column(col, justify="right")
    n = len(rep.coverage)
    for share in COVERAGE_POINTS:
        c = rep.coverage[max(0, min(n, round(share * n)) - 1)]
        table.add_row(f"{c['coverage']:.0%}", f"{c['threshold']:.3f}", f"{c['precision']:.3f}")
    if default:
        covered, precision = rep.precision_at(default)
        table.add_row(f"{covered:.0%}", f"{default:g} (the model's default)", f"{precision:.3f}", style="bold")
    out.print(table)
