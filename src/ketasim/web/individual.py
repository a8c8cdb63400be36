"""This patient's individual forecast on the chart and on the plan page (issue #14 item 5).

The chart (``/patients/{id}``) and the plan page (``/patients/{id}/plan``) show the forecast
of :mod:`ketasim.clinic.individual` — this patient's 90 % band of ratings beside the
population's, the measured ratings, P(response) at the end of the plan, P(relapse by 28 days)
and the median time to relapse — and the suggested next session with the alternatives. On
the plan page a prescriber accepts the suggestion (date and dose) into the plan.

**No page waits for a forecast.** A page reads the records (one query each for ratings,
session steps, drug levels and the accepted next session, only when there is a plan), computes
the data version (a hash, :func:`ketasim.clinic.individual.patient_inputs`) and looks the
version up in ``individual_forecasts``. When the row is there the page shows it; when it is
not, the page adds a ``pending`` row in one short write, hands the job to the background
worker (:class:`Runner`) and shows the population band with a note that the individual
forecast is being computed. The worker computes the forecast (about 0.3-1.5 s) and then the
suggestion (2-5 s), each stored as soon as it is ready, in a separate process by default (so
the request threads keep the interpreter: ``KETASIM_FORECAST_WORKER=thread`` computes in a
thread instead). A saved rating, dose, reading, drug level, plan or accepted session changes
the version, so the next view computes again; a cached forecast is never shown for data it did
not see. At most :data:`MAX_JOBS` jobs wait; beyond that the page says the server is busy and
the next view asks again. A ``pending`` row whose worker went away (a restarted server), or an
``error`` one (an unexpected failure, not the data's), is taken up again after
:data:`PENDING_TIMEOUT`; a ``failed`` one (the data's or the model's reason, shown on the
page) stays until the data change. Each patient keeps at most :data:`KEEP` rows.

**Accepting** (prescribers only; a nurse or administrator is refused with 403, audited): the
form carries the data version it was shown with, and the server refuses it (409, nothing
stored) when the version has changed since — checked again inside the write transaction —
or when the suggestion is not computed; the dose is checked against the clinic's latest dose
limits (:func:`ketasim.clinic.dose_check.check_dose`, as a session's dose is: a hard stop is
refused, a soft finding needs a reason), the date must lie from today to
:data:`MAX_DAYS_AHEAD` days ahead, and the accepted session is stored with its audit entry in
one short write.

>>> Runner().busy()
0
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from ketasim.clinic import individual
from ketasim.clinic.dose_check import (
    DoseCheckError,
    DoseOrder,
    Override,
    PatientDoseContext,
    authorize,
    check_dose,
)
from ketasim.clinic.individual import (
    DoseRecord,
    ForecastInputs,
    IndividualUnavailable,
    LevelRecord,
    NextSessionRecord,
    PlanRecord,
    Policy,
    RatingRecord,
    ReadingRecord,
    dose_text,
    summary,
)
from ketasim.errors import KetasimError
from ketasim.estimation.forecast import DISCLAIMER
from ketasim.scales import get_instrument
from ketasim.storage.models import (
    Clinic,
    DrugLevel,
    IndividualForecast,
    MonitoredSessionRow,
    Patient,
    PlannedSession,
    QuestionnaireResponse,
    SessionEvent,
    TreatmentPlan,
    User,
)
from ketasim.web.charts import individual_rows, individual_svg
from ketasim.web.clock import zone
from ketasim.web.deps import (
    AppContext,
    PatientId,
    Posted,
    ReadDb,
    SignedIn,
    Who,
    patient_in_reach,
    utc,
)
from ketasim.web.forecast_worker import WorkerProcess

log = logging.getLogger("ketasim.web")

PLAN_READERS = ("administrator", "prescriber", "nurse")  # who sees plans and forecasts
ACCEPTORS = ("prescriber",)
MAX_JOBS = 32  # jobs waiting or running in this server process
PENDING_TIMEOUT = timedelta(minutes=10)  # a pending row older than this is taken up again
JOB_TIMEOUT_S = 300.0  # one part of one job, in the worker process
KEEP = 4  # rows kept per patient (the newest)
MAX_DAYS_AHEAD = 120  # an accepted next session lies at most this far ahead
SESSION_HOUR = time(9, 0)  # an accepted day is stored as 09:00 in the clinic's zone
MODE_ENV = "KETASIM_FORECAST_WORKER"


@dataclass(frozen=True)
class Job:
    """One forecast to compute and store: the app's context, the row to fill, the inputs."""

    ctx: AppContext
    row_id: int
    patient_id: int
    inputs: ForecastInputs
    mode: str

    @property
    def key(self) -> tuple[int, int, str]:
        """What makes two jobs the same (app, patient, data version)."""
        return (id(self.ctx), self.patient_id, self.inputs.version)


class Runner:
    """The background worker of this server process: one thread takes jobs in order and
    runs each part in the worker process (``mode`` "process":
    :class:`~ketasim.web.forecast_worker.WorkerProcess`, started on first use) or in the
    thread itself (``mode`` "thread"), then stores each result in a short write."""

    def __init__(self, max_jobs: int = MAX_JOBS) -> None:
        self.max_jobs = max_jobs
        self.cond = threading.Condition()
        self.queue: deque[Job] = deque()
        self.keys: set[tuple[int, int, str]] = set()
        self.thread: threading.Thread | None = None
        self.worker = WorkerProcess()

    def busy(self) -> int:
        """Jobs waiting or running."""
        with self.cond:
            return len(self.keys)

    def has(self, ctx: AppContext, patient_id: int, version: str) -> bool:
        """Whether this job is waiting or running here."""
        with self.cond:
            return (id(ctx), patient_id, version) in self.keys

    def full(self) -> bool:
        """Whether no more jobs are taken now."""
        return self.busy() >= self.max_jobs

    def submit(self, job: Job) -> bool:
        """Queue ``job`` (False when full; True when it, or the same job, is queued)."""
        with self.cond:
            if job.key in self.keys:
                return True
            if len(self.keys) >= self.max_jobs:
                return False
            self.keys.add(job.key)
            self.queue.append(job)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="ketasim-forecast",
                                               daemon=True)
                self.thread.start()
            self.cond.notify_all()
        return True

    def wait(self, timeout: float = 60.0) -> bool:
        """Wait until no job is waiting or running (tests, scripts); False on timeout."""
        with self.cond:
            return self.cond.wait_for(lambda: not self.keys, timeout)

    def _run(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: bool(self.queue))
                job = self.queue.popleft()
            try:
                self._do(job)
            except Exception:  # never let the worker die
                log.exception("individual forecast of patient %s failed", job.patient_id)
            finally:
                with self.cond:
                    self.keys.discard(job.key)
                    self.cond.notify_all()

    def _call(self, job: Job, part: str) -> dict[str, Any]:
        if job.mode != "process" or os.name == "nt":  # select() on pipes: POSIX only
            return individual.compute(job.inputs, part)
        return self.worker.call(job.inputs, part, JOB_TIMEOUT_S)

    def _do(self, job: Job) -> None:
        got = self._call(job, "forecast")
        if "error" in got:  # the data's or the model's: for good; otherwise tried again later
            _store(job, status="failed" if got.get("expected") else "error",
                   error=_message(job, got))
            return
        _store(job, forecast=got["result"])
        rec = self._call(job, "recommendation")
        if "error" in rec:
            _store(job, status="done" if rec.get("expected") else "error",
                   recommendation={"error": _message(job, rec)})
        else:
            _store(job, status="done", recommendation=rec["result"])


def _message(job: Job, got: dict[str, Any]) -> str:
    if got.get("expected"):
        return str(got["error"])
    log.error("individual forecast of patient %s (version %s): %s\n%s", job.patient_id,
              job.inputs.version[:12], got.get("error"), got.get("trace", ""))
    return ("the computation failed (an error in ketasim, logged for the maintainers); "
            "the population forecast stands")


def _store(job: Job, **values: Any) -> None:
    """Fill in the job's row (unless it was replaced meanwhile) in one short write."""
    try:
        with job.ctx.write() as w:
            row = w.get(IndividualForecast, job.row_id)
            if row is None or row.patient_id != job.patient_id \
                    or row.version != job.inputs.version:
                return
            for k, v in values.items():
                setattr(row, k, v)
            row.computed_at = job.ctx.clock()
    except SQLAlchemyError:  # the row stays pending and is taken up again later
        log.exception("storing the individual forecast of patient %s", job.patient_id)


RUNNER = Runner()
atexit.register(RUNNER.worker.stop)


def settings(app_state: Any) -> tuple[Policy, str]:
    """The app's forecast policy and worker mode (``app.state.individual_policy`` and
    ``app.state.individual_mode``; tests set smaller ones)."""
    policy = getattr(app_state, "individual_policy", None) or Policy()
    mode = getattr(app_state, "individual_mode", None) or os.environ.get(MODE_ENV, "process")
    return policy, mode


# ---- reading the records ---------------------------------------------------------------------

def _num(data: Any, key: str) -> float | None:
    v = data.get(key) if isinstance(data, dict) else None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def current_plan(db: Session, patient_id: int) -> TreatmentPlan | None:
    """The patient's latest plan."""
    return db.scalar(select(TreatmentPlan).where(TreatmentPlan.patient_id == patient_id)
                     .order_by(TreatmentPlan.id.desc()).limit(1))


def accepted_session(db: Session, patient_id: int) -> PlannedSession | None:
    """The next session most recently accepted into a plan of this patient."""
    return db.scalar(select(PlannedSession).where(PlannedSession.patient_id == patient_id)
                     .order_by(PlannedSession.id.desc()).limit(1))


def inputs_of(db: Session, patient: Patient, plan: TreatmentPlan | None, *, tz: tzinfo,
              now: datetime, policy: Policy) -> ForecastInputs:
    """The forecast's inputs from the patient's stored records (or
    :class:`~ketasim.clinic.individual.IndividualUnavailable`)."""
    if plan is None:
        return individual.patient_inputs(plan=None, doses=(), ratings=())
    pid = patient.id
    ratings = [RatingRecord(i, inst, float(total), utc(at)) for i, inst, total, at in db.execute(
        select(QuestionnaireResponse.id, QuestionnaireResponse.instrument,
               QuestionnaireResponse.total, QuestionnaireResponse.submitted_at)
        .where(QuestionnaireResponse.patient_id == pid))]
    doses: list[DoseRecord] = []
    readings: list[ReadingRecord] = []
    for ev in db.execute(
            select(SessionEvent.id, SessionEvent.session_id, SessionEvent.kind, SessionEvent.at,
                   SessionEvent.data, MonitoredSessionRow.compound)
            .join(MonitoredSessionRow, SessionEvent.session_id == MonitoredSessionRow.id)
            .where(MonitoredSessionRow.patient_id == pid,
                   SessionEvent.kind.in_(("predose", "dose", "vitals")))):
        data = ev.data if isinstance(ev.data, dict) else {}
        if ev.kind == "dose":
            mg, route = _num(data, "dose_mg"), data.get("route")
            if mg is None or mg <= 0 or not isinstance(route, str):
                raise IndividualUnavailable("dose", f"the dose record of session "
                                            f"{ev.session_id} cannot be read",
                                            "check the session's dose")
            doses.append(DoseRecord(ev.id, ev.session_id, utc(ev.at), ev.compound, route, mg,
                                    _num(data, "duration_min"), _num(data, "weight_kg")))
        else:
            readings.append(ReadingRecord(ev.id, ev.session_id, utc(ev.at), ev.kind,
                                          _num(data, "sbp"), _num(data, "dbp"),
                                          _num(data, "cadss")))
    levels = [LevelRecord(i, utc(at), analyte, float(v)) for i, at, analyte, v in db.execute(
        select(DrugLevel.id, DrugLevel.drawn_at, DrugLevel.analyte, DrugLevel.value_ng_ml)
        .where(DrugLevel.patient_id == pid).order_by(DrugLevel.drawn_at, DrugLevel.id))]
    acc = accepted_session(db, pid)
    accepted = None if acc is None else NextSessionRecord(
        acc.id, acc.plan_id, utc(acc.due_at), acc.compound, acc.route, acc.dose_mg,
        acc.duration_min, acc.interval_days, acc.sessions, utc(acc.accepted_at))
    return individual.patient_inputs(
        plan=PlanRecord(plan.id, plan.regimen, plan.indication, plan.weight_kg,
                        utc(plan.created_at)),
        doses=doses, ratings=ratings, readings=readings, levels=levels, accepted=accepted,
        birth_year=patient.birth_year, today=now, tz=tz, policy=policy)


def accepted_view(db: Session, plan: TreatmentPlan) -> dict[str, Any] | None:
    """The next session accepted into ``plan`` (the latest), as the pages show it."""
    acc = db.scalar(select(PlannedSession).where(PlannedSession.plan_id == plan.id)
                    .order_by(PlannedSession.id.desc()).limit(1))
    if acc is None:
        return None
    return {"row": acc, "dose": dose_text(acc.dose_mg, acc.route, acc.duration_min,
                                          acc.compound),
            "by": db.scalar(select(User.username).where(User.id == acc.accepted_by))}


# ---- the view ----------------------------------------------------------------------------------

def retry_due(row: IndividualForecast, now: datetime) -> bool:
    """Whether a row is to be computed (again): pending for :data:`PENDING_TIMEOUT` (its
    worker went away), or failed unexpectedly that long ago (not the data's or the model's
    fault: a worker process that died, a timeout)."""
    if row.status == "pending":
        return now - utc(row.requested_at) >= PENDING_TIMEOUT
    if row.status == "error":
        return now - utc(row.computed_at or row.requested_at) >= PENDING_TIMEOUT
    return False


def _enqueue(ctx: AppContext, patient_id: int, inputs: ForecastInputs,
             row: IndividualForecast | None, mode: str, now: datetime) -> bool:
    """Add (or take up again) the pending row and queue the job; False when the worker is
    full (nothing written)."""
    if RUNNER.has(ctx, patient_id, inputs.version):
        return True
    if RUNNER.full():
        return False
    try:
        with ctx.write() as w:
            live = w.scalar(select(IndividualForecast).where(
                IndividualForecast.patient_id == patient_id,
                IndividualForecast.version == inputs.version))
            if live is None:
                live = IndividualForecast(patient_id=patient_id, version=inputs.version,
                                          status="pending", requested_at=now)
                w.add(live)
                w.flush()
                old = w.scalars(select(IndividualForecast.id).where(
                    IndividualForecast.patient_id == patient_id)
                    .order_by(IndividualForecast.id.desc()).offset(KEEP)).all()
                if old:
                    w.execute(delete(IndividualForecast).where(
                        IndividualForecast.id.in_(list(old))))
            elif not retry_due(live, now):
                return True  # done meanwhile, or another server process is on it
            else:  # its worker went away, or it failed unexpectedly: once more
                live.status, live.error, live.requested_at = "pending", None, now
            row_id = live.id
    except (IntegrityError, OperationalError):  # another request added it at the same time,
        return True                             # or the write lock was busy: the next view
    return RUNNER.submit(Job(ctx, row_id, patient_id, inputs, mode))


def individual_view(ctx: AppContext, app_state: Any, db: Session, patient: Patient,
                    plan: TreatmentPlan | None, *, tz: tzinfo, now: datetime,
                    start: bool = True) -> dict[str, Any]:
    """What the chart and the plan page show of the individual forecast (``status``: none,
    unavailable, computing, busy, failed or done). With ``start`` (a page answered 200), a
    forecast not in the cache is handed to the background worker; a page answering an error
    only looks."""
    policy, mode = settings(app_state)
    if plan is None:
        return {"status": "none", "reason": "there is no treatment plan yet"}
    accepted = accepted_view(db, plan)
    try:
        inputs = inputs_of(db, patient, plan, tz=tz, now=now, policy=policy)
    except IndividualUnavailable as exc:
        return {"status": "unavailable", "reason": str(exc), "accepted": accepted}
    row = db.scalar(select(IndividualForecast).where(
        IndividualForecast.patient_id == patient.id,
        IndividualForecast.version == inputs.version))
    first = inputs.first_dose_at
    view: dict[str, Any] = {
        "version": inputs.version, "plan_text": inputs.plan_text, "first_dose_at": first,
        "left_out": list(inputs.left_out), "n_ratings": len(inputs.data.ratings),
        "n_doses": inputs.data.regimen.n_administrations, "disclaimer": DISCLAIMER,
        "weight_kg": inputs.data.weight_kg, "age": inputs.data.age, "accepted": accepted}
    queued = row is not None and RUNNER.has(ctx, patient.id, inputs.version)
    if start and not queued and (row is None or retry_due(row, now)):
        queued = _enqueue(ctx, patient.id, inputs, row, mode, now)
        if row is None or row.forecast is None:
            return {**view, "status": "computing" if queued else "busy"}
    if row is None:
        return {**view, "status": "busy"}  # an error page, or the worker full: next view
    if row.forecast is None:
        if row.status in ("failed", "error"):
            return {**view, "status": "failed", "reason": row.error or "not computed"}
        return {**view, "status": "computing"}
    f = row.forecast
    inst = get_instrument(f["instrument"])
    today_day = (now - first).total_seconds() / 86400.0
    rec = _recommendation(row, inputs, first, tz, now)
    view.update({
        "status": "done", "forecast": f, "instrument": inst, "computed_at": row.computed_at,
        "label": "PHQ-9" if inst.id == "phq9" else inst.id.upper().replace("_", "-"),
        "stats": summary(f), "next_rating": f.get("next_rating") or {},
        "notes": f.get("notes") or [], "map": f.get("map") or {},
        "svg": individual_svg(f, remission_max=inst.remission_max,
                              top=float(inst.total_range[1]), label=inst.name, start=first,
                              tz=tz, today=today_day,
                              next_session=rec.get("day") if rec["status"] == "ok" else None),
        "rows": individual_rows(f, start=first), "recommendation": rec})
    return view


def _recommendation(row: IndividualForecast, inputs: ForecastInputs, first: datetime,
                    tz: tzinfo, now: datetime) -> dict[str, Any]:
    """The suggestion as the pages show it: the next session's date and dose, the spacing,
    its P(relapse), the reason and every alternative."""
    r = row.recommendation
    if r is None:
        return {"status": "computing"}
    if "error" in r:
        return {"status": "error", "reason": r["error"]}
    last = inputs.last_dose
    route, duration, compound = last.route, last.duration_min, last.compound

    def alt(c: dict[str, Any]) -> dict[str, Any]:
        day = float(c["first_session_day"])
        return {"interval_days": c["interval_days"], "dose_mg": c["dose_mg"],
                "dose": dose_text(c["dose_mg"], route, duration, compound),
                "sessions": c["sessions"], "day": day, "date": first + timedelta(days=day),
                "p_relapse": round(100.0 * float(c["p_relapse"])),
                "p_response_end": round(100.0 * float(c["p_response_end"])),
                "median_end": c.get("median_score_end"), "meets": c["meets_target"]}

    alternatives = [alt(c) for c in r.get("candidates", [])]
    options: dict[str, str] = {}
    for a in sorted(alternatives, key=lambda a: a["interval_days"]):
        options.setdefault(f"{a['interval_days']:g}", f"{a['interval_days']:g} days")
    out: dict[str, Any] = {"status": "ok" if r.get("recommended") else "none",
                           "reason": r.get("reason", ""), "alternatives": alternatives,
                           "options": list(options.items()),
                           "target": round(100.0 * float(r.get("target_relapse", 0.2))),
                           "horizon_days": r.get("horizon_days"),
                           "p_responding_now": round(100.0 * float(r.get("p_responding_now", 0))),
                           "route": route, "duration_min": duration, "compound": compound}
    if r.get("recommended"):
        chosen = alt(r["recommended"])
        today = now.astimezone(tz).date()
        suggested = chosen["date"].astimezone(tz).date()
        out.update({**chosen, "passed": suggested < today,
                    "form_date": max(suggested, today).isoformat(), "today": today.isoformat(),
                    "form_dose": f"{chosen['dose_mg']:g}",
                    "form_interval": f"{chosen['interval_days']:g}"})
    return out


# ---- the plan page and accepting --------------------------------------------------------------

class StaleForecast(KetasimError):
    """The forecast a form was filled in from is no longer the current one."""


def register(app: FastAPI, ctx: AppContext) -> None:
    """Add the plan page and the accept route."""
    app.state.individual_policy = getattr(app.state, "individual_policy", None) or Policy()
    app.state.individual_mode = os.environ.get(MODE_ENV, "process")

    def plan_page(request: Request, who: Who, db: Session, p: Patient, *, error: str = "",
                  exc: Exception | None = None, typed: dict[str, str] | None = None,
                  status: int = 200) -> HTMLResponse:
        from ketasim.clinic.protocols import PROTOCOLS
        from ketasim.web.plans import plan_indications
        from ketasim.web.sessions import input_of
        tz = zone(who.tz)
        now = ctx.clock()
        plan = current_plan(db, p.id)
        view = individual_view(ctx, request.app.state, db, p, plan, tz=tz, now=now,
                               start=status == 200)
        ctx.audit(f"user:{who.user.id}", "read", f"patient:{p.id}", {"page": "plan"})
        return ctx.page(request, "plan.html", who, status, title=f"Plan: {p.display_name}",
                        patient=p, plan=plan, protocols=PROTOCOLS,
                        plan_indications=plan_indications(), individual=view,
                        can_accept=who.user.role in ACCEPTORS,
                        error=error, error_input=input_of(exc) if exc is not None else None,
                        error_form="accept", values=typed or {})

    @app.get("/patients/{patient_id}/plan", response_class=HTMLResponse)
    def plan_view_page(request: Request, patient_id: PatientId, who: SignedIn, db: ReadDb
                       ) -> HTMLResponse:
        p = patient_in_reach(ctx, db, who.user, patient_id, PLAN_READERS)
        return plan_page(request, who, db, p)

    @app.post("/patients/{patient_id}/plan/next-session")
    def accept_next_session(request: Request, patient_id: PatientId, post: Posted,
                            db: ReadDb) -> Response:
        """Accept the suggested next session (date, dose, spacing) into the current plan:
        prescribers only (403 for the others who see plans, 404 for the rest; audited), on
        the forecast the page showed (409 when the data changed since), the dose checked
        against the clinic's limits; audited."""
        from ketasim.web.sessions import FormError, clinic_limits, parse_number, text_field
        user = post.user
        p = patient_in_reach(ctx, db, user, patient_id, PLAN_READERS)  # others: a 404
        if user.role not in ACCEPTORS:
            ctx.audit(f"user:{user.id}", "denied", f"patient:{p.id}",
                      {"action": "accept next session"})
            raise HTTPException(status_code=403,
                                detail="Only a prescriber can accept a session into the plan.")
        typed = {k: post.get(k)[:40] for k in ("next_date", "dose_mg", "interval_days",
                                               "override_reason")}
        policy, _ = settings(request.app.state)
        clinic = db.get(Clinic, p.clinic_id)
        tz = zone(clinic.timezone if clinic else None)
        now = ctx.clock()
        try:
            plan = current_plan(db, p.id)
            shown = post.get("data_version").strip()
            try:
                inputs = inputs_of(db, p, plan, tz=tz, now=now, policy=policy)
            except IndividualUnavailable as exc:
                raise StaleForecast("forecast", f"there is no individual forecast ({exc})",
                                    "nothing was saved") from None
            if len(shown) > 64 or shown != inputs.version:
                raise StaleForecast(
                    "forecast", "the patient's data changed since the page was shown (a new "
                    "rating, dose, reading, level, plan or accepted session)",
                    "nothing was saved: review the updated forecast and accept again")
            row = db.scalar(select(IndividualForecast).where(
                IndividualForecast.patient_id == p.id,
                IndividualForecast.version == inputs.version))
            rec = row.recommendation if row is not None else None
            if rec is None or "error" in rec or not rec.get("candidates"):
                raise StaleForecast("suggestion", "is not computed for the current data",
                                    "nothing was saved: reload the page when it is ready")
            assert plan is not None
            choices = {f"{float(c['interval_days']):g}": c for c in rec["candidates"]}
            picked = choices.get(post.get("interval_days").strip())
            if picked is None:
                raise FormError("spacing", "is not one of the forecast's alternatives",
                                "choose a spacing from the list", input_name="interval_days")
            dose_mg = parse_number(post.get("dose_mg"), "dose (mg)", 0.1, 5000,
                                   name="dose_mg")
            raw = post.get("next_date").strip()
            try:
                day = date.fromisoformat(raw) if len(raw) == 10 else None
            except ValueError:
                day = None
            today = now.astimezone(tz).date()
            if day is None:
                raise FormError("date", "is missing or not a date",
                                "give the day of the next session (YYYY-MM-DD)",
                                input_name="next_date")
            if not today <= day <= today + timedelta(days=MAX_DAYS_AHEAD):
                raise FormError("date", f"{day.isoformat()} is not from today to "
                                f"{MAX_DAYS_AHEAD} days ahead",
                                "give a day from today on", input_name="next_date")
            due = datetime.combine(day, SESSION_HOUR, tzinfo=tz).astimezone(UTC)
            last = inputs.last_dose
            check = _check_dose(db, p, clinic_limits(db, p.clinic_id), inputs, dose_mg, due)
            if check.verdict == "hard":
                raise FormError("dose", "hard stop: " + "; ".join(
                    x.message for x in check.findings if x.severity == "hard"),
                    "change the dose: a plan cannot hold a dose beyond the clinic's hard "
                    "limits", input_name="dose_mg")
            reason = text_field(post, "override_reason", "override reason")
            try:
                record = authorize(check, Override(reason=reason, clinician=user.username,
                                                   at=now) if reason else None)
            except DoseCheckError as exc:
                raise FormError("override reason", exc.problem, exc.fix,
                                input_name="override_reason") from None
            suggested = rec.get("recommended") or {}
            f = row.forecast if row is not None else None
            detail = {"suggested": {"day": suggested.get("first_session_day"),
                                    "dose_mg": suggested.get("dose_mg"),
                                    "interval_days": suggested.get("interval_days")},
                      "chosen": {"interval_days": picked["interval_days"],
                                 "p_relapse": picked["p_relapse"]},
                      "forecast": None if f is None else {
                          k: f.get(k) for k in ("instrument", "p_response",
                                                "p_relapse_by", "median_days_to_relapse")},
                      "dose_check": record}
            with ctx.write() as w:
                # the version again, inside the write: nothing saved meanwhile may be missed
                live = inputs_of(w, p, current_plan(w, p.id), tz=tz, now=now, policy=policy)
                if live.version != inputs.version:
                    raise StaleForecast("forecast", "the patient's data changed while the form "
                                        "was being saved", "nothing was saved: review the "
                                        "updated forecast and accept again")
                ps = PlannedSession(
                    patient_id=p.id, plan_id=plan.id, due_at=due, compound=last.compound,
                    route=last.route, dose_mg=dose_mg, duration_min=last.duration_min,
                    interval_days=float(picked["interval_days"]),
                    sessions=int(picked["sessions"]), data_version=inputs.version,
                    detail=detail, accepted_by=user.id, accepted_at=now)
                w.add(ps)
                w.flush()
                ctx.auditor.record(w, f"user:{user.id}", "write", f"patient:{p.id}", {
                    "plan": plan.id, "planned_session": ps.id, "step": "accept next session",
                    "due": day.isoformat(), "dose_mg": dose_mg,
                    "interval_days": ps.interval_days, "sessions": ps.sessions,
                    "data_version": inputs.version, "dose_check": record})
        except StaleForecast as exc:
            return plan_page(request, post.who, db, p, error=str(exc), typed=typed,
                             status=409)
        except KetasimError as exc:
            return plan_page(request, post.who, db, p, error=str(exc), exc=exc, typed=typed,
                             status=400)
        return RedirectResponse(f"/patients/{p.id}/plan", status_code=303)


def _check_dose(db: Session, p: Patient, limits: Any, inputs: ForecastInputs, dose_mg: float,
                due: datetime) -> Any:
    """The planned dose against the clinic's limits, as a session's dose is checked (the
    route and infusion of the last dose, the patient's earlier doses for the 24-hour total,
    ten-fold the last dose a hard stop). The weight is the latest recorded; it is weighed and
    checked again when the dose is given."""
    last = inputs.last_dose
    earlier = tuple((utc(d.at), d.dose_mg) for d in _doses(db, p.id))
    sessions = tuple(utc(t) for t in db.scalars(select(MonitoredSessionRow.started_at).where(
        MonitoredSessionRow.patient_id == p.id, MonitoredSessionRow.discharged_at.is_not(None))))
    order = DoseOrder(compound=last.compound, route=last.route, amount=dose_mg,  # type: ignore[arg-type]
                      unit="mg", time=due, duration_min=last.duration_min,
                      protocol_dose_mg=last.dose_mg)
    patient = PatientDoseContext(weight_kg=inputs.data.weight_kg, weight_measured_at=due,
                                 session_times=sessions, session_doses_mg=(),
                                 earlier_doses=earlier)
    return check_dose(order, patient, limits)


def _doses(db: Session, patient_id: int) -> list[DoseRecord]:
    out = []
    for ev in db.execute(
            select(SessionEvent.id, SessionEvent.session_id, SessionEvent.at, SessionEvent.data)
            .join(MonitoredSessionRow, SessionEvent.session_id == MonitoredSessionRow.id)
            .where(MonitoredSessionRow.patient_id == patient_id, SessionEvent.kind == "dose")):
        mg = _num(ev.data, "dose_mg")
        if mg is not None and mg > 0:
            out.append(DoseRecord(ev.id, ev.session_id, utc(ev.at), "", "", mg))
    return out


__all__ = ["ACCEPTORS", "KEEP", "MAX_JOBS", "PENDING_TIMEOUT", "PLAN_READERS", "RUNNER", "Job",
           "Runner", "StaleForecast", "accepted_session", "accepted_view", "current_plan",
           "individual_view", "inputs_of", "register", "retry_due", "settings"]
