"""Clinic settings (administrator): monitoring thresholds and the clinic's own, versioned
dose-range limits. Every change is a new version, audited with who changed what; dose checks
use the latest version and record its name.

>>> ADMINS
('administrator',)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketasim.clinic.dose_check import DoseLimits
from ketasim.errors import KetasimError
from ketasim.storage.models import Clinic, DoseLimitsVersion, User, WebSession
from ketasim.web.sessions import Deps, FormError, clinic_limits, parse_number

ADMINS = ("administrator",)


def register(app: FastAPI, d: Deps) -> None:
    """Add the settings routes."""

    def admin_of(who: tuple[User, WebSession] | None) -> tuple[User, WebSession]:
        user, ws = d.require(who)
        if user.role not in ADMINS:
            raise HTTPException(status_code=404, detail="no such page")
        return user, ws

    def show(request: Request, who: tuple[User, WebSession], db: Session, error: str = "",
             status: int = 200, draft: str | None = None) -> HTMLResponse:
        user = who[0]
        clinic = db.get(Clinic, user.clinic_id)
        current = clinic_limits(db, user.clinic_id)
        history = db.scalars(select(DoseLimitsVersion).where(
            DoseLimitsVersion.clinic_id == user.clinic_id).order_by(
            DoseLimitsVersion.id.desc())).all()
        text = draft if draft is not None else json.dumps(current.model_dump(mode="json"),
                                                          indent=1)
        return d.page(request, "admin.html", who, status, title="Clinic settings",
                      clinic=clinic, limits=current, limits_text=text, history=history,
                      error=error)

    @app.get("/admin", response_class=HTMLResponse)
    def settings(request: Request, who: tuple[User, WebSession] | None = Depends(d.current),
                 db: Session = Depends(d.db_session)) -> HTMLResponse:
        user, ws = admin_of(who)
        return show(request, (user, ws), db)

    @app.post("/admin/{what}")
    async def change(request: Request, what: str,
                     who: tuple[User, WebSession] | None = Depends(d.current),
                     db: Session = Depends(d.db_session)) -> Response:
        user, ws, form = await d.posted(request, who)
        if user.role not in ADMINS:
            raise HTTPException(status_code=404, detail="no such page")
        if what not in ("thresholds", "dose-limits"):
            raise HTTPException(status_code=404, detail="no such page")
        clinic = db.get(Clinic, user.clinic_id)
        assert clinic is not None
        detail: dict[str, Any]
        try:
            if what == "thresholds":
                spo2 = parse_number(form.get("spo2_min"), "SpO₂ alert threshold (%)", 51, 100)
                moaas = parse_number(form.get("moaas_alert_max"), "MOAA/S alert threshold", 0, 5)
                if moaas != int(moaas):
                    raise FormError("MOAA/S alert threshold", "must be a whole number",
                                    "enter 0-5")
                detail = {"spo2_min": [clinic.spo2_min, spo2],
                          "moaas_alert_max": [clinic.moaas_alert_max, int(moaas)]}
                clinic.spo2_min, clinic.moaas_alert_max = spo2, int(moaas)
            else:
                raw = str(form.get("limits") or "")
                try:
                    limits = DoseLimits.model_validate(json.loads(raw))
                except json.JSONDecodeError as exc:
                    raise FormError("dose limits", f"are not valid JSON ({exc.msg}, line "
                                    f"{exc.lineno})", "fix the JSON") from None
                except ValidationError as exc:
                    err = exc.errors()[0]
                    raise FormError("dose limits: " + ".".join(str(p) for p in err["loc"]),
                                    err["msg"], "correct the value") from None
                latest = clinic_limits(db, user.clinic_id)
                existing = {r.version for r in db.scalars(select(DoseLimitsVersion).where(
                    DoseLimitsVersion.clinic_id == user.clinic_id))}
                if limits.version in existing or limits.version == latest.version:
                    raise FormError("dose limits: version", f"{limits.version!r} exists",
                                    "give every change a new version name")
                db.add(DoseLimitsVersion(clinic_id=user.clinic_id, version=limits.version,
                                         limits=limits.model_dump(mode="json"),
                                         created_by=user.id, created_at=datetime.now(UTC)))
                detail = {"dose_limits": limits.version, "previous": latest.version}
        except KetasimError as exc:
            db.rollback()
            return show(request, (user, ws), db, str(exc), 400,
                        draft=str(form.get("limits")) if what == "dose-limits" else None)
        d.auditor.record(db, f"user:{user.id}", "settings", f"clinic:{user.clinic_id}", detail)
        db.commit()
        return RedirectResponse("/admin", status_code=303)


__all__ = ["ADMINS", "register"]
