"""ODE engine: piecewise integration between events with stated tolerances.

Any model, nonlinear states and fluxes included. The right-hand side is generated from the
model's expressions; scipy's ``solve_ivp`` integrates each interval between events (so no
step crosses a discontinuity) with ``rtol`` and ``atol`` stated here, never library defaults.
Steady states of nonlinear systems are found as the fixed point of the dosing cycle.

``atol`` is meant as a bound on the absolute error of the amounts, not only of each step.
LSODA controls the local error of each step in a root-mean-square norm over the states, and
on stiff problems (it then steps with BDF formulas) the global error in a decaying tail
settles at a few times the local tolerance: with cl=32, v=79, q=44, v2=2, ka=2 (rates
-22.6, -2 and -0.39 per h) and a 1-mg dose, the central amount 31 h after the last dose,
2.2e-6 mg, was 2.6e-12 mg off (2.6 atol, 1.2e-6 relative). The integrator is therefore run
with an absolute tolerance :data:`ATOL_SAFETY` (0.1) times ``atol``, which keeps that error
below ``atol`` (at most 0.5e-12 mg over the tail there) for about 15% more time on the NONMEM
dosing scenarios; Radau, accurate to 1e-15 there, takes 40 times longer on them.

>>> OdeEngine().rtol, OdeEngine().atol
(1e-10, 1e-12)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from ketasim.dosing.schedule import SteadyStateSpec
from ketasim.engine.core import SubjectEngine
from ketasim.engine.prepare import SubjectProblem
from ketasim.errors import ModelError, SolverError
from ketasim.model.model import Model, compile_function

#: The integrator's absolute tolerance, as a fraction of ``OdeEngine.atol`` (module docstring)
ATOL_SAFETY = 0.1


@dataclass
class OdeEngine(SubjectEngine):
    """Numerical integration (default LSODA, rtol 1e-10, atol 1e-12; both must be ≤ 1e-6).

    Steady states are solved as fixed points of the dosing cycle, integrated with the tighter
    ``ss_rtol``/``ss_atol`` (1e-12, 1e-14) because the fixed point amplifies integration error
    by 1/(1 − accumulation ratio) when elimination is slow relative to the interval.
    """

    method: str = "LSODA"
    rtol: float = 1e-10
    atol: float = 1e-12
    max_step: float = np.inf
    ss_rtol: float = 1e-12
    ss_atol: float = 1e-14
    name: str = "ode"
    _fns: dict[str, Any] = field(default_factory=dict, repr=False)
    _ss_tol: tuple[float, float] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not (0 < self.rtol <= 1e-6 and 0 < self.atol <= 1e-6):
            raise ModelError("tolerances", f"rtol={self.rtol}, atol={self.atol}",
                             "use tolerances between 0 and 1e-6 (defaults 1e-10 and 1e-12)")
        if self.method not in ("LSODA", "Radau", "BDF", "DOP853", "RK45"):
            raise ModelError("method", f"unknown ODE method {self.method!r}",
                             "use LSODA, Radau, BDF, DOP853 or RK45")

    def check(self, model: Model) -> None:
        return None

    def steady_state(self, prob: SubjectProblem, spec: SteadyStateSpec,
                     current: np.ndarray) -> np.ndarray:
        self._ss_tol = (min(self.rtol, self.ss_rtol), min(self.atol * ATOL_SAFETY, self.ss_atol))
        try:
            return super().steady_state(prob, spec, current)
        finally:
            self._ss_tol = None

    def _rhs(self, model: Model) -> Any:
        fn = self._fns.get(model.fingerprint)
        if fn is None:
            fn = compile_function(model.rhs_source("rhs"), "rhs")
            self._fns[model.fingerprint] = fn
        return fn

    def propagate(self, prob: SubjectProblem, y: np.ndarray, t0: float, t1: float,
                  rates: np.ndarray, rec: int) -> np.ndarray:
        rhs = self._rhs(prob.model)
        p = prob.pvec[rec]
        n = len(y)

        def f(t: float, yy: np.ndarray) -> np.ndarray:
            dy = np.empty(n)
            rhs(t, yy, p, rates, dy)
            return dy

        if t1 - t0 <= 1e-9 * max(1.0, abs(t0)):
            # an interval shorter than the solver's resolution (e.g. an infusion that ends
            # within rounding of an observation): one explicit step is exact to O(h^2)
            return np.asarray(y + (t1 - t0) * f(t0, y))
        rtol, atol = self._ss_tol or (self.rtol, self.atol * ATOL_SAFETY)
        # t_eval=[t1]: keep only the end state, not every step (a stiff interval can take
        # millions of steps, and solve_ivp would otherwise hold them all)
        sol = solve_ivp(f, (t0, t1), y, method=self.method, t_eval=(t1,), rtol=rtol, atol=atol,
                        max_step=self.max_step)
        if not sol.success:
            raise SolverError("engine", f"ODE solver failed on [{t0:g}, {t1:g}] h: "
                              f"{sol.message}", "try method='Radau' or looser tolerances")
        return np.asarray(sol.y[:, -1])


__all__ = ["ATOL_SAFETY", "OdeEngine"]
