"""This patient's PK random effects from their drug levels (MAP Bayesian estimation).

The objective is NONMEM's MAXEVAL=0 POSTHOC one (and mapbayr's): with the library model's
between-subject covariance Ω and residual error (proportional, additive or exponential, as
the paper gives it),

    −2 log p(η | y) = Σⱼ [ ((yⱼ − fⱼ(η)) / gⱼ)² + 2 log gⱼ ] + ηᵀ Ω⁻¹ η + const

(for an exponential error: log yⱼ − log fⱼ over the log-scale SD). Only the random effects
of the analytes measured and of the parameters they touch move; the others stay at 0 because
their gradient is 0. Minimised with L-BFGS-B at ``gtol`` 1e-10; levels are ng/mL.

>>> import io
>>> from ketasim.estimation.patient import read_patient
>>> text = ("TIME,EVID,AMT,DUR,ROUTE,DVID,DV,WT\\n0,1,35,0.667,iv,,,70\\n"
...         "0.67,0,,,,ketamine,300,\\n2,0,,,,ketamine,90,\\n")
>>> pk = fit_pk(read_patient(io.StringIO(text)))
>>> pk.model, bool(pk.etas["eta_cl"] != 0.0)
('racemic_enantiomers', True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize

from ketasim.dosing.regimen import Regimen
from ketasim.errors import ModelError
from ketasim.estimation.patient import Level, PatientData, PatientDataError
from ketasim.pk.library_model import LibraryModel
from ketasim.population.pkrun import PKRun, resolve_model, run_pk

NG_PER_MG_L = 1000.0


def individual_pk(regimen: Regimen, weight_kg: float, times: np.ndarray,
                  etas: Mapping[str, float] | None = None, model: str | None = None) -> PKRun:
    """One patient's concentrations under ``regimen`` with random effects ``etas`` (0 when
    not given: the typical patient at this weight); the library model's own dose handling
    (nasal devices, occasions) applies, and a weight outside the studied range is an
    extrapolation reported in ``warnings``.

    >>> run = individual_pk(Regimen.parse("0.5 mg/kg IV over 40 min"), 70.0,
    ...                     np.array([0.5, 2.0]), {"eta_cl": 0.3})
    >>> run.concentration("ketamine", "ng/mL").shape
    (1, 2)
    """
    return run_pk(regimen, model=model, covariates={"weight": float(weight_kg)},
                  times=np.asarray(times, dtype=float), etas=dict(etas or {}),
                  allow_extrapolation=True)


@dataclass(frozen=True)
class PKFit:
    """MAP random effects of one patient's levels, with the objective at the MAP."""

    model: str
    etas: dict[str, float]
    objective: float
    n_levels: int


def pk_objective(data: PatientData, lm: LibraryModel, eta: np.ndarray) -> float:
    """−2 log posterior of the random effects ``eta`` (in ``lm.iiv.names`` order), up to a
    constant (module docstring)."""
    assert lm.iiv is not None
    names = lm.iiv.names
    etas = dict(zip(names, np.asarray(eta, dtype=float), strict=True))
    preds = _predictions(data, lm, etas)
    total = float(np.asarray(eta) @ np.linalg.solve(lm.iiv.omega, np.asarray(eta)))
    for j, lv in enumerate(data.levels):
        pred = float(preds[j]) * NG_PER_MG_L
        err = lm.residual.get(lv.analyte)
        if err is None:
            raise PatientDataError(f"row {lv.row}: DVID", f"{lm.name} gives no residual error "
                                   f"for {lv.analyte}", "give levels of the parent drug")
        if err.exponential:
            if lv.value <= 0 or pred <= 0:
                total += 1e6
                continue
            g = err.exponential
            total += ((np.log(lv.value) - np.log(pred)) / g) ** 2 + 2 * np.log(g)
        else:
            g = float(np.hypot(err.proportional * pred, err.additive * NG_PER_MG_L))
            g = max(g, 1e-6)
            total += ((lv.value - pred) / g) ** 2 + 2 * np.log(g)
    return total


def _predictions(data: PatientData, lm: LibraryModel, etas: Mapping[str, float]
                 ) -> np.ndarray:
    """Predicted levels (mg/L), one per level record (several may share a time)."""
    times = np.array([lv.time_h for lv in data.levels])
    grid = np.unique(times)
    run = individual_pk(data.regimen, data.weight_kg, grid, etas, lm.name)
    col = np.searchsorted(grid, times)
    return np.array([run.concentrations[lv.analyte][0, c]
                     for lv, c in zip(data.levels, col, strict=True)])


def fit_pk(data: PatientData, *, pk_model: str | None = None, gtol: float = 1e-10) -> PKFit:
    """MAP estimate of the PK random effects from ``data.levels`` (cached per dosing,
    weight and levels)."""
    return _fit_pk(data.regimen, data.weight_kg, data.levels, pk_model, gtol)


@lru_cache(maxsize=64)
def _fit_pk(regimen: Regimen, weight_kg: float, levels: tuple[Level, ...],
            pk_model: str | None, gtol: float) -> PKFit:
    data = PatientData(weight_kg, None, regimen, levels=levels)
    if not data.levels:
        raise PatientDataError("DVID", "the patient has no drug levels",
                               "give level rows (DVID ketamine, DV in ng/mL)")
    lm = resolve_model(pk_model, data.regimen)
    if lm.iiv is None:
        raise ModelError("model", f"{lm.name} has no between-subject variability",
                         "pick a library model with random effects")
    known = {a.id for a in lm.analytes}
    for lv in data.levels:
        if lv.analyte not in known:
            raise PatientDataError(f"row {lv.row}: DVID", f"{lv.analyte} is not predicted by "
                                   f"{lm.name}", f"use one of {', '.join(sorted(known))}")
    names = lm.iiv.names
    k = len(names)
    sd = np.sqrt(np.diag(lm.iiv.omega))
    # only the random effects that move the measured levels are estimated (the others have
    # a zero gradient and stay at 0, as NONMEM's POSTHOC leaves them)
    base = _predictions(data, lm, {})
    active = [i for i, n in enumerate(names)
              if not np.allclose(_predictions(data, lm, {n: 0.5 * sd[i]}), base,
                                 rtol=1e-12, atol=0.0)]
    if not active:
        raise PatientDataError("DVID", "the levels given do not depend on any random effect",
                               "give levels of the parent drug after a dose")

    def objective(x: np.ndarray) -> float:
        eta = np.zeros(k)
        eta[active] = x
        return pk_objective(data, lm, eta)

    res = optimize.minimize(objective, np.zeros(len(active)), method="L-BFGS-B",
                            bounds=[(-5 * sd[i], 5 * sd[i]) for i in active],
                            options={"gtol": gtol, "ftol": 1e-15, "maxiter": 1000})
    eta = np.zeros(k)
    eta[active] = res.x
    etas = {n: float(x) for n, x in zip(names, eta, strict=True)}
    return PKFit(lm.name, etas, float(res.fun), len(data.levels))


__all__ = ["PKFit", "fit_pk", "individual_pk", "pk_objective"]
