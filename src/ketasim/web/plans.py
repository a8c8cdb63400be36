"""Treatment plans on the chart: a protocol from the library, made for this patient, with the
model's forecast stored beside it; the chart's trend shows measurements against it, and the
expected course of one session of the plan's doses is forecast for the patient as they are
now (:func:`ketasim.web.forecast_panel.plan_view`).

>>> sorted(PLANNERS)
['prescriber']
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketasim.clinic.forecast import plan_forecast
from ketasim.clinic.protocols import PROTOCOLS
from ketasim.outcomes.indications import load_indications
from ketasim.scales import get_instrument
from ketasim.storage.models import QuestionnaireResponse, TreatmentPlan
from ketasim.web.charts import trend_svg
from ketasim.web.deps import AppContext, PatientId, Posted, ReadDb, patient_in_reach, utc
from ketasim.web.forecast_panel import plan_view
from ketasim.web.sessions import FormError, parse_number

PLANNERS = ("prescriber",)


def plan_indications() -> dict[str, str]:
    """Indications a plan may be forecast for (those the evidence supports)."""
    return {k: v.name for k, v in load_indications().items() if v.predicts_efficacy}


def chart_context(db: Session, patient_id: int) -> dict[str, Any]:
    """Plans, the trend of measurements against the latest plan's forecast, and the expected
    course of one session of the latest plan's doses for this patient."""
    plans = db.scalars(select(TreatmentPlan).where(TreatmentPlan.patient_id == patient_id)
                       .order_by(TreatmentPlan.id.desc())).all()
    svg = ""
    course: dict[str, Any] | None = None
    if plans:
        plan = plans[0]
        course = plan_view(db, patient_id, plan.regimen, plan.weight_kg)
        f = plan.forecast
        start = utc(plan.created_at)
        measured = []
        for q in db.scalars(select(QuestionnaireResponse).where(
                QuestionnaireResponse.patient_id == patient_id,
                QuestionnaireResponse.instrument == f["instrument"])):
            day = (utc(q.submitted_at) - start).total_seconds() / 86400.0
            if day >= -1.0:
                measured.append((max(day, 0.0), float(q.total)))
        inst = get_instrument(f["instrument"])
        svg = trend_svg(f, measured, remission_max=inst.remission_max,
                        top=float(inst.total_range[1]), label=inst.name)
    return {"plans": plans, "trend_svg": svg, "session_course": course, "protocols": PROTOCOLS,
            "plan_indications": plan_indications()}


def register(app: FastAPI, ctx: AppContext) -> None:
    """Add the plan route."""

    @app.post("/patients/{patient_id}/plans")
    def create_plan(patient_id: PatientId, post: Posted, db: ReadDb) -> Response:
        """Compute the forecast first (a plain ``def`` handler: in a worker thread, no
        transaction open), then store the plan and its audit entry in one short write."""
        user = post.user
        p = patient_in_reach(ctx, db, user, patient_id, PLANNERS)
        protocol = PROTOCOLS.get(post.get("protocol"))
        if protocol is None:
            raise FormError("protocol", "is not in the library", "choose a protocol")
        indication = post.get("indication")
        if indication not in plan_indications():
            raise FormError("indication", f"{indication[:40]!r} cannot be forecast",
                            "choose one of the listed indications")
        weight = parse_number(post.get("weight_kg"), "weight (kg)", 30, 250)
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
