"""Tables. Times are stored in UTC; passwords only as Argon2id hashes; session tokens only as
SHA-256 hashes; the audit table is append-only (the application never updates or deletes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of all ketasim tables."""


class Clinic(Base):
    """A clinic: the boundary of what its staff may see."""

    __tablename__ = "clinics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # monitoring thresholds have no default: the clinic must set them before sessions
    spo2_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    moaas_alert_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # clinical roles must sign in with a second factor (TOTP) when set
    require_mfa: Mapped[bool] = mapped_column(Boolean, default=False)
    # the IANA time zone every time is shown and entered in (stored times stay UTC)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")


class User(Base):
    """A person who logs in, with one role."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    username: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True)
    # TOTP second factor (RFC 6238): the shared secret, whether it is confirmed, and the
    # SHA-256 hashes of the unused one-time recovery codes
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    recovery_codes: Mapped[list | None] = mapped_column(JSON, nullable=True)


class Patient(Base):
    """A patient of one clinic."""

    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # the year of birth (the age the session forecast uses); unknown when None
    birth_year: Mapped[int | None] = mapped_column(Integer, nullable=True)


class WebSession(Base):
    """A logged-in browser session (the token itself is never stored)."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # False while a password was given but the second factor is still owed
    mfa_passed: Mapped[bool] = mapped_column(Boolean, default=True)


class QuestionnaireResponse(Base):
    """A scored questionnaire (items as answered; totals from ketasim.scales)."""

    __tablename__ = "questionnaire_responses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    instrument: Mapped[str] = mapped_column(String(40))
    items: Mapped[list] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(40))
    submitted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "patient" (portal) or "clinician_for_patient" (a clinician entering the patient's answers)
    entered_as: Mapped[str] = mapped_column(String(30), default="patient")
    form_token: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)


class SafetyAlert(Base):
    """A safety signal (e.g. PHQ-9 item 9 > 0) that a clinician must acknowledge."""

    __tablename__ = "safety_alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    response_id: Mapped[int | None] = mapped_column(ForeignKey("questionnaire_responses.id"),
                                                    nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True)


class MonitoredSessionRow(Base):
    """A monitored dosing session; what happened in it is in :class:`SessionEvent`."""

    __tablename__ = "monitored_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    compound: Mapped[str] = mapped_column(String(20))
    rems_enrolled: Mapped[bool] = mapped_column(default=False)
    started_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    discharged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                           nullable=True)
    form_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    form_submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                               nullable=True)
    # a session started by mistake and closed before any dose
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          nullable=True)
    # at most one open session per patient (partial unique index, migration 0008)
    __table_args__ = (Index("uq_open_session_per_patient", "patient_id", unique=True,
                            sqlite_where=text("discharged_at IS NULL AND cancelled_at IS NULL"),
                            postgresql_where=text(
                                "discharged_at IS NULL AND cancelled_at IS NULL")),)


class SessionEvent(Base):
    """One recorded step of a session (pre-dose check, dose, vitals, acknowledgement,
    discharge), replayed through ketasim.clinic.session's rules on every request."""

    __tablename__ = "session_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("monitored_sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the stated clinical time
    data: Mapped[dict] = mapped_column(JSON)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # server time
    # one-use token of the form that submitted this step (a double-click records once)
    form_token: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)


class ConsultationRequest(Base):
    """A 'could ketamine therapy help me?' screening and consultation request from the public
    form, queued for staff."""

    __tablename__ = "consultation_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(200))
    condition: Mapped[str] = mapped_column(String(40))
    answers: Mapped[dict] = mapped_column(JSON)
    phq9_total: Mapped[int] = mapped_column(Integer)
    gad7_total: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="new")
    scheduled_for: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                           nullable=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True)
    assessment: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class TreatmentPlan(Base):
    """A treatment plan from the protocol library, with the forecast made when it was
    created (kept so that later measurements are shown against what was expected then)."""

    __tablename__ = "treatment_plans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    protocol: Mapped[str] = mapped_column(String(40))
    regimen: Mapped[str] = mapped_column(String(300))
    indication: Mapped[str] = mapped_column(String(40))
    weight_kg: Mapped[float] = mapped_column(Float)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    forecast: Mapped[dict] = mapped_column(JSON)


class IndividualForecast(Base):
    """A patient's individual forecast and suggested next session, cached by the version of
    the data they were computed from (a hash of every rating, dose, session reading and
    level, the plan and the settings: :mod:`ketasim.clinic.individual`). A page that finds no
    row for the current version adds a ``pending`` one and the background worker fills it in;
    rows are derived data (recomputed, never audited)."""

    __tablename__ = "individual_forecasts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    # pending (being computed), done (forecast and suggestion in), failed (the data's or the
    # model's reason in ``error``), error (failed unexpectedly: computed again later)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    forecast: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    recommendation: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                         nullable=True)
    __table_args__ = (UniqueConstraint("patient_id", "version",
                                       name="uq_individual_forecast_version"),)


class PlannedSession(Base):
    """A next session a prescriber accepted into a plan from the individual forecast's
    suggestion: its date, dose and the spacing after it, with the data version it was
    accepted on (audited)."""

    __tablename__ = "planned_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("treatment_plans.id"))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    compound: Mapped[str] = mapped_column(String(20))
    route: Mapped[str] = mapped_column(String(30))
    dose_mg: Mapped[float] = mapped_column(Float)
    duration_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    interval_days: Mapped[float] = mapped_column(Float)
    sessions: Mapped[int] = mapped_column(Integer)
    data_version: Mapped[str] = mapped_column(String(64))
    # what was suggested and forecast when it was accepted, and the dose check's record
    detail: Mapped[dict] = mapped_column(JSON)
    accepted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DrugLevel(Base):
    """A measured drug level of a patient (ng/mL of one analyte of
    :data:`ketasim.estimation.patient.LEVEL_KINDS`), with when the sample was drawn (UTC) and
    who entered it; in the clinic's scope through its patient. The individual forecast reads
    it (:mod:`ketasim.clinic.individual`); each row is fingerprinted in the audit chain."""

    __tablename__ = "drug_levels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    analyte: Mapped[str] = mapped_column(String(40))
    value_ng_ml: Mapped[float] = mapped_column(Float)
    drawn_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the stated time
    entered_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # server time
    # one-use token of the form that entered it (a double-click records once)
    form_token: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)


class DoseLimitsVersion(Base):
    """One version of a clinic's dose-range limits (a new row for every change; the latest
    by id applies)."""

    __tablename__ = "dose_limits_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    version: Mapped[str] = mapped_column(String(60))
    limits: Mapped[dict] = mapped_column(JSON)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditHead(Base):
    """The chain's anchored end: one row (id 1) with the last entry's sequence number and MAC,
    sealed by an HMAC under the audit key and updated in the same transaction as each append,
    so deleting the last entries is detected without an external ``--head``."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    mac: Mapped[str] = mapped_column(String(64))
    seal: Mapped[str] = mapped_column(String(64))


class LoginThrottle(Base):
    """Failed log-ins per client address (and per address and user name): exponential
    back-off instead of locking an account, so nobody can lock another user out."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                           nullable=True)


class AuditRow(Base):
    """One entry of the HMAC audit chain (see ketasim.clinic.audit)."""

    __tablename__ = "audit_entries"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict] = mapped_column(JSON)
    prev: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


__all__ = ["AuditHead", "AuditRow", "Base", "Clinic", "ConsultationRequest", "DoseLimitsVersion",
           "DrugLevel",
           "IndividualForecast", "LoginThrottle", "MonitoredSessionRow", "Patient",
           "PlannedSession", "QuestionnaireResponse", "SafetyAlert", "SessionEvent",
           "TreatmentPlan", "User", "WebSession"]
