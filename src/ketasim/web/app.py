"""The FastAPI application: log in (with a TOTP second factor for clinical roles when the
clinic requires it) and out, sessions with idle and absolute timeouts, CSRF on every state
change, log-in back-off per client address instead of account lock-outs, security headers,
clinic-scoped authorization checked on the server, load shedding (503 + Retry-After), capped
request bodies, HTML error pages naming the field, and an audit entry for every log-in,
failure, denial and patient read.

The request/transaction model is described in :mod:`ketasim.web.deps`.

>>> app = create_app("sqlite://", audit_key=b"k" * 32, migrate_first=False)
>>> app.title
'ketasim clinic'
"""

from __future__ import annotations

import hashlib
import re
import secrets
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib import resources
from typing import Any

import anyio
from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ketasim.clinic.mbc import questionnaires_due
from ketasim.errors import KetasimError
from ketasim.scales.instruments import Instrument, ScaleError, get_instrument, score
from ketasim.storage.db import make_engine, migrate, session_factory, write_session_factory
from ketasim.storage.models import (
    Base,
    Clinic,
    LoginThrottle,
    MonitoredSessionRow,
    Patient,
    QuestionnaireResponse,
    SafetyAlert,
    User,
    WebSession,
)
from ketasim.web.admin import register as register_admin
from ketasim.web.clock import zone
from ketasim.web.consult import register as register_consult
from ketasim.web.deps import (
    CLINICIANS,
    COOKIE,
    MAX_BODY,
    MAX_ID,
    MAX_IN_FLIGHT,
    STAFF_READ,
    WORKERS,
    AlertId,
    AppContext,
    LoadShedder,
    MaybeWho,
    PatientId,
    Posted,
    ReadDb,
    Settings,
    SignedIn,
    Who,
    check_csrf,
    client_address,
    deny,
    patient_in_reach,
    sees,
    utc,
)
from ketasim.web.deps import (
    Form as FormBody,
)
from ketasim.web.exports import register as register_exports
from ketasim.web.individual import individual_view
from ketasim.web.individual import register as register_individual
from ketasim.web.levels import (
    ANALYTE_LABELS,
    LEVEL_WRITERS,
    analyte_options,
    levels_of,
    predicted_analytes,
)
from ketasim.web.levels import register as register_levels
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
from ketasim.web.sessions import SESSION_READ, SESSION_WRITE, parse_birth_year, register

ROLES = ("administrator", "prescriber", "nurse", "front_desk", "patient", "researcher")
MFA_ROLES = ("administrator", "prescriber", "nurse")  # clinical roles: a clinic may require TOTP
PORTAL_INSTRUMENTS = ("phq9", "gad7", "qids_sr16", "pcl5", "cssrs_ideation")
CLINICIAN_INSTRUMENTS = ("madrs",)  # rated by a clinician, never in the portal
# who submits patient-reported measures: the patient, or a clinician entering for them
PRO_SUBMITTERS = ("patient", *CLINICIANS)
PAGE_SIZE = 50  # patients per list page
PRE_CSRF = "ketasim_precsrf"
_DIGIT = re.compile(r"[0-9]{1,2}")


def _portal_instrument(ctx: AppContext, user: User, name: str) -> Instrument:
    """A questionnaire this user may fill in (a clinician-rated one only for clinicians; the
    denial is audited)."""
    if name in PORTAL_INSTRUMENTS or (name in CLINICIAN_INSTRUMENTS and user.role in CLINICIANS):
        return get_instrument(name)
    if name in CLINICIAN_INSTRUMENTS:
        deny(ctx, user, f"questionnaire:{name}", "questionnaire")
    raise HTTPException(status_code=404, detail="no such questionnaire")


def _wording(inst: Instrument) -> dict[str, Any]:
    """The questions' and answers' words where ketasim has them (PHQ-9, GAD-7)."""
    from ketasim.clinic.screening import ANSWER_WORDS, ITEM_TEXT
    return {"item_text": ITEM_TEXT.get(inst.id, ()), "answer_words": ANSWER_WORDS.get(inst.id, ())}


def _item(raw: object, k: int) -> int:
    """One answer: a whole number typed as ASCII digits, nothing else accepted."""
    text_ = raw.strip() if isinstance(raw, str) else ""
    if not text_:
        raise ScaleError(f"item {k}", "is missing", "answer every item")
    if not _DIGIT.fullmatch(text_):
        raise ScaleError(f"item {k}", f"{text_[:20]!r} is not a whole number",
                         "answer with the number shown for your choice")
    return int(text_)


class Headers:
    """Pure ASGI middleware adding the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *[(k, v) for k, v in self.headers if k not in have]]
            await send(message)

        await self.app(scope, receive, add)


def add_filters(templates: Jinja2Templates) -> None:
    """Jinja filters that show a stored (UTC) time in the page's time zone (``tz`` in the
    template context, UTC when absent): ``when`` date and time, ``hm`` time of day, ``day``
    the date, ``dtlocal`` the value of an ``<input type="datetime-local">``."""
    from datetime import UTC

    from jinja2 import pass_context
    from markupsafe import Markup

    from ketasim.references import references_html, render_source_html
    from ketasim.web import clock

    def using(fn: Any) -> Any:
        @pass_context
        def f(c: Any, t: Any) -> str:
            return str(fn(t, c.get("tz") or UTC))
        return f

    env = templates.env
    env.filters["when"] = using(clock.shown)
    env.filters["hm"] = using(clock.clock)
    env.filters["day"] = using(clock.day)
    env.filters["dtlocal"] = using(clock.input_value)
    env.filters["sentence"] = lambda text: str(text)[:1].upper() + str(text)[1:]
    # a source naming bibliography keys, as short citations linked to the works
    env.filters["cite"] = lambda text: Markup(render_source_html(str(text)))
    # the full citations of every work some sources name, as a list under an <h3>
    env.filters["references"] = lambda texts, heading="References": Markup(
        references_html(texts, heading, level=3))


ALERT_LABELS = {"phq9_item9_positive": "PHQ-9 item 9 positive: thoughts of death or self-harm",
                "suicidal_ideation": "C-SSRS: suicidal ideation reported"}


def _totp_ok(secret: str | None, code: str) -> bool:
    """A 6-digit code valid for ``secret`` now (one 30-s step of clock drift allowed)."""
    import pyotp
    code = code.strip()
    return bool(secret and re.fullmatch(r"[0-9]{6}", code)
                and pyotp.TOTP(secret).verify(code, valid_window=1))


def _recovery_hash(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace("-", "").encode()).hexdigest()


def create_app(database_url: str, *, audit_key: bytes, settings: Settings | None = None,
               migrate_first: bool = True, workers: int = WORKERS,
               max_in_flight: int = MAX_IN_FLIGHT) -> FastAPI:
    """Build the app on ``database_url`` (migrated first unless told otherwise)."""
    from limits import parse as parse_rate
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter

    from ketasim.storage.audit_store import Auditor

    cfg = settings or Settings()
    if migrate_first:
        migrate(database_url)
    engine = make_engine(database_url, pool_size=2 * workers + 2)
    if not migrate_first:
        Base.metadata.create_all(engine)
    templates = Jinja2Templates(
        directory=str(resources.files("ketasim.web").joinpath("templates")))
    add_filters(templates)
    reader = session_factory(engine)
    reader.configure(autoflush=False)

    @event.listens_for(reader, "before_flush")
    def _read_only(session: Session, *_: Any) -> None:
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("a change was made in a read session; write with ctx.write()")

    ctx = AppContext(reader=reader, writer=write_session_factory(engine),
                     auditor=Auditor(audit_key), templates=templates, settings=cfg,
                     key=audit_key,
                     limiter=(MovingWindowRateLimiter(MemoryStorage()),
                              parse_rate(cfg.consult_rate)))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        # the worker pool matches the connection pool (two connections per request)
        anyio.to_thread.current_default_thread_limiter().total_tokens = workers
        yield

    app = FastAPI(title="ketasim clinic", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.ctx = ctx
    app.state.engine = engine  # dispose() when an app is thrown away (tests)
    app.state.sessions = ctx.writer  # for scripts and tests: writes begin IMMEDIATE
    app.state.auditor = ctx.auditor
    busy = {"count": 0}
    app.state.busy = busy

    def error_page(request: Request, title: str, message: str, status: int,
                   headers: dict[str, str] | None = None) -> HTMLResponse:
        resp = templates.TemplateResponse(request, "error.html", {
            "user": None, "csrf_token": "", "title": title, "message": message},
            status_code=status)
        for k, v in (headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(KetasimError)
    def bad_input(request: Request, exc: KetasimError) -> Response:
        """Any typed ketasim error that reaches the top is the user's to fix: a 400 page."""
        return error_page(request, "Cannot do that", str(exc), 400)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> Response:
        """A malformed path, query or form value: name the field on a page (a path id that
        cannot exist is a 404)."""
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("request",), "msg": "is not valid"}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body",)]
        where = loc[0] if loc else "request"
        name = loc[-1] if loc else "request"
        if where == "path" and first.get("type") in ("less_than_equal", "greater_than_equal"):
            return error_page(request, "Not found", "There is no such page.", 404)
        msg = str(first.get("msg", "is not valid"))
        return error_page(request, "Cannot do that",
                          f"{name}: {msg} (fix: correct the {name} and try again)", 422)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (301, 302, 303, 307):
            return Response(status_code=exc.status_code, headers=exc.headers)
        titles = {400: "Cannot do that", 403: "Not allowed", 404: "Not found",
                  405: "Not allowed", 413: "Too large", 429: "Too many requests"}
        detail = exc.detail if isinstance(exc.detail, str) else "The request was refused."
        return error_page(request, titles.get(exc.status_code, "Cannot do that"), detail,
                          exc.status_code, dict(exc.headers or {}))

    def overloaded(request: Request, exc: Exception) -> Response:
        """Pool exhausted or the write lock not granted in time: busy, never a 500."""
        busy["count"] += 1
        return error_page(request, "Busy", "The clinic server is busy; nothing was saved. "
                          "Please retry in a moment.", 503, {"Retry-After": "2"})

    app.add_exception_handler(PoolTimeout, overloaded)

    @app.exception_handler(OperationalError)
    def db_error(request: Request, exc: OperationalError) -> Response:
        text = str(exc.orig) if exc.orig is not None else str(exc)
        if exc.connection_invalidated or "locked" in text or "busy" in text \
                or "could not obtain lock" in text:  # lock wait, or the database restarted
            return overloaded(request, exc)
        raise exc

    @app.exception_handler(IntegrityError)
    def conflict(request: Request, exc: IntegrityError) -> Response:
        """A uniqueness rule caught a concurrent duplicate (e.g. a second open session)."""
        return error_page(request, "Already recorded",
                          "That was already recorded (or conflicts with what was just "
                          "recorded); reload the page to see the current state.", 409)

    app.mount("/static", StaticFiles(directory=str(resources.files("ketasim.web").joinpath(
        "static"))), name="static")
    app.add_middleware(Headers)
    app.add_middleware(LoadShedder, limit=max_in_flight, max_body=MAX_BODY,
                       on_busy=lambda: busy.__setitem__("count", busy["count"] + 1))

    def login_page(request: Request, error: str = "", status: int = 200) -> HTMLResponse:
        form_csrf = new_token()
        resp = ctx.page(request, "login.html", None, status, title="Log in", error=error,
                        form_csrf=form_csrf)
        resp.set_cookie(PRE_CSRF, form_csrf, httponly=True, secure=True, samesite="strict",
                        max_age=1800)
        return resp

    def throttle_keys(request: Request, username: str) -> list[str]:
        addr = client_address(request)[:100]
        return [f"addr:{addr}", f"acct:{addr}:{username.strip().lower()[:100]}"]

    def blocked_for(db: Session, keys: list[str]) -> timedelta | None:
        t = ctx.clock()
        waits = [utc(r.blocked_until) - t for r in db.scalars(
            select(LoginThrottle).where(LoginThrottle.key.in_(keys)))
            if r.blocked_until is not None and utc(r.blocked_until) > t]
        return max(waits) if waits else None

    def count_failure(w: Session, keys: list[str]) -> None:
        t = ctx.clock()
        for k in keys:
            row = w.get(LoginThrottle, k)
            if row is None:
                row = LoginThrottle(key=k, failures=0, last_failure=t)
                w.add(row)
            if t - utc(row.last_failure) > cfg.max_backoff * 4:
                row.failures = 0  # a quiet period forgives earlier failures
            row.failures += 1
            row.last_failure = t
            over = row.failures - cfg.free_failures
            if over > 0:
                wait = min(timedelta(seconds=2 ** min(over, 20)), cfg.max_backoff)
                row.blocked_until = t + wait

    def needs_mfa(db: Session, user: User) -> bool:
        if user.totp_enabled:
            return True
        clinic = db.get(Clinic, user.clinic_id)
        return bool(clinic and clinic.require_mfa and user.role in MFA_ROLES)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> HTMLResponse:
        return login_page(request)

    @app.post("/login")
    def login(request: Request, db: ReadDb, username: str = Form("", max_length=100),
              password: str = Form("", max_length=1024),
              csrf_token: str = Form("", max_length=100)) -> Response:
        if not same(csrf_token, request.cookies.get(PRE_CSRF)):
            return login_page(request, "The form expired; please log in again.", 400)
        keys = throttle_keys(request, username)
        wait = blocked_for(db, keys)
        if wait is not None:
            ctx.audit("anonymous", "login_throttled", "login",
                      {"ip": client_address(request)[:100]})
            minutes = max(1, round(wait.total_seconds() / 60))
            return login_page(request, "Too many failed attempts from this address; try "
                              f"again in about {minutes} min.", 429)
        user = db.scalar(select(User).where(User.username == username))
        ok = check_password(user.password_hash if user else None, password)
        if not ok or user is None or not user.active:
            with ctx.write() as w:
                count_failure(w, keys)
                ctx.auditor.record(w, "anonymous", "login_failed",
                                   f"user:{user.id}" if user else "unknown-user",
                                   {"ip": client_address(request)[:100]})
            return login_page(request, "Wrong user name or password.", 401)
        token = new_token()
        old = request.cookies.get(COOKIE)
        mfa_owed = needs_mfa(db, user)
        t = ctx.clock()
        with ctx.write() as w:
            if old:  # a new log-in in this browser ends the session it had
                for ws in w.scalars(select(WebSession).where(
                        WebSession.token_hash == token_hash(old[:200]))):
                    w.delete(ws)
            row = w.get(LoginThrottle, keys[1])
            if row is not None:
                w.delete(row)
            w.add(WebSession(token_hash=token_hash(token), user_id=user.id,
                             csrf_token=new_token(), created_at=t, last_seen=t,
                             mfa_passed=not mfa_owed))
            ctx.auditor.record(w, f"user:{user.id}", "login" if not mfa_owed
                               else "login_password", f"user:{user.id}")
        target = "/patients"
        if mfa_owed:
            target = "/login/mfa" if user.totp_enabled else "/account/mfa"
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, secure=True, samesite="strict")
        resp.delete_cookie(PRE_CSRF)
        return resp

    def pending(who: Who | None) -> Who:
        """A user who gave their password (the second factor may still be owed)."""
        if who is None:
            raise HTTPException(status_code=303, headers={"Location": "/login"})
        return who

    @app.get("/login/mfa", response_class=HTMLResponse)
    def mfa_form(request: Request, who: MaybeWho) -> HTMLResponse:
        w = pending(who)
        if w.ws.mfa_passed:
            return RedirectResponse("/patients", status_code=303)  # type: ignore[return-value]
        return ctx.page(request, "mfa.html", w, title="Second factor", mode="verify",
                        error="")

    @app.post("/login/mfa")
    def mfa_submit(request: Request, who: MaybeWho, form: FormBody) -> Response:
        w = pending(who)
        check_csrf(form, w)
        code = form.get("code")
        return _mfa_check(request, w, code if isinstance(code, str) else "")

    def _mfa_check(request: Request, w: Who, code: str) -> Response:
        keys = [f"mfa:{w.user.id}"]
        with ctx.reader() as db:
            if blocked_for(db, keys) is not None:
                return ctx.page(request, "mfa.html", w, 429, title="Second factor",
                                mode="verify", error="Too many wrong codes; wait a few "
                                "minutes and try again.")
        code = code.strip()[:40]
        with ctx.write() as db:
            user = db.get(User, w.user.id)
            assert user is not None
            ok, used = False, "totp"
            if user.totp_enabled and _totp_ok(user.totp_secret, code):
                ok = True
            elif user.recovery_codes and len(code) >= 10:
                h = _recovery_hash(code)
                if h in user.recovery_codes:
                    user.recovery_codes = [x for x in user.recovery_codes if x != h]
                    ok, used = True, "recovery_code"
            if not ok:
                count_failure(db, keys)
                ctx.auditor.record(db, f"user:{user.id}", "mfa_failed", f"user:{user.id}")
            else:
                live = db.get(WebSession, w.ws.id)
                if live is not None:
                    live.mfa_passed = True
                ctx.auditor.record(db, f"user:{user.id}", "login", f"user:{user.id}",
                                   {"second_factor": used})
        if not ok:
            return ctx.page(request, "mfa.html", w, 401, title="Second factor",
                            mode="verify", error="That code is not valid.")
        return RedirectResponse("/patients", status_code=303)

    @app.get("/account/mfa", response_class=HTMLResponse)
    def mfa_account(request: Request, who: MaybeWho) -> HTMLResponse:
        w = pending(who)
        if not w.ws.mfa_passed and w.user.totp_enabled:
            return RedirectResponse("/login/mfa", status_code=303)  # type: ignore[return-value]
        return ctx.page(request, "mfa.html", w, title="Second factor (TOTP)", mode="account",
                        enabled=w.user.totp_enabled, error="", secret=None, uri=None,
                        codes=None)

    @app.post("/account/mfa/{action}")
    def mfa_change(request: Request, action: str, who: MaybeWho, form: FormBody) -> Response:
        w = pending(who)
        if not w.ws.mfa_passed and w.user.totp_enabled:
            raise HTTPException(status_code=303, headers={"Location": "/login/mfa"})
        check_csrf(form, w)
        if action not in ("setup", "confirm", "disable"):
            raise HTTPException(status_code=404, detail="no such page")
        code = form.get("code")
        return _mfa_change(request, w, action, code if isinstance(code, str) else "")

    def _mfa_change(request: Request, w: Who, action: str, code: str) -> Response:
        import pyotp
        status, error = 200, ""
        shown: dict[str, Any] = {"secret": None, "uri": None, "codes": None}
        with ctx.write() as db:
            user = db.get(User, w.user.id)
            clinic = db.get(Clinic, w.user.clinic_id)
            assert user is not None
            if action == "setup":
                if user.totp_enabled:
                    status, error = 400, "A second factor is already set up; disable it first."
                else:
                    user.totp_secret = pyotp.random_base32()
                    ctx.auditor.record(db, f"user:{user.id}", "mfa_setup", f"user:{user.id}")
                    shown["secret"] = user.totp_secret
                    shown["uri"] = pyotp.TOTP(user.totp_secret).provisioning_uri(
                        name=user.username, issuer_name="ketasim clinic")
            elif not _totp_ok(user.totp_secret, code):
                ctx.auditor.record(db, f"user:{user.id}", "mfa_failed", f"user:{user.id}")
                status = 400
                error = "That code is not valid; check the device clock and try again."
            elif action == "confirm":
                codes = [secrets.token_hex(5) for _ in range(10)]
                user.totp_enabled = True
                user.recovery_codes = [_recovery_hash(c) for c in codes]
                live = db.get(WebSession, w.ws.id)
                if live is not None:
                    live.mfa_passed = True
                ctx.auditor.record(db, f"user:{user.id}", "mfa_enabled", f"user:{user.id}",
                                   {"recovery_codes": len(codes)})
                shown["codes"] = codes
            elif clinic is not None and clinic.require_mfa and user.role in MFA_ROLES:
                status, error = 400, "Your clinic requires a second factor for your role."
            else:
                user.totp_enabled = False
                user.totp_secret = None
                user.recovery_codes = None
                ctx.auditor.record(db, f"user:{user.id}", "mfa_disabled", f"user:{user.id}")
            enabled = user.totp_enabled
        return ctx.page(request, "mfa.html", w, status, title="Second factor (TOTP)",
                        mode="account", enabled=enabled, error=error, **shown)

    @app.post("/logout")
    def logout(who: MaybeWho, csrf_token: str = Form("", max_length=100)) -> Response:
        w = pending(who)
        if not same(csrf_token, w.ws.csrf_token):
            raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
        with ctx.write() as db:
            live = db.get(WebSession, w.ws.id)
            if live is not None:
                db.delete(live)
            ctx.auditor.record(db, f"user:{w.user.id}", "logout", f"user:{w.user.id}")
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

    @app.get("/patients", response_class=HTMLResponse)
    def patients(request: Request, who: SignedIn, db: ReadDb,
                 q: str = Query("", max_length=100),
                 page_no: int = Query(1, alias="page", ge=1, le=100_000)) -> HTMLResponse:
        user = who.user
        query = q.strip().replace("%", "").replace("_", "")
        found = visible_patients(db, user, query, page_no)
        more = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
        ctx.audit(f"user:{user.id}", "read", "patients",
                  {"count": len(found), "page": page_no, "search": bool(query)})
        return ctx.page(request, "patients.html", who, title="Patients", patients=found,
                        q=query, page_no=page_no, more=more,
                        searchable=user.role in STAFF_READ)

    def patient_page(request: Request, who: Who, db: Session, p: Patient, *,
                     error: str = "", exc: Exception | None = None, form: str = "",
                     typed: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
        """The chart (audited as a read); after a refused form, with its error tied to the
        field and what was typed."""
        from ketasim.web.sessions import input_of
        user = who.user
        patient_id = p.id
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
        tz = zone(who.tz)
        chart = chart_context(db, p, tz=tz, now=ctx.clock()) if show_sessions else {}
        if show_sessions:  # this patient's forecast: from the cache, else computed later
            plans = chart["plans"]
            chart["individual"] = individual_view(
                ctx, request.app.state, db, p, plans[0] if plans else None, tz=tz,
                now=ctx.clock(), start=status == 200)
        due = questionnaires_due([(r.instrument, r.submitted_at) for r in responses], ctx.clock())
        ctx.audit(f"user:{user.id}", "read", f"patient:{patient_id}")
        return ctx.page(request, "patient.html", who, status, title=p.display_name, patient=p,
                        **chart, alert_labels=ALERT_LABELS, can_edit=user.role in STAFF_READ,
                        age=None if p.birth_year is None else
                        ctx.clock().astimezone(tz).year - p.birth_year,
                        responses=responses, alerts=alerts, can_ack=user.role in CLINICIANS,
                        show_sessions=show_sessions, sessions=sessions_,
                        can_start=user.role in SESSION_WRITE,
                        can_plan=user.role == "prescriber", due=due,
                        can_report=user.role in PRO_SUBMITTERS,
                        instruments=[get_instrument(i) for i in PORTAL_INSTRUMENTS],
                        clinician_instruments=[get_instrument(i) for i in
                                               CLINICIAN_INSTRUMENTS]
                        if user.role in CLINICIANS else [],
                        can_export=user.role in ("administrator", "prescriber", "nurse",
                                                 "patient"),
                        levels=levels_of(db, patient_id) if show_sessions else [],
                        can_enter_levels=user.role in LEVEL_WRITERS,
                        analyte_options=analyte_options(
                            predicted_analytes(db, patient_id)[1] if show_sessions else ()),
                        level_token=new_token(), analyte_labels=ANALYTE_LABELS,
                        error=error, error_input=input_of(exc) if exc is not None else None,
                        error_form=form, values=typed or {})

    app.state.patient_page = patient_page

    @app.get("/patients/{patient_id}", response_class=HTMLResponse)
    def patient(request: Request, patient_id: PatientId, who: SignedIn, db: ReadDb
                ) -> HTMLResponse:
        return patient_page(request, who, db, patient_in_reach(ctx, db, who.user, patient_id))

    @app.post("/patients/{patient_id}/details")
    def patient_details(request: Request, patient_id: PatientId, post: Posted, db: ReadDb
                        ) -> Response:
        """Staff correct a patient's year of birth (empty: unknown); audited with the old and
        new values."""
        user = post.user
        p = patient_in_reach(ctx, db, user, patient_id, STAFF_READ)
        try:
            year = parse_birth_year(post.get("birth_year"), ctx.clock())
        except KetasimError as exc:
            return patient_page(request, post.who, db, p, error=str(exc), exc=exc,
                                form="details", typed={"birth_year": post.get("birth_year")[:20]},
                                status=400)
        with ctx.write() as w:
            live = w.get(Patient, p.id)
            assert live is not None
            if live.birth_year != year:
                ctx.auditor.record(w, f"user:{user.id}", "write", f"patient:{p.id}",
                                   {"birth_year": [live.birth_year, year]})
                live.birth_year = year
        return RedirectResponse(f"/patients/{p.id}", status_code=303)

    @app.get("/patients/{patient_id}/questionnaires/{instrument}",
             response_class=HTMLResponse)
    def questionnaire_form(request: Request, patient_id: PatientId, instrument: str,
                           who: SignedIn, db: ReadDb) -> HTMLResponse:
        user = who.user
        p = patient_in_reach(ctx, db, user, patient_id, PRO_SUBMITTERS)
        inst = _portal_instrument(ctx, user, instrument[:40])
        return ctx.page(request, "questionnaire.html", who, title=inst.name, patient=p,
                        instrument=inst, error="", form_token=new_token(), **_wording(inst))

    @app.post("/patients/{patient_id}/questionnaires/{instrument}")
    def questionnaire_submit(request: Request, patient_id: PatientId, instrument: str,
                             post: Posted, db: ReadDb) -> Response:
        user = post.user
        p = patient_in_reach(ctx, db, user, patient_id, PRO_SUBMITTERS)
        inst = _portal_instrument(ctx, user, instrument[:40])
        token = post.get("form_token").strip()
        try:
            if len(token) > 64:
                raise ScaleError("form_token", "is not valid", "reload the form")
            items = [_item(post.form.get(f"item_{k}"), k) for k in range(1, inst.n_items + 1)]
            scored = score(inst.id, items)
        except ScaleError as exc:
            field = exc.field if isinstance(exc.field, str) else ""
            return ctx.page(request, "questionnaire.html", post.who, 400, title=inst.name,
                            patient=p, instrument=inst, error=str(exc),
                            form_token=token or new_token(), **_wording(inst),
                            error_input=field.replace(" ", "_") if field.startswith("item ")
                            else None,
                            values={k: v for k, v in post.form.items()
                                    if isinstance(v, str) and k.startswith("item_")
                                    and len(v) <= 2})
        from ketasim.storage.audit_store import clinical_digest
        t = ctx.clock()
        if token and db.scalar(select(QuestionnaireResponse.id).where(
                QuestionnaireResponse.form_token == token)) is not None:
            return RedirectResponse(f"/patients/{p.id}", status_code=303)  # already saved
        with ctx.write() as w:
            resp = QuestionnaireResponse(
                patient_id=p.id, instrument=inst.id, items=items, total=scored.total,
                band=scored.band, submitted_by=user.id, submitted_at=t,
                entered_as="patient" if user.role == "patient" else "clinician_for_patient",
                form_token=token or None)
            w.add(resp)
            w.flush()
            for flag in scored.flags:
                w.add(SafetyAlert(patient_id=p.id, kind=flag, response_id=resp.id,
                                  created_at=t))
            ctx.auditor.record(w, f"user:{user.id}", "write", f"patient:{p.id}",
                               {"questionnaire": inst.id, "alerts": len(scored.flags),
                                "entered_as": resp.entered_as,
                                "row": f"questionnaire:{resp.id}",
                                "digest": clinical_digest(resp)})
        return RedirectResponse(f"/patients/{p.id}", status_code=303)

    @app.post("/alerts/{alert_id}/acknowledge")
    def acknowledge(alert_id: AlertId, post: Posted, db: ReadDb) -> Response:
        user = post.user
        alert = db.get(SafetyAlert, alert_id)
        owner = db.get(Patient, alert.patient_id) if alert is not None else None
        if alert is None or owner is None or user.role not in CLINICIANS \
                or not sees(user, owner):
            deny(ctx, user, f"alert:{alert_id}", "alert")
        with ctx.write() as w:
            live = w.get(SafetyAlert, alert_id)
            if live is not None and live.acknowledged_by is None:
                live.acknowledged_by = user.id
                live.acknowledged_at = ctx.clock()
                ctx.auditor.record(w, f"user:{user.id}", "acknowledge", f"alert:{alert_id}",
                                   {"patient": alert.patient_id})
        return RedirectResponse(f"/patients/{alert.patient_id}", status_code=303)

    @app.get("/")
    def root() -> Response:
        return RedirectResponse("/patients", status_code=303)

    register(app, ctx)
    register_exports(app, ctx)
    register_consult(app, ctx)
    register_plans(app, ctx)
    register_individual(app, ctx)
    register_levels(app, ctx)
    register_admin(app, ctx)
    assert MAX_ID < 2**63
    return app


def app_from_environment() -> FastAPI:
    """The app of one server process of ``ketasim serve --workers N``: the database URL and
    the audit-key file come from ``KETASIM_DATABASE`` and ``KETASIM_AUDIT_KEY_FILE`` (the
    parent process has migrated the database already)."""
    import os
    from pathlib import Path
    key = Path(os.environ["KETASIM_AUDIT_KEY_FILE"]).read_bytes()
    return create_app(os.environ["KETASIM_DATABASE"], audit_key=key, migrate_first=False)


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


def seed_demo_activity(sessions: sessionmaker, auditor: Any | None = None) -> None:
    """Example activity for the demo clinic (run once, by ``ketasim serve --demo``): Demo
    Patient B's PHQ-9 over three weeks and a completed monitored session, and a consultation
    request waiting in the queue. Built through the same rules as real entries, each clinical
    row covered by the audit chain as the app does (pass the app's ``auditor``; without one
    the rows are not covered and ``ketasim audit verify`` reports them)."""
    from datetime import UTC, datetime

    from ketasim.clinic.screening import ScreeningAnswers, screen
    from ketasim.clinic.session import MonitoredSession, MonitoringRules
    from ketasim.storage.audit_store import clinical_digest
    from ketasim.storage.models import ConsultationRequest, MonitoredSessionRow, SessionEvent
    with sessions() as db:
        clinic = db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic"))
        if clinic is None or db.scalar(select(ConsultationRequest).where(
                ConsultationRequest.clinic_id == clinic.id).limit(1)) is not None:
            return
        b = db.scalar(select(Patient).where(Patient.display_name == "Demo Patient B"))
        nurse = db.scalar(select(User).where(User.username == "nurse"))
        assert b is not None and nurse is not None
        t_now = datetime.now(UTC).replace(microsecond=0)
        history = ((21, [2, 2, 3, 2, 2, 2, 2, 1, 0]), (14, [1, 1, 2, 2, 1, 1, 1, 1, 0]),
                   (7, [1, 1, 1, 1, 0, 1, 1, 0, 0]))
        for days_ago, items in history:
            sc = score("phq9", items)
            q = QuestionnaireResponse(patient_id=b.id, instrument="phq9", items=items,
                                      total=sc.total, band=sc.band, submitted_by=nurse.id,
                                      submitted_at=t_now - timedelta(days=days_ago),
                                      entered_as="clinician_for_patient")
            db.add(q)
            db.flush()
            if auditor is not None:
                auditor.record(db, f"user:{nurse.id}", "write", f"patient:{b.id}",
                               {"questionnaire": "phq9", "demo": True,
                                "row": f"questionnaire:{q.id}", "digest": clinical_digest(q)})
        t0 = t_now - timedelta(days=20)
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
            ev = SessionEvent(session_id=row.id, kind=kind, at=at, data=data,
                              recorded_by=nurse.id, recorded_at=at)
            db.add(ev)
            db.flush()
            if auditor is not None:
                auditor.record(db, f"user:{nurse.id}", "write", f"patient:{b.id}",
                               {"session": row.id, "step": kind, "demo": True,
                                "row": f"session_event:{ev.id}",
                                "digest": clinical_digest(ev)})
        row.discharged_at = t0 + timedelta(minutes=130)
        row.form_due_at = due
        answers = ScreeningAnswers(condition="depression", prior_treatments=["antidepressants_2"],
                                   cautions=[], phq9=[2, 2, 2, 2, 1, 2, 1, 1, 0],
                                   gad7=[1, 1, 2, 1, 1, 1, 1])
        summary = screen(answers)
        db.add(ConsultationRequest(clinic_id=clinic.id, created_at=t_now, name="Sam Example",
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


__all__ = ["ROLES", "Settings", "app_from_environment", "create_app", "reset_demo_passwords",
           "seed_demo", "seed_demo_activity"]
