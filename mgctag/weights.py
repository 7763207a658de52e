"""The weights format: one .safetensors file holding tensors plus JSON metadata.

Everything needed to rebuild a model travels in the file (architecture, labels, front-end,
normalisation buffers, provenance, metrics), and loading never runs pickle. Shipped
weights live in the package `mgctag.shipped` (the repository's `weights/` folder), user
weights in the platform's user data folder; `--model` takes a name from either or a path.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import platformdirs

from .errors import WeightsError

FORMAT_VERSION = 1
SUFFIX = ".safetensors"
META_KEY = "mgctag"
# `--model` left out: the most accurate model installed, by measurement (weights/README.md): an
# AudioSet tagger when one is installed (the larger the width, the higher its AudioSet mAP), else
# the best model shipped in the package.
DEFAULT_ORDER = ("efficientat-mn40", "efficientat-mn30", "efficientat-mn20", "efficientat-mn10", "efficientat-mn05",
                 "efficientat-mn04", "efficientat-mn02", "efficientat-mn01", "musicnn-gtzan-mini")
SHIPPED_DEFAULT = DEFAULT_ORDER[-1]
INSTALL_HINT = ("for far more accurate genres, install the AudioSet model: mgctag models install efficientat-mn04 "
                "(see mgctag models install --help)")


@dataclass
class WeightsMeta:
    arch: str
    labels: list[str]
    frontend: dict                       # FrontendSpec.to_dict()
    arch_params: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)  # data, split, seed, date, machine, command
    metrics: dict = field(default_factory=dict)     # e.g. cv accuracy mean/std
    defaults: dict = field(default_factory=dict)    # scan settings chosen for this model: genres, min_confidence, segments
    licence: str = ""
    description: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def model_id(self) -> str:
        """Short id written into tags: the file's stem plus its version."""
        return self.provenance.get("id", self.arch)


def save(path: str | Path, model, meta: WeightsMeta) -> Path:
    """Write a Classifier's state and metadata atomically (temp file, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta.provenance.setdefault("id", path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta.__dict__)})
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)   # a failed or interrupted write leaves no temporary behind
    return path


def read_meta(path: str | Path) -> WeightsMeta:
    """Metadata only, without reading the tensors (for listings)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as e:  # safetensors raises several types for bad files
        raise WeightsError(f"{path}: not a readable weights file ({e})") from None
    if raw is None:
        raise WeightsError(f"{path}: no mgctag metadata in this safetensors file")
    d = json.loads(raw)
    if d.get("format_version", 0) > FORMAT_VERSION:
        raise WeightsError(f"{path}: weights format {d['format_version']} is newer than this mgctag")
    return WeightsMeta(**d)


def load(path: str | Path, device: str = "cpu"):
    """Rebuild the Classifier stored at `path`; returns (model in eval mode, meta)."""
    from safetensors.torch import load_file

    from .frontends import FrontendSpec
    from .model import Classifier

    meta = read_meta(path)
    try:
        model = Classifier(meta.arch, meta.labels, FrontendSpec.from_dict(meta.frontend), meta.arch_params)
        missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    except (KeyError, TypeError, RuntimeError) as e:
        raise WeightsError(f"{path}: does not match architecture {meta.arch!r} ({str(e).splitlines()[0]})") from None
    if missing or unexpected:
        raise WeightsError(f"{path}: tensors do not match {meta.arch!r} "
                           f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device).eval(), meta


def load_model(name_or_path: str | None = None, device: str = "cpu"):
    """(model in eval mode, meta) for a `--model` value: an installed name, an architecture or a path."""
    return load(resolve(name_or_path), device)


def shipped_dir() -> Path:
    return Path(str(resources.files("mgctag.shipped")))


def user_dir() -> Path:
    return Path(platformdirs.user_data_dir("mgctag")) / "weights"


def installed() -> dict[str, Path]:
    """Every weights file by name; user weights shadow shipped ones of the same name."""
    found: dict[str, Path] = {}
    for d in (shipped_dir(), user_dir()):
        if d.is_dir():
            for p in sorted(d.glob(f"*{SUFFIX}")):
                found[p.name[: -len(SUFFIX)]] = p
    return found


def default_model() -> str:
    """The name `--model` defaults to: the first of DEFAULT_ORDER that is installed."""
    found = installed()
    return next((n for n in DEFAULT_ORDER if n in found), SHIPPED_DEFAULT)


def resolve(name_or_path: str | None) -> Path:
    """`--model` value -> weights file: a path, an installed name, or an architecture name.

    An architecture name picks that architecture's shipped weights (e.g. `crnn` ->
    `crnn-gtzan-mini`), so `--model crnn` works as users expect. None: `default_model()`.
    """
    name = name_or_path or default_model()
    p = Path(name).expanduser()
    if p.suffix == SUFFIX or p.exists():
        if not p.is_file():
            raise WeightsError(f"weights file not found: {p}")
        return p
    found = installed()
    if name in found:
        return found[name]
    by_arch = [n for n, path in found.items() if _arch_of(path) == name]
    if by_arch:
        return found[sorted(by_arch)[0]]
    choices = ", ".join(sorted(found)) or "none installed"
    raise WeightsError(f"no model named {name!r} (installed: {choices})")


def _arch_of(path: Path) -> str | None:
    try:
        return read_meta(path).arch
    except WeightsError:
        return None
