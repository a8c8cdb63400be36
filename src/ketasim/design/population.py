"""A maintenance schedule for a population: which candidate meets the targets with the
fewest sessions.

A design file (TOML) names the indication, the induction, the maintenance candidates
(intervals × doses, route and infusion as in a regimen text) and the targets::

    indication = "trd"
    induction = "0.5 mg/kg IV over 40 min twice weekly for 3 weeks"
    weight_kg = 70                 # the typical patient's PK (see below)
    patients = 2000
    seed = 1
    [maintenance]
    intervals_days = [7, 14, 21, 28]
    doses = ["0.5 mg/kg", "0.75 mg/kg"]
    route = "IV over 40 min"
    weeks = 12
    [targets]
    max_relapse = 0.3              # among responders at the end of induction
    min_response_end = 0.4         # responding at the end of maintenance (optional)

Each virtual patient is drawn from the outcome model's prior (effect, placebo, baseline);
the drive of each candidate regimen is the typical patient's PK at ``weight_kg``: PK
variability moves D/(d50 + D) by about ±2 % (5th-95th percentile), small beside the
between-patient spread of the effect, so one drive per candidate serves every patient (the
same approximation as the individual forecast). Ratings are weekly (before that week's
session) on the indication's primary instrument; response 24 h after the last induction
session; every candidate sees the same patients and the same rating noise (common random
numbers), so differences between candidates are the schedules'; relapse at two consecutive
weekly ratings meeting the instrument's relapse rule.

ketasim supports decisions and research; it does not replace a clinician.

>>> d = DesignSpec(indication="trd",
...                induction="0.5 mg/kg IV over 40 min twice weekly for 2 weeks",
...                intervals_days=(14.0,), doses=("0.5 mg/kg",), route="IV over 40 min",
...                weeks=4, patients=200, max_relapse=0.9)
>>> r = run_design(d)
>>> len(r.candidates), r.candidates[0].sessions
(1, 2)
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ketasim.dosing.language import parse_regimen
from ketasim.errors import ModelError
from ketasim.estimation.forecast import responding
from ketasim.estimation.individual import patient_drive
from ketasim.outcomes.course import drug_share, expectancy, is_esketamine, placebo_share
from ketasim.outcomes.indications import get_indication, require_efficacy
from ketasim.outcomes.parameters import values
from ketasim.population.pkrun import DISCLAIMER
from ketasim.scales import get_instrument

from .recommend import dose_mg, relapsed


class DesignSpec(BaseModel):
    """A population design (module docstring), checked at the boundary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    indication: str
    induction: str
    intervals_days: tuple[float, ...] = Field(min_length=1)
    doses: tuple[str, ...] = Field(min_length=1)
    route: str = "IV over 40 min"
    weeks: int = Field(12, ge=2, le=104)
    weight_kg: float = Field(70.0, ge=30.0, le=200.0)
    patients: int = Field(2000, ge=50, le=100_000)
    seed: int = 1
    max_relapse: float = Field(0.3, gt=0.0, lt=1.0)
    min_response_end: float | None = Field(None, gt=0.0, lt=1.0)


def read_design(path: str | Path) -> DesignSpec:
    """Read a design TOML; bad files raise :class:`ModelError` naming the field."""
    p = Path(path)
    if not p.is_file():
        raise ModelError("design", f"{p} does not exist", "give the design file's path")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ModelError("design", f"is not valid TOML ({exc})", "fix the file") from None
    flat: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("maintenance", "targets")}
    flat.update(raw.get("maintenance", {}))
    flat.update(raw.get("targets", {}))
    try:
        spec = DesignSpec(**flat)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "design"
        raise ModelError(field, err["msg"], "see docs/estimation.md for the design file"
                         ) from None
    bad = [k for k in spec.intervals_days if not 3.0 <= k <= 28.0]
    if bad:
        raise ModelError("intervals_days", f"{bad[0]:g} days", "use 3-28 days")
    return spec


@dataclass(frozen=True)
class DesignCandidate:
    """One maintenance schedule and its population forecast."""

    regimen: str
    interval_days: float
    dose: str
    sessions: int
    p_response_induction: float
    p_relapse: float
    p_response_end: float
    meets_targets: bool

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class DesignResult:
    """Every candidate, the chosen one (None when none meets the targets), and why."""

    spec: DesignSpec
    candidates: tuple[DesignCandidate, ...]
    chosen: DesignCandidate | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (the CLI's ``--json``)."""
        return {"design": self.spec.model_dump(), "reason": self.reason,
                "recommended": None if self.chosen is None else self.chosen.to_json(),
                "candidates": [c.to_json() for c in self.candidates],
                "disclaimer": DISCLAIMER}


def candidate_regimens(spec: DesignSpec) -> list[tuple[float, str, str]]:
    """(interval, dose, regimen text) of every candidate."""
    out = []
    for k in spec.intervals_days:
        for dose in spec.doses:
            dose_mg(dose, spec.weight_kg)
            count = max(1, int(spec.weeks * 7 // k))
            text = f"{spec.induction} then {dose} {spec.route} every {k:g} days x {count}"
            parse_regimen(text)
            out.append((float(k), dose, text))
    return out


def run_design(spec: DesignSpec, progress: Callable[[int], None] | None = None
               ) -> DesignResult:
    """Evaluate every candidate on one virtual population (module docstring)."""
    ind = get_indication(spec.indication)
    require_efficacy(ind)
    if ind.pathway != "cascade":
        raise ModelError("indication", f"designs are built for the cascade indications, not "
                         f"{ind.name}", "use trd, bipolar_depression, ptsd …")
    v = values()
    inst = ind.instrument
    lo, hi = get_instrument(inst).total_range
    rng = np.random.default_rng(spec.seed)
    z_e, z_p, z_b, = rng.standard_normal((3, spec.patients))
    base = np.clip(ind.baseline_mean + ind.baseline_sd * z_b, lo + 1.0, hi)
    e_i = drug_share(z_e, ind, v)
    p_i = placebo_share(z_p, ind, v)
    induction = parse_regimen(spec.induction)
    end_ind = max(t for t, _, _ in induction.administrations(spec.weight_kg))
    sd = v["residual_fraction"] * (ind.baseline_mean - lo)
    # common random numbers: every candidate sees the same patients and the same rating noise
    noise = rng.standard_normal((spec.patients, spec.weeks + 2))
    out = []
    for j, (k, dose, text) in enumerate(candidate_regimens(spec)):
        reg = parse_regimen(text)
        sessions = [t for t, _, _ in reg.administrations(spec.weight_kg)]
        maint = [t for t in sessions if t > end_ind + 1e-9]
        t_resp = end_ind + 24.0
        start = maint[0] if maint else end_ind + 168.0
        visits = start + 168.0 * np.arange(0, spec.weeks + 1) - 1.0
        t = np.concatenate([[t_resp], visits])
        d = patient_drive(reg, ind, spec.weight_kg, t)
        f = d / (v["d50"] + d) * (v["esketamine_efficacy"] if is_esketamine(text) else 1.0)
        x = expectancy(t, sessions, v)
        y = 1.0 - (1.0 - p_i[:, None] * x[None, :]) * (1.0 - e_i[:, None] * f[None, :])
        mu = lo + (base[:, None] - lo) * (1.0 - y)
        r = np.clip(np.rint(mu + sd * noise), lo, hi)
        resp = responding(r[:, 0], base, inst)
        rel = relapsed(r[:, 1:], base, inst)
        p_rel = float(rel[resp].mean()) if resp.any() else 1.0
        p_end = float(responding(r[:, -1], base, inst).mean())
        ok = p_rel <= spec.max_relapse and (spec.min_response_end is None
                                            or p_end >= spec.min_response_end)
        out.append(DesignCandidate(text, k, dose, len(maint), round(float(resp.mean()), 3),
                                   round(p_rel, 3), round(p_end, 3), ok))
        if progress is not None:
            progress(j + 1)
    ok_c = [c for c in out if c.meets_targets]
    if ok_c:
        chosen = min(ok_c, key=lambda c: (c.sessions, dose_mg(c.dose, spec.weight_kg),
                                            -c.interval_days))
        reason = (f"the fewest maintenance sessions ({chosen.sessions} in {spec.weeks} weeks) "
                  f"meeting the targets (relapse {chosen.p_relapse:.2f} ≤ {spec.max_relapse:g})")
    else:
        chosen = None
        reason = "no candidate meets the targets; the table shows how close each comes"
    order = sorted(out, key=lambda c: (c.sessions, dose_mg(c.dose, spec.weight_kg)))
    return DesignResult(spec, tuple(order), chosen, reason)


__all__ = ["DesignCandidate", "DesignResult", "DesignSpec", "candidate_regimens",
           "read_design", "run_design"]
