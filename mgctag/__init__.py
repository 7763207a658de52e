"""mgctag: genre tags for a music library, from neural networks that listen to it.

Library use, without the CLI::

    from mgctag import scan, ScanOptions
    for result in scan(["~/Music"], ScanOptions(write_tags=False)):
        print(result.path, result.genre, result.confidence)

Kept import-light (no torch, no numpy here) so `mgctag --help` and decoding workers start fast:
the public names are imported on first use. No submodule shares a public name, so `mgctag.scan`
is always the function, whatever has been imported before.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {"scan": "scanner", "ScanOptions": "scanner", "FileResult": "result", "load_model": "weights"}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'mgctag' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
