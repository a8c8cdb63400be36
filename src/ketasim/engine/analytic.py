"""Analytic engine for linear compartment systems: exact matrix exponentials.

Between events the state obeys dA/dt = K A + r with constant K and r, whose exact solution is
A(t + h) = Φ(h) A(t) + Γ(h) r with Φ(h) = exp(K h) and Γ(h) = ∫₀ʰ exp(K s) ds. Both come
from one matrix exponential of the block matrix [[K, I], [0, 0]]·h (Van Loan), computed by
scipy's scaling-and-squaring Padé algorithm (relative accuracy near machine precision). Any
number of compartments, depots and metabolite chains works, and repeated eigenvalues
(ka = k) need no special case. Steady states are solved in closed form:
(I − Φ(τ)) A_trough = A after one cycle from A = dose.

>>> from ketasim.engine.analytic import AnalyticEngine
>>> AnalyticEngine().name
'analytic'
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg

from ketasim.dosing.schedule import SteadyStateSpec
from ketasim.engine.core import SubjectEngine
from ketasim.engine.prepare import SubjectProblem
from ketasim.errors import ModelError
from ketasim.model.model import Model


@dataclass
class AnalyticEngine(SubjectEngine):
    """Exact solution of linear models (no nonlinear states or fluxes)."""

    name: str = "analytic"
    _cache: dict[tuple[bytes, float], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False)
    _k: dict[bytes, np.ndarray] = field(default_factory=dict, repr=False)
    _eig: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray] | None] = field(
        default_factory=dict, repr=False)

    def check(self, model: Model) -> None:
        if not model.is_linear:
            raise ModelError("engine", f"model {model.name} has nonlinear states or fluxes; the "
                             "analytic engine solves linear systems only",
                             "use engine=OdeEngine() or PopulationEngine()")

    def _matrix(self, prob: SubjectProblem, rec: int) -> tuple[bytes, np.ndarray]:
        key = prob.model.fingerprint.encode() + prob.pvec[rec].tobytes()
        k = self._k.get(key)
        if k is None:
            if len(self._k) > 4096:  # bounded: an engine may be reused for many subjects
                self._k.clear()
                self._eig.clear()
            model = prob.model
            ind = dict(zip(model.compiled.ind_order, prob.pvec[rec], strict=True))
            k = model.system_matrix(ind)
            self._k[key] = k
        return key, k

    def propagators(self, prob: SubjectProblem, rec: int, h: float
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Φ(h) and Γ(h) for record ``rec``'s parameters."""
        key, k = self._matrix(prob, rec)
        hit = self._cache.get((key, h))
        if hit is not None:
            return hit
        n = k.shape[0]
        block = np.zeros((2 * n, 2 * n))
        block[:n, :n] = k * h
        block[:n, n:] = np.eye(n) * h
        e = linalg.expm(block)
        pair = (e[:n, :n], e[:n, n:])
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[(key, h)] = pair
        return pair

    def propagate(self, prob: SubjectProblem, y: np.ndarray, t0: float, t1: float,
                  rates: np.ndarray, rec: int) -> np.ndarray:
        phi, gamma = self.propagators(prob, rec, t1 - t0)
        out = phi @ y
        if np.any(rates):
            out = out + gamma @ rates
        return np.asarray(out)

    def propagate_many(self, prob: SubjectProblem, y: np.ndarray, t0: float,
                       times: np.ndarray, rates: np.ndarray, rec: int) -> np.ndarray:
        """All output times of an event-free stretch at once, from the eigen-decomposition.

        A(t0 + τ) = V (e^{λτ} ∘ z + τ φ₁(λτ) ∘ u), z = V⁻¹A(t0), u = V⁻¹r, φ₁(x) = (eˣ − 1)/x.
        Used when V is well conditioned (cond ≤ 1e6, so the result is exact to ~1e-10);
        otherwise each interval goes through the matrix exponential.
        """
        if len(times) < 8:
            return super().propagate_many(prob, y, t0, times, rates, rec)
        key, k = self._matrix(prob, rec)
        eig = self._eig.get(key)
        if eig is None:
            lam, vec = np.linalg.eig(k)
            with np.errstate(all="ignore"):
                cond = np.linalg.cond(vec)
            eig = (lam, vec, np.linalg.inv(vec)) if np.isfinite(cond) and cond <= 1e6 else None
            self._eig[key] = eig
        if eig is None:
            return super().propagate_many(prob, y, t0, times, rates, rec)
        lam, vec, inv = eig
        tau = np.asarray(times, dtype=float)[:, None] - t0
        x = lam[None, :] * tau
        z = inv @ y
        modal = np.exp(x) * z[None, :]
        if np.any(rates):
            u = inv @ rates
            small = np.abs(x) < 1e-3
            with np.errstate(all="ignore"):
                phi1 = np.where(small, 1 + x / 2 + x * x / 6 + x ** 3 / 24, np.expm1(x) / x)
            modal = modal + tau * phi1 * u[None, :]
        out = modal @ vec.T
        return np.asarray(out.real if np.iscomplexobj(out) else out)

    def linear_steady_state(self, prob: SubjectProblem, spec: SteadyStateSpec,
                            rates_cycle: list[tuple[float, np.ndarray]], rec: int
                            ) -> np.ndarray:
        _, k = self._matrix(prob, rec)
        n = k.shape[0]
        if spec.ii == 0:
            r = rates_cycle[0][1]
            try:
                return np.asarray(np.linalg.solve(k, -r))
            except np.linalg.LinAlgError:
                raise ModelError("SS", "a constant infusion has no steady state in a model "
                                 "with a compartment that never empties",
                                 "add elimination or drop SS") from None
        b = np.zeros(n)
        b[spec.cmt] = float(spec.bolus[0])
        after_one = self._run_segments(prob, b, rates_cycle, rec)
        phi_tau = linalg.expm(k * spec.ii)
        a = np.eye(n) - phi_tau
        if np.linalg.cond(a) > 1e12:
            raise ModelError("SS", "steady state does not exist: a compartment never empties",
                             "add elimination from every compartment or drop SS")
        return np.asarray(np.linalg.solve(a, after_one))


__all__ = ["AnalyticEngine"]
