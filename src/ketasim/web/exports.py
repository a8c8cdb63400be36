"""Exports: a patient's data as CSV, an NM-TRAN dataset of doses and observations for
pharmacometric analysis, and the clinic's data as CSV (de-identified for researchers).

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
from datetime import datetime
from typing import Any

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketasim.storage.models import (
    MonitoredSessionRow,
    Patient,
    QuestionnaireResponse,
    SessionEvent,
    User,
    WebSession,
)
from ketasim.web.sessions import Deps, utc

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


def _csv(frame: pd.DataFrame, name: str) -> Response:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


def register(app: FastAPI, d: Deps, key: bytes) -> None:
    """Add the export routes."""

    def patient_export(who: tuple[User, WebSession] | None, db: Session, patient_id: int,
                       fmt: str, build: Callable[[Session, int], pd.DataFrame],
                       name: str) -> Response:
        """One patient's export in ``fmt``: role and reach checked, audited."""
        user, _ = d.require(who)
        p = d.patient_in_reach(db, user, patient_id, PATIENT_EXPORT)
        frame = build(db, p.id)
        d.auditor.record(db, f"user:{user.id}", "export", f"patient:{p.id}",
                         {"format": fmt, "rows": len(frame)})
        db.commit()
        return _csv(frame, f"patient-{p.id}{name}.csv")

    @app.get("/patients/{patient_id}/export.csv")
    def export_patient(request: Request, patient_id: int,
                       who: tuple[User, WebSession] | None = Depends(d.current),
                       db: Session = Depends(d.db_session)) -> Response:
        return patient_export(who, db, patient_id, "csv", patient_records, "")

    @app.get("/patients/{patient_id}/export.nmtran.csv")
    def export_nmtran(request: Request, patient_id: int,
                      who: tuple[User, WebSession] | None = Depends(d.current),
                      db: Session = Depends(d.db_session)) -> Response:
        return patient_export(who, db, patient_id, "nmtran",
                              lambda db_, pid: nmtran_dataset(db_, [pid]), "-nmtran")

    @app.get("/export/clinic.csv")
    def export_clinic(request: Request,
                      who: tuple[User, WebSession] | None = Depends(d.current),
                      db: Session = Depends(d.db_session)) -> Response:
        user, _ = d.require(who)
        if user.role not in CLINIC_EXPORT:
            d.auditor.record(db, f"user:{user.id}", "denied", "export:clinic")
            db.commit()
            raise HTTPException(status_code=404, detail="no such page")
        parts = []
        for p in db.scalars(select(Patient).where(Patient.clinic_id == user.clinic_id)):
            f = patient_records(db, p.id)
            f.insert(0, "patient", pseudonym(key, p.id) if user.role == "researcher"
                     else p.display_name)
            parts.append(f)
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if user.role == "researcher" and not frame.empty:
            frame = frame.drop(columns=["session"])  # record numbers are identifiers
        d.auditor.record(db, f"user:{user.id}", "export", f"clinic:{user.clinic_id}",
                         {"format": "csv", "deidentified": user.role == "researcher",
                          "rows": len(frame)})
        db.commit()
        return _csv(frame, "clinic.csv")


__all__ = ["CLINIC_EXPORT", "DVID", "PATIENT_EXPORT", "nmtran_dataset", "patient_records",
           "pseudonym", "register"]
