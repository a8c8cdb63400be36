"""Long-term effects of a regimen: exposure, dissociation tolerance, and risk flags.

What the published evidence supports, and no more (sources name bibliography keys):

- **Cumulative exposure**: sessions, total mg and mg/kg, sessions per 4 weeks, longest
  continuous infusion.
- **Dissociation tolerance**: dissociation attenuates with repeated dosing (Singh 2016,
  Popova 2019 [V]) while the antidepressant effect does not (Singh 2016: day-15 change held
  with 2x and 3x weekly dosing [V]). ketasim gives a *relative* index per session (peak
  effect-site NMDA occupancy × a tolerance factor), not CADSS points: the reference has no
  CADSS magnitude (issue #4 is blocked on it). The tolerance rate is assumed.
- **Risk flags** (bladder, liver, dependence, cognition): rules with their sources; they
  flag what a clinician should check, they do not estimate a probability.

>>> s = summarise_regimen("0.5 mg/kg IV over 40 min twice weekly for 4 weeks", weight_kg=70)
>>> s.sessions, s.total_mg, [f.id for f in s.flags]
(8, 280.0, ['dependence_monitoring'])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ketasim.dosing.language import parse_regimen
from ketasim.model.model import Parameter
from ketasim.pk.library._common import assumed

TOLERANCE: dict[str, Parameter] = {
    "attenuation_per_session": assumed(
        0.85, "fraction", "dissociation at a session relative to the previous one (same dose)",
        "dissociation 'attenuates with repeated dosing' (singh2016; popova2019) [V] with no "
        "rate given; 15 % per session is a placeholder that only orders sessions"),
    "t_half_recovery_h": assumed(
        336.0, "h", "recovery half-life of dissociation tolerance between sessions",
        "no data; two weeks keeps tolerance across twice-weekly induction and weekly "
        "maintenance"),
}


@dataclass(frozen=True)
class RiskFlag:
    """Something a clinician should check, with why and the source."""

    id: str
    severity: str
    message: str
    source: str


@dataclass(frozen=True)
class LongTermSummary:
    """Exposure, relative dissociation per session, and risk flags."""

    sessions: int
    total_mg: float
    total_mg_per_kg: float
    max_sessions_per_4_weeks: int
    longest_infusion_h: float
    course_weeks: float
    dissociation_relative: list[float]
    flags: list[RiskFlag] = field(default_factory=list)


def tolerance_factors(session_times_h: list[float]) -> np.ndarray:
    """Relative dissociation per session from tolerance alone (first session = 1)."""
    a = TOLERANCE["attenuation_per_session"].value
    k = np.log(2.0) / TOLERANCE["t_half_recovery_h"].value
    out = []
    tol = 0.0  # accumulated tolerance (sessions' worth)
    last = None
    for t in session_times_h:
        if last is not None:
            tol = (tol + 1.0) * np.exp(-k * (t - last))
        out.append(a ** tol)
        last = t
    return np.array(out)


def summarise_regimen(regimen: str, *, weight_kg: float, substance_use_history: bool = False
                      ) -> LongTermSummary:
    """Exposure, tolerance and risk flags of a regimen for one patient."""
    reg = parse_regimen(regimen)
    admin = reg.administrations(weight_kg)
    times = [t for t, _, _ in admin]
    total = float(sum(mg for _, mg, _ in admin))
    longest = max((d.duration or (mg / d.rate if d.rate else 0.0)) for _, mg, d in admin) \
        if admin else 0.0
    per4 = max(sum(1 for u in times if t <= u < t + 672.0) for t in times) if times else 0
    weeks = (max(times) - min(times)) / 168.0 if times else 0.0
    flags: list[RiskFlag] = []
    if longest >= 24.0:
        flags.append(RiskFlag(
            "liver", "check", f"continuous infusion of {longest:g} h: check liver enzymes "
            "before and after", "noppers2011: two 100-h S-ketamine infusions 16 days apart → "
            "3/6 drug-induced liver injury [V]"))
    if weeks > 12.0:
        flags.append(RiskFlag(
            "bladder", "monitor", f"treatment over {weeks:.0f} weeks: ask about urinary "
            "symptoms at each visit", "winstock2012: urinary symptoms in 26.6 % of past-year "
            "recreational users, rising with dose and frequency [V]; therapeutic exposure is "
            "far lower"))
        flags.append(RiskFlag(
            "cognition", "monitor", "long-term course: repeat a brief cognitive screen "
            "periodically", "morgan2010: deficits in frequent recreational users [V]; "
            "six-infusion courses showed none (secondary summaries) [V]"))
    if per4 >= 8 or substance_use_history:
        flags.append(RiskFlag(
            "dependence_monitoring", "monitor", "frequent dosing" if per4 >= 8 else
            "history of substance use: assess abuse risk before each course",
            "Schedule III; esketamine drug liking ≈ IV ketamine; assess abuse risk "
            "(spravato-label) [V]"))
    return LongTermSummary(len(times), round(total, 3), round(total / weight_kg, 4), per4,
                           float(longest), round(weeks, 2),
                           [float(x) for x in tolerance_factors(times)], flags)


__all__ = ["TOLERANCE", "LongTermSummary", "RiskFlag", "summarise_regimen",
           "tolerance_factors"]
