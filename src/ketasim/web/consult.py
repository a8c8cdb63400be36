"""Consultation and screening: the public questionnaire, its honest summary, and the staff
queue (front desk schedules, a prescriber assesses). Bad answers get a message on the page and
store nothing.

>>> sorted(QUEUE_READ)
['administrator', 'front_desk', 'nurse', 'prescriber']
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import select

from ketasim.clinic.references import papers_cited, public_text
from ketasim.clinic.screening import (
    ANSWER_WORDS,
    CAUTIONS,
    CONDITIONS,
    ITEM_TEXT,
    PRIOR_TREATMENTS,
    ScreeningAnswers,
    screen,
)
from ketasim.errors import KetasimError
from ketasim.references import citation_html, render_source_html
from ketasim.scales import get_instrument
from ketasim.storage.models import Clinic, ConsultationRequest, Patient, User
from ketasim.web.clock import local_candidates, zone, zone_name
from ketasim.web.deps import (
    MAX_ID,
    AppContext,
    Form,
    Posted,
    ReadDb,
    RequestId,
    SignedIn,
    client_address,
    deny,
    require_role,
)
from ketasim.web.security import new_token, same
from ketasim.web.sessions import FormError, input_of, parse_birth_year, text_field

QUEUE_READ = ("administrator", "prescriber", "nurse", "front_desk")
SCHEDULERS = ("administrator", "front_desk")
DECISIONS = {"plan": "suitable for a treatment plan",
             "more_information": "needs more information",
             "not_suitable": "not suitable for ketamine therapy now"}
PUBLIC_CSRF = "ketasim_consult_csrf"


def _field(form: Any, name: str) -> str:
    v = form.get(name)
    return v.strip() if isinstance(v, str) else ""


def _answers(form: Any) -> tuple[ScreeningAnswers, str, str]:
    name = _field(form, "name")
    contact = _field(form, "contact")
    if not 1 <= len(name) <= 200:
        raise FormError("name", "is missing or longer than 200 characters",
                        "give the name to call you by", input_name="name")
    if not 3 <= len(contact) <= 200:
        raise FormError("contact", "is missing or longer than 200 characters",
                        "give a telephone number or e-mail address", input_name="contact")
    if form.get("consent") != "yes":
        raise FormError("consent", "is not given",
                        "agree that the clinic may store your answers and contact you",
                        input_name="consent")
    items: dict[str, list[int]] = {}
    for inst_id in ("phq9", "gad7"):
        inst = get_instrument(inst_id)
        vals = []
        for k in range(1, inst.n_items + 1):
            raw = _field(form, f"{inst_id}_{k}")
            lo, hi = inst.item_ranges[k - 1]
            # ASCII digits only ('²' or '٣' are digits to str.isdigit but not answers)
            if len(raw) != 1 or raw not in "0123456789" or not lo <= int(raw) <= hi:
                raise FormError(f"{inst.id.upper()} question {k}", "is not answered with one "
                                "of the choices", f"choose {lo}-{hi} for every question",
                                input_name=f"{inst_id}_{k}")
            vals.append(int(raw))
        items[inst_id] = vals
    try:
        answers = ScreeningAnswers(
            condition=_field(form, "condition")[:100],
            prior_treatments=[x[:100] for x in form.getlist("prior") if isinstance(x, str)][:50],
            cautions=[x[:100] for x in form.getlist("caution") if isinstance(x, str)][:50],
            phq9=items["phq9"], gad7=items["gad7"])
    except ValidationError as exc:
        err = exc.errors()[0]
        where = str(err["loc"][0]) if err["loc"] else ""
        raise FormError(".".join(str(p) for p in err["loc"]), err["msg"],
                        "choose from the options shown",
                        input_name={"condition": "condition", "prior_treatments": "prior",
                                    "cautions": "caution"}.get(where)) from None
    return answers, name, contact


def register(app: FastAPI, ctx: AppContext) -> None:
    """Add the consultation routes."""

    def form_page(request: Request, clinic: Clinic, error: str = "", status: int = 200,
                  exc: Exception | None = None, form: Any = None) -> HTMLResponse:
        """The public form; after a refused submission, with the error at its question and
        the answers given kept (so nothing has to be entered twice)."""
        tok = new_token()
        picked: dict[str, list[str]] = {}
        if form is not None and exc is not None:
            for key in {k for k in form.keys() if k not in ("csrf_token", "clinic_id")}:
                picked[key[:40]] = [v[:200] for v in form.getlist(key)
                                    if isinstance(v, str)][:50]
        resp = ctx.page(request, "consult.html", None, status, title="Could ketamine therapy "
                        "help me?", clinic=clinic, error=error, form_csrf=tok,
                        conditions=CONDITIONS, prior=PRIOR_TREATMENTS, cautions=CAUTIONS,
                        phq9=get_instrument("phq9"), gad7=get_instrument("gad7"),
                        item_text=ITEM_TEXT, answer_words=ANSWER_WORDS, picked=picked,
                        error_input=input_of(exc) if exc is not None else None,
                        tz=zone(clinic.timezone))
        resp.set_cookie(PUBLIC_CSRF, tok, httponly=True, secure=True, samesite="strict",
                        max_age=3600)
        return resp

    def clinic_of(db: ReadDb, clinic_id: int | None) -> Clinic:
        c = None
        if clinic_id is None:
            c = db.scalar(select(Clinic).order_by(Clinic.id).limit(1))
        elif 1 <= clinic_id <= MAX_ID:
            c = db.get(Clinic, clinic_id)
        if c is None:
            raise HTTPException(status_code=404, detail="no such clinic")
        return c

    @app.get("/consult", response_class=HTMLResponse)
    def consult_form(request: Request, db: ReadDb, clinic: int | None = None) -> HTMLResponse:
        return form_page(request, clinic_of(db, clinic))

    @app.post("/consult", response_class=HTMLResponse)
    def consult_submit(request: Request, db: ReadDb, form: Form) -> HTMLResponse:
        raw_clinic = _field(form, "clinic_id")
        clinic = clinic_of(db, None if not raw_clinic else
                           int(raw_clinic) if raw_clinic.isascii() and raw_clinic.isdigit()
                           and len(raw_clinic) < 11 else -1)
        if not same(_field(form, "csrf_token"), request.cookies.get(PUBLIC_CSRF)):
            return form_page(request, clinic, "The form expired; please fill it in again.",
                             400)
        limiter, rate = ctx.limiter
        if not limiter.hit(rate, "consult", client_address(request)):
            raise HTTPException(status_code=429, headers={"Retry-After": "600"},
                                detail="Too many requests from this address; please try "
                                "again later, or call the clinic.")
        try:
            answers, name, contact = _answers(form)
            summary = screen(answers)
        except KetasimError as exc:
            return form_page(request, clinic, str(exc), 400, exc=exc, form=form)
        with ctx.write() as w:
            req = ConsultationRequest(
                clinic_id=clinic.id, created_at=ctx.clock(), name=name, contact=contact,
                condition=answers.condition, answers=answers.model_dump(),
                phq9_total=summary.phq9.total, gad7_total=summary.gad7.total, status="new")
            w.add(req)
            w.flush()
            ctx.auditor.record(w, "anonymous", "write", f"consultation:{req.id}",
                               {"urgent": summary.urgent})
        ind = summary.indication
        papers = papers_cited(ind.evidence, ind.reason) if ind else []
        caution_refs = papers_cited([c.source for c in summary.cautions])
        resp = ctx.page(request, "consult_result.html", None, title="Your answers",
                        summary=summary, clinic=clinic, public=public_text,
                        linked=lambda text: Markup(render_source_html(text)),
                        papers=[Markup(citation_html(p.key)) for p in papers],
                        caution_refs=[Markup(citation_html(p.key)) for p in caution_refs],
                        tz=zone(clinic.timezone))
        resp.delete_cookie(PUBLIC_CSRF)
        return resp

    def in_reach(db: ReadDb, user: User, request_id: int) -> ConsultationRequest:
        req = db.get(ConsultationRequest, request_id)
        if req is None or req.clinic_id != user.clinic_id or user.role not in QUEUE_READ:
            deny(ctx, user, f"consultation:{request_id}", "consultation request")
        return req

    @app.get("/consultations", response_class=HTMLResponse)
    def queue(request: Request, who: SignedIn, db: ReadDb) -> HTMLResponse:
        user = who.user
        require_role(ctx, user, QUEUE_READ, "consultations")
        rows = db.scalars(select(ConsultationRequest).where(
            ConsultationRequest.clinic_id == user.clinic_id).order_by(
            ConsultationRequest.created_at)).all()
        ctx.audit(f"user:{user.id}", "read", "consultations", {"count": len(rows)})
        return ctx.page(request, "consultations.html", who, title="Consultation requests",
                        rows=rows, conditions=CONDITIONS, cautions=CAUTIONS,
                        can_schedule=user.role in SCHEDULERS,
                        can_assess=user.role == "prescriber", decisions=DECISIONS)

    @app.post("/consultations/{request_id}/{action}")
    def act(request_id: RequestId, action: str, post: Posted, db: ReadDb) -> Response:
        user = post.user
        in_reach(db, user, request_id)
        allowed = {"schedule": SCHEDULERS, "assess": ("prescriber",)}
        if action not in allowed:
            deny(ctx, user, f"consultation:{request_id}")
        require_role(ctx, user, allowed[action], f"consultation:{request_id}")
        detail: dict[str, Any]
        if action == "schedule":
            when = post.get("when").strip()
            if not when:
                raise FormError("when", "is missing", "give the appointment date and time")
            clinic = db.get(Clinic, user.clinic_id)
            tz = zone(clinic.timezone if clinic else None)
            try:
                if len(when) > 40:
                    raise ValueError
                t = datetime.fromisoformat(when)
            except ValueError:
                raise FormError("when", f"{when[:40]!r} is not a date and time",
                                f"use YYYY-MM-DDTHH:MM ({zone_name(tz)})") from None
            # a wall-clock time in the clinic's zone (the earlier instant when the clocks
            # went back); stored in UTC
            scheduled = local_candidates(t, tz)[0]
            detail = {"when": scheduled.isoformat()}
        else:
            decision = post.get("decision")
            note = text_field(post, "note", "note")
            year = parse_birth_year(post.get("birth_year"), ctx.clock())
            if decision not in DECISIONS:
                raise FormError("decision", "is not one of the options", "choose a decision")
            if len(note) < 10:
                raise FormError("note", "is missing or too short",
                                "write the clinical reasoning (10 characters or more)")
        with ctx.write() as w:
            req = w.get(ConsultationRequest, request_id)
            assert req is not None
            if action == "schedule":
                req.scheduled_for = scheduled
                req.status = "scheduled"
            else:
                req.assessment = {"decision": decision, "note": note, "by": user.username,
                                  "at": ctx.clock().isoformat()}
                req.status = "assessed"
                if decision == "plan" and req.patient_id is None:
                    p = Patient(clinic_id=req.clinic_id, display_name=req.name,
                                birth_year=year)
                    w.add(p)
                    w.flush()
                    req.patient_id = p.id
                detail = {"decision": decision, "patient": req.patient_id}
                if year is not None:
                    detail["birth_year"] = year
            ctx.auditor.record(w, f"user:{user.id}", action, f"consultation:{req.id}", detail)
        target = f"/patients/{req.patient_id}" if action == "assess" and req.patient_id \
            else "/consultations"
        return RedirectResponse(target, status_code=303)


__all__ = ["DECISIONS", "QUEUE_READ", "SCHEDULERS", "register"]
