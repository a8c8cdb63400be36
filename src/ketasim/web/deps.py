"""Typed request dependencies of the clinic app and its request/transaction model.

Every route is a plain ``def`` handler (run in the worker thread pool, never on the event
loop) that receives what it needs as ``Annotated`` dependencies from this module:

- :data:`ReadDb` — a *read* session. On SQLite it begins a deferred transaction (WAL: it
  never takes the write lock and never waits for a writer); on PostgreSQL an ordinary
  transaction that is rolled back at the end of the request.
- :meth:`AppContext.write` — a *short write* of its own (SQLite ``BEGIN IMMEDIATE``): the
  handler computes first with the read session, then writes its rows and their audit entry
  in one brief transaction. Reads are audited the same way (:meth:`AppContext.audit`).
- :data:`SignedIn` / :data:`MaybeWho` — the logged-in user and their browser session
  (idle timer refreshed by its own short write, so every route refreshes it).
- :data:`Posted` — a state change: the signed-in user and the form, its CSRF token checked,
  at most :data:`MAX_FIELDS` fields.
- :data:`PatientId` and friends — path ids bounded to ``1 … 2**31 - 1`` (a larger id is a
  404, never a database overflow).

The worker pool and the connection pool are sized together (:data:`WORKERS` threads, two
connections each: the read session and a short write), and load beyond what they can serve is
refused with ``503`` and ``Retry-After`` by :class:`LoadShedder` instead of queuing without
bound.

>>> MAX_ID
2147483647
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn

from fastapi import Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData
from starlette.types import ASGIApp, Receive, Scope, Send

from ketasim.storage.models import Clinic, Patient, User, WebSession
from ketasim.web.clock import zone, zone_name
from ketasim.web.security import same, token_hash

MAX_ID = 2**31 - 1  # ids are 32-bit in every table; anything larger cannot exist
WORKERS = 16  # worker threads for request handlers
MAX_IN_FLIGHT = 96  # requests admitted at once; more are refused with 503 + Retry-After
MAX_BODY = 256 * 1024  # request bodies (forms) larger than this are refused with 413
MAX_FIELDS = 200  # form fields per request
COOKIE = "ketasim_session"
SESSION_TOUCH = timedelta(seconds=30)  # last-seen refreshed at most this often
STAFF_READ = ("administrator", "prescriber", "nurse", "front_desk")
CLINICIANS = ("prescriber", "nurse")


@dataclass(frozen=True)
class Settings:
    """Timeouts and throttling (ASVS-style defaults; a clinic may tighten them)."""

    idle_timeout: timedelta = timedelta(minutes=15)
    absolute_timeout: timedelta = timedelta(hours=8)
    # log-in back-off per client address (and per address and user name): after
    # ``free_failures`` failures, each further failure doubles the wait, up to ``max_backoff``
    free_failures: int = 5
    max_backoff: timedelta = timedelta(minutes=15)
    # public screening form submissions per client address
    consult_rate: str = "10/hour"


def now() -> datetime:
    """The server clock (UTC)."""
    return datetime.now(UTC)


def utc(t: datetime) -> datetime:
    """A stored time as timezone-aware UTC (SQLite returns naive datetimes)."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass
class AppContext:
    """What every request may use: sessions for reading and writing, the auditor, the
    templates and the settings (one per app, on ``app.state.ctx``)."""

    reader: sessionmaker
    writer: sessionmaker
    auditor: Any
    templates: Jinja2Templates
    settings: Settings
    key: bytes
    limiter: Any = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    batcher: AuditBatcher = field(init=False)

    def __post_init__(self) -> None:
        self.batcher = AuditBatcher(self)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One short write transaction, committed on leaving the block (rolled back on an
        exception)."""
        with self.writer() as db:
            try:
                yield db
                db.commit()
            except BaseException:
                db.rollback()
                raise

    def audit(self, actor: str, action: str, subject: str,
              detail: Mapping[str, Any] | None = None) -> None:
        """Append one audit entry that stands alone (a read, a denial, an export) and return
        once it is committed. Concurrent requests' entries are committed together (group
        commit: one write transaction, one lock and one fsync for the batch)."""
        self.batcher.submit((actor, action, subject, dict(detail or {})))

    def page(self, request: Request, name: str, who: Who | None, status: int = 200,
             **ctx: Any) -> HTMLResponse:
        """Render a template with the user, the CSRF token of their session and their
        clinic's time zone (``tz``, used by the ``when``/``hm`` filters; UTC without a user
        unless the page passes its clinic's)."""
        tz = ctx.pop("tz", None) or zone(who.tz if who else None)
        return self.templates.TemplateResponse(
            request, name, {"user": who.user if who else None,
                            "csrf_token": who.ws.csrf_token if who else "",
                            "tz": tz, "tz_name": zone_name(tz), **ctx},
            status_code=status)


class AuditBatcher:
    """Group commit of stand-alone audit entries: each request queues its entry and waits;
    one writer thread appends everything queued so far in one short write transaction and
    wakes the requests (an error is raised in every request of the batch). A request never
    returns before its entry is committed."""

    TIMEOUT_S = 30.0

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.pending: list[tuple[tuple[str, str, str, dict[str, Any]], threading.Event,
                                 list[BaseException | None]]] = []
        self.thread = threading.Thread(target=self._run, name="ketasim-audit", daemon=True)
        self.thread.start()

    def submit(self, entry: tuple[str, str, str, dict[str, Any]]) -> None:
        """Queue one entry and wait until it is committed."""
        done = threading.Event()
        box: list[BaseException | None] = [None]
        with self.lock:
            self.pending.append((entry, done, box))
        self.wake.set()
        if not done.wait(self.TIMEOUT_S):
            from sqlalchemy.exc import TimeoutError as PoolTimeout
            raise PoolTimeout("the audit entry was not committed in time")
        if box[0] is not None:
            raise box[0]

    def _run(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            with self.lock:
                batch, self.pending = self.pending, []
            if not batch:
                continue
            error: BaseException | None = None
            try:
                with self.ctx.write() as w:
                    self.ctx.auditor.record_many(w, [entry for entry, _, _ in batch])
            except Exception as exc:  # handed to every waiting request
                error = exc
            for _, done, box in batch:
                box[0] = error
                done.set()


def get_ctx(request: Request) -> AppContext:
    """The app's context."""
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


async def read_db(c: Ctx) -> AsyncIterator[Session]:
    """A read session for the request (never holds the write lock). Creating it does no I/O:
    it takes a connection at its first query, in the handler's worker thread, so no request
    holds a connection while it waits for a worker (an async dependency: no thread hop)."""
    db = c.reader()
    try:
        yield db
    finally:
        db.close()


ReadDb = Annotated[Session, Depends(read_db)]


@dataclass(frozen=True)
class Who:
    """The signed-in user, their browser session and their clinic's time zone."""

    user: User
    ws: WebSession
    tz: str = "UTC"


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a reverse proxy, only what a
    trusted proxy reported: see ``ketasim serve --trusted-proxy``)."""
    return request.client.host if request.client else "unknown"


def current(request: Request, c: Ctx) -> Who | None:
    """The logged-in user, or None. Expired sessions are deleted; the idle timer is
    refreshed (at most every :data:`SESSION_TOUCH`) by a short write of its own. Reads with a
    short session of its own, released before the handler runs."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 200:
        return None
    with c.reader() as db:
        found = db.execute(select(WebSession, User, Clinic.timezone)
                           .join(User, User.id == WebSession.user_id)
                           .join(Clinic, Clinic.id == User.clinic_id)
                           .where(WebSession.token_hash == token_hash(token))).first()
        db.expunge_all()
    if found is None:
        return None
    ws, user, tz = found
    t = c.clock()
    expired = (t - utc(ws.last_seen) > c.settings.idle_timeout
               or t - utc(ws.created_at) > c.settings.absolute_timeout)
    if expired or not user.active:
        with c.write() as w:
            live = w.get(WebSession, ws.id)
            if live is not None:
                w.delete(live)
        return None
    if t - utc(ws.last_seen) > SESSION_TOUCH:
        with c.write() as w:
            live = w.get(WebSession, ws.id)
            if live is not None:
                live.last_seen = t
    return Who(user, ws, tz or "UTC")


MaybeWho = Annotated[Who | None, Depends(current)]


async def signed_in(who: MaybeWho) -> Who:
    """The signed-in user (who has passed the second factor when one is owed); otherwise a
    redirect to the log-in page."""
    if who is None:
        raise HTTPException(status_code=303, headers={"Location": "/login"})
    if not who.ws.mfa_passed:
        raise HTTPException(status_code=303, headers={"Location": "/login/mfa"})
    return who


SignedIn = Annotated[Who, Depends(signed_in)]


@dataclass(frozen=True)
class Post:
    """A state change: who made it and their form (CSRF token checked)."""

    who: Who
    form: FormData

    @property
    def user(self) -> User:
        """The signed-in user."""
        return self.who.user

    def get(self, name: str) -> str:
        """A single text field ('' when absent; a file upload is not a text field)."""
        v = self.form.get(name)
        return v if isinstance(v, str) else ""


async def read_form(request: Request) -> FormData:
    """The request's form, with bounded field count and no files."""
    return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_BODY)


def check_csrf(form: FormData, who: Who) -> None:
    """403 unless the form's CSRF token is the one of the user's session."""
    given = form.get("csrf_token")
    if not same(given if isinstance(given, str) else "", who.ws.csrf_token):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")


async def posted(request: Request, who: SignedIn) -> Post:
    """The form of a state change whose CSRF token matches the user's session."""
    form = await read_form(request)
    check_csrf(form, who)
    return Post(who, form)


Posted = Annotated[Post, Depends(posted)]
Form = Annotated[FormData, Depends(read_form)]

PatientId = Annotated[int, Path(ge=1, le=MAX_ID)]
SessionId = Annotated[int, Path(ge=1, le=MAX_ID)]
AlertId = Annotated[int, Path(ge=1, le=MAX_ID)]
RequestId = Annotated[int, Path(ge=1, le=MAX_ID)]


def sees(user: User, p: Patient) -> bool:
    """Whether ``user`` may see patient ``p`` (staff: their clinic; a patient: themself)."""
    if user.role in STAFF_READ:
        return p.clinic_id == user.clinic_id
    return user.role == "patient" and user.patient_id == p.id


def deny(c: AppContext, user: User, subject: str, what: str = "page") -> NoReturn:
    """Audit a denial and answer 404 (the page does not exist for this user)."""
    c.audit(f"user:{user.id}", "denied", subject)
    raise HTTPException(status_code=404, detail=f"no such {what}")


def require_role(c: AppContext, user: User, roles: tuple[str, ...], subject: str) -> None:
    """Deny (audited 404) unless ``user`` has one of ``roles``."""
    if user.role not in roles:
        deny(c, user, subject)


def patient_in_reach(c: AppContext, db: Session, user: User, patient_id: int,
                     roles: tuple[str, ...] | None = None) -> Patient:
    """The patient, if this user may see them (and, given ``roles``, has one of them);
    otherwise an audited 404."""
    p = db.get(Patient, patient_id)
    if p is None or not sees(user, p) or (roles is not None and user.role not in roles):
        deny(c, user, f"patient:{patient_id}", "patient")
    return p


class LoadShedder:
    """ASGI middleware: admits at most ``limit`` requests at once and refuses the rest with
    503 and ``Retry-After`` (a clear 'busy' instead of a queue that ends in timeouts); refuses
    request bodies over ``max_body`` bytes with 413 (by Content-Length, and while streaming
    when the length is not declared: the body is read here, at most ``max_body`` bytes)."""

    def __init__(self, app: ASGIApp, *, limit: int = MAX_IN_FLIGHT,
                 max_body: int = MAX_BODY, on_busy: Callable[[], None] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.max_body = max_body
        self.in_flight = 0
        self.on_busy = on_busy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_body
            except ValueError:
                too_big = True
            if too_big:
                await _plain(send, 413, "Request too large (forms are limited to "
                             f"{self.max_body // 1024} KB).")
                return
        if self.in_flight >= self.limit:
            if self.on_busy is not None:
                self.on_busy()
            await _plain(send, 503, "The clinic server is busy; please retry in a moment.",
                         [(b"retry-after", b"2")])
            return
        self.in_flight += 1
        try:
            body = bytearray()
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > self.max_body:
                    await _plain(send, 413, "Request too large (forms are limited to "
                                 f"{self.max_body // 1024} KB).")
                    return
            sent = False

            async def replay() -> Any:
                nonlocal sent
                if sent:
                    return await receive()  # after the body: wait for a disconnect
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}

            await self.app(scope, replay, send)
        finally:
            self.in_flight -= 1


async def _plain(send: Send, status: int, text: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store"),
                            (b"x-content-type-options", b"nosniff"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


__all__ = [
    "CLINICIANS", "COOKIE", "MAX_BODY", "MAX_FIELDS", "MAX_ID", "MAX_IN_FLIGHT",
    "STAFF_READ", "WORKERS", "AlertId", "AppContext", "AuditBatcher", "Ctx", "Form", "LoadShedder",
    "MaybeWho", "PatientId", "Post", "Posted", "ReadDb", "RequestId", "SessionId",
    "Settings", "SignedIn", "Who", "check_csrf", "client_address", "current", "deny", "get_ctx",
    "now", "patient_in_reach", "posted", "read_db", "require_role", "sees", "signed_in",
    "utc",
]
