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


def test_the_wheel_holds_every_module_and_the_shipped_weights(tmp_path):
    """`pip install .` (the README's run command) installs the wheel, not the folder: a module left
    out of it is missing for every user, though an editable install still finds it."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"  # a copy: setuptools would reuse (and so hide behind) a build/ folder in the tree
    for name in ("mgctag", "beetsplug", "weights"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("mgctag-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {
        p.relative_to(ROOT).as_posix()
        for d in ("mgctag", "beetsplug")
        for p in (ROOT / d).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert "mgctag/decode/__init__.py" in modules and "beetsplug/mgctag.py" in modules
    assert sorted(modules - names) == []
    shipped = {
        f"mgctag/shipped/{p.name}"
        for p in (ROOT / "weights").iterdir()
        if p.suffix in (".safetensors", ".md") or p.name == "__init__.py"
    }
    assert "mgctag/shipped/README.md" in shipped and "mgctag/shipped/musicnn-gtzan-mini.safetensors" in shipped
    assert sorted(shipped - names) == []
    assert not any(n.startswith(("tests/", "tools/", "bench/", "weights/")) for n in names), sorted(names)[:20]


def test_the_version_is_written_in_one_place():
    """pyproject.toml takes it from mgctag.__version__ (what `mgctag --version` and Ray's check say)."""
    import importlib.metadata

    import mgctag

    assert "version" in _project()["dynamic"] and "version" not in _project()
    assert importlib.metadata.version("mgctag") == mgctag.__version__
