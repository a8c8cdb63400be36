"""The FastAPI application: log in and out, sessions with idle and absolute timeouts, CSRF on
every state change, throttled failed log-ins without permanent lock-out, security headers,
clinic-scoped authorization checked on the server, and an audit entry for every log-in,
failure and patient read.

>>> app = create_app("sqlite://", audit_key=b"k" * 32, migrate_first=False)
>>> app.title
'ketasim clinic'
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from ketasim.clinic.audit import AuditEntry, next_entry
from ketasim.clinic.mbc import questionnaires_due
from ketasim.errors import KetasimError
from ketasim.scales.instruments import Instrument, ScaleError, get_instrument, score
from ketasim.storage.db import make_engine, migrate, session_factory
from ketasim.storage.models import (
    AuditRow,
    Base,
    Clinic,
    MonitoredSessionRow,
    Patient,
    QuestionnaireResponse,
    SafetyAlert,
    User,
    WebSession,
)
from ketasim.web.admin import register as register_admin
from ketasim.web.consult import register as register_consult
from ketasim.web.exports import register as register_exports
from ketasim.web.plans import chart_context
from ketasim.web.plans import register as register_plans
from ketasim.web.security import (
    SECURITY_HEADERS,
    check_password,
    hash_password,
    new_token,
    same,
    token_hash,
)
from ketasim.web.sessions import SESSION_READ, SESSION_WRITE, Deps, register, utc

ROLES = ("administrator", "prescriber", "nurse", "front_desk", "patient", "researcher")
STAFF_READ = ("administrator", "prescriber", "nurse", "front_desk")
CLINICIANS = ("prescriber", "nurse")
PORTAL_INSTRUMENTS = ("phq9", "gad7", "qids_sr16", "pcl5", "cssrs_ideation")
CLINICIAN_INSTRUMENTS = ("madrs",)  # rated by a clinician, never in the portal


def _portal_instrument(name: str, role: str) -> Instrument:
    if name in PORTAL_INSTRUMENTS or (name in CLINICIAN_INSTRUMENTS and role in CLINICIANS):
        return get_instrument(name)
    raise HTTPException(status_code=404, detail="no such questionnaire")


def _item(raw: object, k: int) -> int:
    """One answer: a whole number typed as digits, nothing else accepted."""
    text_ = str(raw).strip() if raw is not None else ""
    if not text_:
        raise ScaleError(f"item {k}", "is missing", "answer every item")
    if not text_.isdigit() or len(text_) > 2:
        raise ScaleError(f"item {k}", f"{text_!r} is not a whole number",
                         "answer with the number shown for your choice")
    return int(text_)
COOKIE = "ketasim_session"
PAGE_SIZE = 50  # patients per list page
# last-seen time is refreshed at most this often (idle timeouts are minutes; one commit less
# per request)
SESSION_TOUCH = timedelta(seconds=30)
PRE_CSRF = "ketasim_precsrf"


@dataclass(frozen=True)
class Settings:
    """Timeouts and throttling (ASVS-style defaults; a clinic may tighten them)."""

    idle_timeout: timedelta = timedelta(minutes=15)
    absolute_timeout: timedelta = timedelta(hours=8)
    max_failed_logins: int = 5
    lockout: timedelta = timedelta(minutes=15)


def _now() -> datetime:
    return datetime.now(UTC)


class Auditor:
    """Appends to the HMAC chain stored in the database. The chain's end is read inside the
    writing transaction (PostgreSQL: under an advisory lock; SQLite: transactions begin
    IMMEDIATE, holding the write lock), so concurrent requests and several server processes
    extend one consistent chain."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            from ketasim.clinic.audit import AuditError
            raise AuditError("audit_key", "is shorter than 32 bytes",
                             "use a random 32-byte key kept outside the database")
        self.key = key

    def record(self, db: Session, actor: str, action: str, subject: str,
               detail: dict[str, Any] | None = None) -> None:
        if db.get_bind().dialect.name == "postgresql":
            db.execute(text("SELECT pg_advisory_xact_lock(7304551)"))
        last = db.scalar(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1))
        prev = None if last is None else AuditEntry(last.seq, last.at, last.actor, last.action,
                                                    last.subject, last.detail, last.prev,
                                                    last.mac)
        e = next_entry(self.key, prev, at=_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                       actor=actor, action=action, subject=subject, detail=detail)
        db.add(AuditRow(seq=e.seq, at=e.at, actor=e.actor, action=e.action,
                        subject=e.subject, detail=dict(e.detail), prev=e.prev, mac=e.mac))
        db.flush()


def create_app(database_url: str, *, audit_key: bytes, settings: Settings | None = None,
               migrate_first: bool = True) -> FastAPI:
    """Build the app on ``database_url`` (migrated first unless told otherwise)."""
    cfg = settings or Settings()
    if migrate_first:
        migrate(database_url)
    engine = make_engine(database_url)
    if not migrate_first:
        Base.metadata.create_all(engine)
    sessions = session_factory(engine)
    auditor = Auditor(audit_key)
    templates = Jinja2Templates(
        directory=str(resources.files("ketasim.web").joinpath("templates")))
    app = FastAPI(title="ketasim clinic", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sessions = sessions
    app.state.auditor = auditor

    @app.exception_handler(KetasimError)
    async def bad_input(request: Request, exc: KetasimError) -> Response:
        """Any typed ketasim error that reaches the top is the user's to fix: a 400 page."""
        return templates.TemplateResponse(request, "error.html", {
            "user": None, "csrf_token": "", "title": "Cannot do that", "message": str(exc)},
            status_code=400)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    def db_session() -> Any:
        with sessions() as db:
            yield db

    def current(request: Request, db: Session = Depends(db_session)
                ) -> tuple[User, WebSession] | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        ws = db.scalar(select(WebSession).where(WebSession.token_hash == token_hash(token)))
        if ws is None:
            return None
        now = _now()
        if now - utc(ws.last_seen) > cfg.idle_timeout or \
                now - utc(ws.created_at) > cfg.absolute_timeout:
            db.delete(ws)
            db.commit()
            return None
        user = db.get(User, ws.user_id)
        if user is None or not user.active:
            db.delete(ws)
            db.commit()
            return None
        if now - utc(ws.last_seen) > SESSION_TOUCH:
            ws.last_seen = now  # committed with the request's own changes or audit entry
            db.flush()
        return user, ws

    def require(who: tuple[User, WebSession] | None) -> tuple[User, WebSession]:
        if who is None:
            raise HTTPException(status_code=303, headers={"Location": "/login"})
        return who

    def page(request: Request, name: str, who: tuple[User, WebSession] | None,
             status: int = 200, **ctx: Any) -> HTMLResponse:
        user, ws = who if who else (None, None)
        return templates.TemplateResponse(request, name, {"user": user, "csrf_token":
                                          ws.csrf_token if ws else "", **ctx},
                                          status_code=status)

    def check_csrf(given: object, ws: WebSession) -> None:
        if not same(str(given or ""), ws.csrf_token):
            raise HTTPException(status_code=403, detail="missing or wrong CSRF token")

    def login_page(request: Request, error: str = "", status: int = 200) -> HTMLResponse:
        form_csrf = new_token()
        resp = page(request, "login.html", None, status, title="Log in", error=error,
                    form_csrf=form_csrf)
        resp.set_cookie(PRE_CSRF, form_csrf, httponly=True, secure=True, samesite="strict",
                        max_age=1800)
        return resp

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> HTMLResponse:
        return login_page(request)

    @app.post("/login")
    def login(request: Request, username: str = Form(..., max_length=100),
              password: str = Form(..., max_length=1024),
              csrf_token: str = Form(..., max_length=100),
              db: Session = Depends(db_session)) -> Response:
        if not same(csrf_token, request.cookies.get(PRE_CSRF)):
            return login_page(request, "The form expired; please log in again.", 400)
        user = db.scalar(select(User).where(User.username == username))
        now = _now()
        if user is not None and user.locked_until and now < utc(user.locked_until):
            auditor.record(db, f"user:{user.id}", "login_throttled", f"user:{user.id}")
            db.commit()
            return login_page(request, "Too many failed attempts; try again later.", 429)
        ok = check_password(user.password_hash if user else None, password)
        if not ok or user is None or not user.active:
            if user is not None:
                user.failed_logins += 1
                if user.failed_logins >= cfg.max_failed_logins:
                    user.locked_until = now + cfg.lockout
                    user.failed_logins = 0
            auditor.record(db, "anonymous", "login_failed",
                           f"user:{user.id}" if user else "unknown-user",
                           {"ip": request.client.host if request.client else ""})
            db.commit()
            return login_page(request, "Wrong user name or password.", 401)
        user.failed_logins = 0
        user.locked_until = None
        token = new_token()
        db.add(WebSession(token_hash=token_hash(token), user_id=user.id, csrf_token=new_token(),
                          created_at=now, last_seen=now))
        auditor.record(db, f"user:{user.id}", "login", f"user:{user.id}")
        db.commit()
        resp = RedirectResponse("/patients", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, secure=True, samesite="strict")
        resp.delete_cookie(PRE_CSRF)
        return resp

    @app.post("/logout")
    def logout(csrf_token: str = Form("", max_length=100),
               who: tuple[User, WebSession] | None = Depends(current),
               db: Session = Depends(db_session)) -> Response:
        user, ws = require(who)
        check_csrf(csrf_token, ws)
        live = db.get(WebSession, ws.id)
        if live is not None:
            db.delete(live)
        auditor.record(db, f"user:{user.id}", "logout", f"user:{user.id}")
        db.commit()
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    def visible_patients(db: Session, user: User, q: str = "", page_no: int = 1
                         ) -> list[Patient]:
        if user.role in STAFF_READ:
            stmt = select(Patient).where(Patient.clinic_id == user.clinic_id)
            if q:
                stmt = stmt.where(Patient.display_name.ilike(f"%{q}%"))
            stmt = stmt.order_by(Patient.display_name, Patient.id).offset(
                (page_no - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
            return list(db.scalars(stmt))
        if user.role == "patient" and user.patient_id is not None:
            p = db.get(Patient, user.patient_id)
            return [p] if p is not None else []
        return []

    def sees(user: User, p: Patient) -> bool:
        if user.role in STAFF_READ:
            return p.clinic_id == user.clinic_id
        return user.role == "patient" and user.patient_id == p.id

    def patient_in_reach(db: Session, user: User, patient_id: int,
                         roles: Collection[str] | None = None) -> Patient:
        """The patient, if this user may see them (and, given ``roles``, has one of them:
        otherwise the page does not exist for them)."""
        p = db.get(Patient, patient_id)
        if p is None or not sees(user, p):
            auditor.record(db, f"user:{user.id}", "denied", f"patient:{patient_id}")
            db.commit()
            raise HTTPException(status_code=404, detail="no such patient")
        if roles is not None and user.role not in roles:
            raise HTTPException(status_code=404, detail="no such page")
        return p

    deps = Deps(page, current, db_session, require, check_csrf, patient_in_reach, auditor)

    @app.get("/patients", response_class=HTMLResponse)
    def patients(request: Request, q: str = Query("", max_length=100),
                 page_no: int = Query(1, alias="page", ge=1, le=100_000),
                 who: tuple[User, WebSession] | None = Depends(current),
                 db: Session = Depends(db_session)) -> HTMLResponse:
        user, _ = require(who)
        query = q.strip().replace("%", "").replace("_", "")
        found = visible_patients(db, user, query, page_no)
        more = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
        auditor.record(db, f"user:{user.id}", "read", "patients",
                       {"count": len(found), "page": page_no, "search": bool(query)})
        db.commit()
        return page(request, "patients.html", who, title="Patients", patients=found, q=query,
                    page_no=page_no, more=more, searchable=user.role in STAFF_READ)

    @app.get("/patients/{patient_id}", response_class=HTMLResponse)
    def patient(request: Request, patient_id: int,
                who: tuple[User, WebSession] | None = Depends(current),
                db: Session = Depends(db_session)) -> HTMLResponse:
        user, _ = require(who)
        p = patient_in_reach(db, user, patient_id)
        responses = db.scalars(select(QuestionnaireResponse).where(
            QuestionnaireResponse.patient_id == patient_id).order_by(
            QuestionnaireResponse.submitted_at.desc())).all()
        alerts = db.scalars(select(SafetyAlert).where(
            SafetyAlert.patient_id == patient_id,
            SafetyAlert.acknowledged_by.is_(None))).all() if user.role in STAFF_READ else []
        show_sessions = user.role in SESSION_READ
        sessions_ = db.scalars(select(MonitoredSessionRow).where(
            MonitoredSessionRow.patient_id == patient_id).order_by(
            MonitoredSessionRow.id.desc())).all() if show_sessions else []
        chart = chart_context(db, patient_id) if show_sessions else {}
        due = questionnaires_due([(r.instrument, r.submitted_at) for r in responses], _now())
        auditor.record(db, f"user:{user.id}", "read", f"patient:{patient_id}")
        db.commit()
        return page(request, "patient.html", who, title="Patient", patient=p, **chart,
                    responses=responses, alerts=alerts, can_ack=user.role in CLINICIANS,
                    show_sessions=show_sessions, sessions=sessions_,
                    can_start=user.role in SESSION_WRITE, can_plan=user.role == "prescriber",
                    due=due, instruments=[get_instrument(i) for i in PORTAL_INSTRUMENTS],
                    clinician_instruments=[get_instrument(i) for i in CLINICIAN_INSTRUMENTS]
                    if user.role in CLINICIANS else [],
                    can_export=user.role in ("administrator", "prescriber", "nurse", "patient"))

    @app.get("/patients/{patient_id}/questionnaires/{instrument}",
             response_class=HTMLResponse)
    def questionnaire_form(request: Request, patient_id: int, instrument: str,
                           who: tuple[User, WebSession] | None = Depends(current),
                           db: Session = Depends(db_session)) -> HTMLResponse:
        user, _ = require(who)
        p = patient_in_reach(db, user, patient_id)
        inst = _portal_instrument(instrument, user.role)
        return page(request, "questionnaire.html", who, title=inst.name, patient=p,
                    instrument=inst, error="")

    @app.post("/patients/{patient_id}/questionnaires/{instrument}")
    async def questionnaire_submit(request: Request, patient_id: int, instrument: str,
                                   who: tuple[User, WebSession] | None = Depends(current),
                                   db: Session = Depends(db_session)) -> Response:
        user, _, form = await deps.posted(request, who)
        p = patient_in_reach(db, user, patient_id)
        inst = _portal_instrument(instrument, user.role)
        try:
            items = [_item(form.get(f"item_{k}"), k) for k in range(1, inst.n_items + 1)]
            scored = score(inst.id, items)
        except ScaleError as exc:
            return page(request, "questionnaire.html", who, 400, title=inst.name, patient=p,
                        instrument=inst, error=str(exc))
        now = _now()
        resp = QuestionnaireResponse(patient_id=p.id, instrument=inst.id, items=items,
                                     total=scored.total, band=scored.band,
                                     submitted_by=user.id, submitted_at=now)
        db.add(resp)
        db.flush()
        for flag in scored.flags:
            db.add(SafetyAlert(patient_id=p.id, kind=flag, response_id=resp.id,
                               created_at=now))
        auditor.record(db, f"user:{user.id}", "write", f"patient:{p.id}",
                       {"questionnaire": inst.id, "alerts": len(scored.flags)})
        db.commit()
        return RedirectResponse(f"/patients/{p.id}", status_code=303)

    @app.post("/alerts/{alert_id}/acknowledge")
    async def acknowledge(request: Request, alert_id: int,
                          who: tuple[User, WebSession] | None = Depends(current),
                          db: Session = Depends(db_session)) -> Response:
        user, _, _ = await deps.posted(request, who)
        alert = db.get(SafetyAlert, alert_id)
        owner = db.get(Patient, alert.patient_id) if alert is not None else None
        if alert is None or owner is None or user.role not in CLINICIANS \
                or not sees(user, owner):
            auditor.record(db, f"user:{user.id}", "denied", f"alert:{alert_id}")
            db.commit()
            raise HTTPException(status_code=404, detail="no such alert")
        if alert.acknowledged_by is None:
            alert.acknowledged_by = user.id
            alert.acknowledged_at = _now()
            auditor.record(db, f"user:{user.id}", "acknowledge", f"alert:{alert_id}",
                           {"patient": alert.patient_id})
            db.commit()
        return RedirectResponse(f"/patients/{alert.patient_id}", status_code=303)

    @app.get("/")
    def root() -> Response:
        return RedirectResponse("/patients", status_code=303)

    register(app, deps)
    register_exports(app, deps, audit_key)
    register_consult(app, deps)
    register_plans(app, deps)
    register_admin(app, deps)
    return app


def seed_demo(sessions: sessionmaker, passwords: dict[str, str]) -> bool:
    """Demo data: one clinic, one user per role, three patients. Returns False (and changes
    nothing) when the demo data already exist."""
    with sessions() as db:
        if db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic")) is not None:
            return False
        # demonstration thresholds; a real clinic sets its own (no defaults exist)
        clinic = Clinic(name="Demo Clinic", spo2_min=92.0, moaas_alert_max=2)
        other = Clinic(name="Other Clinic")
        db.add_all([clinic, other])
        db.flush()
        pts = [Patient(clinic_id=clinic.id, display_name=n)
               for n in ("Demo Patient A", "Demo Patient B")]
        pts.append(Patient(clinic_id=other.id, display_name="Other Clinic Patient"))
        db.add_all(pts)
        db.flush()
        for role in ROLES:
            db.add(User(clinic_id=clinic.id, username=role, role=role,
                        password_hash=hash_password(passwords[role]), active=True,
                        failed_logins=0,
                        patient_id=pts[0].id if role == "patient" else None))
        db.commit()
    return True


def seed_demo_activity(sessions: sessionmaker) -> None:
    """Example activity for the demo clinic (run once, by ``ketasim serve --demo``): Demo
    Patient B's PHQ-9 over three weeks and a completed monitored session, and a consultation
    request waiting in the queue. Built through the same rules as real entries."""
    from ketasim.clinic.screening import ScreeningAnswers, screen
    from ketasim.clinic.session import MonitoredSession, MonitoringRules
    from ketasim.storage.models import ConsultationRequest, MonitoredSessionRow, SessionEvent
    with sessions() as db:
        clinic = db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic"))
        if clinic is None or db.scalar(select(ConsultationRequest).where(
                ConsultationRequest.clinic_id == clinic.id).limit(1)) is not None:
            return
        b = db.scalar(select(Patient).where(Patient.display_name == "Demo Patient B"))
        nurse = db.scalar(select(User).where(User.username == "nurse"))
        assert b is not None and nurse is not None
        now = _now().replace(microsecond=0)
        history = ((21, [2, 2, 3, 2, 2, 2, 2, 1, 0]), (14, [1, 1, 2, 2, 1, 1, 1, 1, 0]),
                   (7, [1, 1, 1, 1, 0, 1, 1, 0, 0]))
        for days_ago, items in history:
            sc = score("phq9", items)
            db.add(QuestionnaireResponse(patient_id=b.id, instrument="phq9", items=items,
                                         total=sc.total, band=sc.band, submitted_by=nurse.id,
                                         submitted_at=now - timedelta(days=days_ago)))
        t0 = now - timedelta(days=20)
        rules = MonitoringRules(spo2_min=clinic.spo2_min or 92.0,
                                moaas_alert_max=clinic.moaas_alert_max or 2)
        s = MonitoredSession("racemic", rules)
        steps: list[tuple[str, datetime, dict[str, Any]]] = [
            ("predose", t0, {"sbp": 124.0, "dbp": 78.0, "hr": 68.0, "spo2": 98.0}),
            ("dose", t0 + timedelta(minutes=5), {"dose_mg": 36.0, "dose_mg_per_kg": 0.5,
                                                 "amount": 0.5, "unit": "mg/kg",
                                                 "route": "iv_infusion", "duration_min": 40.0,
                                                 "weight_kg": 72.0, "product": "ketamine",
                                                 "lot": "DEMO-1", "devices": None}),
            ("vitals", t0 + timedelta(minutes=45), {"sbp": 142.0, "dbp": 88.0, "hr": 80.0,
                                                    "spo2": 97.0, "moaas": 4, "cadss": 9}),
            ("vitals", t0 + timedelta(minutes=125), {"sbp": 126.0, "dbp": 80.0, "hr": 70.0,
                                                     "spo2": 98.0, "moaas": 5, "cadss": 0}),
            ("discharge", t0 + timedelta(minutes=130), {})]
        row = MonitoredSessionRow(patient_id=b.id, compound="racemic", rems_enrolled=False,
                                  started_by=nurse.id, started_at=t0)
        db.add(row)
        db.flush()
        from ketasim.web.sessions import apply
        due = None
        for kind, at, data in steps:
            due = apply(s, kind, at, data)
            db.add(SessionEvent(session_id=row.id, kind=kind, at=at, data=data,
                                recorded_by=nurse.id, recorded_at=at))
        row.discharged_at = t0 + timedelta(minutes=130)
        row.form_due_at = due
        answers = ScreeningAnswers(condition="depression", prior_treatments=["antidepressants_2"],
                                   cautions=[], phq9=[2, 2, 2, 2, 1, 2, 1, 1, 0],
                                   gad7=[1, 1, 2, 1, 1, 1, 1])
        summary = screen(answers)
        db.add(ConsultationRequest(clinic_id=clinic.id, created_at=now, name="Sam Example",
                                   contact="sam@example.org", condition="depression",
                                   answers=answers.model_dump(),
                                   phq9_total=summary.phq9.total,
                                   gad7_total=summary.gad7.total, status="new"))
        db.commit()


def reset_demo_passwords(sessions: sessionmaker, passwords: dict[str, str]) -> bool:
    """New passwords for the demo clinic's users (an existing demo database, restarted).
    Returns False when there is no demo clinic."""
    with sessions() as db:
        clinic = db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic"))
        if clinic is None:
            return False
        for user in db.scalars(select(User).where(User.clinic_id == clinic.id,
                                                  User.username.in_(list(passwords)))):
            user.password_hash = hash_password(passwords[user.username])
            user.failed_logins = 0
            user.locked_until = None
        db.commit()
    return True


__all__ = ["ROLES", "Settings", "create_app", "reset_demo_passwords", "seed_demo",
           "seed_demo_activity"]
