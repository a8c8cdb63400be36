"""Treatment plans on the chart: a protocol from the library, made for this patient, with the
model's forecast stored beside it; the chart's trend shows measurements against it.

>>> sorted(PLANNERS)
['prescriber']
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketasim.clinic.forecast import plan_forecast
from ketasim.clinic.protocols import PROTOCOLS
from ketasim.errors import KetasimError
from ketasim.outcomes.indications import load_indications
from ketasim.scales import get_instrument
from ketasim.storage.models import QuestionnaireResponse, TreatmentPlan, User, WebSession
from ketasim.web.charts import trend_svg
from ketasim.web.sessions import Deps, FormError, parse_number, utc

PLANNERS = ("prescriber",)


def plan_indications() -> dict[str, str]:
    """Indications a plan may be forecast for (those the evidence supports)."""
    return {k: v.name for k, v in load_indications().items() if v.predicts_efficacy}


def chart_context(db: Session, patient_id: int) -> dict[str, Any]:
    """Plans and the trend of measurements against the latest plan's forecast."""
    plans = db.scalars(select(TreatmentPlan).where(TreatmentPlan.patient_id == patient_id)
                       .order_by(TreatmentPlan.id.desc())).all()
    svg = ""
    if plans:
        plan = plans[0]
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
    return {"plans": plans, "trend_svg": svg, "protocols": PROTOCOLS,
            "plan_indications": plan_indications()}


def register(app: FastAPI, d: Deps) -> None:
    """Add the plan route."""

    @app.post("/patients/{patient_id}/plans")
    async def create_plan(request: Request, patient_id: int,
                          who: tuple[User, WebSession] | None = Depends(d.current),
                          db: Session = Depends(d.db_session)) -> Response:
        user, _, form = await d.posted(request, who)
        p = d.patient_in_reach(db, user, patient_id, PLANNERS)
        try:
            protocol = PROTOCOLS.get(str(form.get("protocol") or ""))
            if protocol is None:
                raise FormError("protocol", "is not in the library", "choose a protocol")
            indication = str(form.get("indication") or "")
            if indication not in plan_indications():
                raise FormError("indication", f"{indication!r} cannot be forecast",
                                "choose one of the listed indications")
            weight = parse_number(form.get("weight_kg"), "weight (kg)", 30, 250)
            latest = db.scalar(select(QuestionnaireResponse).where(
                QuestionnaireResponse.patient_id == p.id,
                QuestionnaireResponse.instrument == "phq9").order_by(
                QuestionnaireResponse.submitted_at.desc()).limit(1))
            forecast = plan_forecast(protocol.regimen, indication, weight_kg=weight,
                                     baseline=float(latest.total) if latest else None)
        except KetasimError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        plan = TreatmentPlan(patient_id=p.id, protocol=protocol.id, regimen=protocol.regimen,
                             indication=indication, weight_kg=weight, created_by=user.id,
                             created_at=datetime.now(UTC), forecast=forecast)
        db.add(plan)
        db.flush()
        d.auditor.record(db, f"user:{user.id}", "write", f"patient:{p.id}",
                         {"plan": plan.id, "protocol": protocol.id})
        db.commit()
        return RedirectResponse(f"/patients/{p.id}", status_code=303)


__all__ = ["PLANNERS", "chart_context", "plan_indications", "register"]
