"""Monitored sessions in the web app: pages and form handlers over
:mod:`ketasim.clinic.session` (the rules) and :mod:`ketasim.clinic.dose_check` (the limits).

Only what staff entered is stored (one :class:`SessionEvent` per step); on every request the
events are replayed through the same rules, so the page, the alerts, the discharge rule and
the monitoring form always agree with ``MonitoredSession``. A rejected step stores nothing.

>>> from datetime import UTC, datetime
>>> parse_number("128", "SBP", 40, 300)
128.0
>>> parse_time("2026-03-02T09:00", now=datetime(2026, 3, 2, 10, 0, tzinfo=UTC)).isoformat()
'2026-03-02T09:00:00+00:00'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketasim.clinic.dose_check import (
    DoseCheckError,
    DoseLimits,
    DoseOrder,
    Override,
    PatientDoseContext,
    authorize,
    check_dose,
)
from ketasim.clinic.session import MonitoredSession, MonitoringRules, SessionError
from ketasim.errors import KetasimError
from ketasim.storage.models import (
    Clinic,
    DoseLimitsVersion,
    MonitoredSessionRow,
    Patient,
    SessionEvent,
    User,
    WebSession,
)
from ketasim.web.security import check_password

SESSION_READ = ("administrator", "prescriber", "nurse")
SESSION_WRITE = ("prescriber", "nurse")
VITAL_RANGES = {"sbp": ("systolic BP", 40, 300), "dbp": ("diastolic BP", 20, 200),
                "hr": ("heart rate", 20, 250), "spo2": ("SpO₂", 50, 100)}


class FormError(KetasimError):
    """A form field that cannot be accepted as typed."""


def parse_number(raw: object, label: str, lo: float, hi: float) -> float:
    """A number typed in a form: plain decimal digits within [lo, hi], nothing coerced."""
    text = str(raw or "").strip()
    if not text:
        raise FormError(label, "is missing", f"enter a number from {lo:g} to {hi:g}")
    try:
        value = float(text)
    except ValueError:
        raise FormError(label, f"{text!r} is not a number", "type digits only") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise FormError(label, f"{text} is outside {lo:g}-{hi:g}",
                        f"enter a value from {lo:g} to {hi:g}")
    return value


def parse_time(raw: object, *, now: datetime) -> datetime:
    """A time typed as ISO 8601 (UTC when no zone is given); empty means now; never in the
    future."""
    text = str(raw or "").strip()
    if not text:
        return now
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise FormError("time", f"{text!r} is not a date and time",
                        "use YYYY-MM-DDTHH:MM (UTC) or leave it empty for now") from None
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    if t > now + timedelta(minutes=2):
        raise FormError("time", "is in the future", "record what has happened")
    return t.astimezone(UTC)


def clinic_limits(db: Session, clinic_id: int) -> DoseLimits:
    """The clinic's latest dose-limits version, or the reference's worked example (§4.2)
    until the clinic stores its own."""
    row = db.scalar(select(DoseLimitsVersion).where(DoseLimitsVersion.clinic_id == clinic_id)
                    .order_by(DoseLimitsVersion.id.desc()).limit(1))
    return DoseLimits.model_validate({} if row is None else row.limits)


def rules_of(clinic: Clinic) -> MonitoringRules:
    """The clinic's monitoring rules (thresholds must have been set)."""
    if clinic.spo2_min is None or clinic.moaas_alert_max is None:
        raise FormError("clinic thresholds", "SpO₂ and MOAA/S alert thresholds are not set",
                        "an administrator must set them before sessions start")
    return MonitoringRules(spo2_min=clinic.spo2_min, moaas_alert_max=clinic.moaas_alert_max)


def utc(t: datetime) -> datetime:
    """A stored time as timezone-aware UTC (SQLite returns naive datetimes)."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def replay(row: MonitoredSessionRow, events: list[SessionEvent],
           rules: MonitoringRules) -> MonitoredSession:
    """Rebuild the session from its stored steps (the rules run again on each)."""
    s = MonitoredSession(row.compound, rules, rems_enrolled=row.rems_enrolled)  # type: ignore[arg-type]
    for e in events:
        apply(s, e.kind, utc(e.at), e.data)
    return s


def apply(s: MonitoredSession, kind: str, at: datetime, data: dict[str, Any]) -> Any:
    """Apply one step to a session (raises the rules' SessionError)."""
    if kind == "predose":
        return s.predose_check(at, sbp=data["sbp"], dbp=data["dbp"], hr=data["hr"],
                               spo2=data["spo2"], contraindications_confirmed=True,
                               override_reason=data.get("override_reason"))
    if kind == "dose":
        return s.administer(at, dose_mg=data["dose_mg"])
    if kind == "vitals":
        return s.vitals(at, sbp=data["sbp"], dbp=data["dbp"], hr=data["hr"], spo2=data["spo2"],
                        moaas=data.get("moaas"), cadss=data.get("cadss"))
    if kind == "ack":
        i = int(data["alert"])
        if not 0 <= i < len(s.alerts):
            raise SessionError("alert", "does not exist", "reload the session page")
        return s.acknowledge(s.alerts[i], data["by"])
    if kind == "discharge":
        return s.discharge(at, effects_resolved=True)
    raise SessionError("event", f"unknown step {kind!r}", "report this")


@dataclass(frozen=True)
class Deps:
    """What the session routes need from the app."""

    page: Callable[..., HTMLResponse]
    current: Callable[..., Any]
    db_session: Callable[..., Any]
    require: Callable[..., tuple[User, WebSession]]
    check_csrf: Callable[[object, WebSession], None]
    patient_in_reach: Callable[..., Patient]
    auditor: Any

    async def posted(self, request: Request, who: tuple[User, WebSession] | None
                     ) -> tuple[User, WebSession, Any]:
        """The logged-in user, their session and the form of a state change whose CSRF
        token has been checked."""
        user, ws = self.require(who)
        form = await request.form()
        self.check_csrf(form.get("csrf_token"), ws)
        return user, ws, form


def register(app: FastAPI, d: Deps) -> None:
    """Add the monitored-session routes to ``app``."""

    def load(db: Session, user: User, session_id: int
             ) -> tuple[MonitoredSessionRow, Patient, Clinic, list[SessionEvent]]:
        row = db.get(MonitoredSessionRow, session_id)
        if row is None or user.role not in SESSION_READ:
            d.auditor.record(db, f"user:{user.id}", "denied", f"session:{session_id}")
            db.commit()
            raise HTTPException(status_code=404, detail="no such session")
        p = d.patient_in_reach(db, user, row.patient_id)
        clinic = db.get(Clinic, p.clinic_id)
        assert clinic is not None
        events = list(db.scalars(select(SessionEvent).where(
            SessionEvent.session_id == row.id).order_by(SessionEvent.id)))
        return row, p, clinic, events

    def show(request: Request, who: tuple[User, WebSession], clinic: Clinic,
             row: MonitoredSessionRow, p: Patient, events: list[SessionEvent],
             error: str = "", status: int = 200) -> HTMLResponse:
        s = replay(row, events, rules_of(clinic))
        return d.page(request, "session.html", who, status, title="Monitored session",
                      chart=_vitals_chart(s),
                      session=row, patient=p, state=s, events=events, error=error,
                      can_write=who[0].role in SESSION_WRITE and row.discharged_at is None,
                      earliest=s.earliest_discharge())

    @app.post("/patients/{patient_id}/sessions")
    async def start(request: Request, patient_id: int,
                    who: tuple[User, WebSession] | None = Depends(d.current),
                    db: Session = Depends(d.db_session)) -> Response:
        user, _, form = await d.posted(request, who)
        p = d.patient_in_reach(db, user, patient_id, SESSION_WRITE)
        compound = str(form.get("compound") or "")
        clinic = db.get(Clinic, p.clinic_id)
        assert clinic is not None
        try:
            if compound not in ("racemic", "esketamine"):
                raise FormError("compound", f"{compound!r} is not offered",
                                "choose racemic or esketamine")
            rules = rules_of(clinic)
            rems = form.get("rems_enrolled") == "yes"
            MonitoredSession(compound, rules, rems_enrolled=rems)  # type: ignore[arg-type]
        except KetasimError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        row = MonitoredSessionRow(patient_id=p.id, compound=compound, rems_enrolled=rems,
                                  started_by=user.id, started_at=datetime.now(UTC))
        db.add(row)
        db.flush()
        d.auditor.record(db, f"user:{user.id}", "write", f"patient:{p.id}",
                         {"session": row.id, "step": "start", "compound": compound})
        db.commit()
        return RedirectResponse(f"/sessions/{row.id}", status_code=303)

    @app.get("/sessions/{session_id}", response_class=HTMLResponse)
    def session_page(request: Request, session_id: int,
                     who: tuple[User, WebSession] | None = Depends(d.current),
                     db: Session = Depends(d.db_session)) -> HTMLResponse:
        user, _ = d.require(who)
        row, p, clinic, events = load(db, user, session_id)
        d.auditor.record(db, f"user:{user.id}", "read", f"patient:{p.id}",
                         {"session": row.id})
        db.commit()
        return show(request, (user, _), clinic, row, p, events)

    @app.post("/sessions/{session_id}/{step}")
    async def record(request: Request, session_id: int, step: str,
                     who: tuple[User, WebSession] | None = Depends(d.current),
                     db: Session = Depends(d.db_session)) -> Response:
        user, ws, form = await d.posted(request, who)
        row, p, clinic, events = load(db, user, session_id)
        if user.role not in SESSION_WRITE or step not in (
                "predose", "dose", "vitals", "ack", "discharge", "form"):
            raise HTTPException(status_code=404, detail="no such page")
        now = datetime.now(UTC)
        try:
            if step == "form":
                if row.discharged_at is None:
                    raise FormError("form", "the session is still open",
                                    "discharge the patient first")
                row.form_submitted_at = row.form_submitted_at or now
                d.auditor.record(db, f"user:{user.id}", "write", f"patient:{p.id}",
                                 {"session": row.id, "step": "form"})
                db.commit()
                return RedirectResponse(f"/sessions/{row.id}", status_code=303)
            state = replay(row, events, rules_of(clinic))
            at = parse_time(form.get("time"), now=now)
            data, audit = _step_data(step, form, user, db, p, state, at, events)
            result = apply(state, step, at, data)
        except (KetasimError, ValueError) as exc:
            db.rollback()
            return show(request, (user, ws), clinic, row, p, events, error=str(exc),
                        status=400)
        db.add(SessionEvent(session_id=row.id, kind=step, at=at, data=data,
                            recorded_by=user.id, recorded_at=now))
        if step == "discharge":
            row.discharged_at = at
            row.form_due_at = result
        d.auditor.record(db, f"user:{user.id}", "write", f"patient:{p.id}",
                         {"session": row.id, "step": step, **audit})
        db.commit()
        return RedirectResponse(f"/sessions/{row.id}", status_code=303)

    @app.get("/sessions/{session_id}/form", response_class=HTMLResponse)
    def monitoring_form(request: Request, session_id: int,
                        who: tuple[User, WebSession] | None = Depends(d.current),
                        db: Session = Depends(d.db_session)) -> HTMLResponse:
        user, ws = d.require(who)
        row, p, clinic, events = load(db, user, session_id)
        s = replay(row, events, rules_of(clinic))
        first = s.first_administration
        near40 = None
        if first is not None:
            near40 = min(s.observations, default=None,
                         key=lambda v: abs((v.time - first).total_seconds() / 60 - 40))
        d.auditor.record(db, f"user:{user.id}", "read", f"patient:{p.id}",
                         {"session": row.id, "form": True})
        db.commit()
        return d.page(request, "monitoring_form.html", (user, ws), title="Monitoring form",
                      session=row, patient=p, state=s, near40=near40,
                      last=s.observations[-1] if s.observations else None)


def _vitals_chart(s: MonitoredSession) -> str:
    """SVG of the observed BP, HR, SpO₂ and CADSS (minutes from the first dose, or from the
    pre-dose check). The model's forecast band is not drawn: the acute models are not built
    yet (issue #4)."""
    from ketasim.web.charts import series_svg
    obs = ([s.predose] if s.predose else []) + s.observations
    if not obs:
        return ""
    t0 = s.first_administration or obs[0].time

    def m(v: Any) -> float:
        return round((v.time - t0).total_seconds() / 60.0, 1)

    series = {"SBP": [(m(v), v.sbp) for v in obs], "DBP": [(m(v), v.dbp) for v in obs],
              "HR": [(m(v), v.hr) for v in obs], "SpO₂": [(m(v), v.spo2) for v in obs]}
    cadss = [(m(v), float(v.cadss)) for v in obs if v.cadss is not None]
    if cadss:
        series["CADSS"] = cadss
    return series_svg(series, top=220.0, label="observed vital signs",
                      x_label="minutes from the first dose")


def _step_data(step: str, form: Any, user: User, db: Session, p: Patient,
               state: MonitoredSession, at: datetime, events: list[SessionEvent]
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse one step's form into the stored data and the audit detail."""
    if step in ("predose", "vitals"):
        data: dict[str, Any] = {k: parse_number(form.get(k), label, lo, hi)
                                for k, (label, lo, hi) in VITAL_RANGES.items()}
        if step == "predose":
            if form.get("contraindications_confirmed") != "yes":
                raise FormError("contraindications", "were not re-checked",
                                "confirm the contraindication re-check")
            reason = str(form.get("override_reason") or "").strip()
            if reason:
                data["override_reason"] = reason[:500]
        else:
            for k, label, hi in (("moaas", "MOAA/S", 5), ("cadss", "CADSS", 92)):
                if str(form.get(k) or "").strip():
                    v = parse_number(form.get(k), label, 0, hi)
                    if v != int(v):
                        raise FormError(label, "must be a whole number", "enter a whole number")
                    data[k] = int(v)
        return data, {}
    if step == "dose":
        return _dose_data(form, user, db, p, state, at, events)
    if step == "ack":
        i = parse_number(form.get("alert"), "alert", 0, 10_000)
        return {"alert": int(i), "by": user.username}, {"alert": int(i)}
    if step == "discharge":
        if form.get("effects_resolved") != "yes":
            raise FormError("effects", "sedation, dissociation and respiratory effects are not "
                            "confirmed resolved", "keep monitoring until they have resolved")
        return {}, {}
    raise FormError("step", f"{step!r} is unknown", "use the session page")


def _dose_data(form: Any, user: User, db: Session, p: Patient, state: MonitoredSession,
               at: datetime, events: list[SessionEvent]
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    compound = state.compound
    route = "intranasal" if compound == "esketamine" else str(form.get("route") or "iv_infusion")
    unit = str(form.get("unit") or "mg")
    if unit not in ("mg", "mg/kg"):
        raise FormError("unit", f"{unit!r} is not offered", "choose mg or mg/kg")
    amount = parse_number(form.get("amount"), "dose", 0.001, 10_000)
    weight = parse_number(form.get("weight_kg"), "weight (kg)", 1, 400)
    try:
        measured = date.fromisoformat(str(form.get("weight_date") or "").strip())
    except ValueError:
        raise FormError("weight date", "is missing or not a date",
                        "give the date the weight was measured (YYYY-MM-DD)") from None
    duration = None
    if route == "iv_infusion":
        duration = parse_number(form.get("duration_min"), "infusion duration (min)", 1, 600)
    product = str(form.get("product") or "").strip()[:100]
    lot = str(form.get("lot") or "").strip()[:50]
    if not product or not lot:
        raise FormError("product and lot", "are required", "record the product and its lot")
    previous = _previous_weight(db, p.id)
    sessions = tuple(utc(r.started_at) for r in db.scalars(select(MonitoredSessionRow).where(
        MonitoredSessionRow.patient_id == p.id, MonitoredSessionRow.discharged_at.is_not(None))))
    order = DoseOrder(compound=compound, route=route, amount=amount, unit=unit,  # type: ignore[arg-type]
                      time=at, duration_min=duration)
    ctx = PatientDoseContext(weight_kg=weight, weight_measured_at=datetime.combine(
        measured, datetime.min.time(), UTC), previous_weight_kg=previous, session_times=sessions)
    check = check_dose(order, ctx, clinic_limits(db, p.clinic_id))
    reason = str(form.get("override_reason") or "").strip()
    second = None
    if check.verdict == "hard":
        second = _second_clinician(db, user, form, check)
    override = Override(reason=reason, clinician=user.username, at=at,
                        second_clinician=second) if reason else None
    record = authorize(check, override)
    data = {"dose_mg": check.dose_mg, "dose_mg_per_kg": check.dose_mg_per_kg,
            "amount": amount, "unit": unit, "route": route, "duration_min": duration,
            "weight_kg": weight, "weight_date": measured.isoformat(), "product": product,
            "lot": lot, "devices": int(check.dose_mg // 28) if compound == "esketamine" else None,
            "limits_version": check.limits_version}
    return data, {"dose_check": record}


def _second_clinician(db: Session, user: User, form: Any, check: Any) -> str:
    """A hard stop proceeds only with a reason and a second clinician of the same clinic who
    confirms with their own password (reliability-security.md §4.2 C2); otherwise the order is
    refused with the finding."""
    hard = "; ".join(f.message for f in check.findings if f.severity == "hard")
    name = str(form.get("second_clinician") or "").strip()
    password = str(form.get("second_password") or "")
    if not name:
        raise DoseCheckError("dose", f"hard stop: {hard}",
                             "change the order, or give a reason and have a second clinician "
                             "confirm with their user name and password")
    other = db.scalar(select(User).where(User.username == name[:100]))
    ok = check_password(other.password_hash if other else None, password[:1024])
    if not ok or other is None or not other.active or other.clinic_id != user.clinic_id \
            or other.role not in ("prescriber",) or other.id == user.id:
        raise DoseCheckError("second_clinician", "was not confirmed",
                             "a different prescriber of this clinic must confirm with their "
                             "own user name and password")
    return other.username


def _previous_weight(db: Session, patient_id: int) -> float | None:
    rows = db.scalars(select(SessionEvent).join(
        MonitoredSessionRow, SessionEvent.session_id == MonitoredSessionRow.id).where(
        MonitoredSessionRow.patient_id == patient_id, SessionEvent.kind == "dose").order_by(
        SessionEvent.id.desc()).limit(1)).all()
    return float(rows[0].data["weight_kg"]) if rows else None


__all__ = [
    "SESSION_READ",
    "SESSION_WRITE",
    "Deps",
    "FormError",
    "apply",
    "clinic_limits",
    "parse_number",
    "parse_time",
    "register",
    "replay",
    "rules_of",
    "utc",
]
