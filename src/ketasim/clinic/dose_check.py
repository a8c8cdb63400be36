"""Dose-range checking: clinic-owned, versioned limits with soft warnings and hard stops.

A :class:`DoseLimits` table (pydantic, loaded from a clinic's file) says what is accepted;
:func:`check_dose` returns every finding with its severity, and :func:`authorize` accepts an
override only with a reason (soft) or a reason and a second clinician (hard), returning the
audit record. The default values are the worked example of
shared/reference/reliability-security.md §4.2 (C1, C2) — each clinic sets its own.

Caught on purpose: doses ≥ 10× the protocol dose, mg typed into a mg/kg field, a weight in
pounds typed as kilograms (×2.2 against the last weight), weight jumps > 10 %, stale or
implausible weights, esketamine outside whole 28-mg devices or above 84 mg, short IV
infusions, and dosing more often than the label schedule.

>>> from datetime import datetime, timedelta, timezone
>>> now = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
>>> patient = PatientDoseContext(weight_kg=70, weight_measured_at=now - timedelta(days=2))
>>> order = DoseOrder(compound="racemic", route="iv_infusion", amount=0.5, unit="mg/kg",
...                   duration_min=40, time=now)
>>> check_dose(order, patient, DoseLimits()).verdict
'accept'
>>> check_dose(order.model_copy(update={"amount": 35.0}), patient, DoseLimits()).verdict
'hard'
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ketasim.dosing.route import Route
from ketasim.errors import KetasimError

Severity = Literal["soft", "hard"]
EXAMPLE = "example value from reliability-security.md §4.2 C1/C2; set by each clinic"


class DoseCheckError(KetasimError):
    """A dose order or an override that cannot be accepted as given."""


class DoseLimits(BaseModel):
    """A clinic's dose-range table (versioned; every change is a new version)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = "example-1"
    effective: date = date(2026, 1, 1)
    owner: str = "example clinic"
    source: str = EXAMPLE
    weight_range_kg: tuple[float, float] = (30.0, 250.0)
    weight_max_age_days: int = Field(30, ge=0)
    weight_jump_fraction: float = Field(0.10, gt=0)
    racemic_iv_mg_per_kg_soft: float = Field(0.75, gt=0)
    racemic_iv_mg_per_kg_hard: float = Field(1.0, gt=0)
    racemic_iv_min_duration_min: float = Field(40.0, ge=0)
    esketamine_device_mg: float = Field(28.0, gt=0)
    esketamine_max_mg: float = Field(84.0, gt=0)
    esketamine_label_doses_mg: tuple[float, ...] = (56.0, 84.0)
    esketamine_max_sessions_7d: int = Field(2, ge=1)
    protocol_multiple_hard: float = Field(10.0, gt=1)

    @field_validator("racemic_iv_mg_per_kg_hard")
    @classmethod
    def _hard_above_soft(cls, v: float, info: object) -> float:
        soft = getattr(info, "data", {}).get("racemic_iv_mg_per_kg_soft", 0.0)
        if v < soft:
            raise ValueError("the hard limit must not be below the soft limit")
        return v


class DoseOrder(BaseModel):
    """What the prescriber entered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    compound: Literal["racemic", "esketamine"]
    route: str
    amount: float = Field(gt=0)
    unit: Literal["mg", "mg/kg"]
    time: datetime
    duration_min: float | None = Field(default=None, gt=0)
    protocol_dose_mg: float | None = Field(default=None, gt=0)

    @field_validator("route")
    @classmethod
    def _route(cls, v: str) -> str:
        return Route.parse(v).value


class PatientDoseContext(BaseModel):
    """What the chart knows: the weight (and when it was measured), earlier weights and
    earlier sessions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weight_kg: float = Field(gt=0)
    weight_measured_at: datetime
    previous_weight_kg: float | None = Field(default=None, gt=0)
    session_times: tuple[datetime, ...] = ()


class Finding(BaseModel):
    """One reason to stop or warn."""

    model_config = ConfigDict(frozen=True)

    rule: str
    severity: Severity
    message: str
    fix: str


class DoseCheck(BaseModel):
    """The result of a check: the dose in mg, the findings and the verdict."""

    model_config = ConfigDict(frozen=True)

    dose_mg: float
    dose_mg_per_kg: float
    findings: tuple[Finding, ...]
    limits_version: str

    @property
    def verdict(self) -> Literal["accept", "soft", "hard"]:
        """``hard`` if any hard stop, ``soft`` if only warnings, else ``accept``."""
        if any(f.severity == "hard" for f in self.findings):
            return "hard"
        return "soft" if self.findings else "accept"


def check_dose(order: DoseOrder, patient: PatientDoseContext, limits: DoseLimits) -> DoseCheck:
    """Check one dose order against the clinic's limits and the patient's chart."""
    f: list[Finding] = []

    def add(rule: str, severity: Severity, message: str, fix: str) -> None:
        f.append(Finding(rule=rule, severity=severity, message=message, fix=fix))

    w = patient.weight_kg
    lo, hi = limits.weight_range_kg
    if not lo <= w <= hi:
        add("weight_range", "hard", f"weight {w:g} kg is outside {lo:g}-{hi:g} kg",
            "re-weigh the patient and enter kilograms")
    age = order.time - patient.weight_measured_at
    if age > timedelta(days=limits.weight_max_age_days) or age < timedelta(0):
        add("weight_recent", "hard", f"the weight was measured {age.days} days before the dose",
            f"weigh the patient (a weight within {limits.weight_max_age_days} days is needed)")
    if patient.previous_weight_kg:
        ratio = w / patient.previous_weight_kg
        if abs(ratio - 2.2046) < 0.11 or abs(ratio - 1 / 2.2046) < 0.023:
            add("weight_lb_kg", "hard", f"the weight {w:g} kg is 2.2× or 1/2.2× the last "
                f"({patient.previous_weight_kg:g} kg): pounds and kilograms mixed up?",
                "enter the weight in kilograms")
        elif abs(ratio - 1) > limits.weight_jump_fraction:
            add("weight_jump", "soft", f"the weight changed by {abs(ratio - 1) * 100:.0f} % "
                f"since the last ({patient.previous_weight_kg:g} kg)",
                "confirm the weight")
    dose_mg = order.amount * w if order.unit == "mg/kg" else order.amount
    per_kg = dose_mg / w
    route = Route(order.route)
    if order.compound == "racemic" and route.is_intravenous:
        if order.unit == "mg/kg" and order.amount > 5 * limits.racemic_iv_mg_per_kg_hard \
                and order.amount / w <= limits.racemic_iv_mg_per_kg_hard:
            add("mg_as_mg_per_kg", "hard", f"{order.amount:g} mg/kg looks like {order.amount:g} "
                f"mg typed into the mg/kg field ({order.amount / w:.2g} mg/kg)",
                "enter the dose in the unit you mean")
        if per_kg > limits.racemic_iv_mg_per_kg_hard:
            add("racemic_iv_hard", "hard", f"{per_kg:.3g} mg/kg exceeds the hard limit "
                f"{limits.racemic_iv_mg_per_kg_hard:g} mg/kg", "lower the dose")
        elif per_kg > limits.racemic_iv_mg_per_kg_soft:
            add("racemic_iv_soft", "soft", f"{per_kg:.3g} mg/kg is above "
                f"{limits.racemic_iv_mg_per_kg_soft:g} mg/kg", "confirm the dose")
        if route is Route.IV_BOLUS or (order.duration_min is not None and
                                       order.duration_min < limits.racemic_iv_min_duration_min):
            got = "a bolus" if order.duration_min is None else f"{order.duration_min:g} min"
            add("racemic_iv_duration", "soft", f"infusion over {got} is shorter than "
                f"{limits.racemic_iv_min_duration_min:g} min",
                "infuse over the protocol duration")
    if order.compound == "esketamine" and route is Route.INTRANASAL:
        dev = dose_mg / limits.esketamine_device_mg
        if abs(dev - round(dev)) > 1e-9:
            add("esketamine_devices", "hard", f"{dose_mg:g} mg is not a whole number of "
                f"{limits.esketamine_device_mg:g}-mg devices", "give whole devices")
        if dose_mg > limits.esketamine_max_mg:
            add("esketamine_max", "hard", f"{dose_mg:g} mg exceeds "
                f"{limits.esketamine_max_mg:g} mg per session", "give at most "
                f"{limits.esketamine_max_mg:g} mg")
        elif dose_mg not in limits.esketamine_label_doses_mg:
            add("esketamine_label_dose", "soft", f"{dose_mg:g} mg is not a label dose "
                f"({', '.join(f'{d:g}' for d in limits.esketamine_label_doses_mg)} mg)",
                "confirm the dose")
        recent = [t for t in patient.session_times
                  if timedelta(0) <= order.time - t < timedelta(days=7)]
        if len(recent) + 1 > limits.esketamine_max_sessions_7d:
            add("esketamine_frequency", "soft", f"{len(recent) + 1} sessions within 7 days "
                f"exceed the label's {limits.esketamine_max_sessions_7d}",
                "confirm the schedule")
    if order.protocol_dose_mg and dose_mg >= limits.protocol_multiple_hard * \
            order.protocol_dose_mg:
        add("ten_fold", "hard", f"{dose_mg:g} mg is ≥ {limits.protocol_multiple_hard:g}× the "
            f"protocol dose ({order.protocol_dose_mg:g} mg)", "check units and decimal point")
    return DoseCheck(dose_mg=dose_mg, dose_mg_per_kg=per_kg, findings=tuple(f),
                     limits_version=limits.version)


class Override(BaseModel):
    """A clinician's decision to proceed despite findings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str
    clinician: str
    second_clinician: str | None = None
    at: datetime


def authorize(check: DoseCheck, override: Override | None = None) -> dict[str, object]:
    """Accept a checked dose, with an override where findings demand one; returns the
    audit record (what was found, who decided, why, under which limits version)."""
    verdict = check.verdict
    if verdict != "accept":
        if override is None:
            raise DoseCheckError("override", f"the dose has {verdict} findings: "
                                 + "; ".join(x.message for x in check.findings),
                                 "change the order or record an override with a reason")
        if len(override.reason.strip()) < 10:
            raise DoseCheckError("override.reason", "is missing or too short",
                                 "explain the clinical reason (10 characters or more)")
        if verdict == "hard":
            second = (override.second_clinician or "").strip()
            if not second or second == override.clinician.strip():
                raise DoseCheckError("override.second_clinician",
                                     "a hard stop needs a second clinician",
                                     "have a second clinician confirm the override")
    return {
        "dose_mg": check.dose_mg, "verdict": verdict, "limits_version": check.limits_version,
        "findings": [x.model_dump() for x in check.findings],
        "override": None if override is None else override.model_dump(mode="json"),
    }


__all__ = ["DoseCheck", "DoseCheckError", "DoseLimits", "DoseOrder", "Finding", "Override",
           "PatientDoseContext", "authorize", "check_dose"]
