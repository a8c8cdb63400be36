"""Shared fixtures: paths to the shared reference data and common models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SHARED = HERE.parent.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared (the team's reference material), skipping if absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared reference data not found at {p}")
    return p
