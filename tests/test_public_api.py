"""The library's public names, as a fresh interpreter sees them (the README's example)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = {
    "readme": "from mgctag import scan, ScanOptions; assert callable(scan) and not isinstance(scan, type(sys))",
    # the submodule imported first (as the CLI and workers do) must not shadow the function
    "after-submodule": "import mgctag.scanner, mgctag.result; import mgctag; "
    "from mgctag import scan, FileResult; assert scan is mgctag.scanner.scan; "
    "assert FileResult is mgctag.result.FileResult",
    "load_model": "from mgctag import load_model; assert callable(load_model)",
    "light": "import mgctag; mgctag.__version__; assert 'numpy' not in sys.modules and 'torch' not in sys.modules",
    "unknown": "import mgctag\ntry:\n    mgctag.nope\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(1)",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_public_names_in_a_fresh_interpreter(name):
    r = subprocess.run([sys.executable, "-c", "import sys\n" + CASES[name]], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
