"""Placeholder replaced below."""
from __future__ import annotations


class PopulationEngine:  # pragma: no cover - replaced
    name = "population"
