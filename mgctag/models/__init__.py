"""Architecture registry: one entry per paper, keyed by the name `--arch` takes.

An architecture is a backbone class (features -> logits) plus the front-end it was
designed for. Backbones are built as ``cls(n_classes, n_features, n_frames, **params)``
and take input of shape (batch, n_features, n_frames).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ..frontends import FrontendSpec


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., nn.Module]  # build(n_classes, n_features, n_frames, **params)
    frontend: FrontendSpec  # the paper's input
    citation: str  # one line: who, when, what
    summary: str = ""  # one line for `mgctag models`
    params: dict = field(default_factory=dict)  # the constructor's keyword-only defaults, recorded in weights
    default_segments: int = 10  # segments voted per track in scan
    batch_size: int = 64  # segments per inference batch in scan: what runs fastest per segment


ARCHITECTURES: dict[str, Architecture] = {}


def register(
    name: str,
    *,
    frontend: FrontendSpec,
    citation: str,
    summary: str = "",
    default_segments: int = 10,
    batch_size: int = 64,
):
    """Class decorator adding a backbone to ARCHITECTURES; its keyword-only defaults become `params`."""

    def deco(cls):
        params = {k: p.default for k, p in inspect.signature(cls).parameters.items() if p.kind is p.KEYWORD_ONLY}
        ARCHITECTURES[name] = Architecture(
            name,
            cls,
            frontend,
            citation,
            summary or (cls.__doc__ or "").strip().splitlines()[0],
            params,
            default_segments,
            batch_size,
        )
        return cls

    return deco


def get_architecture(name: str) -> Architecture:
    _load_all()
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; choose from: {', '.join(sorted(ARCHITECTURES))}") from None


def architecture_names() -> list[str]:
    _load_all()
    return sorted(ARCHITECTURES)


def _load_all() -> None:
    """Import the modules that register architectures (kept lazy so `--help` stays fast)."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_") and mod.name != "blocks":
            importlib.import_module(f"{__name__}.{mod.name}")
