"""One small exception tree, so callers catch mgctag failures without catching bugs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


class MgctagError(Exception):
    """Base of every error mgctag raises on purpose; its message is one line for a user."""


class DecodeError(MgctagError):
    """The file could not be read or decoded as audio."""


class TagError(MgctagError):
    """Tags could not be read or written."""


class WeightsError(MgctagError):
    """A weights file is missing, unreadable or does not match its architecture."""


class DataError(MgctagError):
    """Training or evaluation data is missing, empty or inconsistent."""


class LockError(MgctagError):
    """Another run holds the state database's lock."""


class TrainError(MgctagError):
    """Training could not produce a model (the loss stopped being a number)."""


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """An OSError while writing the output file `path` as a one-line MgctagError that names it."""
    try:
        yield
    except OSError as e:
        raise MgctagError(f"cannot write {os.fspath(path)}: {(e.strerror or str(e)).lower()}") from None
