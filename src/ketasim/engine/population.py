"""Population engine: many subjects at once, linear PK exact, nonlinear states adaptive.

For models whose compartments are linear (no fluxes), possibly driving nonlinear states
(effect, indirect response, mechanism). Per subject the linear system is diagonalised once,
K = V diag(λ) V⁻¹, and carried in modal coordinates z = V⁻¹A, where an interval of length h
with constant input r is exact: z ← e^{λh} z + h φ₁(λh) V⁻¹ r, φ₁(x) = (eˣ − 1)/x. The
nonlinear states are integrated with the Dormand–Prince 5(4) pair under error control
(``rtol``, ``atol``), reading the amounts they need at each stage exactly from the modal
solution; steps are powers of two (or end at a breakpoint), so exponentials are reused.
Every dose, infusion start and stop is a breakpoint: no step crosses it, and the step
restarts there with a size chosen afresh. The error is controlled at the end of each step
and, through the defect of the dense output, inside it, where output times read. A compiled
kernel (numba) loops over subjects in parallel; it is generated per model structure and
outputs and cached on disk, so it is compiled once, ever (:mod:`ketasim.engine.kernels`).
Subjects are processed in chunks so memory is bounded by the requested output.

Subjects whose eigenvector matrix is ill-conditioned (near-repeated eigenvalues) are solved
with the ODE engine instead, and counted in ``Result.messages``. Steady-state (SS) records
and time-varying covariates are not supported here (use the analytic or ODE engine).

>>> PopulationEngine().rtol
1e-08
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ketasim.dosing.events import EventTable
from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import Regimen, check_weight
from ketasim.dosing.schedule import Schedule, TimingDiffersError, build_schedule
from ketasim.engine.core import SubjectProblem
from ketasim.engine.result import Result
from ketasim.errors import DoseError, EventError, ModelError
from ketasim.model.expr import Expression
from ketasim.model.model import Model

# numba is a dependency; without it the kernel runs as plain Python and warns once
# (ketasim.engine.kernels). Checked without importing numba, which takes ~0.2 s.
HAVE_NUMBA = importlib.util.find_spec("numba") is not None

ADVANCE, RESET, BOLUS, RATES, OBS = 0, 1, 2, 3, 4

# Dormand–Prince 5(4) tableau (Dormand & Prince 1980, J Comput Appl Math 6:19-26, Table 2)
# stage fractions; the eighth (½) is where the kernel checks its dense output's defect
_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0, 0.5])
_A = np.array([
    [0, 0, 0, 0, 0, 0],
    [1 / 5, 0, 0, 0, 0, 0],
    [3 / 40, 9 / 40, 0, 0, 0, 0],
    [44 / 45, -56 / 15, 32 / 9, 0, 0, 0],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
])
_B = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0])
_BHAT = np.array([5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40])
_E = _B - _BHAT
# Continuous extension for dense output (Shampine 1986, Math Comp 46:135-150), as used by
# scipy's RK45: y(t0 + θh) = y0 + h Σ_k K_k Σ_j P[k, j] θ^(j+1)
_P = np.array([
    [1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 131558114200 / 32700410799, -68118460800 / 10900136933,
     87487479700 / 32700410799],
    [0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
    [0.0, 127303824393 / 49829197408, -318862633887 / 49829197408,
     701980252875 / 199316789632],
    [0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
    [0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423],
])


@dataclass
class PopulationEngine:
    """Batched solver for populations sharing a regimen (see module docstring).

    ``rtol``/``atol`` (at most 1e-4) bound the nonlinear states' error per step, at the step's
    end (Dormand–Prince 5(4) estimate) and inside it (defect of the dense output that output
    times read); every dose, infusion start and stop is a breakpoint where the step restarts
    with a fresh size. On the reference problem every output then stays within ``rtol``
    relative to a tight solution (docs/engines.md). Linear compartments are exact.
    ``chunk_size`` subjects are solved per kernel call.
    """

    rtol: float = 1e-8
    atol: float = 1e-10
    chunk_size: int = 2000
    max_condition: float = 1e6
    max_step: float = 8.0
    name: str = "population"

    def __post_init__(self) -> None:
        if not (0 < self.rtol <= 1e-4 and 0 < self.atol <= 1e-4):
            raise ModelError("tolerances", f"rtol={self.rtol}, atol={self.atol}",
                             "use tolerances between 0 and 1e-4 (defaults 1e-8 and 1e-10)")
        if self.chunk_size < 1:
            raise ModelError("chunk_size", f"is {self.chunk_size}", "use a positive chunk size")

    def check(self, model: Model) -> None:
        """Raise :class:`ModelError` unless ``model``'s compartments are linear."""
        if not model.has_linear_compartments:
            raise ModelError("engine", f"model {model.name} has nonlinear fluxes between "
                             "compartments; the population engine needs linear compartments",
                             "use engine=OdeEngine()")

    def kernel(self, model: Model, outputs: Sequence[str]) -> Any:
        """The compiled kernel for ``model`` and ``outputs``: loaded from the on-disk kernel
        cache (:mod:`ketasim.engine.kernels`), compiled there on first use ever."""
        from ketasim.engine.kernels import load_kernel
        return load_kernel(model, outputs)

    # ------------------------------------------------------------------ public API
    def run(self, model: Model, doses: EventTable | Regimen | str, *,
            covariates: Mapping[str, Any] | None = None,
            parameters: Mapping[str, Any] | None = None,
            times: Sequence[float] | np.ndarray, n_subjects: int | None = None,
            throw: bool = False, outputs: Sequence[str] | None = None,
            keep_states: bool = True,
            record_covariates: Mapping[str, np.ndarray] | None = None) -> Result:
        """Solve all subjects and concatenate the chunks into one :class:`Result`."""
        chunks = list(self.iter_chunks(model, doses, covariates=covariates,
                                       parameters=parameters, times=times,
                                       n_subjects=n_subjects, throw=throw, outputs=outputs,
                                       keep_states=keep_states,
                                       record_covariates=record_covariates))
        return concatenate_chunks(chunks, self.name)

    def iter_chunks(self, model: Model, doses: EventTable | Regimen | str, *,
                    covariates: Mapping[str, Any] | None = None,
                    parameters: Mapping[str, Any] | None = None,
                    times: Sequence[float] | np.ndarray,
                    n_subjects: int | None = None, throw: bool = False,
                    outputs: Sequence[str] | None = None,
                    keep_states: bool = False,
                    record_covariates: Mapping[str, np.ndarray] | None = None
                    ) -> Iterator[PopulationChunk]:
        """Yield one :class:`PopulationChunk` per ``chunk_size`` subjects.

        Only the named ``outputs`` (default: all) are computed and kept, and the states only
        with ``keep_states``, so memory per chunk is what the caller asked for.
        ``record_covariates`` gives covariates per subject and dose record, shape
        (subjects, dose records) in the order of the regimen's doses (e.g. random effects of
        an occasion); they may change a dose's F, lag or duration only.
        """
        self.check(model)
        times = np.unique(np.asarray(times, dtype=float))
        if times.size == 0 or np.any(times < 0) or not np.all(np.isfinite(times)):
            raise EventError("times", "output times must be finite, >= 0 and not empty",
                             "give output times in hours")
        n = n_subjects or _count(covariates, parameters)
        template, per_kg, source = _template(model, doses)
        weights = None
        if per_kg.any():
            w = (covariates or {}).get("weight")
            if w is None:
                raise DoseError("weight", "a mg/kg dose needs the body weight",
                                "give covariates={'weight': ...} in kg")
            weights = np.broadcast_to(np.asarray(w, dtype=float), (n,))
            for wi in np.unique(weights):
                check_weight(float(wi))
        keep = list(outputs) if outputs is not None else list(model.outputs)
        for name in keep:
            if name not in model.outputs:
                raise ModelError("outputs", f"{name!r} is not an output of {model.name}",
                                 f"use some of {', '.join(model.outputs)}")
        kernel = self.kernel(model, keep)
        for start in range(0, n, self.chunk_size):
            idx = np.arange(start, min(n, start + self.chunk_size))
            extra = {k: np.asarray(v, dtype=float)[idx][:, source]
                     for k, v in (record_covariates or {}).items()}
            yield self._chunk(model, kernel, template, per_kg, weights, idx, covariates,
                              parameters, times, keep, keep_states, throw, extra)

    # ------------------------------------------------------------------ internals
    def _chunk(self, model: Model, kernel: Any, template: EventTable, per_kg: np.ndarray,
               weights: np.ndarray | None, idx: np.ndarray,
               covariates: Mapping[str, Any] | None, parameters: Mapping[str, Any] | None,
               times: np.ndarray, keep: list[str], keep_states: bool, throw: bool,
               record_covariates: Mapping[str, np.ndarray] | None = None
               ) -> PopulationChunk:
        nc = len(idx)
        covs = _take(covariates, idx, model.covariates)
        pars = _take(parameters, idx, model.parameters)
        n_rec = template.n_records
        rec_covs = {k: v for k, v in template.covariates.items() if k in model.covariates}
        for k, v in (record_covariates or {}).items():
            if k not in model.covariates:
                raise ModelError("record_covariates", f"{k!r} is not a covariate of "
                                 f"{model.name}", "name covariates the model declares")
            rec_covs[k] = v
        ind = model.individual(covs, pars)
        ind = {k: np.broadcast_to(v, (nc,)).copy() for k, v in ind.items()}
        cmt_idx = np.clip(template.cmt - 1, 0, model.n_cmt - 1)
        if rec_covs:
            # dose-record covariates (e.g. the device number of a nasal spray) may change a
            # dose's F, lag or duration, but not the system: checked here
            both = {k: np.asarray(v, dtype=float)[:, None] if np.ndim(v) else v
                    for k, v in covs.items()}
            both.update({k: np.broadcast_to(v, (nc, n_rec)) for k, v in rec_covs.items()})
            ind_rec = model.individual(both, {k: np.asarray(v)[:, None] if np.ndim(v) else v
                                              for k, v in pars.items()})
            ind_rec = {k: np.broadcast_to(v, (nc, n_rec)) for k, v in ind_rec.items()}
            ind = {k: v[:, 0].copy() for k, v in ind_rec.items()}
            k_rec = model.system_matrix(ind_rec)
            varies = not np.allclose(k_rec, k_rec[:, :1])
            if model.states:
                pv = model.parameter_vector(ind_rec)
                varies = varies or not np.allclose(pv, pv[:, :1])
            if varies:
                raise EventError("covariates", "a covariate that changes between records "
                                 "changes the model's rates in a population run",
                                 "use the analytic or ODE engine for time-varying covariates")
            props_rec = model.dose_properties(ind_rec)
            cols = np.arange(n_rec)
            f = props_rec["f"][:, cols, cmt_idx]
            lag = props_rec["lag"][:, cols, cmt_idx]
            mrate = props_rec["rate"][:, cols, cmt_idx]
            mdur = props_rec["duration"][:, cols, cmt_idx]
        else:
            props = model.dose_properties(ind)
            f = props["f"][:, cmt_idx]
            lag = props["lag"][:, cmt_idx]
            mrate = props["rate"][:, cmt_idx]
            mdur = props["duration"][:, cmt_idx]
        kmat = model.system_matrix(ind)
        pvec = np.ascontiguousarray(model.parameter_vector(ind))
        s0 = np.ascontiguousarray(model.initial_state(ind)[:, model.n_cmt:])
        amounts = np.broadcast_to(template.amt, (nc, n_rec)).copy()
        if weights is not None:
            amounts[:, per_kg] *= weights[idx][:, None]
        try:
            schedules = [build_schedule(template, n_cmt=model.n_cmt, f=f, lag=lag,
                                        amounts=amounts, model_rate=mrate,
                                        model_duration=mdur)]
            group = np.zeros(nc, dtype=np.int64)
        except TimingDiffersError:
            schedules = [build_schedule(template, n_cmt=model.n_cmt, f=f[i:i + 1],
                                        lag=lag[i], amounts=amounts[i:i + 1],
                                        model_rate=mrate[i:i + 1], model_duration=mdur[i:i + 1])
                         for i in range(nc)]
            group = np.arange(nc, dtype=np.int64)
        ops = _flatten(schedules, group, times, nc, model.n_cmt)
        lam, vmat, vinv, bad = _diagonalise(kmat, self.max_condition)
        needed = _needed_compartments(model)
        n_t = len(times)
        out = np.empty((len(keep), nc, n_t))
        states = np.empty((nc, n_t, model.n_states) if keep_states else (nc, 0, 0))
        out_rows = _output_compartments(model, keep)
        failed = kernel(lam, vmat, vinv, pvec, s0, needed, group, ops["kind"], ops["arg"],
                        ops["time"], ops["stop"], ops["len"], ops["bolus"], ops["rates"],
                        out_rows, out, states, self.rtol, self.atol, _C, _A_FULL, _B, _E, _P,
                        self.max_step)
        messages = []
        fallback = np.flatnonzero(bad)
        if fallback.size:
            messages.append(f"{fallback.size} subject(s) with near-repeated eigenvalues solved "
                            "with the ODE engine")
            from ketasim.engine.ode import OdeEngine
            ode = OdeEngine()
            for i in fallback:
                y = _ode_subject(model, ode, template, amounts[i], pvec[i], s0[i], f[i],
                                 lag[i], mrate[i], mdur[i], times)
                vals = model.evaluate_outputs(times, y, {k: v[i] for k, v in ind.items()})
                for j, k in enumerate(keep):
                    out[j, i] = vals[k]
                if keep_states:
                    states[i] = y
        n_failed = int(np.sum(failed[~bad])) if failed.size else 0
        if n_failed:
            messages.append(f"{n_failed} subject(s) reached the step-size limit")
            if throw:
                from ketasim.errors import SolverError
                raise SolverError("engine", messages[-1], "loosen rtol/atol")
        state_units = {c.name: "mg" for c in model.compartments}
        state_units.update({k: s.unit for k, s in model.states.items()})
        return PopulationChunk(
            model_name=model.name, subject=idx + 1, times=times,
            outputs={k: out[j] for j, k in enumerate(keep)},
            output_units={k: model.outputs[k].unit for k in keep},
            state_names=model.state_names if keep_states else [],
            states=states if keep_states else None, state_units=state_units,
            status="ok" if not n_failed else "failed", messages=tuple(messages))


@dataclass(frozen=True, eq=False)
class PopulationChunk:
    """One chunk of a population run: outputs as (subjects, times) arrays."""

    model_name: str
    subject: np.ndarray
    times: np.ndarray
    outputs: dict[str, np.ndarray]
    output_units: dict[str, str]
    state_names: list[str]
    states: np.ndarray | None
    state_units: dict[str, str]
    status: str = "ok"
    messages: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every subject solved."""
        return self.status == "ok"


def concatenate_chunks(chunks: Sequence[PopulationChunk], engine: str) -> Result:
    """Join chunks into one long-format :class:`Result` (rows: subject × time)."""
    first = chunks[0]
    n_t = len(first.times)
    subjects = np.concatenate([c.subject for c in chunks])
    rows = len(subjects) * n_t
    parts = [c.states.reshape(-1, c.states.shape[-1]) for c in chunks if c.states is not None]
    states = np.concatenate(parts) if first.states is not None else np.empty((rows, 0))
    return Result(
        first.model_name, engine, np.repeat(subjects, n_t), np.tile(first.times, len(subjects)),
        np.zeros(rows, dtype=np.int64), first.state_names, states,
        {k: np.concatenate([c.outputs[k].reshape(-1) for c in chunks]) for k in first.outputs},
        first.output_units, status="ok" if all(c.ok for c in chunks) else "failed",
        state_units=first.state_units, messages=tuple(m for c in chunks for m in c.messages))


_A_FULL = np.zeros((7, 7))
_A_FULL[:, :6] = _A


def _count(*groups: Mapping[str, Any] | None) -> int:
    n = 1
    for g in groups:
        for v in (g or {}).values():
            if np.ndim(v) == 1:
                n = max(n, len(v))
    return n


def _take(values: Mapping[str, Any] | None, idx: np.ndarray, allowed: Mapping[str, Any]
          ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (values or {}).items():
        if k not in allowed:
            continue
        arr = np.asarray(v, dtype=float)
        out[k] = arr if arr.ndim == 0 else arr[idx]
    return out


def _template(model: Model, doses: EventTable | Regimen | str
              ) -> tuple[EventTable, np.ndarray, np.ndarray]:
    """Dose records of one subject (CMT resolved), which amounts are per kg, and for each
    resolved record the index of the dose record it came from."""
    from ketasim.engine.simulate import resolve_compartments
    if isinstance(doses, str):
        doses = parse_regimen(doses)
    if isinstance(doses, Regimen):
        ordered = sorted(doses.doses, key=lambda d: d.time)
        table = doses.to_events(weight_kg=1.0 if any(d.per_kg for d in ordered) else None)
        per_kg = np.array([d.per_kg for d in ordered])
    else:
        table = doses
        if len(table.subject_ids) > 1:
            raise EventError("ID", "the population engine takes one subject's dosing records",
                             "give the shared regimen once; vary subjects by covariates")
        dose_rows = np.isin(table.evid, (1, 3, 4))
        table = table.take(np.flatnonzero(dose_rows))
        per_kg = np.zeros(table.n_records, dtype=bool)
    if np.any(table.ss > 0):
        raise EventError("SS", "steady-state records in a population run",
                         "use the analytic or ODE engine for SS dosing")
    flagged = resolve_compartments(model, table.with_covariates(
        _per_kg=per_kg.astype(float), _source=np.arange(table.n_records, dtype=float)))
    covs = dict(flagged.covariates)
    per_kg = covs.pop("_per_kg") > 0.5
    source = covs.pop("_source").astype(np.int64)
    resolved = EventTable(id=flagged.id, time=flagged.time, evid=flagged.evid, amt=flagged.amt,
                          cmt=flagged.cmt, rate=flagged.rate, dur=flagged.dur, ii=flagged.ii,
                          addl=flagged.addl, ss=flagged.ss, route=flagged.route, covariates=covs)
    return resolved, per_kg, source


def _flatten(schedules: list[Schedule], group: np.ndarray, times: np.ndarray, nc: int,
             n_cmt: int) -> dict[str, np.ndarray]:
    """Turn schedules plus output times into op arrays for the kernel."""
    rows: list[list[tuple[int, int, float]]] = []
    bolus_cols: list[np.ndarray] = []
    rate_sets: list[np.ndarray] = [np.zeros((nc, n_cmt))]
    for gi, sched in enumerate(schedules):
        members = np.flatnonzero(group == gi)
        ops: list[tuple[int, int, float]] = []
        k_obs = 0
        nodes = sched.nodes
        prev_rates: np.ndarray | None = None
        t0 = min(nodes[0].time if nodes else times[0], times[0])
        ops.append((ADVANCE, 1, t0))
        for node in nodes:
            while k_obs < len(times) and times[k_obs] < node.time:
                ops.append((ADVANCE, 0, float(times[k_obs])))
                ops.append((OBS, k_obs, 0.0))
                k_obs += 1
            ops.append((ADVANCE, 1, node.time))
            for act in node.actions:
                if act.kind == "reset":
                    ops.append((RESET, 0, 0.0))
                elif act.kind == "bolus":
                    assert act.amount is not None
                    col = np.zeros(nc)
                    col[members] = act.amount
                    bolus_cols.append(col)
                    ops.append((BOLUS, (len(bolus_cols) - 1) * 1024 + act.cmt, 0.0))
            assert node.rates is not None
            if prev_rates is None or not np.array_equal(node.rates, prev_rates):
                full = np.zeros((nc, n_cmt))
                full[members] = node.rates
                rate_sets.append(full)
                ops.append((RATES, len(rate_sets) - 1, 0.0))
                prev_rates = node.rates
        while k_obs < len(times):
            ops.append((ADVANCE, 0, float(times[k_obs])))
            ops.append((OBS, k_obs, 0.0))
            k_obs += 1
        rows.append(ops)
    length = max(len(r) for r in rows)
    kind = np.zeros((len(rows), length), dtype=np.int64)
    arg = np.zeros((len(rows), length), dtype=np.int64)
    tim = np.zeros((len(rows), length))
    stop = np.zeros((len(rows), length))
    for gi, r in enumerate(rows):
        arr = np.array(r, dtype=float)
        kind[gi, :len(r)] = arr[:, 0]
        arg[gi, :len(r)] = arr[:, 1]
        tim[gi, :len(r)] = arr[:, 2]
        adv = kind[gi, :len(r)] == ADVANCE
        tim[gi, :len(r)][~adv] = np.nan
        # time of the next event node (hard stop) at or after each op; the last time if none
        nxt = float(arr[adv, 2][-1])
        for jj in range(len(r) - 1, -1, -1):
            if kind[gi, jj] == ADVANCE and arg[gi, jj] == 1:
                nxt = tim[gi, jj]
            stop[gi, jj] = nxt
    bolus = np.stack(bolus_cols, axis=1) if bolus_cols else np.zeros((nc, 1))
    return {"kind": kind, "arg": arg, "time": tim, "stop": stop,
            "len": np.array([len(r) for r in rows], dtype=np.int64),
            "bolus": np.ascontiguousarray(bolus),
            "rates": np.ascontiguousarray(np.stack(rate_sets, axis=1))}


def _diagonalise(kmat: np.ndarray, max_condition: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-decomposition per subject; flags subjects that are not safely diagonalisable."""
    lam, vmat = np.linalg.eig(kmat)
    with np.errstate(all="ignore"):
        cond = np.linalg.cond(vmat)
    bad = ~np.isfinite(cond) | (cond > max_condition)
    vmat = np.where(bad[:, None, None], np.eye(kmat.shape[-1]), vmat)
    lam = np.where(bad[:, None], 0.0, lam)
    vinv = np.linalg.inv(vmat)
    scale = np.maximum(np.abs(lam).max(axis=1), 1e-300)
    if np.all(np.abs(lam.imag) <= 1e-13 * scale[:, None]):
        lam, vmat, vinv = lam.real, vmat.real, vinv.real
    return (np.ascontiguousarray(lam), np.ascontiguousarray(vmat), np.ascontiguousarray(vinv),
            bad)


def _compartments_read(model: Model, exprs: Sequence[Expression]) -> np.ndarray:
    """Mask of the compartments ``exprs`` read, directly or through state definitions."""
    c = model.compiled
    names: set[str] = set()
    for e in exprs:
        names |= e.names
    changed = True
    while changed:
        changed = False
        for k in c.state_defs:
            if k in names and not c.defs[k].names <= names:
                names |= c.defs[k].names
                changed = True
    return np.array([nm in names for nm in c.cmt_names], dtype=np.bool_)


def _needed_compartments(model: Model) -> np.ndarray:
    """Indices of the compartments whose amounts the nonlinear right-hand side reads."""
    mask = _compartments_read(model, list(model.compiled.state_rhs.values()))
    return np.flatnonzero(mask).astype(np.int64)


def _output_compartments(model: Model, keep: Sequence[str]) -> np.ndarray:
    """Boolean mask of the compartments the kept outputs read."""
    return _compartments_read(model, [model.compiled.outputs[k] for k in keep])


def _ode_subject(model: Model, ode: Any, template: EventTable, amounts: np.ndarray,
                 pvec: np.ndarray, s0: np.ndarray, f: np.ndarray, lag: np.ndarray,
                 mrate: np.ndarray, mdur: np.ndarray, times: np.ndarray) -> np.ndarray:
    """One subject with the ODE engine (fallback for non-diagonalisable systems)."""
    n_rec = template.n_records
    sched = build_schedule(template, n_cmt=model.n_cmt, f=f[None, :], lag=lag,
                           amounts=amounts[None, :], model_rate=mrate[None, :],
                           model_duration=mdur[None, :])
    y0 = np.concatenate([np.zeros(model.n_cmt), s0])
    prob = SubjectProblem(model, sched, np.broadcast_to(pvec, (n_rec, len(pvec))),
                          np.broadcast_to(y0, (n_rec, len(y0))))
    _, y = ode.solve(prob, times)
    return np.asarray(y)


__all__ = ["HAVE_NUMBA", "PopulationChunk", "PopulationEngine", "concatenate_chunks"]
