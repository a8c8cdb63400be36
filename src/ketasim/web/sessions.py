"""Monitored sessions in the web app: pages and form handlers over
:mod:`ketasim.clinic.session` (the rules) and :mod:`ketasim.clinic.dose_check` (the limits).

Only what staff entered is stored (one :class:`SessionEvent` per step, with the server time
it was recorded and the clinical time stated); on every request the events are replayed
through the same rules, so the page, the alerts, the discharge rule and the monitoring form
always agree with ``MonitoredSession``. A rejected step stores nothing.

Server-side rules that no form can walk around:

- one open session per patient (also a unique index, so two concurrent starts cannot both
  succeed); a session started by mistake is cancelled, with a reason, before any dose;
- every step is checked and written inside one short write transaction that re-reads the
  session (PostgreSQL: its row locked), so the session total of concurrent doses is checked;
- a stated clinical time may precede the server clock by at most :data:`LATE_WINDOW`, and by
  more than :data:`LATE_REASON_AFTER` only with a reason; it is never before the session
  started (server time) nor in the future; discharge is always the server time, so the
  2-hour observation runs on the server's clock from the start of the session;
- every dose is checked against the clinic's limits for its route (a route without limits
  is a hard stop), the session total and the day's total; entering a dose needs the form's
  one-use token, so a double-click records it once;
- numbers are read strictly (:mod:`ketasim.clinic.numbers`: ASCII digits, leading zero, no
  trailing zeros, no exponent), whole numbers where whole numbers are meant, and over-long
  text is refused, never truncated.

>>> from datetime import UTC, datetime
>>> parse_number("128", "SBP", 40, 300)
128.0
>>> t = parse_time("2026-03-02T09:30", now=datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
>>> t.isoformat()
'2026-03-02T09:30:00+00:00'
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
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
from ketasim.clinic.numbers import NumberEntryError
from ketasim.clinic.numbers import parse_number as strict_number
from ketasim.clinic.session import MonitoredSession, MonitoringRules, SessionError
from ketasim.errors import KetasimError
from ketasim.storage.models import (
    Clinic,
    DoseLimitsVersion,
    MonitoredSessionRow,
    Patient,
    SessionEvent,
    User,
)
from ketasim.web.checklist import checklist
from ketasim.web.clock import local_candidates, zone, zone_name
from ketasim.web.deps import (
    AppContext,
    PatientId,
    Post,
    Posted,
    ReadDb,
    SessionId,
    SignedIn,
    Who,
    deny,
    patient_in_reach,
    utc,
)
from ketasim.web.forecast_panel import session_view
from ketasim.web.security import check_password, new_token

SESSION_READ = ("administrator", "prescriber", "nurse")
SESSION_WRITE = ("prescriber", "nurse")
STEPS = ("predose", "dose", "vitals", "ack", "discharge", "form", "cancel")
VITAL_RANGES = {"sbp": ("systolic BP", 40, 300), "dbp": ("diastolic BP", 20, 200),
                "hr": ("heart rate", 20, 250), "spo2": ("SpO₂", 50, 100)}
LATE_WINDOW = timedelta(minutes=60)  # a stated time may precede the server clock this much
LATE_REASON_AFTER = timedelta(minutes=10)  # … and beyond this only with a reason
FUTURE_SLACK = timedelta(minutes=1)  # clock differences between devices
MAX_TEXT = {"override_reason": 500, "late_reason": 500, "product": 100, "lot": 50,
            "second_clinician": 100, "second_password": 1024, "cancel_reason": 500}


class FormError(KetasimError):
    """A form field that cannot be accepted as typed; ``input_name`` is the form input it is
    about (the page ties the message to that input), when there is one."""

    def __init__(self, field: str, problem: str, fix: str = "", *,
                 input_name: str | None = None) -> None:
        super().__init__(field, problem, fix)
        self.input_name = input_name


# the inputs that errors raised by the session and dose rules are about (by their field)
RULE_INPUTS = {"contraindications": "contraindications_confirmed", "predose BP": "override_reason",
               "effects": "effects_resolved", "time": "time", "reason for the late entry":
               "late_reason", "reason for cancelling": "cancel_reason", "dose": "amount",
               "weight (kg)": "weight_kg", "weight date": "weight_date",
               "second_clinician": "second_clinician", "second_password": "second_password",
               "route": "route", "unit": "unit", "product": "product", "lot": "lot",
               "infusion duration (min)": "duration_min", "override reason": "override_reason",
               "stock concentration (mg/mL)": "concentration_mg_per_ml", "MOAA/S": "moaas",
               "CADSS": "cadss", "systolic BP": "sbp", "diastolic BP": "dbp",
               "heart rate": "hr", "SpO₂": "spo2"}


def input_of(exc: Exception) -> str | None:
    """The form input an error is about (its ``input_name``, or the input of the rule's
    field), or None when it is about the form as a whole."""
    name = getattr(exc, "input_name", None)
    if name:
        return str(name)
    field = getattr(exc, "field", None)
    return RULE_INPUTS.get(field) if isinstance(field, str) else None


class _AlreadyRecorded(Exception):
    """This form's one-use token was already used: the step is recorded, nothing to do."""


def parse_number(raw: object, label: str, lo: float, hi: float, *, whole: bool = False,
                 name: str | None = None) -> float:
    """A number typed in a form, read strictly (ASCII digits, a leading zero, no trailing
    zeros, no exponent or sign: :func:`ketasim.clinic.numbers.parse_number`) and within
    [lo, hi]; ``whole`` refuses a decimal point. Nothing is coerced. ``name`` is the form
    input (an error is tied to it on the page)."""
    text = raw if isinstance(raw, str) else ""
    if len(text) > 20:
        raise FormError(label, "is too long to be a number", "type the number only",
                        input_name=name)
    try:
        value = strict_number(text, field=label, allow_zero=lo <= 0)
    except NumberEntryError as exc:
        raise FormError(label, exc.problem, exc.fix, input_name=name) from None
    if whole and "." in text:
        raise FormError(label, f"{text.strip()} is not a whole number",
                        "enter a whole number", input_name=name)
    if not lo <= value <= hi:
        raise FormError(label, f"{text.strip()} is outside {lo:g}-{hi:g}",
                        f"enter a value from {lo:g} to {hi:g}", input_name=name)
    return value


def parse_birth_year(raw: object, now: datetime) -> int | None:
    """A year of birth typed in a form: four ASCII digits, 1900 to this year; empty means
    unknown.

    >>> parse_birth_year("1974", datetime(2026, 3, 2, tzinfo=UTC)), parse_birth_year(" ", None)
    (1974, None)
    """
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return None
    if not (len(text) == 4 and text.isascii() and text.isdigit()) \
            or not 1900 <= int(text) <= now.year:
        raise FormError("year of birth", f"{text[:20]!r} is not a year from 1900 to "
                        f"{now.year}", "give the four-digit year (e.g. 1974), or leave it "
                        "empty if unknown", input_name="birth_year")
    return int(text)


def text_field(form: Any, name: str, label: str, *, required: bool = False) -> str:
    """A text field, refused (never truncated) when longer than its limit."""
    raw = form.get(name)
    value = raw.strip() if isinstance(raw, str) else ""
    limit = MAX_TEXT.get(name, 200)
    if len(value) > limit:
        raise FormError(label, f"is {len(value)} characters long (at most {limit})",
                        "shorten it", input_name=name)
    if required and not value:
        raise FormError(label, "is required", f"enter the {label}", input_name=name)
    return value


def parse_time(raw: object, *, now: datetime, not_before: datetime | None = None,
               tz: tzinfo = UTC) -> datetime:
    """A stated clinical time: ISO 8601 as an ``<input type="datetime-local">`` sends it,
    read in the clinic's zone ``tz`` (an explicit offset is honoured); empty means now. It
    may precede the server clock ``now`` by at most :data:`LATE_WINDOW`, is never in the
    future, and never before ``not_before`` (the session's start on the server clock). A
    wall-clock time the clocks skipped is refused; one they passed twice is the instant the
    rules allow (refused when both are allowed)."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return now
    zone_ = zone_name(tz)
    if len(text) > 40:
        raise FormError("time", "is too long", "use the date and time picker",
                        input_name="time")
    try:
        wall = datetime.fromisoformat(text)
    except ValueError:
        raise FormError("time", f"{text!r} is not a date and time",
                        f"use the picker (YYYY-MM-DDTHH:MM, {zone_}) or leave it empty for "
                        "now", input_name="time") from None
    try:
        candidates = local_candidates(wall, tz)
    except KetasimError as exc:
        raise FormError(exc.field, exc.problem, exc.fix, input_name="time") from None

    def refusal(t: datetime) -> FormError | None:
        if t > now + FUTURE_SLACK:
            return FormError("time", "is in the future", "record what has happened",
                             input_name="time")
        if now - t > LATE_WINDOW:
            return FormError("time", f"is more than {LATE_WINDOW.seconds // 60} min before "
                             "now", "record events as they happen; later corrections are a "
                             "note, not a back-dated entry", input_name="time")
        if not_before is not None and t < not_before:
            return FormError("time", "is before the session started",
                             "record steps of this session only", input_name="time")
        return None

    allowed = [t for t in candidates if refusal(t) is None]
    if len(allowed) == 1:
        return allowed[0]
    if allowed:
        raise FormError("time", f"{wall:%H:%M} happened twice in {zone_} (the clocks went "
                        "back)", "leave the time empty to record now", input_name="time")
    error = refusal(candidates[0])
    assert error is not None
    raise error


def clinic_limits(db: Session, clinic_id: int) -> DoseLimits:
    """The clinic's latest dose-limits version, or ketasim's worked example until the clinic
    stores its own."""
    row = db.scalar(select(DoseLimitsVersion).where(DoseLimitsVersion.clinic_id == clinic_id)
                    .order_by(DoseLimitsVersion.id.desc()).limit(1))
    return DoseLimits.model_validate({} if row is None else row.limits)


def rules_of(clinic: Clinic) -> MonitoringRules:
    """The clinic's monitoring rules (thresholds must have been set)."""
    if clinic.spo2_min is None or clinic.moaas_alert_max is None:
        raise FormError("clinic thresholds", "SpO₂ and MOAA/S alert thresholds are not set",
                        "an administrator must set them before sessions start")
    return MonitoringRules(spo2_min=clinic.spo2_min, moaas_alert_max=clinic.moaas_alert_max)


def replay(row: MonitoredSessionRow, events: list[SessionEvent],
           rules: MonitoringRules, tz: tzinfo = UTC) -> MonitoredSession:
    """Rebuild the session from its stored steps (the rules run again on each); its
    messages name times in the clinic's zone ``tz``."""
    s = MonitoredSession(row.compound, rules, rems_enrolled=row.rems_enrolled,  # type: ignore[arg-type]
                         tz=tz)
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


def session_events(db: Session, session_id: int) -> list[SessionEvent]:
    """A session's steps in the order they were recorded."""
    return list(db.scalars(select(SessionEvent).where(
        SessionEvent.session_id == session_id).order_by(SessionEvent.id)))


def register(app: FastAPI, ctx: AppContext) -> None:
    """Add the monitored-session routes to ``app``."""

    def load(db: Session, user: User, session_id: int
             ) -> tuple[MonitoredSessionRow, Patient, Clinic, list[SessionEvent]]:
        row = db.get(MonitoredSessionRow, session_id)
        if row is None or user.role not in SESSION_READ:
            deny(ctx, user, f"session:{session_id}", "session")
        p = patient_in_reach(ctx, db, user, row.patient_id)
        clinic = db.get(Clinic, p.clinic_id)
        assert clinic is not None
        return row, p, clinic, session_events(db, row.id)

    def show(request: Request, who: Who, db: Session, clinic: Clinic, row: MonitoredSessionRow,
             p: Patient, events: list[SessionEvent], error: str = "", status: int = 200,
             exc: Exception | None = None, step: str = "", typed: dict[str, str] | None = None
             ) -> HTMLResponse:
        rules = rules_of(clinic)
        tz = zone(clinic.timezone)
        s = replay(row, events, rules, tz)
        open_ = row.discharged_at is None and row.cancelled_at is None
        forecast = session_view(db, row, s, events, rules, tz=tz, birth_year=p.birth_year)
        now = ctx.clock()
        steps = checklist(s, now=now, is_open=open_, forecast=forecast)
        return ctx.page(request, "session.html", who, status, title="Monitored session",
                        chart=_vitals_chart(s) if forecast["status"] != "ok" else "",
                        forecast=forecast, session=row, patient=p, state=s,
                        events=events, error=error, form_token=new_token(),
                        can_write=who.user.role in SESSION_WRITE and open_,
                        earliest=s.earliest_discharge(), steps=steps, now=now, tz=tz,
                        error_input=input_of(exc) if exc is not None else None,
                        error_form=step, values=typed or {},
                        late_window=int(LATE_WINDOW.total_seconds() // 60),
                        late_reason_after=int(LATE_REASON_AFTER.total_seconds() // 60),
                        time_min=max(now - LATE_WINDOW, utc(row.started_at)),
                        vitals_table=_vitals_rows(s))

    @app.post("/patients/{patient_id}/sessions")
    def start(patient_id: PatientId, post: Posted, db: ReadDb) -> Response:
        user = post.user
        p = patient_in_reach(ctx, db, user, patient_id, SESSION_WRITE)
        compound = post.get("compound")
        clinic = db.get(Clinic, p.clinic_id)
        assert clinic is not None
        if compound not in ("racemic", "esketamine"):
            raise FormError("compound", f"{compound[:40]!r} is not offered",
                            "choose racemic or esketamine")
        rems = post.get("rems_enrolled") == "yes"
        MonitoredSession(compound, rules_of(clinic), rems_enrolled=rems)  # type: ignore[arg-type]
        with ctx.write() as w:
            open_ = w.scalar(select(MonitoredSessionRow.id).where(
                MonitoredSessionRow.patient_id == p.id,
                MonitoredSessionRow.discharged_at.is_(None),
                MonitoredSessionRow.cancelled_at.is_(None)))
            if open_ is not None:
                raise FormError("session", f"session {open_} of this patient is still open",
                                f"finish or cancel session {open_} first")
            row = MonitoredSessionRow(patient_id=p.id, compound=compound, rems_enrolled=rems,
                                      started_by=user.id, started_at=ctx.clock())
            w.add(row)
            w.flush()
            ctx.auditor.record(w, f"user:{user.id}", "write", f"patient:{p.id}",
                               {"session": row.id, "step": "start", "compound": compound})
        return RedirectResponse(f"/sessions/{row.id}", status_code=303)

    @app.get("/sessions/{session_id}", response_class=HTMLResponse)
    def session_page(request: Request, session_id: SessionId, who: SignedIn, db: ReadDb
                     ) -> HTMLResponse:
        row, p, clinic, events = load(db, who.user, session_id)
        ctx.audit(f"user:{who.user.id}", "read", f"patient:{p.id}", {"session": row.id})
        return show(request, who, db, clinic, row, p, events)

    @app.post("/sessions/{session_id}/{step}")
    def record(request: Request, session_id: SessionId, step: str, post: Posted,
               db: ReadDb) -> Response:
        user = post.user
        row, p, clinic, events = load(db, user, session_id)
        if user.role not in SESSION_WRITE or step not in STEPS:
            deny(ctx, user, f"session:{session_id}")
        token = post.get("form_token").strip()
        if len(token) > 64:
            return RedirectResponse(f"/sessions/{row.id}", status_code=303)  # not one of ours
        try:
            with ctx.write() as w:
                _record_step(w, step, post, user, p, clinic, session_id, token)
        except _AlreadyRecorded:
            return RedirectResponse(f"/sessions/{row.id}", status_code=303)
        except IntegrityError:
            if token:  # the same form submitted twice at once: the first one counted
                return RedirectResponse(f"/sessions/{row.id}", status_code=303)
            raise
        except (KetasimError, ValueError) as exc:  # rolled back: the page as it was read
            typed = {k: v for k, v in post.form.items() if isinstance(v, str)
                     and k not in ("csrf_token", "form_token", "second_password")
                     and len(v) <= 500}
            return show(request, post.who, db, clinic, row, p, events, error=str(exc),
                        status=400, exc=exc, step=step, typed=typed)
        return RedirectResponse(f"/sessions/{row.id}", status_code=303)

    def _record_step(w: Session, step: str, post: Post, user: User, p: Patient,
                     clinic: Clinic, session_id: int, token: str) -> None:
        """Check and write one step inside the write transaction (the session re-read and,
        on PostgreSQL, locked, so concurrent steps see each other)."""
        from ketasim.storage.audit_store import clinical_digest
        row = w.get(MonitoredSessionRow, session_id, with_for_update=True)
        assert row is not None
        if token and w.scalar(select(SessionEvent.id).where(
                SessionEvent.form_token == token)) is not None:
            raise _AlreadyRecorded  # the same form again (checked under the write lock)
        now = ctx.clock()
        started = utc(row.started_at)
        events = session_events(w, row.id)
        if step == "form":
            if row.discharged_at is None:
                raise FormError("form", "the session is still open",
                                "discharge the patient first")
            if row.form_submitted_at is None:
                row.form_submitted_at = now
                ctx.auditor.record(w, f"user:{user.id}", "write", f"patient:{p.id}",
                                   {"session": row.id, "step": "form"})
            return
        if row.discharged_at is not None or row.cancelled_at is not None:
            raise FormError("session", "is closed", "start a new session")
        if step == "cancel":
            if any(e.kind == "dose" for e in events):
                raise FormError("cancel", "a dose has been given",
                                "monitor and discharge the patient instead")
            reason = text_field(post, "cancel_reason", "reason for cancelling", required=True)
            if len(reason) < 10:
                raise FormError("reason for cancelling", "is too short",
                                "explain why the session is cancelled (10 characters or more)")
            row.cancelled_at = now
            ctx.auditor.record(w, f"user:{user.id}", "write", f"patient:{p.id}",
                               {"session": row.id, "step": "cancel"})
            return
        tz = zone(clinic.timezone)
        state = replay(row, events, rules_of(clinic), tz)
        if step == "discharge":
            at = now  # discharge is judged on the server clock, whatever a form says
        else:
            at = parse_time(post.get("time"), now=now, not_before=started, tz=tz)
        data, audit = _step_data(step, post, user, w, p, state, at, row)
        if now - at > LATE_REASON_AFTER:
            late = text_field(post, "late_reason", "reason for the late entry")
            if len(late) < 10:
                raise FormError("time", f"is {int((now - at).total_seconds() // 60)} min ago",
                                "give the reason for the late entry (10 characters or more)",
                                input_name="late_reason")
            data["late_reason"] = late
        if step == "dose" and not token:
            raise FormError("form_token", "is missing",
                            "reload the session page and enter the dose again")
        result = apply(state, step, at, data)
        ev = SessionEvent(session_id=row.id, kind=step, at=at, data=data,
                          recorded_by=user.id, recorded_at=now, form_token=token or None)
        w.add(ev)
        if step == "discharge":
            row.discharged_at = at
            row.form_due_at = result
        w.flush()
        ctx.auditor.record(w, f"user:{user.id}", "write", f"patient:{p.id}",
                           {"session": row.id, "step": step, **audit,
                            "row": f"session_event:{ev.id}", "digest": clinical_digest(ev)})

    @app.get("/sessions/{session_id}/form", response_class=HTMLResponse)
    def monitoring_form(request: Request, session_id: SessionId, who: SignedIn, db: ReadDb
                        ) -> HTMLResponse:
        row, p, clinic, events = load(db, who.user, session_id)
        tz = zone(clinic.timezone)
        s = replay(row, events, rules_of(clinic), tz)
        first = s.first_administration
        near40 = None
        if first is not None:
            near40 = min(s.observations, default=None,
                         key=lambda v: abs((v.time - first).total_seconds() / 60 - 40))
        ctx.audit(f"user:{who.user.id}", "read", f"patient:{p.id}",
                  {"session": row.id, "form": True})
        return ctx.page(request, "monitoring_form.html", who, title="Monitoring form",
                        session=row, patient=p, state=s, near40=near40, tz=tz,
                        last=s.observations[-1] if s.observations else None)


def _vitals_chart(s: MonitoredSession) -> str:
    """SVG of the observed BP, HR, SpO₂ and CADSS (minutes from the first dose, or from the
    pre-dose check): the chart shown before a dose, or when the dose cannot be forecast
    (otherwise :mod:`ketasim.web.forecast_panel` draws each reading against its band)."""
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


def _vitals_rows(s: MonitoredSession) -> list[dict[str, Any]]:
    """Every reading as a table row (the text alternative of the charts): its time, minutes
    from the first dose (negative before it), and the values."""
    first = s.first_administration
    rows = []
    for v, kind in ([(s.predose, "pre-dose")] if s.predose else []) + [
            (o, "observation") for o in s.observations]:
        rows.append({"time": v.time, "kind": kind,
                     "minute": None if first is None else
                     round((v.time - first).total_seconds() / 60.0),
                     "sbp": v.sbp, "dbp": v.dbp, "hr": v.hr, "spo2": v.spo2,
                     "moaas": v.moaas, "cadss": v.cadss})
    return rows


def _step_data(step: str, form: Post, user: User, db: Session, p: Patient,
               state: MonitoredSession, at: datetime, row: MonitoredSessionRow
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse one step's form into the stored data and the audit detail."""
    if step in ("predose", "vitals"):
        data: dict[str, Any] = {k: parse_number(form.get(k), label, lo, hi, name=k)
                                for k, (label, lo, hi) in VITAL_RANGES.items()}
        if step == "predose":
            if form.get("contraindications_confirmed") != "yes":
                raise FormError("contraindications", "were not re-checked",
                                "confirm the contraindication re-check",
                                input_name="contraindications_confirmed")
            reason = text_field(form, "override_reason", "override reason")
            if reason:
                data["override_reason"] = reason
        else:
            for k, label, hi in (("moaas", "MOAA/S", 5), ("cadss", "CADSS", 92)):
                if form.get(k).strip():
                    data[k] = int(parse_number(form.get(k), label, 0, hi, whole=True, name=k))
        return data, {}
    if step == "dose":
        return _dose_data(form, user, db, p, state, at, row)
    if step == "ack":
        i = parse_number(form.get("alert"), "alert", 0, 10_000, whole=True)
        return {"alert": int(i), "by": user.username}, {"alert": int(i)}
    if step == "discharge":
        if form.get("effects_resolved") != "yes":
            raise FormError("effects", "sedation, dissociation and respiratory effects are not "
                            "confirmed resolved", "keep monitoring until they have resolved",
                            input_name="effects_resolved")
        return {}, {}
    raise FormError("step", f"{step!r} is unknown", "use the session page")


def _earlier_doses(db: Session, patient_id: int
                   ) -> list[tuple[int, datetime, float, float | None]]:
    """Every dose of a patient in the order recorded: (session id, time, mg, weight kg)."""
    rows = db.execute(select(SessionEvent.session_id, SessionEvent.at, SessionEvent.data).join(
        MonitoredSessionRow, SessionEvent.session_id == MonitoredSessionRow.id).where(
        MonitoredSessionRow.patient_id == patient_id, SessionEvent.kind == "dose").order_by(
        SessionEvent.id))
    return [(int(r[0]), utc(r[1]), float(r[2]["dose_mg"]),
             float(r[2]["weight_kg"]) if r[2].get("weight_kg") is not None else None)
            for r in rows]


def _dose_data(form: Post, user: User, db: Session, p: Patient, state: MonitoredSession,
               at: datetime, row: MonitoredSessionRow
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dose order checked against the clinic's limits for its route, the session total and
    the day's total (any route the request names: a route without limits is a hard stop)."""
    from ketasim.dosing.route import Route
    compound = state.compound
    raw_route = form.get("route").strip() or ("intranasal" if compound == "esketamine"
                                              else "iv_infusion")
    if len(raw_route) > 30:
        raise FormError("route", "is not a route", "choose a route from the list",
                        input_name="route")
    route = Route.parse(raw_route).value
    unit = form.get("unit").strip() or "mg"
    if unit not in ("mg", "mg/kg", "mL"):
        raise FormError("unit", f"{unit[:20]!r} is not offered", "choose mg, mg/kg or mL",
                        input_name="unit")
    amount = parse_number(form.get("amount"), "dose", 0.001, 10_000, name="amount")
    concentration = None
    if unit == "mL":
        concentration = parse_number(form.get("concentration_mg_per_ml"),
                                     "stock concentration (mg/mL)", 0.1, 1000,
                                     name="concentration_mg_per_ml")
    weight = parse_number(form.get("weight_kg"), "weight (kg)", 1, 400, name="weight_kg")
    raw_date = form.get("weight_date").strip()
    try:
        if len(raw_date) != 10:
            raise ValueError
        measured = date.fromisoformat(raw_date)
    except ValueError:
        raise FormError("weight date", "is missing or not a date",
                        "give the date the weight was measured (YYYY-MM-DD)",
                        input_name="weight_date") from None
    duration = None
    if route == "iv_infusion":
        duration = parse_number(form.get("duration_min"), "infusion duration (min)", 1, 600,
                                name="duration_min")
    product = text_field(form, "product", "product", required=True)
    lot = text_field(form, "lot", "lot", required=True)
    doses = _earlier_doses(db, p.id)
    previous = doses[-1][3] if doses else None  # the weight at the last dose
    sessions = tuple(utc(r.started_at) for r in db.scalars(select(MonitoredSessionRow).where(
        MonitoredSessionRow.patient_id == p.id, MonitoredSessionRow.discharged_at.is_not(None))))
    order = DoseOrder(compound=compound, route=route, amount=amount, unit=unit,  # type: ignore[arg-type]
                      concentration_mg_per_ml=concentration, time=at, duration_min=duration)
    ctx_ = PatientDoseContext(
        weight_kg=weight, weight_measured_at=datetime.combine(measured, datetime.min.time(), UTC),
        previous_weight_kg=previous, session_times=sessions,
        session_doses_mg=tuple(mg for sid, _, mg, _ in doses if sid == row.id),
        earlier_doses=tuple((t, mg) for _, t, mg, _ in doses))
    check = check_dose(order, ctx_, clinic_limits(db, p.clinic_id))
    reason = text_field(form, "override_reason", "override reason")
    second = None
    if check.verdict == "hard":
        second = _second_clinician(db, user, form, check)
    override = Override(reason=reason, clinician=user.username, at=at,
                        second_clinician=second) if reason else None
    record = authorize(check, override)
    data = {"dose_mg": check.dose_mg, "dose_mg_per_kg": check.dose_mg_per_kg,
            "amount": amount, "unit": unit, "concentration_mg_per_ml": concentration,
            "volume_ml": check.volume_ml, "route": route, "duration_min": duration,
            "weight_kg": weight, "weight_date": measured.isoformat(), "product": product,
            "lot": lot, "devices": int(check.dose_mg // 28) if compound == "esketamine" else None,
            "limits_version": check.limits_version}
    return data, {"dose_check": record}


def _second_clinician(db: Session, user: User, form: Post, check: Any) -> str:
    """A hard stop proceeds only with a reason and a second clinician of the same clinic who
    confirms with their own password (a second-clinician check); otherwise the order is
    refused with the finding."""
    hard = "; ".join(f.message for f in check.findings if f.severity == "hard")
    name = text_field(form, "second_clinician", "second clinician")
    password = form.get("second_password")
    if not name:
        raise DoseCheckError("dose", f"hard stop: {hard}",
                             "change the order, or give a reason and have a second clinician "
                             "confirm with their user name and password")
    if len(password) > MAX_TEXT["second_password"]:
        raise DoseCheckError("second_password", "is too long", "type the password")
    other = db.scalar(select(User).where(User.username == name))
    ok = check_password(other.password_hash if other else None, password)
    if not ok or other is None or not other.active or other.clinic_id != user.clinic_id \
            or other.role not in ("prescriber",) or other.id == user.id:
        raise DoseCheckError("second_clinician", "was not confirmed",
                             "a different prescriber of this clinic must confirm with their "
                             "own user name and password")
    return other.username


__all__ = [
    "LATE_REASON_AFTER",
    "LATE_WINDOW",
    "SESSION_READ",
    "SESSION_WRITE",
    "FormError",
    "apply",
    "clinic_limits",
    "input_of",
    "parse_birth_year",
    "parse_number",
    "parse_time",
    "register",
    "replay",
    "rules_of",
    "session_events",
    "text_field",
    "utc",
]
