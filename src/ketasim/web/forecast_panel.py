"""The session forecast on the clinic's pages (issue #12 item 5): read the patient's records,
call :func:`ketasim.pd.session_forecast.forecast_session`, render.

On the **session page**, once a dose is recorded: the forecast for this patient and this dose
(the dose's weight, the patient's age from the year of birth on the record — 45 years,
assumed and said so, when it is not recorded — the session's pre-dose BP and HR, the number
of earlier completed
sessions with a dose, and — when there are any — the readings of those earlier sessions, so
the forecast is the patient's own), drawn as 90 % bands behind the readings, with every
reading outside its band listed, the forecast time the patient is ready to leave beside the
2-hour minimum (clock times in the clinic's zone), and how the forecast was made. On the
**chart** (the plan), the expected course of one session for each dose of the latest plan.

A dose the forecast cannot read gives a note, never an error page. Forecasts are deterministic
(fixed seed), so one computed for the same inputs is reused (:func:`cached_forecast`); the
computation runs after the page's reads, in no write transaction (the read transaction, which
takes no locks that writers wait for, stays open until the page is rendered).

>>> level_band({5: 0.0, 4: 0.6, 3: 0.2, 2: 0.04, 1: 0.01, 0: 0.0})
(3, 4, 5)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketasim.clinic.acute_forecast import (
    ASSUMED_AGE,
    TYPICAL_BASELINE,
    ForecastUnavailable,
    PastSession,
    history,
    outside_band,
    session_regimen,
)
from ketasim.clinic.session import MonitoredSession, MonitoringRules
from ketasim.dosing.language import format_regimen, parse_regimen
from ketasim.dosing.regimen import Regimen
from ketasim.errors import KetasimError
from ketasim.pd.session_forecast import (
    DISCLAIMER,
    HORIZON_H,
    REMS_MINIMUM_H,
    AcuteObservation,
    AcutePatient,
    SessionForecast,
    forecast_session,
)
from ketasim.storage.models import MonitoredSessionRow, SessionEvent
from ketasim.web.charts import band_svg, ticks
from ketasim.web.clock import clock
from ketasim.web.deps import utc

log = logging.getLogger("ketasim.web")

OUTPUTS = (("sbp", "SBP", "mmHg"), ("dbp", "DBP", "mmHg"), ("hr", "HR", "beats/min"),
           ("cadss", "CADSS", "total score 0-92"))
MOAAS_LEVELS = (0, 1, 2, 3, 4)


@lru_cache(maxsize=256)
def cached_forecast(regimen: str, patient: AcutePatient,
                    observations: tuple[AcuteObservation, ...]) -> SessionForecast:
    """The forecast for these inputs (deterministic, so computed once per inputs)."""
    return forecast_session(regimen, patient, history=observations)


def level_band(p_le: Mapping[int, float]) -> tuple[int, int, int]:
    """The 5th, 50th and 95th percentile MOAA/S levels from P(MOAA/S ≤ j)."""
    def q(level: float) -> int:
        return next((j for j in MOAAS_LEVELS if p_le.get(j, 0.0) >= level - 1e-12), 5)
    return q(0.05), q(0.5), q(0.95)


def _session_rows(db: Session, patient_id: int, before: MonitoredSessionRow | None
                  ) -> list[tuple[MonitoredSessionRow, list[SessionEvent]]]:
    """The patient's completed sessions (before ``before``, if given) that have a dose, in
    the order they took place, each with its steps."""
    stmt = select(MonitoredSessionRow).where(
        MonitoredSessionRow.patient_id == patient_id,
        MonitoredSessionRow.discharged_at.is_not(None))
    if before is not None:
        stmt = stmt.where(MonitoredSessionRow.id != before.id,
                          MonitoredSessionRow.started_at <= before.started_at)
    rows = list(db.scalars(stmt.order_by(MonitoredSessionRow.started_at,
                                         MonitoredSessionRow.id)))
    if not rows:
        return []
    events: dict[int, list[SessionEvent]] = {r.id: [] for r in rows}
    for e in db.scalars(select(SessionEvent).where(
            SessionEvent.session_id.in_(list(events))).order_by(SessionEvent.id)):
        events[e.session_id].append(e)
    return [(r, events[r.id]) for r in rows if any(e.kind == "dose" for e in events[r.id])]


def _num(data: Mapping[str, Any], key: str) -> float | None:
    v = data.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _past(rows: list[tuple[MonitoredSessionRow, list[SessionEvent]]]
          ) -> tuple[list[PastSession], int]:
    """Earlier sessions as the forecast's history (a session whose dose cannot be written as
    a regimen is counted but gives no readings); and how many were left out."""
    out: list[PastSession] = []
    left_out = 0
    for number, (row, events) in enumerate(rows, start=1):
        doses = [(utc(e.at), e.data) for e in events if e.kind == "dose"]
        try:
            regimen = session_regimen(row.compound, doses)
        except KetasimError:
            left_out += 1
            continue
        pre = next((e.data for e in events if e.kind == "predose"), {})
        readings = [(utc(e.at), _num(e.data, "sbp"), _num(e.data, "dbp"),
                     _num(e.data, "cadss")) for e in events if e.kind == "vitals"]
        out.append(PastSession(number, regimen, min(t for t, _ in doses), _num(pre, "sbp"),
                               _num(pre, "dbp"), readings))
    return out, left_out


def _evidence_note(f: SessionForecast) -> dict[str, Any]:
    names = {"calibrated": "calibrated to published trial data",
             "literature": "taken from the literature", "assumed": "assumed"}
    return {"groups": [{"tag": tag, "text": names.get(tag, tag), "n": len(params),
                        "params": ", ".join(params)} for tag, params in f.evidence.items()]}


def patient_age(birth_year: int | None, on: datetime, tz: tzinfo = UTC
                ) -> tuple[float, str]:
    """The age the forecast uses and where it comes from: the year of the session (in the
    clinic's zone) less the year of birth, or :data:`ASSUMED_AGE` when the record has none.

    >>> patient_age(1974, datetime(2026, 3, 2, tzinfo=UTC))
    (52.0, 'from the year of birth, 1974')
    >>> patient_age(None, datetime(2026, 3, 2, tzinfo=UTC))[1]
    'assumed: the clinic record has no year of birth'
    """
    if birth_year is None:
        return ASSUMED_AGE, "assumed: the clinic record has no year of birth"
    return float(on.astimezone(tz).year - birth_year), f"from the year of birth, {birth_year}"


def _method(f: SessionForecast, *, bp_source: str, weight_source: str, history_n: int,
            readings: int, left_out: int, session: bool = True,
            age_source: str = "assumed: the clinic record has no year of birth"
            ) -> dict[str, Any]:
    p = f.patient
    if f.individual:
        basis = (f"Individual forecast: the population model updated with this patient's own "
                 f"readings ({readings}) from {f.n_history_sessions} earlier "
                 f"session{'s' if f.n_history_sessions != 1 else ''}"
                 + (f" (effective sample size {f.ess:.0f})" if f.ess is not None else "")
                 + ".")
    elif history_n:
        basis = (f"Population forecast: this patient's {history_n} earlier session"
                 f"{'s' if history_n != 1 else ''} gave no readings the model can use.")
    else:
        basis = "Population forecast: no earlier completed sessions of this patient."
    return {
        "basis": basis, "individual": f.individual, "n_history": f.n_history_sessions,
        "regimen": f.regimen, "model": f.model, "n": f.n,
        "inputs": (f"{p.weight:g} kg ({weight_source}), age {p.age:g} years ({age_source}), "
                   f"pre-dose BP {p.sbp:g}/{p.dbp:g} mmHg and HR "
                   f"{p.hr:g}/min ({bp_source})"
                   + (f", session {p.session} of this patient" if session else "")),
        "evidence": _evidence_note(f)["groups"],
        "notes": list(f.notes) + ([f"{left_out} earlier session(s) left out (their dose "
                                   "could not be read as a regimen)"] if left_out else []),
        "disclaimer": DISCLAIMER,
    }


def _clock(first: datetime, hours: float, tz: tzinfo = UTC) -> dict[str, Any] | None:
    if not math.isfinite(hours):
        return None
    t = first + timedelta(hours=hours)
    return {"clock": clock(t, tz), "minutes": round(hours * 60.0), "iso": t.isoformat()}


def _y_range(key: str, values: Sequence[float]) -> tuple[float, float]:
    if key == "cadss":
        hi = max([*values, 5.0])
        return 0.0, ticks(0.0, hi)[-1]
    lo, hi = min(values), max(values)
    pad = max(5.0, 0.08 * (hi - lo))
    t = ticks(lo - pad, hi + pad)
    return t[0], t[-1]


def _guarded(what: str, compute: Any) -> tuple[Any, str | None]:
    """Run ``compute()``; a KetasimError (a dose the model cannot read, a value outside its
    ranges) or any other failure becomes a short reason instead of an error page (the
    forecast is advice; the page must always show). Database reads happen before this."""
    try:
        return compute(), None
    except KetasimError as exc:
        return None, str(exc)
    except Exception:
        log.exception("%s: the forecast failed", what)
        return None, "the forecast could not be computed (the error is logged)"


def session_view(db: Session, row: MonitoredSessionRow, state: MonitoredSession,
                 events: Sequence[SessionEvent], rules: MonitoringRules, *, tz: tzinfo = UTC,
                 birth_year: int | None = None) -> dict[str, Any]:
    """The forecast section of a session page: ``{"status": "none"}`` before a dose,
    ``{"status": "unavailable", "reason": …}`` when it cannot be forecast, otherwise the
    panels, the readings outside their bands, the band-vs-reading table, readiness and how
    the forecast was made. Clock times are in ``tz``; the age is the patient's from
    ``birth_year`` (assumed, and said so, when it is unknown)."""
    first = state.first_administration
    pre = state.predose
    if first is None or pre is None:
        return {"status": "none"}
    earlier = _session_rows(db, row.patient_id, row)  # the last read of the page

    def compute() -> dict[str, Any]:
        doses = [(utc(e.at), e.data) for e in events if e.kind == "dose"]
        regimen = session_regimen(row.compound, doses)
        weight = _num(doses[0][1], "weight_kg")
        if weight is None:
            raise ForecastUnavailable("weight", "was not recorded with the dose",
                                      "record the weight with the dose")
        past, left_out = _past(earlier)
        observations, _ = history(past)
        age, age_source = patient_age(birth_year, first, tz)
        patient = AcutePatient(weight, age, pre.sbp, pre.dbp, pre.hr,
                               prior_sessions=len(earlier))
        f = cached_forecast(regimen, patient, tuple(observations))
        return _render_session(f, state, rules, first, left_out=left_out,
                               readings=len({(o.session, o.t_h) for o in observations}),
                               history_n=len(earlier), tz=tz, age_source=age_source)

    view, reason = _guarded(f"session {row.id}", compute)
    return view if reason is None else {"status": "unavailable", "reason": reason}


def _render_session(f: SessionForecast, state: MonitoredSession, rules: MonitoringRules,
                    first: datetime, *, left_out: int, readings: int, history_n: int,
                    tz: tzinfo = UTC, age_source: str = "") -> dict[str, Any]:
    obs = ([state.predose] if state.predose else []) + list(state.observations)

    def minute(t: datetime) -> float:
        return round((t - first).total_seconds() / 60.0, 1)

    horizon = HORIZON_H * 60.0
    ready = f.discharge_ready_h
    last = max((minute(v.time) for v in obs), default=0.0)
    want = max(130.0, last + 10.0, (ready.p95 * 60.0 + 10.0) if math.isfinite(ready.p95)
               else 130.0)
    x1 = min(max(want, last + 5.0), max(horizon, last + 5.0))
    x1 = math.ceil(x1 / 15.0) * 15.0
    x0 = min(0.0, min((minute(v.time) for v in obs), default=0.0))
    x0 = math.floor(x0 / 5.0) * 5.0
    minutes = [float(t) * 60.0 for t in f.times_h]
    shown = [i for i, m in enumerate(minutes) if m <= x1 and i % 2 == 0]
    marks = [(0.0, "dose"), (rules.min_observation_min, f"{rules.min_observation_min:g} min")]
    panels: list[str] = []
    flags: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    for key, label, unit in OUTPUTS:
        arr = getattr(f, key)
        band = {"x": [minutes[i] for i in shown], **{name: [float(arr[k, i]) for i in shown]
                                                      for k, name in enumerate(
                                                          ("p5", "p50", "p95"))}}
        points = []
        for v in obs:
            value = getattr(v, key)
            if value is None:
                continue
            m = minute(v.time)
            judged = 0.0 < m <= horizon and v is not state.predose
            status = None
            if judged:
                b = f.band_at(key, m / 60.0)
                status = outside_band(float(value), b)
                table.append({"output": label, "minute": m, "value": value,
                              "p5": round(b[0]), "p50": round(b[1]), "p95": round(b[2]),
                              "status": status[0] if status else "within"})
                if status:
                    flags.append({"output": key, "label": label, "value": value, "minute": m,
                                  "side": status[0], "bound": status[1],
                                  "bound_name": "p95" if status[0] == "above" else "p5"})
            points.append((m, float(value), status is not None))
        values = [*band["p5"], *band["p95"], *(p[1] for p in points)]
        panels.append(band_svg(label=label, unit=unit, band=band, points=points,
                               x_range=(x0, x1), y_range=_y_range(key, values), marks=marks))
    # MOAA/S: the 5th-95th percentile levels from P(MOAA/S ≤ j) over time
    lv = [level_band({j: float(f.p_moaas_le[j][i]) for j in MOAAS_LEVELS}) for i in shown]
    mband = {"x": [minutes[i] for i in shown], "p5": [float(a) for a, _, _ in lv],
             "p50": [float(b) for _, b, _ in lv], "p95": [float(c) for _, _, c in lv]}
    mpoints = []
    for v in obs:
        if v.moaas is None:
            continue
        m = minute(v.time)
        status = None
        if 0.0 < m <= horizon:
            i = min(round(m), len(minutes) - 1)
            lo, mid, hi = level_band({j: float(f.p_moaas_le[j][i]) for j in MOAAS_LEVELS})
            status = outside_band(float(v.moaas), (lo, mid, hi))
            table.append({"output": "MOAA/S", "minute": m, "value": v.moaas, "p5": lo,
                          "p50": mid, "p95": hi,
                          "status": status[0] if status else "within"})
            if status:
                flags.append({"output": "moaas", "label": "MOAA/S", "value": v.moaas,
                              "minute": m, "side": status[0], "bound": status[1],
                              "bound_name": "p95 level" if status[0] == "above"
                              else "p5 level"})
        mpoints.append((m, float(v.moaas), status is not None))
    panels.append(band_svg(label="MOAA/S", unit="level 0-5, 5 = awake", band=mband,
                           points=mpoints, x_range=(x0, x1), y_range=(0.0, 5.0), marks=marks,
                           levels=[(float(rules.moaas_alert_max), "alert")]))
    spo2 = [(minute(v.time), float(v.spo2), False) for v in obs]
    low = min([rules.spo2_min, *(p[1] for p in spo2)]) - 2.0
    panels.append(band_svg(label="SpO₂", unit="%, no forecast", band=None, points=spo2,
                           x_range=(x0, x1), y_range=(ticks(low, 100.0)[0], 100.0),
                           marks=marks, levels=[(rules.spo2_min, "alert")]))
    flags.sort(key=lambda fl: (fl["minute"], fl["label"]))
    table.sort(key=lambda r: (r["minute"], r["output"]))
    peak3 = max(range(len(f.times_h)), key=lambda i: float(f.p_moaas_le[3][i]))
    minimum_end = state.earliest_discharge()
    return {
        "status": "ok", "panels": panels, "flags": flags, "table": table,
        "judged": len(table), "hr_flagged": any(fl["output"] == "hr" for fl in flags),
        "ready_p50": _clock(first, ready.p50, tz), "ready_p95": _clock(first, ready.p95, tz),
        "p_ready_by_minimum": round(100.0 * f.p_ready_by_rems),
        "minimum_min": rules.min_observation_min,
        "minimum_end": clock(minimum_end, tz) if minimum_end else None,
        "p_sbp_rise_ge_40": round(100.0 * f.p_sbp_rise_ge_40),
        "p_dbp_rise_ge_25": round(100.0 * f.p_dbp_rise_ge_25),
        "p_moaas_any_fall": round(100.0 * f.p_moaas_any_fall),
        "p_moaas_le_3_peak": round(100.0 * float(f.p_moaas_le[3][peak3])),
        "p_moaas_le_3_peak_min": round(float(f.times_h[peak3]) * 60.0),
        "cadss_peak": f.cadss_peak,
        "method": _method(f, bp_source="this session's pre-dose check",
                          weight_source="recorded with the dose", history_n=history_n,
                          readings=readings, left_out=left_out,
                          age_source=age_source or "assumed: the clinic record has no year "
                          "of birth"),
    }


def _latest_vitals(db: Session, patient_id: int) -> tuple[float, float, float] | None:
    """The patient's most recent pre-dose SBP, DBP and HR (any session)."""
    e = db.scalar(select(SessionEvent).join(
        MonitoredSessionRow, SessionEvent.session_id == MonitoredSessionRow.id).where(
        MonitoredSessionRow.patient_id == patient_id, SessionEvent.kind == "predose")
        .order_by(SessionEvent.at.desc(), SessionEvent.id.desc()).limit(1))
    if e is None:
        return None
    sbp, dbp, hr = (_num(e.data, k) for k in ("sbp", "dbp", "hr"))
    if sbp is None or dbp is None or hr is None:
        return None
    return sbp, dbp, hr


def plan_view(db: Session, patient_id: int, regimen_text: str, weight_kg: float, *,
              birth_year: int | None = None, now: datetime | None = None, tz: tzinfo = UTC
              ) -> dict[str, Any]:
    """The expected course of one session for each distinct dose of a plan's regimen (at
    most three), for this patient: the plan's weight, the latest pre-dose BP and HR (typical
    values before any was recorded), and the earlier sessions' readings. A dose first given
    at the plan's k-th session is forecast as the patient's session (earlier + k)."""
    earlier = _session_rows(db, patient_id, None)
    vitals = _latest_vitals(db, patient_id)  # the last reads of this part of the page

    def compute() -> dict[str, Any]:
        reg = parse_regimen(regimen_text)
        past, left_out = _past(earlier)
        observations, _ = history(past)
        sbp, dbp, hr = vitals or TYPICAL_BASELINE
        age, age_source = patient_age(birth_year, now or datetime.now(UTC), tz)
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        position = 1  # the plan's session at which this dose is first given
        for d in sorted(reg.doses, key=lambda d: d.time):
            text = format_regimen(Regimen((replace(d, time=0.0, every=None, additional=0),)))
            if text not in seen and len(seen) < 3:
                seen.add(text)
                patient = AcutePatient(weight_kg, age, sbp, dbp, hr,
                                       prior_sessions=len(earlier) + position - 1)
                f = cached_forecast(text, patient, tuple(observations))
                ready = f.discharge_ready_h
                rows.append({
                    "regimen": f.regimen, "session": patient.session,
                    "cadss_peak": f.cadss_peak,
                    "p_sbp_rise_ge_40": round(100.0 * f.p_sbp_rise_ge_40),
                    "p_dbp_rise_ge_25": round(100.0 * f.p_dbp_rise_ge_25),
                    "p_moaas_any_fall": round(100.0 * f.p_moaas_any_fall),
                    "ready_p50": round(ready.p50 * 60.0) if math.isfinite(ready.p50) else None,
                    "ready_p95": round(ready.p95 * 60.0) if math.isfinite(ready.p95) else None,
                    "p_ready_by_minimum": round(100.0 * f.p_ready_by_rems),
                    "notes": f.notes, "forecast": f})
            position += 1 + d.additional
        first = rows[0]["forecast"]
        bp_source = ("the latest pre-dose check" if vitals else
                     "typical values: no BP recorded for this patient yet")
        return {"status": "ok", "rows": rows, "minimum_min": REMS_MINIMUM_H * 60.0,
                "method": _method(first, bp_source=bp_source,
                                  weight_source="the plan's weight", history_n=len(earlier),
                                  readings=len({(o.session, o.t_h) for o in observations}),
                                  left_out=left_out, session=False, age_source=age_source)}

    view, reason = _guarded(f"plan of patient {patient_id}", compute)
    return view if reason is None else {"status": "unavailable", "reason": reason}


__all__ = ["cached_forecast", "level_band", "patient_age", "plan_view", "session_view"]
