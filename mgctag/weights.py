"""The weights format: one .safetensors file holding tensors plus JSON metadata.

Everything needed to rebuild a model travels in the file (architecture, labels, front-end,
normalisation buffers, provenance, metrics), and loading never runs pickle. Shipped
weights live in the package `mgctag.shipped` (the repository's `weights/` folder), user
weights in the platform's user data folder; `--model` takes a name from either or a path.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

import platformdirs

from .errors import WeightsError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # raised only when old readers must refuse a file; new keys alone do not raise it
SUFFIX = ".safetensors"
META_KEY = "mgctag"
# `--model` left out: the most accurate model installed, by measurement (weights/README.md): an
# AudioSet tagger when one is installed (the larger the width, the higher its AudioSet mAP), else
# the best model shipped in the package.
DEFAULT_ORDER = (
    "efficientat-mn40",
    "efficientat-mn30",
    "efficientat-mn20",
    "efficientat-mn10",
    "efficientat-mn05",
    "efficientat-mn04",
    "efficientat-mn02",
    "efficientat-mn01",
    "musicnn-gtzan-mini",
)
SHIPPED_DEFAULT = DEFAULT_ORDER[-1]
# What was measured, not a promise: on 57 independent recordings (the issue that brought the model
# in) its written genres were right more often, though it named fewer files right at its defaults.
INSTALL_HINT = (
    "the AudioSet model writes fewer wrong genres (0.85 of them right against 0.74 on 57 independent "
    "recordings): mgctag models install efficientat-mn04"
)


@dataclass
class WeightsMeta:
    arch: str
    labels: list[str]
    frontend: dict  # FrontendSpec.to_dict()
    arch_params: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)  # data, split, seed, date, machine, command
    metrics: dict = field(default_factory=dict)  # e.g. cv accuracy mean/std
    defaults: dict = field(
        default_factory=dict
    )  # scan settings chosen for this model: genres, min_confidence, segments
    licence: str = ""
    description: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def model_id(self) -> str:
        """Short id written into tags: the file's stem plus its version."""
        return self.provenance.get("id", self.arch)


# The weights mgctag trained itself and ships carry no licence of their own: they are part of
# mgctag's package, under its licence.
SHIPPED_LICENCE = "MIT (mgctag's own)"


def licence_line(meta: WeightsMeta, path: str | Path) -> str:
    """The licence's first line, for listings; weights shipped without one are under mgctag's."""
    first = (meta.licence.strip().splitlines() or [""])[0]
    if first:
        return first
    return SHIPPED_LICENCE if Path(path).parent == shipped_dir() else "not stated"


def save(path: str | Path, model, meta: WeightsMeta) -> Path:
    """Write a Classifier's state and metadata atomically (temp file, then rename).

    The bytes are written with a plain open(), so the file's mode follows the umask like every
    other file mgctag writes (safetensors' save_file creates its files 0600)."""
    from safetensors.torch import save as to_bytes

    path = Path(path)
    meta.provenance.setdefault("id", path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = to_bytes(tensors, metadata={META_KEY: json.dumps(meta.__dict__)})
        tmp.unlink(missing_ok=True)  # a leftover keeps its mode; a new file gets the umask's
        with open(tmp, "wb") as f:
            f.write(data)
        tmp.replace(path)
    except Exception as e:  # OSError, or safetensors' own error type for the same I/O failures
        raise WeightsError(f"cannot write {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # a failed or interrupted write leaves no temporary behind
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
    try:
        d = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as e:
        raise WeightsError(f"{path}: its mgctag metadata is not valid JSON ({e})") from None
    return _meta(path, d)


_REQUIRED = ("arch", "labels", "frontend")
_TYPES = {
    "arch": str,
    "labels": list,
    "frontend": dict,
    "arch_params": dict,
    "provenance": dict,
    "metrics": dict,
    "defaults": dict,
    "licence": str,
    "description": str,
    "format_version": int,
}


def _meta(path: str | Path, d) -> WeightsMeta:
    """WeightsMeta from the decoded JSON, forward compatible: keys a newer mgctag added are ignored.

    Only what this version needs is checked (the required keys and every known key's type), so a
    file never fails later, deep inside a scan, on a value of the wrong kind.
    """
    if not isinstance(d, dict):
        raise WeightsError(f"{path}: its mgctag metadata is not a JSON object")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise WeightsError(f"{path}: its mgctag metadata lacks {', '.join(missing)}")
    known = {f.name: d[f.name] for f in fields(WeightsMeta) if f.name in d}
    for k, v in known.items():
        if not isinstance(v, _TYPES[k]) or isinstance(v, bool):
            raise WeightsError(f"{path}: metadata {k!r} should be a JSON {_TYPES[k].__name__}, not {v!r:.40}")
    if not known["labels"] or not all(isinstance(g, str) for g in known["labels"]):
        raise WeightsError(f"{path}: metadata 'labels' should be a list of genre names")
    if known.get("format_version", 0) > FORMAT_VERSION:
        raise WeightsError(f"{path}: weights format {known['format_version']} is newer than this mgctag")
    return WeightsMeta(**known)


def load(path: str | Path, device: str = "cpu"):
    """Rebuild the Classifier stored at `path`; returns (model in eval mode, meta)."""
    from safetensors.torch import load_file

    from .frontends import FrontendSpec
    from .model import Classifier

    meta = read_meta(path)
    try:
        model = Classifier(meta.arch, meta.labels, FrontendSpec.from_dict(meta.frontend), meta.arch_params)
        missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path}: does not match architecture {meta.arch!r} ({str(e).splitlines()[0]})") from None
    if missing or unexpected:
        raise WeightsError(
            f"{path}: tensors do not match {meta.arch!r} (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.to(device).eval(), meta


def load_model(name_or_path: str | None = None, device: str = "cpu"):
    """(model in eval mode, meta) for a `--model` value: an installed name, an architecture or a path."""
    return load(resolve(name_or_path), device)


def shipped_dir() -> Path:
    return Path(str(resources.files("mgctag.shipped")))


def user_dir() -> Path:
    return Path(platformdirs.user_data_dir("mgctag")) / "weights"


def installed() -> dict[str, Path]:
    """Every readable weights file by name; user weights shadow shipped ones of the same name.

    A file whose metadata cannot be read (not safetensors, bad JSON, a required key missing) is
    left out with a logged warning, so one bad download never hides the others.
    """
    return {name: path for name, (path, _) in _catalogue().items()}


def _files() -> dict[str, list[Path]]:
    """Every weights file by name, the user's before the shipped one it shadows."""
    files: dict[str, list[Path]] = {}
    for d in (user_dir(), shipped_dir()):
        if d.is_dir():
            for p in sorted(d.glob(f"*{SUFFIX}")):
                files.setdefault(p.name[: -len(SUFFIX)], []).append(p)
    return files


def _readable(paths: list[Path]) -> tuple[Path, WeightsMeta]:
    """The first of `paths` whose metadata reads (warning about those before it), else the first one's error."""
    errors = []
    for p in paths:
        try:
            meta = read_meta(p)
        except WeightsError as e:
            errors.append(e)
            continue
        for e in errors:
            log.warning("%s (left out)", e)
        return p, meta
    for e in errors[1:]:
        log.warning("%s (left out)", e)
    raise errors[0]


def _catalogue() -> dict[str, tuple[Path, WeightsMeta]]:
    """name -> (path, meta) of every readable weights file; each unreadable one is warned about once."""
    found = {}
    for name, paths in sorted(_files().items()):
        try:
            found[name] = _readable(paths)
        except WeightsError as e:
            log.warning("%s (left out)", e)
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
    files = _files()
    if name in files:  # an installed name: only its own file is read (its error, if any, is the answer)
        return _readable(files[name])[0]
    found = _catalogue()
    by_arch = [n for n, (_, meta) in found.items() if meta.arch == name]
    if by_arch:
        return found[sorted(by_arch)[0]][0]
    choices = ", ".join(sorted(found)) or "none installed"
    raise WeightsError(f"no model named {name!r} (installed: {choices})")
