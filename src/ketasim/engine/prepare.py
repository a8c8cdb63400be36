"""What every engine is handed: one checked dataset of subjects, values keyed by subject ID.

:func:`prepare` turns the arguments of :func:`ketasim.engine.simulate` into a
:class:`Prepared` request: the model, the subjects' IDs in dataset order, their covariates and
parameters (ETAs included) as one value per subject and name, the extra output times and
which records become output rows. Engines read it and never see the caller's shapes.

Per-subject values of a dataset (an :class:`EventTable` with an ID column, or anything with
an ``events`` table such as :class:`ketasim.io.NonmemDataset`) are keyed by ID — a mapping
``{id: {name: value}}`` or a pandas DataFrame indexed by ID (like NONMEM's ``.phi``) — so
their order cannot matter; a missing or unknown ID is a :class:`CovariateError` naming it.
A regimen given to several subjects takes one value per subject in subject order (IDs 1..n)
or values keyed by ID (the IDs then name the subjects).

>>> from ketasim.model import Model, Compartment, Flow, Output, Parameter
>>> m = Model("iv1", {"cl": Parameter(10.0, "L/h"), "v": Parameter(100.0, "L")},
...           [Compartment("central")], flows=[Flow("central", None, "cl / v")],
...           outputs={"cp": Output("central / v", "mg/L")}, routes={"iv_bolus": "central"})
>>> table = EventTable.from_records([dict(ID=7, EVID=1, AMT=100, CMT=1),
...                                  dict(ID=3, EVID=1, AMT=50, CMT=1)])
>>> job = prepare(m, table, parameters={3: {"cl": 5.0}, 7: {"cl": 20.0}})
>>> job.ids.tolist(), job.parameters["cl"].tolist()
([7, 3], [20.0, 5.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ketasim.dosing.events import EventTable
from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import Regimen
from ketasim.dosing.schedule import CovariateRule, Schedule, build_schedule
from ketasim.errors import CovariateError, DoseError, EventError, ModelError
from ketasim.model.model import Model

Doses = EventTable | Regimen | str


@dataclass
class SubjectProblem:
    """Everything an engine needs for one subject: model, schedule and per-record values."""

    model: Model
    schedule: Schedule
    pvec: np.ndarray  # (n_records, n_ind): individual values per record
    y0: np.ndarray  # (n_records, n_states): initial/reset state per record's parameters


# ---------------------------------------------------------------------- one subject
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
    auto = np.array(by_route, dtype=bool) & dose & (cmt >= 1) & (cmt <= model.n_cmt) \
        & (table.rate == 0) & (table.dur == 0) & (table.amt > 0)
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


def row_order(time: np.ndarray, evid: np.ndarray, out_times: np.ndarray,
              observations_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """One subject's output rows: ``(mask, order)``.

    Rows are the subject's records selected by ``mask`` (observation records, EVID 0 and 2,
    when ``observations_only``; else every record) followed by ``out_times``, put in time
    order by ``order`` (stable: a record before an output time at the same time).
    """
    mask = np.isin(evid, (0, 2)) if observations_only else np.ones(len(time), dtype=bool)
    t_rows = np.concatenate([time[mask], out_times])
    return mask, np.argsort(t_rows, kind="stable")


# ---------------------------------------------------------------------- the request
@dataclass(frozen=True, eq=False)
class Prepared:
    """One checked simulation request (see the module docstring); built by :func:`prepare`.

    ``covariates`` and ``parameters`` hold one value per subject, in the order of ``ids``.
    ``shared`` is the regimen every subject gets when the request was one regimen for all
    (engines may use it to skip expanding a table per subject); ``table`` is the dataset's
    records with CMT resolved from routes, subjects in ``ids`` order.
    """

    model: Model
    ids: np.ndarray
    covariates: dict[str, np.ndarray]
    parameters: dict[str, np.ndarray]
    times: np.ndarray
    observations_only: bool
    covariate_rule: CovariateRule
    throw: bool
    shared: Regimen | None = None
    records: EventTable | None = None

    @property
    def n_subjects(self) -> int:
        """Number of subjects."""
        return len(self.ids)

    @cached_property
    def table(self) -> EventTable:
        """Every subject's records (CMT resolved), subjects in ``ids`` order."""
        if self.records is not None:
            table = self.records
        else:
            assert self.shared is not None
            table = expand_regimen(self.shared, self.ids, self.covariates.get("weight"))
        return resolve_compartments(self.model, table)

    def subject_values(self, k: int) -> tuple[dict[str, float], dict[str, float]]:
        """Covariates and parameters of the ``k``-th subject (0-based, ``ids`` order)."""
        return ({n: float(v[k]) for n, v in self.covariates.items()},
                {n: float(v[k]) for n, v in self.parameters.items()})


def expand_regimen(regimen: Regimen, ids: np.ndarray, weights: np.ndarray | None) -> EventTable:
    """The regimen's records for each subject ``ids`` (mg/kg from ``weights``, per subject)."""
    if len(ids) == 1:
        w = None if weights is None else float(weights[0])
        return regimen.to_events(weight_kg=w, subject_id=int(ids[0]))
    import pandas as pd
    tables = [regimen.to_events(weight_kg=None if weights is None else float(weights[k]),
                                subject_id=int(sid)).to_frame() for k, sid in enumerate(ids)]
    return EventTable.from_frame(pd.concat(tables, ignore_index=True))


def dataset_events(doses: Any) -> Any:
    """The event table of a dataset object (anything with an ``events`` EventTable, such as
    :class:`ketasim.io.NonmemDataset`); other values unchanged."""
    events = getattr(doses, "events", None)
    return events if isinstance(events, EventTable) else doses


def prepare(model: Model, doses: Doses | Any, *,
            covariates: Mapping[str, Any] | Any | None = None,
            parameters: Mapping[str, Any] | Any | None = None,
            times: Sequence[float] | np.ndarray | None = None,
            covariate_rule: CovariateRule = "nocb",
            observations_only: bool | None = None,
            throw: bool = False) -> Prepared:
    """Check the arguments of :func:`ketasim.engine.simulate` and build a :class:`Prepared`.

    ``covariates``/``parameters``: for a dataset, scalars (every subject) or values keyed by
    ID; for a regimen, scalars, one value per subject, or values keyed by ID.
    """
    if not isinstance(model, Model):
        raise ModelError("model", f"{type(model).__name__} is not a Model",
                         "pass a ketasim Model (see ketasim.model)")
    if covariate_rule not in ("nocb", "locf"):
        raise EventError("covariate_rule", f"{covariate_rule!r} is not known",
                         "use 'nocb' (NONMEM default) or 'locf'")
    out_times = np.zeros(0)
    if times is not None:
        out_times = np.asarray(times, dtype=float)
        if out_times.ndim != 1 or not np.all(np.isfinite(out_times)) or np.any(out_times < 0):
            raise EventError("times", "output times must be finite and >= 0",
                             "give a list of times in hours")
        out_times = np.unique(out_times)
    keep_obs = (times is not None) if observations_only is None else bool(observations_only)
    doses = dataset_events(doses)
    if isinstance(doses, str):
        doses = parse_regimen(doses)
    keyed_c = _keyed(covariates, "covariates")
    keyed_p = _keyed(parameters, "parameters")
    flat_c = {} if keyed_c is not None else dict(covariates or {})
    flat_p = {} if keyed_p is not None else dict(parameters or {})
    if isinstance(doses, EventTable):
        ids = doses.subject_ids
        if len(ids) == 0:
            raise EventError("ID", "the event table has no records", "give at least one record")
        for name, v in {**flat_c, **flat_p}.items():
            if np.ndim(v) > 0 and (np.size(v) != 1 or len(ids) > 1):
                raise CovariateError(name, f"has {np.size(v)} values in a dataset of "
                                     f"{len(ids)} subject(s); values by position are not "
                                     "matched to IDs",
                                     "key per-subject values by ID: {id: {name: value}} or a "
                                     "DataFrame indexed by ID")
        shared: Regimen | None = None
        records: EventTable | None = doses
    elif isinstance(doses, Regimen):
        shared, records = doses, None
        if keyed_c is not None or keyed_p is not None:
            ids = np.array(sorted((keyed_c or keyed_p or {}).keys()), dtype=np.int64)
            for name, v in {**flat_c, **flat_p}.items():
                if np.ndim(v) > 0 and np.size(v) != 1:
                    raise CovariateError(name, "has values by position while others are keyed "
                                         "by ID", "key every per-subject value by ID")
        else:
            ids = np.arange(1, _count(flat_c, flat_p) + 1)
    else:
        raise DoseError("doses", f"{type(doses).__name__} is not a regimen",
                        "pass regimen text, a Regimen, an EventTable or a NonmemDataset")
    covs = _per_subject(keyed_c, flat_c, ids, "covariates")
    pars = _per_subject(keyed_p, flat_p, ids, "parameters")
    return Prepared(model=model, ids=np.asarray(ids, dtype=np.int64), covariates=covs,
                    parameters=pars, times=out_times, observations_only=keep_obs,
                    covariate_rule=covariate_rule, throw=throw, shared=shared,
                    records=records)


# ---------------------------------------------------------------------- values by subject
def _keyed(values: Any, field: str) -> dict[int, dict[str, float]] | None:
    """``{id: {name: value}}`` from a mapping of mappings or a DataFrame indexed by ID;
    None when ``values`` is not keyed by ID (names to values)."""
    if values is None:
        return None
    if hasattr(values, "iterrows") and hasattr(values, "index"):  # a pandas DataFrame
        frame = values
        if "ID" in frame.columns and frame.index.name != "ID":
            raise CovariateError(field, "the DataFrame has an ID column but is not indexed "
                                 "by it", "use frame.set_index('ID')")
        return {_as_id(i, field): {str(c): _as_float(v, field, c) for c, v in row.items()}
                for i, row in frame.iterrows()}
    if not isinstance(values, Mapping):
        raise CovariateError(field, f"{type(values).__name__} is not a mapping",
                             "give {name: value}, {id: {name: value}} or a DataFrame indexed "
                             "by ID")
    nested = [isinstance(v, Mapping) for v in values.values()]
    if not any(nested):
        return None
    if not all(nested):
        raise CovariateError(field, "mixes values keyed by ID with values keyed by name",
                             "give either {name: value} or {id: {name: value}}")
    out: dict[int, dict[str, float]] = {}
    for k, v in values.items():
        sid = _as_id(k, field)
        if sid in out:
            raise CovariateError(field, f"ID {sid} is given twice", "give each ID once")
        out[sid] = {str(n): _as_float(x, field, n) for n, x in v.items()}
    return out


def _as_id(key: Any, field: str) -> int:
    try:
        f = float(key)
    except (TypeError, ValueError):
        raise CovariateError(field, f"{key!r} is not a subject ID",
                             "key per-subject values by the dataset's (whole-number) IDs"
                             ) from None
    if not np.isfinite(f) or f != round(f):
        raise CovariateError(field, f"{key!r} is not a subject ID",
                             "key per-subject values by the dataset's (whole-number) IDs")
    return int(f)


def _as_float(value: Any, field: str, name: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise CovariateError(str(name), f"{value!r} in {field} is not a number",
                             "give one number per subject and name") from None
    return out


def _count(*groups: Mapping[str, Any]) -> int:
    n = 1
    for g in groups:
        for name, v in g.items():
            s = np.shape(v)
            if len(s) > 1:
                raise CovariateError(name, f"has shape {s}", "give one value, or one per subject")
            if len(s) == 1:
                if n not in (1, s[0]):
                    raise CovariateError(name, f"has {s[0]} values, other inputs have {n}",
                                         "give every per-subject array the same length")
                n = s[0]
    return n


def _per_subject(keyed: dict[int, dict[str, float]] | None, flat: Mapping[str, Any],
                 ids: np.ndarray, field: str) -> dict[str, np.ndarray]:
    n = len(ids)
    out: dict[str, np.ndarray] = {}
    for name, v in flat.items():
        arr = np.asarray(v, dtype=float)
        if arr.ndim == 0 or arr.size == 1:
            out[name] = np.full(n, float(arr.reshape(-1)[0]))
        elif arr.shape == (n,):
            out[name] = arr.copy()
        else:
            raise CovariateError(name, f"has {arr.shape[0]} values for {n} subjects",
                                 "give one value, or one per subject")
    if keyed is None:
        return out
    known = {int(i) for i in ids}
    for sid in keyed:
        if sid not in known:
            raise CovariateError(field, f"ID {sid} is not in the dataset",
                                 "give values only for the dataset's subject IDs")
    names: list[str] = []
    for vals in keyed.values():
        names += [k for k in vals if k not in names]
    for name in names:
        if name in out:
            raise CovariateError(name, f"is given both for every subject and by ID in {field}",
                                 "give it once")
        col = np.empty(n)
        for k, sid in enumerate(ids):
            given = keyed.get(int(sid))
            if given is None:
                raise CovariateError(field, f"no values for ID {int(sid)}",
                                     "give values for every subject ID in the dataset")
            if name not in given:
                raise CovariateError(name, f"is missing for ID {int(sid)} in {field}",
                                     "give every subject the same names")
            col[k] = given[name]
        out[name] = col
    if not names:  # an empty mapping per ID still has to cover every ID
        for sid in ids:
            if int(sid) not in keyed:
                raise CovariateError(field, f"no values for ID {int(sid)}",
                                     "give values for every subject ID in the dataset")
    return out


__all__ = ["Doses", "Prepared", "SubjectProblem", "dataset_events", "expand_regimen", "prepare",
           "resolve_compartments", "row_order", "subject_problem"]
