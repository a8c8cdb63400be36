"""This patient's individual forecast in the clinic (issue #14 item 5): the clinic's records
read as the estimation library's :class:`~ketasim.estimation.patient.PatientData`, the plan
ahead on the patient's clock, and the cache policy.

Pure: no I/O. The web layer (:mod:`ketasim.web.individual`) reads the rows, passes them in as
plain records, keeps the results in a table keyed by :attr:`ForecastInputs.version` and
computes them in the background with :func:`compute`.

- **Times** are hours from the patient's first recorded dose. Ratings on the plan's
  indication's instruments (PHQ-9, QIDS-SR16, MADRS … as the clinic stores them) keep the time
  they were submitted; those at or before the first dose are the baseline. A session's pre-dose
  SBP/DBP is placed at that session's first dose (the library reads a BP at a dose's own time
  as that session's pre-dose baseline); its observations' SBP, DBP and CADSS within 4 h after
  a dose are session readings. Levels are ng/mL after the first dose.
- **Doses** are the doses recorded in monitored sessions, in mg as given (a dose entered in
  mL is its mg), IV infusions with their duration; esketamine sessions give esketamine doses.
  The weight is the one recorded with the latest dose (the plan's before any dose); the age
  comes from the year of birth (unknown when not recorded).
- **The plan ahead** is what the forecast follows after the doses given so far: the next
  session a prescriber accepted into the current plan and the spacing after it, when there is
  one; otherwise the sessions of the current plan not yet given (the plan's own spacing,
  anchored at its first dose given; a plan none of whose doses is given yet starts one plan
  interval after the last dose), never before today. A finished plan leaves the doses given
  so far.
- **The data version** is a SHA-256 of everything the forecast reads (every rating, dose,
  session reading and level with its record id and time, the weight, the age, the
  indication, the plan ahead and the :class:`Policy`): saving a rating, a session dose or
  reading, a level, a plan or an accepted next session gives a new version, so a cached
  forecast is never shown for data it did not see, and nothing has to remember to invalidate
  it.

A record the forecast cannot use (no dose yet, no rating, no rating before the first dose,
an indication without a symptom course) raises :class:`IndividualUnavailable` naming what is
missing and what to do; :func:`compute` returns the library's error text instead of raising,
so a background worker (or another process) can store it.

ketasim supports decisions and research; it does not replace a clinician.

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
>>> plan = PlanRecord(1, "0.5 mg/kg IV over 40 min three times weekly for 2 weeks", "trd",
...                   70.0, t0 - timedelta(days=2))
>>> inputs = patient_inputs(
...     plan=plan, doses=[DoseRecord(7, 1, t0, "racemic", "iv_infusion", 35.0, 40.0, 70.0)],
...     ratings=[RatingRecord(3, "phq9", 20, t0 - timedelta(days=1)),
...              RatingRecord(4, "phq9", 9, t0 + timedelta(days=1))])
>>> [(r.time_h, r.value) for r in inputs.data.ratings], len(inputs.version)
([(-24.0, 20.0), (24.0, 9.0)], 64)
>>> inputs.plan_text  # the plan's first dose was the one given: five to go
'35 mg IV over 40 min three times weekly x 5'
"""

from __future__ import annotations

import hashlib
import json
import math
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from ketasim.design.recommend import INTERVALS_DAYS, recommend
from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import Dose, Regimen
from ketasim.dosing.route import Route
from ketasim.errors import KetasimError
from ketasim.estimation.forecast import forecast_patient, plan_start
from ketasim.estimation.patient import (
    SESSION_KINDS,
    SESSION_WINDOW_H,
    Level,
    PatientData,
    Rating,
    Reading,
)
from ketasim.outcomes.indications import get_indication
from ketasim.scales import get_instrument

ALGORITHM = "individual-1"  # part of the data version: bump when the computation changes
READING_RANGES = {"cadss": (0.0, 92.0), "sbp": (60.0, 260.0), "dbp": (30.0, 160.0)}
AGE_RANGE = (12.0, 110.0)  # the library's
RELAPSE_DAY = 28  # the P(relapse by N days) the pages show


class IndividualUnavailable(KetasimError):
    """The clinic's records cannot give an individual forecast (what is missing, and what to
    do)."""


@dataclass(frozen=True)
class RatingRecord:
    """A scored questionnaire: its row id, instrument, total and when it was submitted."""

    id: int
    instrument: str
    total: float
    at: datetime


@dataclass(frozen=True)
class DoseRecord:
    """A dose recorded in a monitored session (mg as given; ``duration_min`` for an IV
    infusion; the weight recorded with it)."""

    id: int
    session_id: int
    at: datetime
    compound: str
    route: str
    dose_mg: float
    duration_min: float | None = None
    weight_kg: float | None = None


@dataclass(frozen=True)
class ReadingRecord:
    """A pre-dose check (``kind`` "predose") or a set of observations ("vitals") of a
    session: its SBP, DBP and CADSS (None when not taken)."""

    id: int
    session_id: int
    at: datetime
    kind: str
    sbp: float | None = None
    dbp: float | None = None
    cadss: float | None = None


@dataclass(frozen=True)
class LevelRecord:
    """A drug level (ng/mL) of an analyte of the PK model, with when it was sampled."""

    id: int
    at: datetime
    analyte: str
    value_ng_ml: float


@dataclass(frozen=True)
class PlanRecord:
    """The current treatment plan: its regimen text, indication, weight and creation time."""

    id: int
    regimen: str
    indication: str
    weight_kg: float
    created_at: datetime


@dataclass(frozen=True)
class NextSessionRecord:
    """A next session accepted into the plan: when, what, and the spacing after it."""

    id: int
    plan_id: int
    due_at: datetime
    compound: str
    route: str
    dose_mg: float
    duration_min: float | None
    interval_days: float
    sessions: int
    accepted_at: datetime

    def regimen(self) -> Regimen:
        """The accepted schedule as a regimen starting at time 0."""
        return Regimen((_dose(self.dose_mg, self.route, self.duration_min, self.compound,
                              every=self.interval_days * 24.0,
                              additional=max(self.sessions, 1) - 1),))


@dataclass(frozen=True)
class Policy:
    """How the forecast and the suggestion are computed (part of the data version): posterior
    draws, follow-up, the relapse target and the intervals considered."""

    n_forecast: int = 2000
    n_recommend: int = 1000
    follow_up_days: float = 84.0
    target_relapse: float = 0.2
    intervals_days: tuple[float, ...] = INTERVALS_DAYS
    seed: int = 20261129


@dataclass(frozen=True)
class ForecastInputs:
    """What the forecast reads, and its version."""

    data: PatientData
    indication: str
    plan: Regimen | None
    start_h: float | None
    plan_text: str
    first_dose_at: datetime
    last_dose: DoseRecord
    policy: Policy
    version: str
    left_out: tuple[str, ...] = field(default_factory=tuple)


def _h(t: datetime, origin: datetime) -> float:
    return round((_utc(t) - _utc(origin)).total_seconds() / 3600.0, 6)


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _dose(mg: float, route: str, duration_min: float | None, compound: str, *,
          time: float = 0.0, every: float | None = None, additional: int = 0) -> Dose:
    r = Route.parse(route)
    hours = duration_min / 60.0 if duration_min is not None and duration_min > 0 else None
    if r is Route.IV_INFUSION and hours is None:
        r = Route.IV_BOLUS
    return Dose(float(mg), r, time=time, duration=hours if r is Route.IV_INFUSION else None,
                compound="esketamine" if compound == "esketamine" else None,
                every=every, additional=additional)


def dose_text(mg: float, route: str, duration_min: float | None, compound: str) -> str:
    """One dose in the regimen language, as the clinic records it.

    >>> dose_text(35.0, "iv_infusion", 40.0, "racemic"), dose_text(84, "intranasal", None,
    ...                                                              "esketamine")
    ('35 mg IV over 40 min', '84 mg esketamine intranasal')
    """
    return Regimen((_dose(mg, route, duration_min, compound),)).to_text()


def _when(t: datetime, tz: tzinfo) -> str:
    return f"{_utc(t).astimezone(tz):%Y-%m-%d}"


def plan_ahead(regimen: Regimen, *, weight_kg: float, made_h: float,
               dose_times_h: Sequence[float], anchor_h: float | None,
               last_record_h: float) -> tuple[Regimen | None, float | None]:
    """The part of ``regimen`` still to be given and when it starts (h from the first dose;
    None: the library's default, one plan interval after the last dose). Doses at or after
    ``made_h`` (when the plan was made or the next session accepted) count as the plan's;
    ``anchor_h`` is an accepted first session. Never before the last record.

    >>> reg = parse_regimen("35 mg IM weekly for 4 weeks")
    >>> left, start = plan_ahead(reg, weight_kg=70, made_h=-1, dose_times_h=[0.0, 168.0],
    ...                          anchor_h=None, last_record_h=200.0)
    >>> left.n_administrations, start
    (2, 336.0)
    """
    admin = regimen.administrations(weight_kg)
    given = sorted(t for t in dose_times_h if t >= made_h - 1e-9)
    k = len(given)
    if k >= len(admin):
        return None, None
    t_k = admin[k][0]
    rest = Regimen(tuple(Dose(mg, d.route, time=t - t_k, duration=d.duration, rate=d.rate,
                              compound=d.compound) for t, mg, d in admin[k:]))
    if len(rest.doses) > 1:  # written back as one repeated dose when evenly spaced
        gaps = {round(b.time - a.time, 6) for a, b in zip(rest.doses, rest.doses[1:],
                                                         strict=False)}
        amounts = {(d.amount, d.route, d.duration, d.compound) for d in rest.doses}
        if len(gaps) == 1 and len(amounts) == 1:
            rest = Regimen((Dose(rest.doses[0].amount, rest.doses[0].route,
                                 duration=rest.doses[0].duration,
                                 compound=rest.doses[0].compound, every=gaps.pop(),
                                 additional=len(rest.doses) - 1),))
    if anchor_h is not None:
        start: float | None = anchor_h + (t_k - admin[0][0])
    elif k:
        start = given[0] + (t_k - admin[0][0])
    else:
        start = None
    if start is not None:
        start = max(start, last_record_h + 1.0)
    return rest, start


def patient_inputs(*, plan: PlanRecord | None, doses: Sequence[DoseRecord],
                   ratings: Sequence[RatingRecord], readings: Sequence[ReadingRecord] = (),
                   levels: Sequence[LevelRecord] = (), accepted: NextSessionRecord | None = None,
                   birth_year: int | None = None, today: datetime | None = None,
                   tz: tzinfo = UTC, policy: Policy | None = None) -> ForecastInputs:
    """The forecast's inputs from the clinic's records (module docstring), or
    :class:`IndividualUnavailable` saying what is missing."""
    policy = policy or Policy()
    if plan is None:
        raise IndividualUnavailable("plan", "there is no treatment plan",
                                    "create a plan: the forecast needs its indication")
    ind = get_indication(plan.indication)
    if not ind.predicts_efficacy or ind.pathway != "cascade":
        raise IndividualUnavailable(
            "indication", f"individual forecasts follow a symptom course; {ind.name} has none "
            "in the model", "use the plan's population forecast")
    if not doses:
        raise IndividualUnavailable("dose", "no dose has been recorded yet",
                                    "the individual forecast starts with the first dose given "
                                    "in a monitored session")
    doses = sorted(doses, key=lambda d: (_utc(d.at), d.id))
    first = _utc(doses[0].at)
    names = ", ".join(get_instrument(i).name.split(" (")[0] for i in ind.instruments)
    mine = sorted((r for r in ratings if r.instrument in ind.instruments),
                  key=lambda r: (_utc(r.at), r.id))
    if not mine:
        raise IndividualUnavailable(
            "rating", f"no rating on an instrument of {ind.name} ({names})",
            "rate the patient (e.g. a PHQ-9 in the portal); the forecast is fitted to "
            "the ratings")
    if not any(_utc(r.at) <= first for r in mine):
        raise IndividualUnavailable(
            "baseline rating", f"no rating before the first dose ({_when(first, tz)}): the "
            f"first was on {_when(mine[0].at, tz)}",
            "the individual forecast needs the rating taken before the first session; the "
            "population forecast of the plan stands")
    weight = next((d.weight_kg for d in reversed(doses) if d.weight_kg), None) or plan.weight_kg
    age: float | None = None
    if birth_year is not None:
        age = float(_utc(today or datetime.now(UTC)).astimezone(tz).year - birth_year)
        age = age if AGE_RANGE[0] <= age <= AGE_RANGE[1] else None
    try:
        regimen = Regimen(tuple(_dose(d.dose_mg, d.route, d.duration_min, d.compound,
                                      time=_h(d.at, first)) for d in doses))
    except KetasimError as exc:
        raise IndividualUnavailable("dose", f"a recorded dose cannot be read ({exc.problem})",
                                    "check the session's dose record") from None
    left_out: list[str] = []
    dose_h = sorted(_h(d.at, first) for d in doses)
    session_first: dict[int, float] = {}
    for d in doses:
        session_first.setdefault(d.session_id, _h(d.at, first))
    reads: list[Reading] = []
    for r in sorted(readings, key=lambda r: (_utc(r.at), r.id)):
        if r.kind == "predose":
            if r.session_id not in session_first:
                continue  # a session without a dose: nothing to be the baseline of
            t = session_first[r.session_id]
            values = {"sbp": r.sbp, "dbp": r.dbp}
        else:
            t = _h(r.at, first)
            before = [x for x in dose_h if x <= t + 1e-9]
            if not before or t - before[-1] > SESSION_WINDOW_H:
                continue  # not within 4 h after a dose: not a session reading
            values = {"sbp": r.sbp, "dbp": r.dbp, "cadss": r.cadss}
        for kind, v in values.items():
            if v is None:
                continue
            lo, hi = READING_RANGES[kind]
            if not lo <= float(v) <= hi:
                left_out.append(f"{kind.upper()} {v:g} (outside the model's {lo:g}-{hi:g})")
                continue
            reads.append(Reading(t, kind, float(v), r.id))
    assert all(x.kind in SESSION_KINDS for x in reads)
    lvls = []
    for lv in levels:
        t = _h(lv.at, first)
        if t <= 0:
            left_out.append(f"{lv.analyte} level before the first dose")
            continue
        lvls.append(Level(t, lv.analyte, float(lv.value_ng_ml), lv.id))
    data = PatientData(float(weight), age, regimen,
                       tuple(Rating(_h(r.at, first), r.instrument, float(r.total), r.id)
                             for r in mine), tuple(reads), tuple(lvls),
                       source="clinic record")
    last_h = data.last_time_h
    if accepted is not None and accepted.plan_id == plan.id:
        base, made, anchor = accepted.regimen(), _h(accepted.accepted_at, first), \
            _h(accepted.due_at, first)
    else:
        try:
            base = parse_regimen(plan.regimen)
        except KetasimError as exc:
            raise IndividualUnavailable("plan", f"its regimen cannot be read ({exc.problem})",
                                        "create the plan again from the library") from None
        made, anchor = _h(plan.created_at, first), None
    ahead, start = plan_ahead(base, weight_kg=weight, made_h=made, dose_times_h=dose_h,
                              anchor_h=anchor, last_record_h=last_h)
    if ahead is not None:
        start = plan_start(data, ahead) if start is None else start
        if today is not None:  # sessions not given yet are not in the past: from today on
            midnight = datetime.combine(_utc(today).astimezone(tz).date(), datetime.min.time(),
                                        tzinfo=tz)
            start = max(start, _h(midnight, first))
    text = "none (the plan's sessions have all been given)" if ahead is None else \
        ahead.to_text()
    version = data_version(data, plan.indication, ahead, start, policy)
    return ForecastInputs(data, plan.indication, ahead, start, text, first, doses[-1],
                          policy, version, tuple(left_out))


def data_version(data: PatientData, indication: str, plan: Regimen | None,
                 start_h: float | None, policy: Policy) -> str:
    """SHA-256 (hex) of the canonical JSON of everything the forecast reads."""
    def doses(reg: Regimen | None) -> list[Any]:
        if reg is None:
            return []
        return [[round(t, 6), round(mg, 6), d.route.value, d.duration, d.rate, d.compound]
                for t, mg, d in reg.administrations(data.weight_kg)]

    body = {"algorithm": ALGORITHM, "indication": indication, "weight": data.weight_kg,
            "age": data.age, "doses": doses(data.regimen),
            "ratings": [[r.row, r.time_h, r.instrument, r.value] for r in data.ratings],
            "readings": [[r.row, r.time_h, r.kind, r.value] for r in data.readings],
            "levels": [[r.row, r.time_h, r.analyte, r.value] for r in data.levels],
            "plan": doses(plan), "start_h": start_h, "policy": asdict(policy)}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def compute(inputs: ForecastInputs, part: str) -> dict[str, Any]:
    """Compute ``part`` ("forecast": :func:`~ketasim.estimation.forecast.forecast_patient`
    under the plan ahead; "recommendation": :func:`~ketasim.design.recommend.recommend`) and
    return ``{"result": …}``, or ``{"error": …, "expected": bool, "trace": …}`` — never
    raising, so a worker process can hand anything back. ``expected`` is True for a typed
    ketasim error (the data's or the model's: its text is for the page)."""
    p = inputs.policy
    try:
        if part == "forecast":
            f = forecast_patient(inputs.data, inputs.indication, plan=inputs.plan,
                                 start_h=inputs.start_h, follow_up_days=p.follow_up_days,
                                 n=p.n_forecast, seed=p.seed)
            return {"result": _finite(f.to_json())}
        if part == "recommendation":
            r = recommend(inputs.data, inputs.indication, target_relapse=p.target_relapse,
                          intervals_days=p.intervals_days, horizon_days=p.follow_up_days,
                          n=p.n_recommend, seed=p.seed)
            return {"result": _finite(r.to_json())}
        raise ValueError(f"unknown part {part!r}")
    except KetasimError as exc:
        return {"error": str(exc), "expected": True, "trace": ""}
    except Exception as exc:  # a bug: the page says so, the log keeps the trace
        return {"error": f"{type(exc).__name__}: {exc}", "expected": False,
                "trace": traceback.format_exc()}


def _finite(value: Any) -> Any:
    """JSON-safe: non-finite floats (e.g. an undefined median) become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def summary(forecast: dict[str, Any]) -> dict[str, Any]:
    """The numbers the pages show from a forecast's JSON: P(response) and P(remission) at the
    end of the plan, P(relapse by :data:`RELAPSE_DAY` days) among responders and the median
    days to relapse (None: beyond the follow-up), as percentages where they are
    probabilities.

    >>> s = summary({"p_response": 0.8123, "p_remission": 0.4, "end_day": 12.0,
    ...              "p_relapse_by": {"7": 0.0, "28": 0.25}, "median_days_to_relapse": None})
    >>> s["p_response"], s["p_remission"], s["p_relapse_28"], s["median_days_to_relapse"]
    (81, 40, 25, None)
    """
    def pct(x: Any) -> int | None:
        return None if x is None else round(100.0 * float(x))

    by = forecast.get("p_relapse_by") or {}
    return {"p_response": pct(forecast.get("p_response")),
            "p_remission": pct(forecast.get("p_remission")),
            "end_day": forecast.get("end_day"),
            "p_relapse_28": pct(by.get(str(RELAPSE_DAY))),
            "median_days_to_relapse": forecast.get("median_days_to_relapse")}


__all__ = ["ALGORITHM", "RELAPSE_DAY", "DoseRecord", "ForecastInputs", "IndividualUnavailable",
           "LevelRecord", "NextSessionRecord", "PlanRecord", "Policy", "RatingRecord",
           "ReadingRecord", "compute", "data_version", "dose_text", "patient_inputs", "plan_ahead",
           "summary"]
