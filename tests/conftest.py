"""Shared fixtures: paths to the shared reference data and common models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SHARED = HERE.parent.parent / "shared"


IN_REPO = HERE / "data"  # copies kept in the repository (the NONMEM parity oracle)


def shared_path(*parts: str) -> Path:
    """A path under ../shared (the team's reference material), skipping if absent; data the
    repository keeps a copy of (``tests/data/nmtests``, see its README) is read from there, so
    a clean clone runs those tests."""
    local = IN_REPO.joinpath(*parts[1:]) if parts[:1] == ("data",) else None
    if local is not None and local.exists():
        return local
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared reference data not found at {p}")
    return p
