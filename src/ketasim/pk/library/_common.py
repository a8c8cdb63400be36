"""Helpers shared by the library modules: parameter records and standard outputs."""

from __future__ import annotations

from ketasim.model.model import Covariate, Output, Parameter
from ketasim.pk.library_model import MOLAR_MASS, CovariateDistribution
from ketasim.references import format_citation, short_citation

WEIGHT = Covariate(None, "kg", "body weight", 0.5, 400.0)
AGE = Covariate(40.0, "year", "age", 0.0, 120.0)


def cite(*keys: str, note: str = "") -> str:
    """The full citations of bibliography ``keys`` (a library entry's citation), with a note."""
    text = "; ".join(format_citation(k) for k in keys)
    return f"{text} ({note})" if note else text


def cite_short(*keys: str) -> str:
    """``Otto et al. 2021; Fanta et al. 2015``: the short citations of ``keys``."""
    return "; ".join(short_citation(k) for k in keys)


def lit(value: float, unit: str, description: str, source: str, grade: str = "V") -> Parameter:
    """A literature value; ``source`` names bibliography keys (``"otto2021, Table 3"``) and
    ``grade`` is how the number was checked (V, S, M or U)."""
    return Parameter(value, unit, description, source=source, evidence="literature", grade=grade)


def assumed(value: float, unit: str, description: str, reason: str) -> Parameter:
    """An assumed value; ``reason`` says why."""
    return Parameter(value, unit, description, source=reason, evidence="assumed")


def calibrated(value: float, unit: str, description: str, run: str) -> Parameter:
    """A value from a documented, repeatable calibration run."""
    return Parameter(value, unit, description, source=run, evidence="calibrated")


def eta(name: str) -> Parameter:
    """A random effect: 0 for the typical subject, sampled for virtual patients."""
    return Parameter(0.0, "", f"random effect ({name})", source="random effect; variance in "
                     "the model's RandomEffects", evidence="literature")


def concentration(expr: str, analyte: str, description: str) -> Output:
    """An mg/L concentration output of ``analyte`` (molar mass attached for µM)."""
    return Output(expr, "mg/L", description, molar_mass=MOLAR_MASS[analyte])


def adult_weight(mean: float, sd: float, low: float, high: float, source: str
                 ) -> CovariateDistribution:
    """Normal weight distribution truncated to the studied range."""
    return CovariateDistribution("weight", "normal", mean=mean, sd=sd, low=low, high=high,
                                 source=source)
