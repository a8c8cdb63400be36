"""Indications: the instrument, population and evidence grade of each, from
``ketasim/data/indications.toml``; efficacy parameters come from the stored calibration.

>>> ind = get_indication("trd")
>>> ind.instrument, ind.grade, ind.predicts_efficacy
('madrs', 'A', True)
>>> get_indication("eating_disorders").predicts_efficacy
False
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ketasim.errors import ModelError

ALIASES = {"mdd": "trd", "depression": "trd", "bipolar_depression": "bipolar",
           "si": "suicidal_ideation", "pain": "crps", "chronic_pain": "crps",
           "sad": "social_anxiety", "aud": "alcohol_use", "adolescent": "adolescent_depression",
           "anxiety": "gad"}


@dataclass(frozen=True)
class Indication:
    """A condition ketasim models (or says it cannot)."""

    id: str
    name: str
    instrument: str
    instruments: tuple[str, ...]
    grade: str
    predicts_efficacy: bool
    evidence: str
    baseline_mean: float = 0.0
    baseline_sd: float = 0.0
    baseline_source: str = ""
    pathway: str = "cascade"
    reason: str = ""
    ideation_baseline_mean: float = 0.0
    ideation_baseline_sd: float = 0.0
    ideation_baseline_source: str = ""

    @property
    def forecasts_ideation(self) -> bool:
        """Whether C-SSRS ideation is forecast (an ideation baseline is given)."""
        return self.ideation_baseline_mean > 0.0


@cache
def load_indications() -> dict[str, Indication]:
    """All indications, by id."""
    text = resources.files("ketasim.data").joinpath("indications.toml").read_text("utf-8")
    out = {}
    for key, row in tomllib.loads(text).items():
        out[key] = Indication(key, row["name"], row["instrument"], tuple(row["instruments"]),
                              row["grade"], row["predicts_efficacy"], row["evidence"],
                              row.get("baseline_mean", 0.0), row.get("baseline_sd", 0.0),
                              row.get("baseline_source", ""), row.get("pathway", "cascade"),
                              row.get("reason", ""), row.get("ideation_baseline_mean", 0.0),
                              row.get("ideation_baseline_sd", 0.0),
                              row.get("ideation_baseline_source", ""))
    return out


def get_indication(name: str) -> Indication:
    """The indication with this id (or a common alias such as ``mdd``, ``pain``)."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    table = load_indications()
    if key not in table:
        raise ModelError("indication", f"unknown indication {name!r}",
                         f"use one of {', '.join(table)}")
    return table[key]


def require_efficacy(ind: Indication) -> None:
    """Raise, saying why, when the evidence cannot support an efficacy prediction."""
    if not ind.predicts_efficacy:
        raise ModelError("indication", f"ketasim cannot predict efficacy for {ind.name}: "
                         f"{ind.reason}", f"published evidence: {ind.evidence}")


__all__ = ["Indication", "get_indication", "load_indications", "require_efficacy"]
