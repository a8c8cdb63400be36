"""Clinic settings (administrator): the clinic's time zone (every time is shown and entered
in it), monitoring thresholds and the clinic's own, versioned dose-range limits. Every change
is audited with the old and new values; every change of the limits is a new version, and
dose checks use the latest version and record its name.

>>> ADMINS
('administrator',)
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketasim.clinic.dose_check import parse_limits_json
from ketasim.errors import KetasimError
from ketasim.storage.models import Clinic, DoseLimitsVersion
from ketasim.web.clock import check_zone, zone_names
from ketasim.web.deps import AppContext, Posted, ReadDb, SignedIn, Who, deny, require_role
from ketasim.web.sessions import FormError, clinic_limits, parse_number

ADMINS = ("administrator",)


def register(app: FastAPI, ctx: AppContext) -> None:
    """Add the settings routes."""

    def show(request: Request, who: Who, db: Session, error: str = "",
             status: int = 200, draft: str | None = None, error_input: str | None = None,
             error_form: str = "") -> HTMLResponse:
        user = who.user
        clinic = db.get(Clinic, user.clinic_id)
        current = clinic_limits(db, user.clinic_id)
        history = db.scalars(select(DoseLimitsVersion).where(
            DoseLimitsVersion.clinic_id == user.clinic_id).order_by(
            DoseLimitsVersion.id.desc())).all()
        text = draft if draft is not None else json.dumps(current.model_dump(mode="json"),
                                                          indent=1)
        return ctx.page(request, "admin.html", who, status, title="Clinic settings",
                        clinic=clinic, limits=current, limits_text=text, history=history,
                        error=error, error_input=error_input, error_form=error_form,
                        zones=[(z, z.replace("_", " ")) for z in zone_names()])

    @app.get("/admin", response_class=HTMLResponse)
    def settings(request: Request, who: SignedIn, db: ReadDb) -> HTMLResponse:
        require_role(ctx, who.user, ADMINS, "settings")
        return show(request, who, db)

    @app.post("/admin/{what}")
    def change(request: Request, what: str, post: Posted, db: ReadDb) -> Response:
        user = post.user
        require_role(ctx, user, ADMINS, "settings")
        if what not in ("thresholds", "dose-limits", "mfa", "timezone"):
            deny(ctx, user, f"settings:{what[:40]}")
        detail: dict[str, Any]
        try:
            with ctx.write() as w:
                clinic = w.get(Clinic, user.clinic_id)
                assert clinic is not None
                if what == "timezone":
                    try:
                        name = check_zone(post.get("timezone"))
                    except KetasimError as exc:
                        raise FormError(exc.field, exc.problem, exc.fix,
                                        input_name="timezone") from None
                    detail = {"timezone": [clinic.timezone, name]}
                    clinic.timezone = name
                elif what == "thresholds":
                    spo2 = parse_number(post.get("spo2_min"), "SpO₂ alert threshold (%)",
                                        51, 100, name="spo2_min")
                    moaas = int(parse_number(post.get("moaas_alert_max"),
                                             "MOAA/S alert threshold", 0, 5, whole=True,
                                             name="moaas_alert_max"))
                    detail = {"spo2_min": [clinic.spo2_min, spo2],
                              "moaas_alert_max": [clinic.moaas_alert_max, moaas]}
                    clinic.spo2_min, clinic.moaas_alert_max = spo2, moaas
                elif what == "mfa":
                    required = post.get("require_mfa") == "yes"
                    detail = {"require_mfa": [clinic.require_mfa, required]}
                    clinic.require_mfa = required
                else:
                    limits = parse_limits_json(post.get("limits"))
                    latest = clinic_limits(w, user.clinic_id)
                    existing = {r.version for r in w.scalars(select(DoseLimitsVersion).where(
                        DoseLimitsVersion.clinic_id == user.clinic_id))}
                    if limits.version in existing or limits.version == latest.version:
                        raise FormError("dose limits: version", f"{limits.version!r} exists",
                                        "give every change a new version name")
                    w.add(DoseLimitsVersion(clinic_id=user.clinic_id, version=limits.version,
                                            limits=limits.model_dump(mode="json"),
                                            created_by=user.id, created_at=ctx.clock()))
                    detail = {"dose_limits": limits.version, "previous": latest.version}
                ctx.auditor.record(w, f"user:{user.id}", "settings", f"clinic:{user.clinic_id}",
                                   detail)
        except KetasimError as exc:
            draft = post.get("limits") if what == "dose-limits" else None
            return show(request, post.who, db, str(exc), 400,
                        draft=draft if draft is not None and len(draft) <= 65536 else None,
                        error_input=getattr(exc, "input_name", None) or (
                            "limits" if what == "dose-limits" else None),
                        error_form="limits" if what == "dose-limits" else what)
        return RedirectResponse("/admin", status_code=303)


__all__ = ["ADMINS", "register"]
