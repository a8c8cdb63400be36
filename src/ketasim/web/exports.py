"""Exports: a patient's data as CSV, an NM-TRAN dataset of doses and observations for
pharmacometric analysis, and the clinic's data as CSV (de-identified for researchers).

Every text cell that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) is prefixed with ``'`` (OWASP CSV injection advice), so
public input such as a consultation name cannot become a formula.

The researcher export is de-identified: a keyed pseudonym instead of the patient, every date
shifted by a per-patient offset (−365 … +365 days, derived from the audit key, so intervals
within a patient are kept and the offset cannot be recomputed without the key), no record
numbers, no free text (override and late-entry reasons, product and lot), no weights (the dose
per kilogram is kept), only the structured clinical values listed in ``RESEARCH_FIELDS``.

NM-TRAN layout: one row per dose (EVID 1, AMT in mg, RATE in mg/h for infusions, CMT 1) and
per observation (EVID 0, MDV 0, DV with DVID: 1 SBP, 2 DBP, 3 HR, 4 SpO₂, 5 MOAA/S, 6 CADSS,
10+ questionnaire totals, see ``DVID``); TIME in hours from the patient's first record (so a
pre-dose check is at 0 and TIME never goes negative); ROUTE kept as a text column for
reference (NONMEM ignores it with ``DROP``).

>>> DVID["sbp"], DVID["phq9"]
(1, 10)
"""

from __future__ import annotations

import hashlib
import hmac
import io
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from fastapi import FastAPI
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketasim.storage.models import (
    MonitoredSessionRow,
    Patient,
    QuestionnaireResponse,
    SessionEvent,
)
from ketasim.web.deps import (
    AppContext,
    PatientId,
    ReadDb,
    SignedIn,
    Who,
    patient_in_reach,
    require_role,
    utc,
)

DVID = {"sbp": 1, "dbp": 2, "hr": 3, "spo2": 4, "moaas": 5, "cadss": 6, "phq9": 10,
        "gad7": 11, "qids_sr16": 12, "pcl5": 13, "cssrs_ideation": 14, "madrs": 15}
PATIENT_EXPORT = ("administrator", "prescriber", "nurse", "patient")
CLINIC_EXPORT = ("administrator", "researcher")


def _session_events(db: Session, patient_id: int
                    ) -> list[tuple[MonitoredSessionRow, SessionEvent]]:
    """Every session step of a patient with its session, in one query."""
    rows = db.execute(select(MonitoredSessionRow, SessionEvent).join(
        SessionEvent, SessionEvent.session_id == MonitoredSessionRow.id).where(
        MonitoredSessionRow.patient_id == patient_id).order_by(
        MonitoredSessionRow.id, SessionEvent.id))
    return [(s, e) for s, e in rows]


def _questionnaires(db: Session, patient_id: int) -> list[QuestionnaireResponse]:
    return list(db.scalars(select(QuestionnaireResponse).where(
        QuestionnaireResponse.patient_id == patient_id)))


def patient_records(db: Session, patient_id: int) -> pd.DataFrame:
    """Every questionnaire and session step of one patient, one row each (UTC times)."""
    rows: list[dict[str, Any]] = []
    for q in _questionnaires(db, patient_id):
        rows.append({"time_utc": utc(q.submitted_at).isoformat(), "record": "questionnaire",
                     "kind": q.instrument, "value": q.total, "detail": q.band,
                     "session": None})
    for s, e in _session_events(db, patient_id):
        rows.append({"time_utc": utc(e.at).isoformat(), "record": f"session:{s.compound}",
                     "kind": e.kind, "value": e.data.get("dose_mg"),
                     "detail": ";".join(f"{k}={v}" for k, v in e.data.items()
                                        if v is not None), "session": s.id})
    frame = pd.DataFrame(rows, columns=["time_utc", "record", "kind", "value", "detail",
                                        "session"])
    return frame.sort_values("time_utc", kind="stable").reset_index(drop=True)


def nmtran_dataset(db: Session, patient_ids: list[int]) -> pd.DataFrame:
    """Doses and observations of ``patient_ids`` as an NM-TRAN dataset (IDs 1..n)."""
    out: list[dict[str, Any]] = []
    for k, pid in enumerate(patient_ids, start=1):
        recs: list[tuple[datetime, dict[str, Any]]] = []
        for _, e in _session_events(db, pid):
            t = utc(e.at)
            if e.kind == "dose":
                dur = e.data.get("duration_min")
                amt = float(e.data["dose_mg"])
                recs.append((t, {"EVID": 1, "MDV": 1, "AMT": amt,
                                 "RATE": round(amt / (dur / 60.0), 6) if dur else 0.0,
                                 "CMT": 1, "DV": 0.0, "DVID": 0,
                                 "ROUTE": e.data.get("route", "")}))
            elif e.kind in ("predose", "vitals"):
                for name in ("sbp", "dbp", "hr", "spo2", "moaas", "cadss"):
                    if e.data.get(name) is not None:
                        recs.append((t, {"EVID": 0, "MDV": 0, "AMT": 0.0, "RATE": 0.0,
                                         "CMT": 0, "DV": float(e.data[name]),
                                         "DVID": DVID[name], "ROUTE": ""}))
        for q in _questionnaires(db, pid):
            if q.instrument in DVID:
                recs.append((utc(q.submitted_at), {"EVID": 0, "MDV": 0, "AMT": 0.0,
                                                    "RATE": 0.0, "CMT": 0,
                                                    "DV": float(q.total),
                                                    "DVID": DVID[q.instrument], "ROUTE": ""}))
        if not recs:
            continue
        recs.sort(key=lambda r: (r[0], -r[1]["EVID"]))
        origin = recs[0][0]
        for t, r in recs:
            out.append({"ID": k, "TIME": round((t - origin).total_seconds() / 3600.0, 6), **r})
    return pd.DataFrame(out, columns=["ID", "TIME", "EVID", "MDV", "AMT", "RATE", "CMT", "DV",
                                      "DVID", "ROUTE"])


def pseudonym(key: bytes, patient_id: int) -> str:
    """A stable study identifier that does not reveal the record number."""
    return "P-" + hmac.new(key, f"patient:{patient_id}".encode(), hashlib.sha256).hexdigest()[:12]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
RESEARCH_FIELDS = ("dose_mg", "dose_mg_per_kg", "route", "duration_min", "sbp", "dbp", "hr",
                   "spo2", "moaas", "cadss")


def neutralise(value: Any) -> Any:
    """A cell safe to open in a spreadsheet: text that would start a formula gets a leading
    apostrophe; numbers are left alone.

    >>> neutralise("=HYPERLINK(1)"), neutralise("-5"), neutralise(-5.0), neutralise("ok")
    ("'=HYPERLINK(1)", "'-5", -5.0, 'ok')
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def date_shift(key: bytes, patient_id: int) -> timedelta:
    """The per-patient date shift of the researcher export (whole days, −365 … +365)."""
    h = hmac.new(key, f"date-shift:{patient_id}".encode(), hashlib.sha256).digest()
    return timedelta(days=int.from_bytes(h[:4], "big") % 731 - 365)


def research_records(db: Session, key: bytes, patient_id: int) -> pd.DataFrame:
    """One patient's records, de-identified (shifted dates, structured values only)."""
    shift = date_shift(key, patient_id)
    rows: list[dict[str, Any]] = []
    for q in _questionnaires(db, patient_id):
        rows.append({"time_shifted": (utc(q.submitted_at) + shift).isoformat(),
                     "record": "questionnaire", "kind": q.instrument, "value": q.total,
                     "detail": q.band})
    for s, e in _session_events(db, patient_id):
        rows.append({"time_shifted": (utc(e.at) + shift).isoformat(),
                     "record": f"session:{s.compound}", "kind": e.kind,
                     "value": e.data.get("dose_mg"),
                     "detail": ";".join(f"{k}={e.data[k]}" for k in RESEARCH_FIELDS
                                        if e.data.get(k) is not None)})
    frame = pd.DataFrame(rows, columns=["time_shifted", "record", "kind", "value", "detail"])
    return frame.sort_values("time_shifted", kind="stable").reset_index(drop=True)


def _csv(frame: pd.DataFrame, name: str) -> Response:
    buf = io.StringIO()
    frame.map(neutralise).to_csv(buf, index=False)
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


def register(app: FastAPI, ctx: AppContext) -> None:
    """Add the export routes."""

    def patient_export(who: Who, db: Session, patient_id: int, fmt: str,
                       build: Callable[[Session, int], pd.DataFrame], name: str) -> Response:
        """One patient's export in ``fmt``: role and reach checked, audited."""
        user = who.user
        p = patient_in_reach(ctx, db, user, patient_id, PATIENT_EXPORT)
        frame = build(db, p.id)
        ctx.audit(f"user:{user.id}", "export", f"patient:{p.id}",
                  {"format": fmt, "rows": len(frame)})
        return _csv(frame, f"patient-{p.id}{name}.csv")

    @app.get("/patients/{patient_id}/export.csv")
    def export_patient(patient_id: PatientId, who: SignedIn, db: ReadDb) -> Response:
        return patient_export(who, db, patient_id, "csv", patient_records, "")

    @app.get("/patients/{patient_id}/export.nmtran.csv")
    def export_nmtran(patient_id: PatientId, who: SignedIn, db: ReadDb) -> Response:
        return patient_export(who, db, patient_id, "nmtran",
                              lambda db_, pid: nmtran_dataset(db_, [pid]), "-nmtran")

    @app.get("/export/clinic.csv")
    def export_clinic(who: SignedIn, db: ReadDb) -> Response:
        user = who.user
        require_role(ctx, user, CLINIC_EXPORT, "export:clinic")
        research = user.role == "researcher"
        parts = []
        for p in db.scalars(select(Patient).where(Patient.clinic_id == user.clinic_id)):
            f = research_records(db, ctx.key, p.id) if research else patient_records(db, p.id)
            f.insert(0, "patient", pseudonym(ctx.key, p.id) if research else p.display_name)
            parts.append(f)
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        ctx.audit(f"user:{user.id}", "export", f"clinic:{user.clinic_id}",
                  {"format": "csv", "deidentified": research, "rows": len(frame)})
        return _csv(frame, "clinic.csv")


__all__ = ["CLINIC_EXPORT", "DVID", "PATIENT_EXPORT", "RESEARCH_FIELDS", "date_shift",
           "neutralise", "nmtran_dataset", "patient_records", "pseudonym", "register",
           "research_records"]
