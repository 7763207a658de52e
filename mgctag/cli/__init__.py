"""The `mgctag` command: each module registers its commands on the shared Typer app; no pipeline logic here."""

from __future__ import annotations

from . import models, scan, train, undo  # noqa: F401  (each registers its commands)
from .common import app


def main() -> None:
    app()
