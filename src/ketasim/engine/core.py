"""The engine protocol and the event-driven driver shared by the analytic and ODE engines.

An engine supplies two operations on one subject's state vector: ``propagate`` (move the
state across an interval with constant input rates and one parameter set) and, optionally,
an exact steady state for linear systems. The driver walks a
:class:`~ketasim.dosing.schedule.Schedule` node by node and applies resets, boluses,
steady states and outputs in NM-TRAN order.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from ketasim.dosing.schedule import Schedule, SteadyStateSpec
from ketasim.errors import ModelError, SolverError
from ketasim.model.model import Model


@dataclass
class SubjectProblem:
    """Everything an engine needs for one subject: model, schedule and per-record values."""

    model: Model
    schedule: Schedule
    pvec: np.ndarray  # (n_records, n_ind): individual values per record
    y0: np.ndarray  # (n_records, n_states): initial/reset state per record's parameters


class Engine(ABC):
    """A strategy that solves one subject's schedule; see :func:`ketasim.engine.simulate`."""

    name = "engine"

    def check(self, model: Model) -> None:
        """Raise :class:`ModelError` if this engine cannot solve ``model``."""

    @abstractmethod
    def propagate(self, prob: SubjectProblem, y: np.ndarray, t0: float, t1: float,
                  rates: np.ndarray, rec: int) -> np.ndarray:
        """State at ``t1`` from ``y`` at ``t0`` with input ``rates`` and record ``rec``'s values."""

    def linear_steady_state(self, prob: SubjectProblem, spec: SteadyStateSpec,
                            rates_cycle: list[tuple[float, np.ndarray]], rec: int
                            ) -> np.ndarray | None:
        """Exact periodic pre-dose state, or None when the engine has no closed form."""
        return None

    def solve(self, prob: SubjectProblem) -> tuple[np.ndarray, list[str]]:
        """States at every record's output action, shape ``(n_records, n_states)``."""
        sched = prob.schedule
        n_states = prob.model.n_states
        out = np.full((sched.n_records, n_states), np.nan)
        y = prob.y0[0].copy()
        t = sched.nodes[0].time if sched.nodes else 0.0
        rates = np.zeros(n_states)
        messages: list[str] = []
        for node in sched.nodes:
            if node.time > t:
                y = self.propagate(prob, y, t, node.time, rates, node.param_record)
                t = node.time
            for a in node.actions:
                if a.kind == "obs":
                    out[a.record] = y
                elif a.kind == "bolus":
                    assert a.amount is not None
                    y = y.copy()
                    y[a.cmt] += float(a.amount[0])
                elif a.kind == "reset":
                    y = prob.y0[node.param_record].copy()
                elif a.kind == "ss":
                    assert a.spec is not None
                    ss = self.steady_state(prob, a.spec, y)
                    y = y + ss if a.spec.add else ss
            assert node.rates is not None
            rates = np.zeros(n_states)
            rates[: sched.n_cmt] = node.rates[0]
        return out, messages

    # ------------------------------------------------------------------ steady state
    def _cycle(self, spec: SteadyStateSpec, n_states: int) -> list[tuple[float, np.ndarray]]:
        """Piecewise-constant input over one cycle [0, ii): overlapping infusions counted."""
        r = np.zeros(n_states)
        rate = float(spec.rate[0])
        if rate == 0 or spec.dur <= 0:
            return [(spec.ii, r)]
        m = math.floor(spec.dur / spec.ii + 1e-12)
        rem = spec.dur - m * spec.ii
        if rem <= 1e-12 * spec.ii:
            rem = 0.0
        segs = []
        if rem > 0:
            r1 = r.copy()
            r1[spec.cmt] = (m + 1) * rate
            segs.append((rem, r1))
        r2 = r.copy()
        r2[spec.cmt] = m * rate
        if spec.ii - rem > 0:
            segs.append((spec.ii - rem, r2))
        return segs

    def _run_segments(self, prob: SubjectProblem, y: np.ndarray,
                      segs: list[tuple[float, np.ndarray]], rec: int,
                      until: float = math.inf) -> np.ndarray:
        t = 0.0
        for dur, r in segs:
            step = min(dur, until - t)
            if step <= 0:
                break
            y = self.propagate(prob, y, 0.0, step, r, rec)
            t += step
        return y

    def steady_state(self, prob: SubjectProblem, spec: SteadyStateSpec,
                     current: np.ndarray) -> np.ndarray:
        """The periodic state ``spec.phase`` hours after an administration."""
        model = prob.model
        n = model.n_states
        rec = spec.record
        base = np.zeros(n) if spec.add else prob.y0[rec].copy()
        if spec.add and model.states:
            raise ModelError("SS", "SS=2 (add a steady state) needs a linear model",
                             "use SS=1 with nonlinear states")
        if spec.ii == 0:  # constant infusion
            r = np.zeros(n)
            r[spec.cmt] = float(spec.rate[0])
            exact = self.linear_steady_state(prob, spec, [(math.inf, r)], rec)
            if exact is not None:
                return exact
            return self._root(lambda x: self.propagate(prob, x, 0.0, 1.0, r, rec), base, spec)
        segs = self._cycle(spec, n)
        b = np.zeros(n)
        b[spec.cmt] = float(spec.bolus[0])
        pre = self.linear_steady_state(prob, spec, segs, rec)
        if pre is None:
            def cycle(x: np.ndarray) -> np.ndarray:
                return self._run_segments(prob, x + b, segs, rec)
            pre = self._root(cycle, base, spec)
        if spec.phase >= spec.ii:
            return pre
        return self._run_segments(prob, pre + b, segs, rec, until=spec.phase)

    def _root(self, step: object, start: np.ndarray, spec: SteadyStateSpec) -> np.ndarray:
        """Fixed point of ``step`` (a cycle map), by iteration then a quasi-Newton solve."""
        f = step  # type: ignore[assignment]
        x = start.copy()
        for _ in range(20):
            x = f(x)  # type: ignore[operator]
        scale = max(1.0, float(np.max(np.abs(x))))
        sol = optimize.root(lambda z: (f(z * scale) - z * scale) / scale,  # type: ignore[operator]
                            x / scale, method="hybr", options={"xtol": 1e-14})
        x = sol.x * scale
        resid = np.max(np.abs(f(x) - x))  # type: ignore[operator]
        if not np.isfinite(resid) or resid > 1e-9 * scale:
            raise SolverError("SS", f"steady state (record {spec.record + 1}) did not converge "
                              f"(residual {resid:.2e})", "check that the model eliminates the drug")
        return np.asarray(x)


__all__ = ["Engine", "SubjectProblem"]
