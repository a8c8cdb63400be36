"""Documented, repeatable calibration runs for library parameters without a published value.

Each run solves one parameter so that a model reproduces one reported summary (for example,
an absorption rate constant so that the typical subject's Tmax equals the reported Tmax).
The library modules store the solved value with ``evidence="calibrated"`` and name the run;
``tests/test_pk_library.py`` repeats every run and checks the stored value.

>>> sorted(CALIBRATIONS)  # doctest: +NORMALIZE_WHITESPACE
['hornik_2018.ka_im', 'racemic.fm_presys', 'racemic.fsw_sl', 'racemic.ka_im',
 'racemic.ka_po', 'racemic.ka_sl']

The racemic enteral runs build on one another and are solved in this order: ``ka_po`` (oral
Tmax; no other calibrated value enters it), then ``fm_presys`` (oral ratio, given
``ka_po``), then ``fsw_sl`` (sublingual ratio, given both). Each test run solves one
parameter with the others at their stored values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ketasim.model.model import Model


@dataclass(frozen=True)
class Calibration:
    """Solve ``parameter`` of ``model()`` so that ``measure(model)`` equals ``target``."""

    model: Callable[[], Model]
    parameter: str
    measure: Callable[[Model], float]
    target: float
    bracket: tuple[float, float]
    source: str

    def value(self, value: float) -> float:
        """The measure with the parameter set to ``value``."""
        return self.measure(self.model().with_parameters(**{self.parameter: value}))

    def solve(self) -> float:
        """The calibrated value (relative tolerance 1e-6 on the parameter)."""
        lo, hi = self.bracket
        return float(brentq(lambda v: self.value(v) - self.target, lo, hi, rtol=1e-6))


def tmax_of(regimen: str, analyte: str, covariates: dict[str, float], horizon_h: float
            ) -> Callable[[Model], float]:
    """Typical Tmax (h, grid of 1 s) of ``analyte`` after ``regimen``."""
    def measure(m: Model) -> float:
        from ketasim.engine.simulate import simulate
        t = np.arange(0.0, horizon_h, 1.0 / 3600.0)
        r = simulate(m, regimen, covariates=covariates, times=t)
        return float(t[int(np.argmax(r[analyte]))])
    return measure


def auc_ratio_of(regimen: str, numerator: str, denominator: str, covariates: dict[str, float],
                 horizon_h: float) -> Callable[[Model], float]:
    """AUC(numerator)/AUC(denominator) over 0-``horizon_h`` (grid of 3 min)."""
    def measure(m: Model) -> float:
        from ketasim.engine.simulate import simulate
        t = np.arange(0.0, horizon_h + 1e-9, 0.05)
        r = simulate(m, regimen, covariates=covariates, times=t)
        return float(np.trapezoid(r[numerator], t) / np.trapezoid(r[denominator], t))
    return measure


def _hornik() -> Model:
    from ketasim.pk.library import hornik_2018
    return hornik_2018.build().model


def _racemic() -> Model:
    from ketasim.pk.library import racemic_enantiomers
    return racemic_enantiomers.build().model


W70 = {"weight": 70.0}
CALIBRATIONS: dict[str, Calibration] = {
    "hornik_2018.ka_im": Calibration(
        _hornik, "ka_im", tmax_of("10 mg IM", "ketamine", W70, 4.0), 10.0 / 60.0,
        (0.5, 200.0), "IM Tmax 5-15 min (clements1982) [S]; midpoint 10 min"),
    "racemic.ka_im": Calibration(
        _racemic, "ka_im", tmax_of("35 mg IM", "ketamine", W70, 4.0), 10.0 / 60.0,
        (0.5, 200.0), "IM Tmax 5-15 min (clements1982) [S]; midpoint 10 min"),
    "racemic.ka_sl": Calibration(
        _racemic, "ka_sl", tmax_of("25 mg sublingual", "ketamine", W70, 4.5), 0.75,
        (0.05, 50.0), "sublingual wafer median Tmax 0.75 h (rolan2014, abstract) [V]"),
    "racemic.ka_po": Calibration(
        _racemic, "ka_po", tmax_of("25 mg oral", "ketamine", W70, 4.0), 0.96, (0.2, 50.0),
        "oral (swallowed lozenge) 25 mg: ketamine Tmax 0.96 ± 0.8 h, mean of 6 patients "
        "(chong2006, abstract) [V]"),
    "racemic.fm_presys": Calibration(
        _racemic, "fm_presys", auc_ratio_of("25 mg oral", "norketamine", "ketamine", W70, 8.0),
        5.0, (0.0, 1.0), "oral 25 mg: norketamine/ketamine AUC0-8h ratio 5 (chong2009, "
        "abstract) [V]"),
    "racemic.fsw_sl": Calibration(
        _racemic, "fsw_sl", auc_ratio_of("25 mg sublingual", "norketamine", "ketamine", W70,
                                         8.0),
        2.1, (0.0, 1.0), "sublingual 25 mg: norketamine/ketamine AUC0-8h ratio 2.1 (chong2009, "
        "abstract) [V]"),
}

__all__ = ["CALIBRATIONS", "Calibration"]
