"""Treatment plans on the chart: a protocol from the library, made for this patient, with the
model's forecast stored beside it; the chart's trend shows measurements against it, and the
expected course of one session of the plan's doses is forecast for the patient as they are
now (:func:`ketasim.web.forecast_panel.plan_view`).

>>> sorted(PLANNERS)
['prescriber']
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketasim.clinic.forecast import plan_forecast
from ketasim.clinic.protocols import PROTOCOLS
from ketasim.outcomes.indications import load_indications
from ketasim.scales import get_instrument
from ketasim.storage.models import Patient, QuestionnaireResponse, TreatmentPlan
from ketasim.web.charts import trend_rows, trend_svg
from ketasim.web.deps import AppContext, PatientId, Posted, ReadDb, patient_in_reach, utc
from ketasim.web.forecast_panel import plan_view
from ketasim.web.sessions import FormError, parse_number

PLANNERS = ("prescriber",)


def plan_indications() -> dict[str, str]:
    """Indications a plan may be forecast for (those the evidence supports)."""
    return {k: v.name for k, v in load_indications().items() if v.predicts_efficacy}


def chart_context(db: Session, patient: Patient, *, tz: tzinfo = UTC,
                  now: datetime | None = None) -> dict[str, Any]:
    """Plans, the trend of measurements against the latest plan's forecast (a chart and its
    table, dates in the clinic's zone ``tz``), and the expected course of one session of the
    latest plan's doses for this patient (at their age, from the year of birth)."""
    patient_id = patient.id
    plans = db.scalars(select(TreatmentPlan).where(TreatmentPlan.patient_id == patient_id)
                       .order_by(TreatmentPlan.id.desc())).all()
    svg = ""
    rows: list[dict[str, Any]] = []
    course: dict[str, Any] | None = None
    instrument = None
    if plans:
        plan = plans[0]
        course = plan_view(db, patient_id, plan.regimen, plan.weight_kg,
                           birth_year=patient.birth_year, now=now, tz=tz)
        f = plan.forecast
        start = utc(plan.created_at)
        measured = []
        for q in db.scalars(select(QuestionnaireResponse).where(
                QuestionnaireResponse.patient_id == patient_id,
                QuestionnaireResponse.instrument == f["instrument"])):
            day = (utc(q.submitted_at) - start).total_seconds() / 86400.0
            if day >= -1.0:
                measured.append((max(day, 0.0), float(q.total)))
        instrument = get_instrument(f["instrument"])
        svg = trend_svg(f, measured, remission_max=instrument.remission_max,
                        top=float(instrument.total_range[1]), label=instrument.name,
                        start=start, tz=tz)
        rows = trend_rows(f, measured, start=start, tz=tz)
    return {"plans": plans, "trend_svg": svg, "trend_rows": rows,
            "trend_instrument": instrument, "session_course": course,
            "protocols": PROTOCOLS, "plan_indications": plan_indications(),
            "protocol_options": [(k, v.title) for k, v in PROTOCOLS.items()]}


def register(app: FastAPI, ctx: AppContext) -> None:
    """Add the plan route."""

    @app.post("/patients/{patient_id}/plans")
    def create_plan(request: Request, patient_id: PatientId, post: Posted, db: ReadDb
                    ) -> Response:
        """Compute the forecast first (a plain ``def`` handler: in a worker thread, no
        transaction open), then store the plan and its audit entry in one short write. A
        refused form shows the chart again with the error at its field."""
        user = post.user
        p = patient_in_reach(ctx, db, user, patient_id, PLANNERS)
        protocol = PROTOCOLS.get(post.get("protocol"))
        indication = post.get("indication")
        try:
            if protocol is None:
                raise FormError("protocol", "is not in the library", "choose a protocol",
                                input_name="protocol")
            if indication not in plan_indications():
                raise FormError("indication", f"{indication[:40]!r} cannot be forecast",
                                "choose one of the listed indications",
                                input_name="indication")
            weight = parse_number(post.get("weight_kg"), "weight (kg)", 30, 250,
                                  name="weight_kg")
        except FormError as exc:
            typed = {k: post.get(k)[:40] for k in ("protocol", "indication", "weight_kg")}
            return request.app.state.patient_page(request, post.who, db, p, error=str(exc),
                                                  exc=exc, form="plan", typed=typed,
                                                  status=400)
        latest = db.scalar(select(QuestionnaireResponse).where(
            QuestionnaireResponse.patient_id == p.id,
            QuestionnaireResponse.instrument == "phq9").order_by(
            QuestionnaireResponse.submitted_at.desc()).limit(1))
        db.rollback()  # end the read transaction before the long computation
        forecast = plan_forecast(protocol.regimen, indication, weight_kg=weight,
                                 baseline=float(latest.total) if latest else None)
        with ctx.write() as w:
            plan = TreatmentPlan(patient_id=p.id, protocol=protocol.id,
                                 regimen=protocol.regimen, indication=indication,
                                 weight_kg=weight, created_by=user.id,
                                 created_at=ctx.clock(), forecast=forecast)
            w.add(plan)
            w.flush()
            ctx.auditor.record(w, f"user:{user.id}", "write", f"patient:{p.id}",
                               {"plan": plan.id, "protocol": protocol.id})
        return RedirectResponse(f"/patients/{p.id}", status_code=303)


__all__ = ["PLANNERS", "chart_context", "plan_indications", "register"]
