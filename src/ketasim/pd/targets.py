"""Compound and target data: molar masses, unbound fractions and affinities with sources.

Values live in ``ketasim/data/targets.toml``. Where an enantiomer or metabolite has no value
of its own, the racemic value is used for each enantiomer (tagged ``assumed``); where no
value exists at all the compound is taken not to bind (``None``), which the provenance says.

>>> data = load_target_data()
>>> data.affinity("nmda", "s_ketamine").value_um
0.3
>>> data.affinity("mor", "r_ketamine").grade
'derived'
>>> data.targets["d2high"].disputed
True
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from ketasim.errors import ModelError


@dataclass(frozen=True)
class Compound:
    """An analyte that can bind targets."""

    id: str
    name: str
    molar_mass: float
    fu: float
    fu_source: str
    fu_grade: str


@dataclass(frozen=True)
class TargetInfo:
    """A receptor, transporter or channel."""

    id: str
    name: str
    group: str
    disputed: bool = False
    dispute: str = ""


@dataclass(frozen=True)
class Affinity:
    """A Ki or IC50 (µM) of a compound at a target, with its provenance."""

    target: str
    compound: str
    value_um: float
    kind: str
    source: str
    grade: str


# where a compound has no value of its own, borrow from (in order):
_FALLBACK = {
    "s_ketamine": ("racemic_ketamine",), "r_ketamine": ("racemic_ketamine",),
    "s_norketamine": ("racemic_norketamine",), "r_norketamine": ("racemic_norketamine",),
}


@dataclass(frozen=True)
class TargetData:
    """All compounds, targets and affinities."""

    compounds: dict[str, Compound]
    targets: dict[str, TargetInfo]
    rows: dict[tuple[str, str], Affinity]

    def affinity(self, target: str, compound: str) -> Affinity | None:
        """The affinity used for ``compound`` at ``target`` (None: not known to bind)."""
        if target not in self.targets:
            raise ModelError("target", f"unknown target {target!r}",
                             f"use one of {', '.join(self.targets)}")
        if compound not in self.compounds:
            raise ModelError("compound", f"unknown compound {compound!r}",
                             f"use one of {', '.join(self.compounds)}")
        row = self.rows.get((target, compound))
        if row is not None:
            return row
        for other in _FALLBACK.get(compound, ()):
            base = self.rows.get((target, other))
            if base is not None:
                return Affinity(target, compound, base.value_um, base.kind,
                                f"assumed: racemic value ({base.source}); no enantiomer-"
                                "specific value retrieved", "assumed")
        return None

    def matrix(self, compounds: list[str], targets: list[str]) -> np.ndarray:
        """1/K (1/µM) with compounds on rows, targets on columns; 0 where none binds."""
        out = np.zeros((len(compounds), len(targets)))
        for i, c in enumerate(compounds):
            for j, t in enumerate(targets):
                a = self.affinity(t, c)
                if a is not None:
                    out[i, j] = 1.0 / a.value_um
        return out

    def default_targets(self, include_disputed: bool = False) -> list[str]:
        """Target ids, the disputed ones only on request."""
        return [k for k, t in self.targets.items() if include_disputed or not t.disputed]


@cache
def load_target_data() -> TargetData:
    """Read the packaged target data (cached)."""
    text = resources.files("ketasim.data").joinpath("targets.toml").read_text("utf-8")
    raw = tomllib.loads(text)
    compounds = {k: Compound(k, v["name"], float(v["molar_mass"]), float(v["fu"]),
                             v["fu_source"], v["fu_grade"])
                 for k, v in raw["compounds"].items()}
    targets = {k: TargetInfo(k, v["name"], v["group"], bool(v.get("disputed", False)),
                             v.get("dispute", ""))
               for k, v in raw["targets"].items()}
    rows = {}
    for r in raw["affinity"]:
        if r["target"] not in targets or r["compound"] not in compounds:
            raise ModelError("targets.toml", f"row {r} names an unknown target or compound",
                             "fix the data file")
        rows[(r["target"], r["compound"])] = Affinity(r["target"], r["compound"],
                                                      float(r["value"]), r["kind"],
                                                      r["source"], r["grade"])
    return TargetData(compounds, targets, rows)


__all__ = ["Affinity", "Compound", "TargetData", "TargetInfo", "load_target_data"]
