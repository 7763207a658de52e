"""The `mgctag` command: each module registers its commands on the shared Typer app; no pipeline logic here."""

from __future__ import annotations

# Each registers its commands, in the order `mgctag --help` lists them (the models group comes after them anyway).
from . import scan, train, evaluate, undo, models  # noqa: F401  # isort: skip
from .common import app


def main() -> None:
    app()
