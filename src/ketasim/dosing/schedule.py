"""NM-TRAN event semantics: turn one subject's records into an ordered dosing schedule.

This module decides *what happens when* — exactly as NONMEM does — and leaves *how the state
moves* to the engines. It expands ADDL, applies lag times (ALAG) and bioavailability (F),
resolves infusion rates and durations (RATE > 0, RATE = -1 modelled rate, RATE = -2 modelled
duration, DUR), handles resets (EVID 3, EVID 4, SS = 1) and steady-state doses (SS = 1 and 2,
bolus, infusion, overlapping infusions with II < DUR, constant infusions with II = 0, lag
times), and assigns each integration interval the record whose parameters govern it
(next observation carried backward, NONMEM's default, or last observation carried forward).

Amounts are arrays with a leading subject axis (shape ``(n,)``) so that a population sharing
the same dosing times is interpreted once. Times (lag, durations) must then be common to all
subjects; :class:`TimingDiffersError` says when they are not.

Semantics chosen where NONMEM's manuals leave room (checked against the NONMEM 7.5 outputs
in ``nmtests``):

* F and ALAG of a dose (additional doses included) come from the dose record's parameters.
* At one time, records keep file order; doses implied by ADDL or delayed by ALAG, and infusion
  ends, are applied before the records at that time.
* A reset (EVID 3/4, SS = 1) stops running infusions and cancels pending additional or
  lagged doses of earlier records.
* Every record yields an output row; a dose record's row is taken after its dose.

>>> import numpy as np
>>> from ketasim.dosing.events import EventTable
>>> t = EventTable.from_records([dict(ID=1, TIME=0, EVID=1, AMT=10, CMT=1, II=12, ADDL=1),
...                              dict(ID=1, TIME=24, EVID=0, CMT=1)])
>>> s = build_schedule(t, n_cmt=1, f=np.ones((1, 2)), lag=np.zeros(2))
>>> [node.time for node in s.nodes]
[0.0, 12.0, 24.0]
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ketasim.dosing.events import EventTable
from ketasim.errors import EventError

CovariateRule = Literal["nocb", "locf"]


class TimingDiffersError(Exception):
    """Raised when subjects interpreted together would need different event times."""


@dataclass(frozen=True)
class SteadyStateSpec:
    """A periodic dosing pattern whose steady state an engine must compute.

    Each cycle of length ``ii`` starts with an administration into ``cmt`` (0-based): a bolus
    of ``bolus`` and/or an infusion at ``rate`` for ``dur`` hours (``dur`` may exceed ``ii``:
    infusions then overlap). The engine returns the periodic state ``phase`` hours after an
    administration (``phase == ii`` is the trough just before the next one). ``ii == 0`` means
    a constant infusion at ``rate`` (its steady state).
    """

    cmt: int
    bolus: np.ndarray
    rate: np.ndarray
    dur: float
    ii: float
    phase: float
    add: bool  # SS=2: add to the current state instead of replacing it
    record: int


@dataclass
class Action:
    """One instantaneous action at a node: reset, bolus, steady state or output."""

    kind: Literal["reset", "bolus", "ss", "obs"]
    cmt: int = -1
    amount: np.ndarray | None = None
    spec: SteadyStateSpec | None = None
    record: int = -1


@dataclass
class Node:
    """A time at which something happens; ``rates`` is the input rate (N, n_cmt) after it."""

    time: float
    actions: list[Action] = field(default_factory=list)
    rates: np.ndarray | None = None
    param_record: int = 0  # record whose parameters govern the interval ending here


@dataclass
class Schedule:
    """The ordered nodes of one subject (or of subjects sharing event times)."""

    nodes: list[Node]
    n_subjects: int
    n_cmt: int
    n_records: int

    @property
    def times(self) -> np.ndarray:
        """Node times (h)."""
        return np.array([n.time for n in self.nodes])


@dataclass(order=True)
class _Pending:
    time: float
    seq: int
    kind: str = field(compare=False)
    data: tuple = field(compare=False, default=())
    owner: int = field(compare=False, default=-1)


def _common(values: np.ndarray, what: str) -> float:
    v = np.atleast_1d(values)
    if v.size == 0:
        return 0.0
    if not np.allclose(v, v.flat[0], rtol=1e-12, atol=0.0):
        raise TimingDiffersError(what)
    return float(v.flat[0])


def build_schedule(
    table: EventTable,
    *,
    n_cmt: int,
    f: np.ndarray,
    lag: np.ndarray,
    amounts: np.ndarray | None = None,
    model_rate: np.ndarray | None = None,
    model_duration: np.ndarray | None = None,
    covariate_rule: CovariateRule = "nocb",
) -> Schedule:
    """Interpret one subject's records (CMT already resolved, 1-based).

    ``f`` (N, n_records) is the bioavailability of each record's dosing compartment evaluated
    with that record's parameters; ``lag`` (n_records,) its lag time (h). ``amounts``
    (N, n_records) overrides AMT per subject (default: the table's AMT). ``model_rate`` and
    ``model_duration`` (N, n_records) supply RATE = -1 and RATE = -2 values.
    """
    n_rec = table.n_records
    if len(table.subject_ids) > 1:
        raise EventError("ID", "build_schedule takes one subject", "split the table by subject")
    f = np.atleast_2d(np.asarray(f, dtype=float))
    n = f.shape[0]
    amt = np.broadcast_to(table.amt, (n, n_rec)) if amounts is None else np.atleast_2d(amounts)
    lag = np.asarray(lag, dtype=float)
    if lag.ndim == 2:
        lag = np.array([_common(lag[:, i], "lag time") for i in range(n_rec)])
    if np.any(lag < 0) or not np.all(np.isfinite(lag)):
        raise EventError("ALAG", "a lag time is negative or not finite",
                         "lag times must be finite and >= 0")
    if np.any(f < 0) or not np.all(np.isfinite(f)):
        raise EventError("F", "a bioavailability is negative or not finite",
                         "bioavailability must be finite and >= 0")
    if np.any((table.cmt < 1) | (table.cmt > n_cmt)) and np.any(np.isin(table.evid, (1, 4))):
        dose_cmt = table.cmt[np.isin(table.evid, (1, 4))]
        bad = dose_cmt[(dose_cmt < 1) | (dose_cmt > n_cmt)]
        if bad.size:
            raise EventError("CMT", f"dose into compartment {int(bad[0])}, the model has "
                             f"{n_cmt}", f"use a compartment number between 1 and {n_cmt}")

    nodes: list[Node] = []
    pending: list[_Pending] = []
    active: dict[int, tuple[int, np.ndarray]] = {}
    seq = 0
    inf_id = 0

    def node_at(t: float) -> Node:
        if not nodes or nodes[-1].time != t:
            if nodes and t < nodes[-1].time:  # pragma: no cover - guarded by sorting
                raise EventError("TIME", "events out of order", "sort records by time")
            nodes.append(Node(t))
        return nodes[-1]

    def push(t: float, kind: str, data: tuple, owner: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(pending, _Pending(t, seq, kind, data, owner))

    def start_infusion(t: float, cmt: int, rate: np.ndarray, dur: float, owner: int) -> None:
        nonlocal inf_id
        inf_id += 1
        active[inf_id] = (cmt, rate)
        node_at(t)
        if math.isfinite(dur):
            push(t + dur, "end", (inf_id,), owner)

    def administer(t: float, cmt: int, amount: np.ndarray, rate: np.ndarray | None,
                   dur: float, owner: int) -> None:
        node = node_at(t)
        if rate is None:
            node.actions.append(Action("bolus", cmt=cmt, amount=amount, record=owner))
        elif dur > 0:
            start_infusion(t, cmt, rate, dur, owner)

    def apply_pending(p: _Pending) -> None:
        if p.kind == "end":
            active.pop(p.data[0], None)
            node_at(p.time)
        elif p.kind == "admin":
            cmt, amount, rate, dur = p.data
            administer(p.time, cmt, amount, rate, dur, p.owner)

    def reset(t: float) -> None:
        pending.clear()
        active.clear()
        node_at(t).actions.append(Action("reset"))

    def flush(until: float) -> None:
        while pending and pending[0].time <= until:
            apply_pending(heapq.heappop(pending))
            close_rates()

    def close_rates() -> None:
        if nodes:
            r = np.zeros((n, n_cmt))
            for cmt, rate in active.values():
                r[:, cmt] += rate
            nodes[-1].rates = r

    for i in range(n_rec):
        t = float(table.time[i])
        flush(t)
        node = node_at(t)
        evid = int(table.evid[i])
        if evid == 3:
            reset(t)
        elif evid in (1, 4):
            if evid == 4:
                reset(t)
            cmt = int(table.cmt[i]) - 1
            a = amt[:, i] * f[:, i]
            rate_col = float(table.rate[i])
            dur_col = float(table.dur[i])
            rate: np.ndarray | None = None
            dur = 0.0
            if rate_col > 0:
                rate = np.full(n, rate_col)
                dur = _common(a / rate_col, "infusion duration") if table.amt[i] > 0 else math.inf
            elif rate_col == -1.0:
                if model_rate is None:
                    raise EventError("RATE", f"record {i + 1} has RATE=-1 but the model defines "
                                     "no infusion rate", "give RATE > 0 or define the model's "
                                     "rate for this compartment")
                rate = np.atleast_2d(model_rate)[:, i] * np.ones(n)
                if np.any(np.isnan(rate)):
                    raise EventError("RATE", f"record {i + 1} has RATE=-1 but the model defines "
                                     "no infusion rate for this compartment",
                                     "give RATE > 0 or define the compartment's rate")
                if np.any(rate <= 0):
                    raise EventError("RATE", "modelled infusion rate is not > 0",
                                     "the model's rate parameter must be positive")
                dur = _common(a / rate, "infusion duration")
            elif rate_col == -2.0:
                if model_duration is None:
                    raise EventError("RATE", f"record {i + 1} has RATE=-2 but the model defines "
                                     "no infusion duration", "give RATE > 0 or define the "
                                     "model's duration for this compartment")
                md = np.atleast_2d(model_duration)[:, i]
                if np.any(np.isnan(md)):
                    raise EventError("RATE", f"record {i + 1} has RATE=-2 but the model defines "
                                     "no infusion duration for this compartment",
                                     "give RATE > 0 or define the compartment's duration")
                dur = _common(md, "infusion duration")
                if dur <= 0:
                    raise EventError("DUR", "modelled infusion duration is not > 0",
                                     "the model's duration parameter must be positive")
                rate = a / dur
            elif dur_col > 0:
                dur = dur_col
                rate = a / dur
            lag_i = float(lag[i])
            ii = float(table.ii[i])
            ss = int(table.ss[i])
            if ss:
                if ss == 1:
                    if evid != 4:
                        reset(t)
                const = ii == 0
                if const:
                    if rate is None:  # pragma: no cover - guarded by EventTable validation
                        raise EventError("SS", "steady state with II=0 needs RATE > 0",
                                         "give RATE > 0")
                    spec = SteadyStateSpec(cmt, np.zeros(n), rate, math.inf, 0.0, 0.0,
                                           ss == 2, i)
                    # NONMEM: the system is set to the steady state of the infusion, which
                    # then stops (AMT=0 leaves nothing more to infuse)
                    node_at(t).actions.append(Action("ss", spec=spec, record=i))
                else:
                    bolus = a if rate is None else np.zeros(n)
                    r_ss = rate if rate is not None else np.zeros(n)
                    d_ss = dur if rate is not None else 0.0
                    rem = math.fmod(lag_i, ii)
                    if lag_i == 0:
                        phase = ii
                    else:
                        phase = (ii - rem) if rem > 0 else 0.0
                    spec = SteadyStateSpec(cmt, bolus, r_ss, d_ss, ii, phase, ss == 2, i)
                    node_at(t).actions.append(Action("ss", spec=spec, record=i))
                    # earlier (virtual) administrations of the steady-state history
                    k = 1
                    while True:
                        ak = t + lag_i - k * ii
                        if ak > t:
                            push(ak, "admin", (cmt, bolus if rate is None else np.zeros(n),
                                               rate, dur), i)
                        elif rate is not None and ak + dur > t + 1e-12 * max(1.0, t):
                            start_infusion(t, cmt, rate, ak + dur - t, i)
                        elif ak + max(dur, 0.0) <= t:
                            break
                        k += 1
                    close_rates()
                    if lag_i == 0:
                        administer(t, cmt, a, rate, dur, i)
                    else:
                        push(t + lag_i, "admin", (cmt, a, rate, dur), i)
            else:
                if lag_i == 0:
                    administer(t, cmt, a, rate, dur, i)
                else:
                    push(t + lag_i, "admin", (cmt, a, rate, dur), i)
            for k in range(1, int(table.addl[i]) + 1):
                push(t + k * ii + lag_i, "admin", (cmt, a, rate, dur), i)
        node = node_at(t)
        node.actions.append(Action("obs", record=i))
        close_rates()
    flush(math.inf)
    # parameters governing each interval (t_{k-1}, t_k]
    rec_t = table.time
    for k, nd in enumerate(nodes):
        if nd.rates is None:
            nd.rates = nodes[k - 1].rates if k else np.zeros((n, n_cmt))
        if covariate_rule == "nocb":
            j = int(np.searchsorted(rec_t, nd.time, side="left"))
        else:
            prev_t = nodes[k - 1].time if k else nd.time
            j = int(np.searchsorted(rec_t, prev_t, side="right")) - 1
        nd.param_record = min(max(j, 0), n_rec - 1)
    return Schedule(nodes, n, n_cmt, n_rec)


__all__ = ["Action", "CovariateRule", "Node", "Schedule", "SteadyStateSpec",
           "TimingDiffersError", "build_schedule"]
