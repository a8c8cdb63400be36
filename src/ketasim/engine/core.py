"""The engine protocol, and the event-driven driver shared by the analytic and ODE engines.

Every engine is an :class:`Engine`: a strategy object that :func:`ketasim.engine.simulate`
hands one :class:`~ketasim.engine.prepare.Prepared` request (model, subjects keyed by ID,
output rows) through :meth:`Engine.run_prepared`; the entry point never asks which engine
it holds. :class:`SubjectEngine` solves subjects one at a time: a concrete engine supplies
``propagate`` (move one subject's state across an interval with constant input rates and one
parameter set) and, optionally, an exact steady state for linear systems; the driver walks a
:class:`~ketasim.dosing.schedule.Schedule` node by node and applies resets, boluses, steady
states and outputs in NM-TRAN order. The population engine solves many subjects at once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from ketasim.dosing.events import EventTable
from ketasim.dosing.schedule import SteadyStateSpec
from ketasim.engine.prepare import Prepared, SubjectProblem, row_order, subject_problem
from ketasim.engine.result import Result, Status
from ketasim.errors import ModelError, SolverError
from ketasim.model.model import Model


class Engine(ABC):
    """A strategy that solves a prepared request; see :func:`ketasim.engine.simulate`."""

    name = "engine"

    def check(self, model: Model) -> None:  # noqa: B027 - optional hook, default accepts all
        """Raise :class:`ModelError` if this engine cannot solve ``model``."""

    @abstractmethod
    def run_prepared(self, job: Prepared) -> Result:
        """Solve every subject of ``job`` into one :class:`Result`: per subject, the rows of
        :func:`~ketasim.engine.prepare.row_order`, subjects in ``job.ids`` order. A
        :class:`SolverError` marks the result failed (``status``), or is raised when
        ``job.throw``."""


class SubjectEngine(Engine):
    """An engine that solves one subject at a time (the analytic and ODE engines)."""

    def run_prepared(self, job: Prepared) -> Result:
        """Each subject's problem, solved in turn, rows in the dataset's record order."""
        model = job.model
        table = job.table
        out_times = job.times
        parts: dict[str, list[np.ndarray]] = {"id": [], "t": [], "evid": [], "y": []}
        outputs: dict[str, list[np.ndarray]] = {k: [] for k in model.outputs}
        messages: list[str] = []
        for k, (sid, sub) in enumerate(table.subjects()):
            covs, pars = job.subject_values(k)
            y_rec, y_t, msg = self.solve_subject(model, sub, covs, pars, job)
            if msg:
                messages.append(f"subject {sid}: {msg}")
            mask, order = row_order(sub.time, sub.evid, out_times, job.observations_only)
            t_rows = np.concatenate([sub.time[mask], out_times])[order]
            y_rows = np.concatenate([y_rec[mask], y_t])[order]
            # covariates of each row: the record's own, or (output times) by the covariate rule
            row_covs: dict[str, np.ndarray | float] = dict(covs)
            for c, v in sub.covariates.items():
                if c in model.covariates:
                    if job.covariate_rule == "nocb":
                        j = np.searchsorted(sub.time, out_times, side="left")
                    else:
                        j = np.searchsorted(sub.time, out_times, side="right") - 1
                    j = np.clip(j, 0, sub.n_records - 1)
                    row_covs[c] = np.concatenate([v[mask], v[j]])[order]
            row_covs = {c: v for c, v in row_covs.items() if c in model.covariates}
            n_rows = len(t_rows)
            ind = model.individual(row_covs, pars)
            ind = {c: np.broadcast_to(v, (n_rows,)) for c, v in ind.items()}
            vals = model.evaluate_outputs(t_rows, y_rows, ind)
            for name in outputs:
                outputs[name].append(vals[name])
            parts["id"].append(np.full(n_rows, sid))
            parts["t"].append(t_rows)
            parts["evid"].append(np.concatenate([sub.evid[mask],
                                                 np.zeros(len(out_times), int)])[order])
            parts["y"].append(y_rows)
        units = {k: o.unit for k, o in model.outputs.items()}
        state_units = {c.name: "mg" for c in model.compartments}
        state_units.update({k: s.unit for k, s in model.states.items()})
        return Result(model.name, self.name, np.concatenate(parts["id"]),
                      np.concatenate(parts["t"]), np.concatenate(parts["evid"]),
                      model.state_names, np.concatenate(parts["y"]),
                      {k: np.concatenate(v) for k, v in outputs.items()}, units,
                      status=Status.FAILED if messages else Status.OK, state_units=state_units,
                      molar_masses={k: o.molar_mass for k, o in model.outputs.items()
                                    if o.molar_mass is not None},
                      messages=tuple(messages))

    def solve_subject(self, model: Model, sub: EventTable, covariates: dict[str, float],
                      parameters: dict[str, float], job: Prepared
                      ) -> tuple[np.ndarray, np.ndarray, str]:
        """One subject's states ``(by_record, at_times, failure message)``; a
        :class:`SolverError` becomes NaN states and its message unless ``job.throw``."""
        prob = subject_problem(model, sub, covariates=covariates, parameters=parameters,
                               covariate_rule=job.covariate_rule)
        try:
            y_rec, y_t = self.solve(prob, job.times)
        except SolverError as exc:
            if job.throw:
                raise
            return (np.full((sub.n_records, model.n_states), np.nan),
                    np.full((len(job.times), model.n_states), np.nan), str(exc))
        return y_rec, y_t, ""

    @abstractmethod
    def propagate(self, prob: SubjectProblem, y: np.ndarray, t0: float, t1: float,
                  rates: np.ndarray, rec: int) -> np.ndarray:
        """State at ``t1`` from ``y`` at ``t0`` with input ``rates`` and record ``rec``'s values."""

    def linear_steady_state(self, prob: SubjectProblem, spec: SteadyStateSpec,
                            rates_cycle: list[tuple[float, np.ndarray]], rec: int
                            ) -> np.ndarray | None:
        """Exact periodic pre-dose state, or None when the engine has no closed form."""
        return None

    def propagate_many(self, prob: SubjectProblem, y: np.ndarray, t0: float,
                       times: np.ndarray, rates: np.ndarray, rec: int) -> np.ndarray:
        """States at each of the increasing ``times`` (> t0) without events in between."""
        out = np.empty((len(times), len(y)))
        t = t0
        for k, tk in enumerate(times):
            if tk > t:
                y = self.propagate(prob, y, t, float(tk), rates, rec)
                t = float(tk)
            out[k] = y
        return out

    def solve(self, prob: SubjectProblem, out_times: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """States at every record's output and at ``out_times``.

        Returns ``(by_record, at_times)`` with shapes ``(n_records, n_states)`` and
        ``(len(out_times), n_states)``; an output time equal to an event time is taken after
        the events there (as an observation record placed after a dose record).
        """
        sched = prob.schedule
        n_states = prob.model.n_states
        out = np.full((sched.n_records, n_states), np.nan)
        times = np.zeros(0) if out_times is None else np.asarray(out_times, dtype=float)
        at = np.full((len(times), n_states), np.nan)
        y = prob.y0[0].copy()
        first = sched.nodes[0].time if sched.nodes else (times[0] if len(times) else 0.0)
        t = min(first, times[0]) if len(times) else first
        rates = np.zeros(n_states)
        k = 0
        rec = sched.nodes[0].param_record if sched.nodes else 0
        for node in sched.nodes:
            # output times before this node: one vectorisable stretch without events
            k1 = int(np.searchsorted(times, node.time, side="left"))
            if k1 > k:
                at[k:k1] = self.propagate_many(prob, y, t, times[k:k1], rates,
                                               node.param_record)
                y = at[k1 - 1].copy()
                t = float(times[k1 - 1])
                k = k1
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
            k1 = int(np.searchsorted(times, node.time, side="right"))
            at[k:k1] = y
            k = k1
            assert node.rates is not None
            rates = np.zeros(n_states)
            rates[: sched.n_cmt] = node.rates[0]
            rec = node.param_record
        if k < len(times):
            at[k:] = self.propagate_many(prob, y, t, times[k:], rates, rec)
        return out, at

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

    def _root(self, step: Callable[[np.ndarray], np.ndarray], start: np.ndarray,
              spec: SteadyStateSpec) -> np.ndarray:
        """Fixed point of ``step`` (a cycle map) by Newton's method on ``step(x) - x``.

        The Jacobian is taken by forward differences (relative step 1e-6); iterations stop
        when the residual reaches 1e-11 of the state's scale or stops improving (the noise
        floor of the integrator); a residual above 1e-7 of scale is a failure.
        """
        f = step
        x = start.copy()
        for _ in range(3):
            x = f(x)
        n = len(x)
        best = np.inf
        stalls = 0
        best_x = x
        for _ in range(40):
            fx = f(x)
            r = fx - x
            scale = max(1.0, float(np.max(np.abs(fx))))
            res = float(np.max(np.abs(r))) / scale
            if not np.isfinite(res):
                break
            if res < best * 0.5:
                best, best_x, stalls = res, fx, 0
            else:
                stalls += 1
                if res < best:
                    best, best_x = res, fx
            if best <= 1e-11 or stalls >= 3:
                break
            jac = np.empty((n, n))
            for j in range(n):
                dj = 1e-6 * max(abs(x[j]), 1e-3 * scale)
                xp = x.copy()
                xp[j] += dj
                jac[:, j] = (f(xp) - fx) / dj
            try:
                dx = np.linalg.solve(jac - np.eye(n), -r)
            except np.linalg.LinAlgError:
                break
            x = x + dx
        if not best <= 1e-7:
            raise SolverError("SS", f"steady state (record {spec.record + 1}) did not converge "
                              f"(relative residual {best:.2e})",
                              "check that the model eliminates the drug")
        return np.asarray(best_x)


__all__ = ["Engine", "SubjectEngine", "SubjectProblem"]
