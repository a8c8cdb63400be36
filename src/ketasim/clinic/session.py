"""A monitored dosing session and the rules it must follow before discharge.

Rules (the SPRAVATO label and its REMS, bibliography key ``spravato-label``):
esketamine needs REMS enrolment before a session is scheduled; a pre-dose check records BP,
HR and SpO₂ and the contraindication re-check, and a pre-dose BP above the threshold (e.g.
> 140/90) needs a documented override; BP is taken ~40 min after the first administration
(30–60 min) and before discharge (within 30 min); the session cannot close less than 2 h after
the first administration, nor before the clinician confirms that sedation, dissociation and
respiratory effects have resolved; the outpatient monitoring form is due within 7 days.
Vitals beyond the clinic's thresholds raise alerts. Times are timezone-aware (UTC stored).

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
>>> rules = MonitoringRules(spo2_min=92, moaas_alert_max=2)
>>> s = MonitoredSession("esketamine", rules, rems_enrolled=True)
>>> s.predose_check(t0, sbp=128, dbp=80, hr=70, spo2=98, contraindications_confirmed=True)
>>> s.administer(t0 + timedelta(minutes=5), dose_mg=84)
>>> s.vitals(t0 + timedelta(minutes=45), sbp=150, dbp=92, hr=80, spo2=97)  # no alert
[]
>>> s.vitals(t0 + timedelta(minutes=120), sbp=130, dbp=82, hr=72, spo2=98)
[]
>>> s.discharge(t0 + timedelta(minutes=126), effects_resolved=True).isoformat()
'2026-03-09T11:06:00+00:00'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ketasim.errors import KetasimError


class SessionError(KetasimError):
    """An action the session rules do not allow (the message says what is missing)."""


class MonitoringRules(BaseModel):
    """Clinic-set thresholds. SpO₂ and MOAA/S alert thresholds have no default: the clinic
    must set them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spo2_min: float = Field(gt=50, le=100)
    moaas_alert_max: int = Field(ge=0, le=5)
    predose_sbp_max: float = 140.0  # spravato-label ([M] for the exact wording)
    predose_dbp_max: float = 90.0
    sbp_rise_alert: float = 40.0  # label: SBP rise ≥ 40 mmHg (spravato-label)
    dbp_rise_alert: float = 25.0  # label: DBP rise ≥ 25 mmHg
    min_observation_min: float = 120.0  # REMS: monitor ≥ 2 h
    bp_check_window_min: tuple[float, float] = (30.0, 60.0)  # "~40 min after"
    predischarge_bp_within_min: float = 30.0
    form_due_days: int = 7  # REMS patient monitoring form


@dataclass
class Vitals:
    """One set of observations."""

    time: datetime
    sbp: float
    dbp: float
    hr: float
    spo2: float
    moaas: int | None = None
    cadss: int | None = None


@dataclass
class Alert:
    """A threshold crossed; a clinician must acknowledge it."""

    time: datetime
    kind: Literal["bp", "spo2", "sedation"]
    message: str
    acknowledged_by: str | None = None


def _hm(t: datetime, tz: tzinfo) -> str:
    """A time of day to the minute in ``tz``, zone named (``11:05 CET``)."""
    local = t.astimezone(tz)
    return f"{local:%H:%M} {local.tzname() or 'UTC'}"


def _aware(t: datetime, field_name: str) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise SessionError(field_name, "has no time zone", "record times in UTC")
    return t


@dataclass
class MonitoredSession:
    """One session's events, checked as they are recorded."""

    compound: Literal["racemic", "esketamine"]
    rules: MonitoringRules
    rems_enrolled: bool = False
    predose: Vitals | None = None
    predose_override: str | None = None
    administrations: list[tuple[datetime, float]] = field(default_factory=list)
    observations: list[Vitals] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    discharged_at: datetime | None = None
    tz: tzinfo = UTC  # the zone the messages name times in (the clinic's)

    def __post_init__(self) -> None:
        if self.compound == "esketamine" and not self.rems_enrolled:
            raise SessionError("rems_enrolled", "the patient is not enrolled in the REMS",
                               "enrol the patient before scheduling esketamine")

    def _open(self) -> None:
        if self.discharged_at is not None:
            raise SessionError("session", "is closed", "start a new session")

    def predose_check(self, time: datetime, *, sbp: float, dbp: float, hr: float, spo2: float,
                      contraindications_confirmed: bool, override_reason: str | None = None
                      ) -> None:
        """Record the pre-dose check (BP above the threshold needs an override reason)."""
        self._open()
        _aware(time, "time")
        if not contraindications_confirmed:
            raise SessionError("contraindications", "were not re-checked",
                               "confirm the contraindication re-check before dosing")
        high = sbp > self.rules.predose_sbp_max or dbp > self.rules.predose_dbp_max
        if high and not (override_reason and len(override_reason.strip()) >= 10):
            raise SessionError("predose BP", f"{sbp:g}/{dbp:g} mmHg is above "
                               f"{self.rules.predose_sbp_max:g}/{self.rules.predose_dbp_max:g}",
                               "do not dose, or document the reason for proceeding")
        self.predose = Vitals(time, sbp, dbp, hr, spo2)
        self.predose_override = override_reason if high else None

    def administer(self, time: datetime, *, dose_mg: float) -> None:
        """Record an administration (after the pre-dose check)."""
        self._open()
        _aware(time, "time")
        if self.predose is None:
            raise SessionError("predose", "no pre-dose check recorded",
                               "record BP, HR, SpO₂ and the contraindication check first")
        if time < self.predose.time:
            raise SessionError("time", "before the pre-dose check", "check the clock")
        self.administrations.append((time, dose_mg))

    def vitals(self, time: datetime, *, sbp: float, dbp: float, hr: float, spo2: float,
               moaas: int | None = None, cadss: int | None = None) -> list[Alert]:
        """Record observations; returns the alerts they raise."""
        self._open()
        _aware(time, "time")
        v = Vitals(time, sbp, dbp, hr, spo2, moaas, cadss)
        self.observations.append(v)
        new: list[Alert] = []
        base = self.predose
        if base is not None and (sbp - base.sbp >= self.rules.sbp_rise_alert or
                                 dbp - base.dbp >= self.rules.dbp_rise_alert):
            new.append(Alert(time, "bp", f"BP {sbp:g}/{dbp:g} mmHg: a rise of "
                             f"{sbp - base.sbp:g}/{dbp - base.dbp:g} from pre-dose"))
        if spo2 < self.rules.spo2_min:
            new.append(Alert(time, "spo2", f"SpO₂ {spo2:g} % is below {self.rules.spo2_min:g} %"))
        if moaas is not None and moaas <= self.rules.moaas_alert_max:
            new.append(Alert(time, "sedation", f"MOAA/S {moaas} (deep sedation)"))
        self.alerts.extend(new)
        return new

    @property
    def first_administration(self) -> datetime | None:
        """Time of the first administration."""
        return min((t for t, _ in self.administrations), default=None)

    def earliest_discharge(self) -> datetime | None:
        """The first time the session may close (2 h after the first administration)."""
        first = self.first_administration
        return None if first is None else first + timedelta(
            minutes=self.rules.min_observation_min)

    def discharge(self, time: datetime, *, effects_resolved: bool) -> datetime:
        """Close the session; returns when the monitoring form is due."""
        self._open()
        _aware(time, "time")
        first = self.first_administration
        if first is None:
            raise SessionError("administration", "none recorded", "record the dose first")
        earliest = self.earliest_discharge()
        assert earliest is not None
        if time < earliest:
            left = (earliest - time).total_seconds() / 60
            raise SessionError("discharge", f"{left:.0f} min before the end of the "
                               f"{self.rules.min_observation_min:g}-min observation",
                               f"keep monitoring until {_hm(earliest, self.tz)}")
        lo, hi = self.rules.bp_check_window_min
        if not any(lo <= (v.time - first).total_seconds() / 60 <= hi
                   for v in self.observations):
            raise SessionError("BP", f"no BP {lo:g}-{hi:g} min after the first administration",
                               "record the ~40-min BP")
        if not any(0 <= (time - v.time).total_seconds() / 60 <= self.rules.
                   predischarge_bp_within_min for v in self.observations):
            raise SessionError("BP", "no pre-discharge BP", "record BP before discharge")
        if not effects_resolved:
            raise SessionError("effects", "sedation, dissociation or respiratory effects have "
                               "not resolved", "keep monitoring until they have")
        open_alerts = [a for a in self.alerts if a.acknowledged_by is None]
        if open_alerts:
            raise SessionError("alerts", f"{len(open_alerts)} alert(s) not acknowledged",
                               "a clinician must acknowledge every alert")
        self.discharged_at = time
        return time + timedelta(days=self.rules.form_due_days)

    def acknowledge(self, alert: Alert, clinician: str) -> None:
        """A clinician acknowledges an alert."""
        if not clinician.strip():
            raise SessionError("clinician", "is empty", "name the acknowledging clinician")
        alert.acknowledged_by = clinician


__all__ = ["Alert", "MonitoredSession", "MonitoringRules", "SessionError", "Vitals"]
