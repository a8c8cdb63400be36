"""Documented, repeatable calibration runs for library parameters without a published value.

Each run solves one parameter so that a model reproduces one reported summary (for example,
an absorption rate constant so that the typical subject's Tmax equals the reported Tmax).
The library modules store the solved value with ``evidence="calibrated"`` and name the run;
``tests/test_pk_library.py`` repeats every run and checks the stored value.

>>> sorted(CALIBRATIONS)[:2]
['hornik_2018.ka_im', 'racemic.ka_im']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ketasim.model.model import Model


@dataclass(frozen=True)
class Calibration:
    """Solve ``parameter`` of ``model()`` so that Tmax of ``analyte`` after ``regimen`` is
    ``target_tmax_h`` for the typical subject with ``covariates``."""

    model: Callable[[], Model]
    parameter: str
    regimen: str
    analyte: str
    target_tmax_h: float
    covariates: dict[str, float]
    bracket: tuple[float, float]
    source: str

    def tmax(self, value: float) -> float:
        """Typical Tmax (h) with the parameter set to ``value`` (grid of 1/3600 h)."""
        from ketasim.engine.simulate import simulate
        m = self.model().with_parameters(**{self.parameter: value})
        t = np.arange(0.0, max(4.0, 6 * self.target_tmax_h), 1.0 / 3600.0)
        r = simulate(m, self.regimen, covariates=self.covariates, times=t)
        return float(t[int(np.argmax(r[self.analyte]))])

    def solve(self) -> float:
        """The calibrated value (relative tolerance 1e-6 on the parameter)."""
        lo, hi = self.bracket
        return float(brentq(lambda v: self.tmax(v) - self.target_tmax_h, lo, hi, rtol=1e-6))


def _hornik() -> Model:
    from ketasim.pk.library import hornik_2018
    return hornik_2018.build().model


def _racemic() -> Model:
    from ketasim.pk.library import racemic_enantiomers
    return racemic_enantiomers.build().model


CALIBRATIONS: dict[str, Calibration] = {
    "hornik_2018.ka_im": Calibration(
        _hornik, "ka_im", "10 mg IM", "ketamine", 10.0 / 60.0, {"weight": 70.0}, (0.5, 200.0),
        "IM Tmax 5-15 min (Clements 1982 J Pharm Sci [S]); midpoint 10 min"),
    "racemic.ka_im": Calibration(
        _racemic, "ka_im", "35 mg IM", "ketamine", 10.0 / 60.0, {"weight": 70.0}, (0.5, 200.0),
        "IM Tmax 5-15 min (Clements 1982 J Pharm Sci [S]); midpoint 10 min"),
    "racemic.ka_sl": Calibration(
        _racemic, "ka_sl", "25 mg sublingual", "ketamine", 0.75, {"weight": 70.0},
        (0.05, 50.0), "sublingual wafer median Tmax 0.75 h (Rolan 2014 [V])"),
}

__all__ = ["CALIBRATIONS", "Calibration"]
