"""Drug levels on the chart (issue #14): prescribers and nurses enter a patient's measured
level (ng/mL of one analyte, when the sample was drawn), the chart lists them, and the
individual forecast reads them (:func:`ketasim.web.individual.inputs_of`), so saving one gives
a new data version and the next view computes again.

The server refuses, storing nothing: those who do not see sessions (an audited 404),
administrators (403, the denial audited), a missing or wrong CSRF token (403), an analyte not
in :data:`~ketasim.estimation.patient.LEVEL_KINDS` or not predicted by the PK model the
forecast fits levels with (:func:`predicted_analytes`), a value that is not a number from 0 to
:data:`MAX_NG_ML` ng/mL (read strictly), and a drawn time that is missing, in the future
(server clock) or not after the patient's first recorded dose (400, the message naming the
field). The form's one-use token makes a double-click save once. A saved level and its audit
entry (naming ``drug_level:<id>`` with its :func:`~ketasim.storage.audit_store.clinical_digest`)
are written in one short write.

>>> from datetime import UTC, datetime
>>> t = parse_drawn("2026-03-02T09:30", now=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
...                 first_dose=datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
>>> t.isoformat()
'2026-03-02T09:30:00+00:00'
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ketasim.dosing.regimen import Dose, Regimen
from ketasim.dosing.route import Route
from ketasim.errors import KetasimError
from ketasim.estimation.patient import LEVEL_KINDS
from ketasim.population.pkrun import resolve_model
from ketasim.storage.models import Clinic, DrugLevel, MonitoredSessionRow, SessionEvent
from ketasim.web.clock import local_candidates, shown, zone, zone_name
from ketasim.web.deps import AppContext, PatientId, Posted, ReadDb, patient_in_reach, utc
from ketasim.web.sessions import (
    FUTURE_SLACK,
    SESSION_READ,
    SESSION_WRITE,
    FormError,
    parse_number,
)

LEVEL_WRITERS = SESSION_WRITE  # prescribers and nurses
MAX_NG_ML = 20_000.0
ANALYTE_LABELS = {"ketamine": "ketamine (racemic)", "s_ketamine": "S-ketamine",
                  "r_ketamine": "R-ketamine", "norketamine": "norketamine",
                  "s_norketamine": "S-norketamine", "r_norketamine": "R-norketamine",
                  "hnk": "hydroxynorketamine (HNK)", "esketamine": "esketamine",
                  "noresketamine": "noresketamine"}
assert set(ANALYTE_LABELS) == set(LEVEL_KINDS)


def predicted_analytes(db: Session, patient_id: int) -> tuple[str, tuple[str, ...]]:
    """The PK model the individual forecast fits levels with (the library's default for the
    patient's first dose: its compound and route) and the analytes of
    :data:`~ketasim.estimation.patient.LEVEL_KINDS` it predicts; before any dose, or when
    the dose cannot be read, ``("", LEVEL_KINDS)``."""
    first = db.execute(
        select(SessionEvent.data, MonitoredSessionRow.compound)
        .join(MonitoredSessionRow, SessionEvent.session_id == MonitoredSessionRow.id)
        .where(MonitoredSessionRow.patient_id == patient_id, SessionEvent.kind == "dose")
        .order_by(SessionEvent.at, SessionEvent.id).limit(1)).first()
    if first is None:
        return "", LEVEL_KINDS
    data = first.data if isinstance(first.data, dict) else {}
    try:
        route = Route.parse(str(data.get("route")))
        dose = Dose(1.0, route, duration=1.0 if route is Route.IV_INFUSION else None,
                    compound="esketamine" if first.compound == "esketamine" else None)
        lm = resolve_model(None, Regimen((dose,)))
    except KetasimError:
        return "", LEVEL_KINDS
    kinds = tuple(k for k in LEVEL_KINDS if k in lm.residual)
    return (lm.name, kinds) if kinds else ("", LEVEL_KINDS)


def analyte_options(kinds: tuple[str, ...] = LEVEL_KINDS) -> list[tuple[str, str]]:
    """The analytes a level may be entered for (value, label), in the library's order."""
    return [(k, ANALYTE_LABELS.get(k, k)) for k in kinds]


def first_dose_at(db: Session, patient_id: int) -> datetime | None:
    """When the patient's first recorded dose was given (UTC), or None."""
    t = db.scalar(select(func.min(SessionEvent.at))
                  .join(MonitoredSessionRow, SessionEvent.session_id == MonitoredSessionRow.id)
                  .where(MonitoredSessionRow.patient_id == patient_id,
                         SessionEvent.kind == "dose"))
    return None if t is None else utc(t)


def parse_drawn(raw: object, *, now: datetime, first_dose: datetime | None,
                tz: tzinfo = UTC) -> datetime:
    """When the sample was drawn: ISO 8601 as an ``<input type="datetime-local">`` sends it,
    read in the clinic's zone ``tz``; required, not in the future (server clock ``now``) and
    after ``first_dose``. A wall-clock time the clocks passed twice is the instant the rules
    allow (refused when both are)."""
    text = raw.strip() if isinstance(raw, str) else ""
    zone_ = zone_name(tz)
    name = "drawn_at"
    if not text:
        raise FormError("time drawn", "is required",
                        f"give the date and time the sample was drawn ({zone_})",
                        input_name=name)
    if len(text) > 40:
        raise FormError("time drawn", "is too long", "use the date and time picker",
                        input_name=name)
    try:
        wall = datetime.fromisoformat(text)
    except ValueError:
        raise FormError("time drawn", f"{text!r} is not a date and time",
                        f"use the picker (YYYY-MM-DDTHH:MM, {zone_})", input_name=name) from None
    try:
        candidates = local_candidates(wall, tz)
    except KetasimError as exc:
        raise FormError("time drawn", exc.problem, exc.fix, input_name=name) from None
    if first_dose is None:
        raise FormError("time drawn", "is before the patient's first dose (no dose has been "
                        "recorded yet)", "enter levels measured after a dose given in a "
                        "monitored session", input_name=name)

    def refusal(t: datetime) -> FormError | None:
        if t > now + FUTURE_SLACK:
            return FormError("time drawn", f"{shown(t, tz)} is in the future",
                             "enter a sample already drawn", input_name=name)
        if t <= first_dose:
            return FormError("time drawn", f"{shown(t, tz)} is not after the patient's first "
                             f"dose ({shown(first_dose, tz)})",
                             "enter levels measured after a dose", input_name=name)
        return None

    allowed = [t for t in candidates if refusal(t) is None]
    if len(allowed) == 1:
        return allowed[0]
    if allowed:
        raise FormError("time drawn", f"{wall:%H:%M} happened twice in {zone_} (the clocks "
                        "went back)", "enter the time an hour earlier or later",
                        input_name=name)
    error = refusal(candidates[0])
    assert error is not None
    raise error


def levels_of(db: Session, patient_id: int) -> list[DrugLevel]:
    """The patient's levels, latest drawn first."""
    return list(db.scalars(select(DrugLevel).where(DrugLevel.patient_id == patient_id)
                           .order_by(DrugLevel.drawn_at.desc(), DrugLevel.id.desc())))


def register(app: FastAPI, ctx: AppContext) -> None:
    """Add the route that saves a level."""

    @app.post("/patients/{patient_id}/levels")
    def save_level(request: Request, patient_id: PatientId, post: Posted, db: ReadDb
                   ) -> Response:
        """Save a drug level (prescribers and nurses; audited with its digest)."""
        from ketasim.storage.audit_store import clinical_digest
        user = post.user
        p = patient_in_reach(ctx, db, user, patient_id, SESSION_READ)  # others: a 404
        if user.role not in LEVEL_WRITERS:
            ctx.audit(f"user:{user.id}", "denied", f"patient:{p.id}",
                      {"action": "enter drug level"})
            raise HTTPException(status_code=403,
                                detail="Only a prescriber or a nurse can enter drug levels.")
        typed: dict[str, Any] = {k: post.get(k)[:40] for k in ("analyte", "value_ng_ml",
                                                               "drawn_at")}
        token = post.get("form_token").strip()
        clinic = db.get(Clinic, p.clinic_id)
        tz = zone(clinic.timezone if clinic else None)
        now = ctx.clock()
        try:
            if len(token) > 64:
                raise FormError("form", "its token is not valid", "reload the page")
            analyte = post.get("analyte").strip()
            if analyte not in LEVEL_KINDS:
                raise FormError("analyte", f"{analyte[:40]!r} is not an analyte the model "
                                "knows", "choose the analyte from the list",
                                input_name="analyte")
            model, kinds = predicted_analytes(db, p.id)
            if analyte not in kinds:
                raise FormError("analyte", f"{analyte} is not predicted by this patient's PK "
                                f"model ({model})", "choose the analyte from the list",
                                input_name="analyte")
            value = parse_number(post.get("value_ng_ml"), "level (ng/mL)", 0, MAX_NG_ML,
                                 name="value_ng_ml")
            drawn = parse_drawn(post.get("drawn_at"), now=now,
                                first_dose=first_dose_at(db, p.id), tz=tz)
        except FormError as exc:
            return request.app.state.patient_page(request, post.who, db, p, error=str(exc),
                                                  exc=exc, form="level", typed=typed,
                                                  status=400)
        if token and db.scalar(select(DrugLevel.id).where(DrugLevel.form_token == token)) \
                is not None:
            return RedirectResponse(f"/patients/{p.id}#levels-h", status_code=303)
        try:
            with ctx.write() as w:
                row = DrugLevel(patient_id=p.id, analyte=analyte, value_ng_ml=value,
                                drawn_at=drawn, entered_by=user.id, created_at=now,
                                form_token=token or None)
                w.add(row)
                w.flush()
                ctx.auditor.record(w, f"user:{user.id}", "write", f"patient:{p.id}", {
                    "drug_level": analyte, "value_ng_ml": value,
                    "drawn_at": drawn.isoformat(), "row": f"drug_level:{row.id}",
                    "digest": clinical_digest(row)})
        except IntegrityError:  # the same form, saved concurrently: once is enough
            return RedirectResponse(f"/patients/{p.id}#levels-h", status_code=303)
        return RedirectResponse(f"/patients/{p.id}#levels-h", status_code=303)


__all__ = ["ANALYTE_LABELS", "LEVEL_WRITERS", "MAX_NG_ML", "analyte_options", "first_dose_at",
           "levels_of", "parse_drawn", "predicted_analytes", "register"]
