"""A published model packaged with everything needed to use and check it.

:class:`LibraryModel` wraps a :class:`~ketasim.model.Model` with its citation, the analytes it
predicts (stable identifiers and molar masses), the population it was estimated in (ranges
and covariate distributions for virtual patients), its inter-individual and inter-occasion
variability (as random-effect parameters ``eta_*`` of the model, zero for the typical
subject), its residual error per analyte, and its documented assumptions and known
discrepancies.

>>> from ketasim.pk import get_model
>>> m = get_model("perez_ruixo_2021")
>>> m.compound, [a.id for a in m.analytes]
('esketamine', ['esketamine', 'noresketamine'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ketasim.dosing.events import EventTable
from ketasim.dosing.route import Route
from ketasim.errors import CovariateError, ModelError
from ketasim.model.model import Model
from ketasim.model.variability import RandomEffects

Compound = Literal["racemic", "esketamine", "arketamine"]

# molar masses of the free bases, g/mol (bibliography: nlmixr2lib, Simons_2022_s_ketamine.R)
MOLAR_MASS = {
    "ketamine": 237.73,       # [V] nlmixr2lib Simons_2022 (mw_ketamine); DrugBank
    "norketamine": 223.70,    # [V] nlmixr2lib Simons_2022 vignette
    "hnk": 239.70,            # [V] nlmixr2lib Simons_2022 vignette
    "dhnk": 221.68,           # [S] third-party calibration code
}


@dataclass(frozen=True)
class Analyte:
    """A measured substance: stable id, the model output (mg/L) that predicts it, molar mass."""

    id: str
    output: str
    molar_mass: float
    description: str = ""


@dataclass(frozen=True)
class CovariateDistribution:
    """How a covariate is spread in the source study, for sampling virtual patients.

    ``kind``: ``normal`` (mean, sd), ``lognormal`` (median = mean, sd on the log scale),
    ``uniform`` (low, high), ``bernoulli`` (p), ``fixed`` (mean). Draws are truncated to
    [low, high].
    """

    name: str
    kind: Literal["normal", "lognormal", "uniform", "bernoulli", "fixed"]
    mean: float = 0.0
    sd: float = 0.0
    low: float = -np.inf
    high: float = np.inf
    p: float = 0.0
    source: str = ""

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws, truncated to [low, high] by redrawing (at most 100 rounds, then clip)."""
        def draw(k: int) -> np.ndarray:
            if self.kind == "normal":
                return rng.normal(self.mean, self.sd, k)
            if self.kind == "lognormal":
                return self.mean * np.exp(rng.normal(0.0, self.sd, k))
            if self.kind == "uniform":
                return rng.uniform(self.low, self.high, k)
            if self.kind == "bernoulli":
                return (rng.random(k) < self.p).astype(float)
            return np.full(k, self.mean)
        out = draw(n)
        for _ in range(100):
            bad = (out < self.low) | (out > self.high)
            if not bad.any():
                break
            out[bad] = draw(int(bad.sum()))
        return np.clip(out, self.low, self.high)


@dataclass(frozen=True)
class StudyPopulation:
    """Who the model was estimated in: a description, studied ranges, sampling distributions."""

    description: str
    n_subjects: int
    ranges: Mapping[str, tuple[float, float]]
    distributions: tuple[CovariateDistribution, ...] = ()
    sampling_site: Literal["arterial", "venous", "mixed"] = "venous"


@dataclass(frozen=True)
class ResidualError:
    """Residual (measurement) error: proportional and/or additive SD, or exponential (log).

    ``additive`` is in mg/L of the analyte.
    """

    proportional: float = 0.0
    additive: float = 0.0
    exponential: float = 0.0
    source: str = ""

    def apply(self, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add residual error to predictions."""
        v = np.asarray(values, dtype=float)
        if self.exponential:
            return v * np.exp(rng.normal(0.0, self.exponential, v.shape))
        sd = np.sqrt((self.proportional * v) ** 2 + self.additive ** 2)
        return v + rng.normal(0.0, 1.0, v.shape) * sd


@dataclass(frozen=True)
class LibraryModel:
    """A published ketamine model ready to simulate, sample and validate.

    ``iov`` names model *covariates* (default 0) that take a new random draw at every
    administration (inter-occasion variability of dose properties such as F or a
    zero-order duration).
    """

    name: str
    title: str
    citation: str
    compound: Compound
    model: Model
    analytes: tuple[Analyte, ...]
    population: StudyPopulation
    iiv: RandomEffects | None = None
    iov: RandomEffects | None = None
    residual: Mapping[str, ResidualError] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()
    known_discrepancies: tuple[str, ...] = ()
    expand_doses: Callable[[EventTable], EventTable] | None = None

    @property
    def routes(self) -> tuple[Route, ...]:
        """Routes the model takes doses by."""
        return tuple(self.model.routes)

    def analyte(self, analyte_id: str) -> Analyte:
        """The analyte with this id."""
        for a in self.analytes:
            if a.id == analyte_id:
                return a
        raise ModelError("analyte", f"{analyte_id!r} is not predicted by {self.name}",
                         f"use one of {', '.join(a.id for a in self.analytes)}")

    def check_route(self, route: Route) -> None:
        """Raise :class:`ModelError` if the model has no dosing compartment for ``route``."""
        if route not in self.model.routes:
            raise ModelError("route", f"model {self.name} does not take {route.word} doses",
                             "pick a model for this route (ketasim models) or another route")

    def extrapolation(self, covariates: Mapping[str, np.ndarray | float],
                      allow: bool = False) -> list[str]:
        """Warnings for covariates outside the studied ranges; an error unless ``allow``."""
        msgs = []
        for name, (lo, hi) in self.population.ranges.items():
            if name not in covariates:
                continue
            v = np.atleast_1d(np.asarray(covariates[name], dtype=float))
            n_out = int(np.sum((v < lo) | (v > hi)))
            if n_out:
                msgs.append(f"{name} {v.min():g}–{v.max():g} is outside the {lo:g}–{hi:g} "
                            f"studied by {self.name} ({n_out} subject(s)): extrapolation")
        if msgs and not allow:
            raise CovariateError(msgs[0].split()[0], msgs[0],
                                 "stay within the studied range or pass --allow-extrapolation")
        return msgs


__all__ = ["MOLAR_MASS", "Analyte", "Compound", "CovariateDistribution", "LibraryModel",
           "RandomEffects", "ResidualError", "StudyPopulation"]
