"""Consultation and screening: the public questionnaire, its honest summary, and the staff
queue (front desk schedules, a prescriber assesses). Bad answers get a message on the page and
store nothing.

>>> sorted(QUEUE_READ)
['administrator', 'front_desk', 'nurse', 'prescriber']
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketasim.clinic.screening import (
    CAUTIONS,
    CONDITIONS,
    PRIOR_TREATMENTS,
    ScreeningAnswers,
    screen,
)
from ketasim.errors import KetasimError
from ketasim.scales import get_instrument
from ketasim.storage.models import Clinic, ConsultationRequest, Patient, User, WebSession
from ketasim.web.security import new_token, same
from ketasim.web.sessions import Deps, FormError

QUEUE_READ = ("administrator", "prescriber", "nurse", "front_desk")
SCHEDULERS = ("administrator", "front_desk")
DECISIONS = {"plan": "suitable for a treatment plan",
             "more_information": "needs more information",
             "not_suitable": "not suitable for ketamine therapy now"}
PUBLIC_CSRF = "ketasim_consult_csrf"


def _answers(form: Any) -> tuple[ScreeningAnswers, str, str]:
    name = str(form.get("name") or "").strip()
    contact = str(form.get("contact") or "").strip()
    if not 1 <= len(name) <= 200:
        raise FormError("name", "is missing or too long", "give the name to call you by")
    if not 3 <= len(contact) <= 200:
        raise FormError("contact", "is missing or too long",
                        "give a telephone number or e-mail address")
    if form.get("consent") != "yes":
        raise FormError("consent", "is not given",
                        "agree that the clinic may store your answers and contact you")
    items: dict[str, list[int]] = {}
    for inst_id in ("phq9", "gad7"):
        inst = get_instrument(inst_id)
        vals = []
        for k in range(1, inst.n_items + 1):
            raw = str(form.get(f"{inst_id}_{k}") or "").strip()
            lo, hi = inst.item_ranges[k - 1]
            if not raw.isdigit() or len(raw) > 1 or not lo <= int(raw) <= hi:
                raise FormError(f"{inst.id.upper()} question {k}", "is not answered with one "
                                "of the choices", f"choose {lo}-{hi} for every question")
            vals.append(int(raw))
        items[inst_id] = vals
    try:
        answers = ScreeningAnswers(
            condition=str(form.get("condition") or ""),
            prior_treatments=[str(x) for x in form.getlist("prior")],
            cautions=[str(x) for x in form.getlist("caution")],
            phq9=items["phq9"], gad7=items["gad7"])
    except ValidationError as exc:
        err = exc.errors()[0]
        raise FormError(".".join(str(p) for p in err["loc"]), err["msg"],
                        "choose from the options shown") from None
    return answers, name, contact


def register(app: FastAPI, d: Deps) -> None:
    """Add the consultation routes."""

    def form_page(request: Request, clinic: Clinic, error: str = "", status: int = 200
                  ) -> HTMLResponse:
        tok = new_token()
        resp = d.page(request, "consult.html", None, status, title="Could ketamine therapy "
                      "help me?", clinic=clinic, error=error, form_csrf=tok,
                      conditions=CONDITIONS, prior=PRIOR_TREATMENTS, cautions=CAUTIONS,
                      phq9=get_instrument("phq9"), gad7=get_instrument("gad7"))
        resp.set_cookie(PUBLIC_CSRF, tok, httponly=True, secure=True, samesite="strict",
                        max_age=3600)
        return resp

    def clinic_of(db: Session, clinic_id: int | None) -> Clinic:
        c = db.get(Clinic, clinic_id) if clinic_id is not None else db.scalar(
            select(Clinic).order_by(Clinic.id).limit(1))
        if c is None:
            raise HTTPException(status_code=404, detail="no such clinic")
        return c

    @app.get("/consult", response_class=HTMLResponse)
    def consult_form(request: Request, clinic: int | None = None,
                     db: Session = Depends(d.db_session)) -> HTMLResponse:
        return form_page(request, clinic_of(db, clinic))

    @app.post("/consult", response_class=HTMLResponse)
    async def consult_submit(request: Request, db: Session = Depends(d.db_session)
                             ) -> HTMLResponse:
        form = await request.form()
        raw_clinic = str(form.get("clinic_id") or "")
        clinic = clinic_of(db, None if not raw_clinic else
                           int(raw_clinic) if raw_clinic.isdigit() else -1)
        if not same(str(form.get("csrf_token") or ""), request.cookies.get(PUBLIC_CSRF)):
            return form_page(request, clinic, "The form expired; please fill it in again.",
                             400)
        try:
            answers, name, contact = _answers(form)
            summary = screen(answers)
        except KetasimError as exc:
            return form_page(request, clinic, str(exc), 400)
        req = ConsultationRequest(
            clinic_id=clinic.id, created_at=datetime.now(UTC), name=name, contact=contact,
            condition=answers.condition, answers=answers.model_dump(),
            phq9_total=summary.phq9.total, gad7_total=summary.gad7.total, status="new")
        db.add(req)
        db.flush()
        d.auditor.record(db, "anonymous", "write", f"consultation:{req.id}",
                         {"urgent": summary.urgent})
        db.commit()
        resp = d.page(request, "consult_result.html", None, title="Your answers",
                      summary=summary, clinic=clinic)
        resp.delete_cookie(PUBLIC_CSRF)
        return resp

    def in_reach(db: Session, user: User, request_id: int) -> ConsultationRequest:
        req = db.get(ConsultationRequest, request_id)
        if req is None or req.clinic_id != user.clinic_id or user.role not in QUEUE_READ:
            d.auditor.record(db, f"user:{user.id}", "denied", f"consultation:{request_id}")
            db.commit()
            raise HTTPException(status_code=404, detail="no such consultation request")
        return req

    @app.get("/consultations", response_class=HTMLResponse)
    def queue(request: Request, who: tuple[User, WebSession] | None = Depends(d.current),
              db: Session = Depends(d.db_session)) -> HTMLResponse:
        user, _ = d.require(who)
        if user.role not in QUEUE_READ:
            raise HTTPException(status_code=404, detail="no such page")
        rows = db.scalars(select(ConsultationRequest).where(
            ConsultationRequest.clinic_id == user.clinic_id).order_by(
            ConsultationRequest.created_at)).all()
        d.auditor.record(db, f"user:{user.id}", "read", "consultations", {"count": len(rows)})
        db.commit()
        return d.page(request, "consultations.html", who, title="Consultation requests",
                      rows=rows, conditions=CONDITIONS, cautions=CAUTIONS,
                      can_schedule=user.role in SCHEDULERS,
                      can_assess=user.role == "prescriber", decisions=DECISIONS)

    @app.post("/consultations/{request_id}/{action}")
    async def act(request: Request, request_id: int, action: str,
                  who: tuple[User, WebSession] | None = Depends(d.current),
                  db: Session = Depends(d.db_session)) -> Response:
        user, _, form = await d.posted(request, who)
        req = in_reach(db, user, request_id)
        allowed = {"schedule": SCHEDULERS, "assess": ("prescriber",)}
        if action not in allowed or user.role not in allowed[action]:
            raise HTTPException(status_code=404, detail="no such page")
        try:
            if action == "schedule":
                when = str(form.get("when") or "").strip()
                if not when:
                    raise FormError("when", "is missing", "give the appointment date and time")
                try:
                    t = datetime.fromisoformat(when)
                except ValueError:
                    raise FormError("when", f"{when!r} is not a date and time",
                                    "use YYYY-MM-DDTHH:MM") from None
                req.scheduled_for = t if t.tzinfo else t.replace(tzinfo=UTC)
                req.status = "scheduled"
                detail: dict[str, Any] = {"when": req.scheduled_for.isoformat()}
            else:
                decision = str(form.get("decision") or "")
                note = str(form.get("note") or "").strip()
                if decision not in DECISIONS:
                    raise FormError("decision", "is not one of the options",
                                    "choose a decision")
                if len(note) < 10:
                    raise FormError("note", "is missing or too short",
                                    "write the clinical reasoning (10 characters or more)")
                req.assessment = {"decision": decision, "note": note[:2000],
                                  "by": user.username,
                                  "at": datetime.now(UTC).isoformat()}
                req.status = "assessed"
                if decision == "plan" and req.patient_id is None:
                    p = Patient(clinic_id=req.clinic_id, display_name=req.name)
                    db.add(p)
                    db.flush()
                    req.patient_id = p.id
                detail = {"decision": decision, "patient": req.patient_id}
        except KetasimError as exc:
            db.rollback()
            raise HTTPException(status_code=400, detail=str(exc)) from None
        d.auditor.record(db, f"user:{user.id}", action, f"consultation:{req.id}", detail)
        db.commit()
        target = f"/patients/{req.patient_id}" if action == "assess" and req.patient_id \
            else "/consultations"
        return RedirectResponse(target, status_code=303)


__all__ = ["DECISIONS", "QUEUE_READ", "SCHEDULERS", "register"]
