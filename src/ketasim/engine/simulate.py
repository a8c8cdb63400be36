"""The one entry point: ``simulate(model, doses, ...)`` with the engine as a strategy object.

>>> from ketasim.model import Model, Compartment, Flow, Output, Parameter
>>> from ketasim.dosing import Route
>>> m = Model("iv1", {"cl": Parameter(10.0, "L/h"), "v": Parameter(100.0, "L")},
...           [Compartment("central")], flows=[Flow("central", None, "cl / v")],
...           outputs={"cp": Output("central / v", "mg/L")},
...           routes={Route.IV_BOLUS: "central"})
>>> r = simulate(m, "100 mg IV bolus", times=[0, 10])
>>> [round(float(x), 6) for x in r["cp"]]
[1.0, 0.367879]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ketasim.dosing.events import EventTable
from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import Regimen
from ketasim.dosing.schedule import CovariateRule, build_schedule
from ketasim.engine.core import Engine, SubjectProblem
from ketasim.engine.result import Result
from ketasim.errors import CovariateError, DoseError, EventError, KetasimError, ModelError
from ketasim.model.model import Model

Doses = EventTable | Regimen | str


def default_engine(model: Model) -> Engine:
    """The analytic engine for linear models, the ODE engine otherwise."""
    # imported on use: scipy.linalg / scipy.integrate take a while to import
    if model.is_linear:
        from ketasim.engine.analytic import AnalyticEngine
        return AnalyticEngine()
    from ketasim.engine.ode import OdeEngine
    return OdeEngine()


def resolve_compartments(model: Model, table: EventTable) -> EventTable:
    """Fill CMT 0 on dose records from each record's route (checked against the model).

    A route with several target compartments turns the record into one record per target;
    a route's dose into a ``zero_order`` compartment without its own RATE/DUR gets RATE = -2
    (records that name their CMT keep NM-TRAN semantics).
    """
    dose = np.isin(table.evid, (1, 4))
    index: list[int] = []
    cmts: list[int] = []
    by_route: list[bool] = []
    for i in range(table.n_records):
        if dose[i] and table.cmt[i] == 0:
            route = table.route[i]
            if not route:
                raise EventError("CMT", f"dose record {i + 1} has CMT 0 and no route",
                                 "give CMT or a ROUTE for every dose")
            for c in model.route_compartments(str(route)):
                index.append(i)
                cmts.append(c)
                by_route.append(True)
        else:
            index.append(i)
            cmts.append(int(table.cmt[i]))
            by_route.append(False)
    if len(index) != table.n_records:
        table = table.take(np.array(index))
    cmt = np.array(cmts, dtype=np.int64)
    dose = np.isin(table.evid, (1, 4))
    rate = table.rate
    zero = np.array([c.zero_order for c in model.compartments])
    # records with an explicit CMT keep NM-TRAN semantics (a bolus unless RATE says otherwise)
    auto = np.array(by_route) & dose & (cmt >= 1) & (cmt <= model.n_cmt) & (table.rate == 0) \
        & (table.dur == 0) \
        & (table.amt > 0)
    auto &= zero[np.clip(cmt - 1, 0, model.n_cmt - 1)]
    if np.any(auto):
        rate = np.where(auto, -2.0, table.rate)
    for j in np.flatnonzero(dose & (cmt != 0)):
        if cmt[j] > model.n_cmt:
            raise EventError("CMT", f"dose record {j + 1} goes into compartment {cmt[j]}, model "
                             f"{model.name} has {model.n_cmt}",
                             f"use CMT 1..{model.n_cmt} ({', '.join(model.compiled.cmt_names)})")
    if np.array_equal(cmt, table.cmt) and rate is table.rate:
        return table
    return EventTable(id=table.id, time=table.time, evid=table.evid, amt=table.amt, cmt=cmt,
                      rate=rate, dur=table.dur, ii=table.ii, addl=table.addl, ss=table.ss,
                      route=table.route, covariates=table.covariates)


def subject_problem(model: Model, table: EventTable, *,
                    covariates: Mapping[str, Any] | None = None,
                    parameters: Mapping[str, Any] | None = None,
                    covariate_rule: CovariateRule = "nocb") -> SubjectProblem:
    """Evaluate one subject's per-record parameters and interpret its dosing records."""
    n_rec = table.n_records
    covs: dict[str, Any] = dict(covariates or {})
    for k, v in table.covariates.items():
        if k in model.covariates:
            covs[k] = v
    covs = {k: v for k, v in covs.items() if k in model.covariates}
    ind = model.individual(covs, parameters)
    ind = {k: np.broadcast_to(v, (n_rec,)) for k, v in ind.items()}
    pvec = model.parameter_vector(ind)
    props = model.dose_properties(ind)
    idx = np.clip(table.cmt - 1, 0, model.n_cmt - 1)
    rows = np.arange(n_rec)
    f = props["f"][rows, idx]
    lag = props["lag"][rows, idx]
    schedule = build_schedule(
        table, n_cmt=model.n_cmt, f=f[None, :], lag=lag,
        model_rate=props["rate"][rows, idx][None, :],
        model_duration=props["duration"][rows, idx][None, :],
        covariate_rule=covariate_rule)
    y0 = model.initial_state(ind)
    return SubjectProblem(model, schedule, pvec, y0)


def _subject_values(values: Mapping[str, Any] | None, k: int, n_subjects: int
                    ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, v in (values or {}).items():
        arr = np.asarray(v, dtype=float)
        if arr.ndim == 0:
            out[name] = float(arr)
        elif arr.shape == (n_subjects,):
            out[name] = float(arr[k])
        else:
            raise CovariateError(name, f"has {arr.shape[0]} values for {n_subjects} subjects",
                                 "give one value, or one per subject")
    return out


def _n_subjects(*groups: Mapping[str, Any] | None) -> int:
    n = 1
    for g in groups:
        for name, v in (g or {}).items():
            s = np.shape(v)
            if len(s) == 1:
                if n not in (1, s[0]):
                    raise CovariateError(name, f"has {s[0]} values, other inputs have {n}",
                                         "give every per-subject array the same length")
                n = s[0]
    return n


def to_event_table(doses: Doses, *, covariates: Mapping[str, Any] | None, n_subjects: int,
                   times: Sequence[float] | np.ndarray | None) -> EventTable:
    """Expand regimen text or a Regimen for each subject (mg/kg from ``weight``)."""
    if isinstance(doses, str):
        doses = parse_regimen(doses)
    if isinstance(doses, EventTable):
        table = doses
        if times is not None:
            table = table.with_observations(np.asarray(times, dtype=float))
        return table
    if not isinstance(doses, Regimen):
        raise DoseError("doses", f"{type(doses).__name__} is not a regimen",
                        "pass regimen text, a Regimen or an EventTable")
    weights = (covariates or {}).get("weight")
    if n_subjects == 1:
        w1 = None if weights is None else float(np.asarray(weights, dtype=float).reshape(-1)[0])
        return doses.to_events(weight_kg=w1, observe=times)
    tables = []
    for k in range(n_subjects):
        w = None
        if weights is not None:
            warr = np.asarray(weights, dtype=float)
            w = float(warr) if warr.ndim == 0 else float(warr[k])
        tables.append(doses.to_events(weight_kg=w, subject_id=k + 1,
                                      observe=times).to_frame())
    import pandas as pd
    return EventTable.from_frame(pd.concat(tables, ignore_index=True))


def simulate(
    model: Model,
    doses: Doses,
    *,
    engine: Engine | None = None,
    covariates: Mapping[str, Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
    times: Sequence[float] | np.ndarray | None = None,
    covariate_rule: CovariateRule = "nocb",
    observations_only: bool | None = None,
    throw: bool = False,
) -> Result:
    """Simulate ``model`` under ``doses`` and return a :class:`Result`.

    ``doses`` is regimen text, a :class:`Regimen` or an NM-TRAN :class:`EventTable`.
    ``covariates`` and ``parameters`` hold scalars or one value per subject (a regimen is
    given to each subject; ``weight`` resolves mg/kg doses). ``times`` adds output times;
    with them, rows are the outputs only unless ``observations_only=False``. ``engine`` is a
    strategy (:class:`AnalyticEngine`, :class:`OdeEngine`, :class:`PopulationEngine`);
    by default analytic for linear models, ODE otherwise. ``covariate_rule`` is ``"nocb"``
    (NONMEM's default) or ``"locf"``. Solver failures set ``status``; ``throw=True`` raises.
    """
    if not isinstance(model, Model):
        raise ModelError("model", f"{type(model).__name__} is not a Model",
                         "pass a ketasim Model (see ketasim.model)")
    if covariate_rule not in ("nocb", "locf"):
        raise EventError("covariate_rule", f"{covariate_rule!r} is not known",
                         "use 'nocb' (NONMEM default) or 'locf'")
    if times is not None:
        times = np.asarray(times, dtype=float)
        if times.ndim != 1 or not np.all(np.isfinite(times)) or np.any(times < 0):
            raise EventError("times", "output times must be finite and >= 0",
                             "give a list of times in hours")
        times = np.unique(times)
    engine = engine or default_engine(model)
    engine.check(model)
    n_subjects = _n_subjects(covariates, parameters)
    if isinstance(doses, EventTable) and n_subjects > 1 and \
            len(doses.subject_ids) != n_subjects:
        raise CovariateError("covariates", f"{n_subjects} per-subject values for "
                             f"{len(doses.subject_ids)} subjects in the event table",
                             "give one value per subject in the table")
    from ketasim.engine.population import PopulationEngine
    if isinstance(engine, PopulationEngine):
        if times is None:
            raise EventError("times", "the population engine needs output times",
                             "give times=... (h)")
        return engine.run(model, doses, covariates=covariates, parameters=parameters,
                          times=times, n_subjects=n_subjects, throw=throw)
    table = resolve_compartments(model, to_event_table(doses, covariates=covariates,
                                                       n_subjects=n_subjects, times=None))
    keep_obs = (times is not None) if observations_only is None else observations_only
    out_times = np.zeros(0) if times is None else np.asarray(times, dtype=float)
    parts: dict[str, list[np.ndarray]] = {"id": [], "t": [], "evid": [], "y": []}
    outputs: dict[str, list[np.ndarray]] = {k: [] for k in model.outputs}
    messages: list[str] = []
    for k, (sid, sub) in enumerate(table.subjects()):
        covs = _subject_values(covariates, k, n_subjects)
        pars = _subject_values(parameters, k, n_subjects)
        prob = subject_problem(model, sub, covariates=covs, parameters=pars,
                               covariate_rule=covariate_rule)
        try:
            y_rec, y_t = engine.solve(prob, out_times)
        except KetasimError as exc:
            if throw or not exc.field == "engine":
                raise
            messages.append(f"subject {sid}: {exc}")
            y_rec = np.full((sub.n_records, model.n_states), np.nan)
            y_t = np.full((len(out_times), model.n_states), np.nan)
        mask = np.isin(sub.evid, (0, 2)) if keep_obs else np.ones(sub.n_records, bool)
        t_rows = np.concatenate([sub.time[mask], out_times])
        order = np.argsort(t_rows, kind="stable")
        y_rows = np.concatenate([y_rec[mask], y_t])[order]
        # covariates of each row: the record's own, or (output times) by the covariate rule
        row_covs = dict(covs)
        for c, v in sub.covariates.items():
            if c in model.covariates:
                if covariate_rule == "nocb":
                    j = np.searchsorted(sub.time, out_times, side="left")
                else:
                    j = np.searchsorted(sub.time, out_times, side="right") - 1
                j = np.clip(j, 0, sub.n_records - 1)
                row_covs[c] = np.concatenate([v[mask], v[j]])[order]
        row_covs = {c: v for c, v in row_covs.items() if c in model.covariates}
        n_rows = len(t_rows)
        ind = model.individual(row_covs, pars)
        ind = {c: np.broadcast_to(v, (n_rows,)) for c, v in ind.items()}
        vals = model.evaluate_outputs(t_rows[order], y_rows, ind)
        for name in outputs:
            outputs[name].append(vals[name])
        parts["id"].append(np.full(n_rows, sid))
        parts["t"].append(t_rows[order])
        parts["evid"].append(np.concatenate([sub.evid[mask], np.zeros(len(out_times), int)]
                                            )[order])
        parts["y"].append(y_rows)
    units = {k: o.unit for k, o in model.outputs.items()}
    state_units = {c.name: "mg" for c in model.compartments}
    state_units.update({k: s.unit for k, s in model.states.items()})
    return Result(model.name, engine.name, np.concatenate(parts["id"]),
                  np.concatenate(parts["t"]), np.concatenate(parts["evid"]), model.state_names,
                  np.concatenate(parts["y"]), {k: np.concatenate(v) for k, v in outputs.items()},
                  units, status="ok" if not messages else "failed", state_units=state_units,
                  molar_masses={k: o.molar_mass for k, o in model.outputs.items()
                                if o.molar_mass is not None},
                  messages=tuple(messages))


__all__ = ["default_engine", "resolve_compartments", "simulate", "subject_problem"]
