"""mgctag: genre tags for a music library, from neural networks that listen to it.

Library use, without the CLI::

    from mgctag import scan, ScanOptions
    for result in scan(["~/Music"], ScanOptions(write_tags=False)):
        print(result.path, result.genre, result.confidence)

Kept import-light (no torch here) so `mgctag --help` and decoding workers start fast.
"""
__version__ = "0.1.0"

__all__ = ["scan", "ScanOptions", "FileResult", "load_model", "__version__"]


def __getattr__(name):
    if name in ("scan", "ScanOptions", "FileResult"):
        from . import scan as _scan

        return getattr(_scan, name)
    if name == "load_model":
        from .weights import load, resolve

        return lambda name_or_path=None, device="cpu": load(resolve(name_or_path), device)
    raise AttributeError(name)
