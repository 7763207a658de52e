"""Installing pretrained checkpoints: a file the user brings or one fetched on request, verified, converted.

mgctag ships no AudioSet weights and never downloads anything implicitly: `install` is the one
place that reads a third-party checkpoint. It checks the file's sha256 against the official
release's, loads it with ``torch.load(weights_only=True)`` (no pickled code ever runs), checks
that every tensor fits the network, and writes mgctag's own weights format (safetensors +
metadata: architecture, labels, licence, source, the original's sha256) into the user data
folder. Every step writes to a temporary file that is renamed only when complete, so an
interrupted or failed install leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import weights
from .errors import WeightsError

RELEASE_URL = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/"
CHUNK = 1 << 16
TIMEOUT_S = 30.0

# EfficientAT's LICENSE (github.com/fschmid56/EfficientAT); converted weights carry it.
EFFICIENTAT_LICENCE = """MIT License

Copyright (c) 2022 Florian Schmid

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.

AudioSet's class labels: CC BY 4.0, Google LLC.
"""

Progress = Callable[[int, "int | None"], None]  # (bytes done, total bytes or None)


@dataclass(frozen=True)
class Checkpoint:
    """One official checkpoint mgctag knows how to import."""

    name: str  # the installed model's name (`--model NAME`)
    file: str  # the release asset's file name
    width: float  # EfficientAT's width multiplier
    audioset_map: float  # AudioSet mAP the authors publish for it
    sha256: str | None = None  # of the official file, where known; None: unverifiable without --force

    @property
    def url(self) -> str:
        return RELEASE_URL + self.file

    @property
    def title(self) -> str:
        name = self.file.split("_mAP")[0]
        return f"EfficientAT {name} (MobileNetV3, width {self.width:g}, AudioSet mAP {self.audioset_map:.3f})"


# The `mn*_as` family of the v0.0.1 release, one network at eight widths (mgctag.models.efficientat).
# Only mn04's sha256 has been checked here (../shared/models/README.md); the others need --force.
# Below this confidence an installed AudioSet model leaves a file's genre alone: chosen on gtzan-mini
# (which the model never saw) as the lowest minimum whose written genres are still 80% right
# (48% of files written, precision 0.83, against 0.59 for all; weights/README.md). Measured for mn04
# only; the other widths get the same value until someone measures theirs.
MIN_CONFIDENCE = 0.35

CHECKPOINTS: dict[str, Checkpoint] = {
    c.name: c
    for c in (
        Checkpoint("efficientat-mn01", "mn01_as_mAP_298.pt", 0.1, 0.298),
        Checkpoint("efficientat-mn02", "mn02_as_mAP_378.pt", 0.2, 0.378),
        Checkpoint(
            "efficientat-mn04",
            "mn04_as_mAP_432.pt",
            0.4,
            0.432,
            "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c",
        ),
        Checkpoint("efficientat-mn05", "mn05_as_mAP_443.pt", 0.5, 0.443),
        Checkpoint("efficientat-mn10", "mn10_as_mAP_471.pt", 1.0, 0.471),
        Checkpoint("efficientat-mn20", "mn20_as_mAP_478.pt", 2.0, 0.478),
        Checkpoint("efficientat-mn30", "mn30_as_mAP_482.pt", 3.0, 0.482),
        Checkpoint("efficientat-mn40", "mn40_as_mAP_484.pt", 4.0, 0.484),
    )
}


class AlreadyInstalled(WeightsError):
    """The name is installed already and --force was not given (not a failure for a caller that only wants it there)."""


def checkpoint(name: str) -> Checkpoint:
    try:
        return CHECKPOINTS[name]
    except KeyError:
        raise WeightsError(f"unknown model {name!r}; mgctag can install: {', '.join(CHECKPOINTS)}") from None


def destination(name: str) -> Path:
    """Where `install(name)` puts the converted weights."""
    return weights.user_dir() / f"{name}{weights.SUFFIX}"


def install(
    name: str,
    *,
    source: str | Path | None = None,
    url: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Install checkpoint `name` from the file `source`, or download it (from `url`, default the official release).

    `force` accepts a file whose sha256 is not known or not the official one (its tensors are
    still checked) and replaces an installed model of that name. Returns the weights' path.
    Raises AlreadyInstalled, or WeightsError with a one-line reason; nothing is left behind.
    """
    ck = checkpoint(name)
    dest = destination(name)
    if source is not None:  # a file that is not there is an error, installed or not
        source = Path(source).expanduser()
        if source.is_dir():
            raise WeightsError(f"{source}: a folder, not a checkpoint file")
        if not source.is_file():
            raise WeightsError(f"{source}: no such file")
    if dest.exists() and not force:
        raise AlreadyInstalled(f"{name} is already installed ({dest}); --force replaces it")
    if source is not None:
        return _import(ck, source, dest, origin=ck.url, force=force)
    url = url or ck.url
    if ck.sha256 is None and not force:
        raise WeightsError(
            f"{name}: mgctag does not know the sha256 of {ck.file}, so it cannot verify a download; "
            f"pass --force to install it unverified"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{name}.", suffix=".part")
    os.close(fd)
    try:
        download(url, Path(tmp), progress=progress)
        return _import(ck, Path(tmp), dest, origin=url, force=force, downloaded=True)
    except WeightsError as e:
        if isinstance(e, DownloadError):
            raise WeightsError(
                f"{e}; download {ck.url} by hand and run `mgctag models install {name} --from FILE`"
            ) from None
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)


def remove(name: str) -> Path:
    """Delete installed weights `name` from the user data folder; returns the path removed."""
    path = weights.user_dir() / f"{name}{weights.SUFFIX}"
    if not path.is_file():
        if (weights.shipped_dir() / path.name).is_file():
            raise WeightsError(f"{name} is shipped with mgctag, not installed; it cannot be removed")
        raise WeightsError(f"no installed model named {name!r} in {path.parent}")
    path.unlink()
    return path


class DownloadError(WeightsError):
    """The file could not be fetched (network, server, or an incomplete transfer)."""


def download(url: str, dest: Path, *, progress: Progress | None = None, timeout: float = TIMEOUT_S) -> int:
    """Fetch `url` into `dest` (overwritten); returns the bytes written. Raises DownloadError, one line."""
    import http.client
    import urllib.error
    import urllib.request

    from . import __version__

    if not url.startswith(("https://", "http://")):
        raise DownloadError(f"{url}: only http(s) addresses can be downloaded")
    request = urllib.request.Request(url, headers={"User-Agent": f"mgctag/{__version__}"})
    done = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if progress:
                progress(0, total)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except http.client.IncompleteRead as e:
        raise DownloadError(f"download of {url} stopped after {done + len(e.partial):,} bytes") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"cannot download {url} ({reason})") from None
    if total is not None and done != total:
        raise DownloadError(f"download of {url} stopped after {done:,} of {total:,} bytes")
    return done


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path) -> dict:
    """A checkpoint's tensors, loaded without running pickled code; WeightsError when it is anything else."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "Unsupported global" in text:  # torch refused to build a Python object: the file holds code
            raise WeightsError(
                f"{path.name}: holds Python objects besides tensors, which mgctag never loads "
                f"(it reads plain state dicts only)"
            ) from None
        detail = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
        raise WeightsError(
            f"{path.name}: not a readable PyTorch checkpoint, truncated or damaged "
            f"({detail[0] if detail else 'unpickling failed'})"
        ) from None
    except Exception as e:  # torch raises RuntimeError, EOFError, ValueError... for broken files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"{path.name}: not a readable PyTorch checkpoint, truncated or damaged ({first.split('. ')[0]})"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise WeightsError(f"{path.name}: not a state dict of named tensors (found {type(state).__name__})")
    return state


def check_fits(state: dict, module, what: str) -> None:
    """Raise WeightsError naming what differs when `state` would not load into `module` with strict=True."""
    import torch

    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    wrong = [k for k in want if k in got and got[k] != want[k]]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} of its {len(want)} tensors missing ({', '.join(missing[:2])}"
                f"{', ...' if len(missing) > 2 else ''})"
            )
        if unexpected:
            parts.append(
                f"{len(unexpected)} unknown ({', '.join(unexpected[:2])}{', ...' if len(unexpected) > 2 else ''})"
            )
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape ({k}: {got[k]}, not {want[k]})")
        raise WeightsError(f"does not fit {what}: {'; '.join(parts)}")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"holds NaN or infinite values ({bad[0]})")


def width_of(state: dict) -> float | None:
    """The family width whose layout the state dict's classifier has, if any (to name a mix-up)."""
    from .models.efficientat import HEAD_CHANNELS, LAST_CONV_EXPANSION, make_divisible, mobilenetv3_layout

    shape = tuple(state["classifier.2.weight"].shape) if "classifier.2.weight" in state else None
    for ck in CHECKPOINTS.values():
        w = ck.width
        if shape == (make_divisible(HEAD_CHANNELS * w), LAST_CONV_EXPANSION * mobilenetv3_layout(w)[-1][3]):
            return w
    return None


def convert(ck: Checkpoint, state: dict, *, sha256: str, verified: bool, origin: str):
    """(Classifier holding the checkpoint's tensors, its WeightsMeta); WeightsError when `state` does not fit."""
    from .model import Classifier
    from .models.efficientat import EFFICIENTAT_FRONTEND
    from .taxonomy import AUDIOSET_GENRES

    model = Classifier("efficientat", list(AUDIOSET_GENRES), EFFICIENTAT_FRONTEND, {"width": ck.width})
    try:
        check_fits(state, model.backbone, f"EfficientAT at width {ck.width:g} ({ck.name})")
    except WeightsError as e:
        other = width_of(state)
        if other is None or other == ck.width:
            raise
        names = " or ".join(c.name for c in CHECKPOINTS.values() if c.width == other)
        raise WeightsError(f"{e}; it looks like width {other:g}: {names}") from None
    model.backbone.load_state_dict(state, strict=True)
    meta = weights.WeightsMeta(
        arch="efficientat",
        labels=list(AUDIOSET_GENRES),
        frontend=EFFICIENTAT_FRONTEND.to_dict(),
        arch_params=model.arch_params,
        provenance={
            "id": ck.name,
            "source": origin,
            "file": ck.file,
            "sha256": sha256,
            "sha256_verified": verified,
            "data": "AudioSet (about 2 M clips, 527 classes), trained by EfficientAT's authors",
            "imported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        metrics={"audioset_map_published": ck.audioset_map},
        defaults={"genres": "common", "min_confidence": MIN_CONFIDENCE},
        licence=EFFICIENTAT_LICENCE,
        description=f"{ck.title}: its {len(AUDIOSET_GENRES)} music-genre classes, multi-label (sigmoid)",
    )
    return model.eval(), meta


def _import(ck: Checkpoint, path: Path, dest: Path, *, origin: str, force: bool, downloaded: bool = False) -> Path:
    """Verify, load, check and convert the checkpoint at `path` into `dest` (atomically)."""
    digest = sha256_of(path)
    verified = ck.sha256 is not None and digest == ck.sha256
    label = "the download" if downloaded else path.name
    if not verified and not force:
        same = [c for c in CHECKPOINTS.values() if c.sha256 == digest]
        if same:
            raise WeightsError(f"{label}: this is the official {same[0].file}: install it as {same[0].name}")
        if ck.sha256 is None:
            raise WeightsError(
                f"{label}: mgctag does not know the official sha256 of {ck.file} (this file's is "
                f"{digest[:16]}...); pass --force to install it unverified"
            )
        raise WeightsError(
            f"{label}: sha256 {digest[:16]}... is not that of the official {ck.file} "
            f"({ck.sha256[:16]}...): a different or damaged file; download it again from {ck.url}"
        )
    state = read_state_dict(path)
    try:
        model, meta = convert(ck, state, sha256=digest, verified=verified, origin=origin)
    except WeightsError as e:
        raise WeightsError(f"{label}: {e}") from None
    try:
        return weights.save(dest, model, meta)
    except OSError as e:
        raise WeightsError(f"cannot write {dest}: {e.strerror or e}") from None
