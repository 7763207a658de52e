"""Shared fixtures: where ../shared is, and small audio made on the fly."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GTZAN_MINI = SHARED / "data" / "gtzan-mini"


@pytest.fixture
def gtzan_mini() -> Path:
    if not GTZAN_MINI.is_dir():
        pytest.skip(f"../shared/data/gtzan-mini not found at {GTZAN_MINI}")
    return GTZAN_MINI
