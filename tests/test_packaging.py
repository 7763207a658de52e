"""What installing mgctag promises: the torch floor it documents, and no runtime dependency it never imports."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "mgctag").rglob("*.py"))
# import name of each runtime distribution, where the two differ
IMPORT_NAME = {"scikit-learn": "sklearn"}
# torch APIs mgctag uses that are newer than torch 2.0, with the release that added them
TORCH_API_SINCE = {"torch.amp.GradScaler": (2, 3)}


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.match(r"\d+(\.\d+)*", text).group().split("."))


def _torch_floor_in_pyproject() -> tuple[int, ...]:
    [spec] = [d for d in _project()["dependencies"] if re.match(r"torch\b", d)]
    return _version(re.fullmatch(r"torch\s*>=\s*([\d.]+)", spec).group(1))


def _code() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in SOURCES)


def test_the_documented_torch_floor_agrees_and_the_installed_torch_meets_it():
    import torch

    floor = _torch_floor_in_pyproject()
    readme = re.findall(r"works with torch (\d+\.\d+) or\s+newer", (ROOT / "README.md").read_text())
    assert [_version(v) for v in readme] == [floor], readme
    assert _version(torch.__version__) >= floor, torch.__version__


def test_the_torch_floor_covers_the_apis_the_code_uses():
    floor, code = _torch_floor_in_pyproject(), _code()
    used = {api: since for api, since in TORCH_API_SINCE.items() if api in code}
    assert used, "none of the listed APIs is used any more: update TORCH_API_SINCE"
    assert all(floor >= since for since in used.values()), (floor, used)


def test_every_runtime_dependency_is_imported_by_mgctag():
    code = _code()
    for spec in _project()["dependencies"]:
        dist = re.match(r"[A-Za-z0-9_.-]+", spec).group()
        module = IMPORT_NAME.get(dist, dist).replace("-", "_")
        assert re.search(rf"^\s*(import|from)\s+{module}\b", code, re.M), f"{dist} is installed but never imported"
    test_only = " ".join(_project()["optional-dependencies"]["test"])
    assert "librosa" in test_only and not re.search(r"^\s*(import|from)\s+(librosa|scipy)\b", code, re.M)
