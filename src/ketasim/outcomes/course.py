"""From a regimen to symptom trajectories for a virtual population (one trial arm).

The latent state is the fraction of baseline severity that has gone, Y(t), built from three
independent routes to improvement:

    1 − Y = (1 − P(t)) · (1 − A(t)) · (1 − E(t))

- P: placebo/expectancy, P(t) = pᵢ (1 − 2^(−t/t½p)) while sessions continue, waning with the
  a half-life of a week from 24 h after the last session (assumed: expectancy is tied to being
  treated; control arms follow their ``sham`` schedule, by default one session at 0); pᵢ
  logit-normal around the indication's inert-placebo response. Every arm gets it; a midazolam
  arm's is ``active_placebo`` times larger (an active placebo that is felt). Ketamine arms get
  the inert-placebo expectancy; what they feel is part of the drug effect E.
- A: a newly started oral antidepressant (only with ``background="oral_antidepressant"``).
- E: ketamine, E = Eᵢ · D/(d50 + D) from the cascade's drive D (reference units); Eᵢ
  logit-normal around the indication's ``emax``. For chronic pain (CRPS) the Dahan 2011 slow
  effect compartment on S-ketamine plasma replaces the cascade.

An instrument's score is baseline · (1 − Y) plus rating noise, clipped to its range. Baselines
of other instruments are taken at the same fraction of their range as the primary one
(assumed).

C-SSRS ideation severity (0-5) has a component of its own, for indications that give an
ideation baseline or designs that supply one (suicidal ideation improves partly independently
of mood, Wilkinson 2018; remission means a score of 0):

    1 − Y_SI = (1 − P) · (1 − A) · (1 − N) · (1 − E_SI),   E_SI = Eᵢ' · D_SI/(d50_SI + D_SI)

with the mood model's P and A; N(t) = ``ideation_natural`` · (1 − 2^(−t/t½)), the fall under
usual care from the high point at which patients enrol; D_SI the cascade's fast and slow
components weighted by ``w_fast_ideation``; Eᵢ' logit-normal around ``emax_ideation`` with
the same patient draw as Eᵢ. The rating is the baseline (independent of the mood baseline)
times 1 − Y_SI plus visit-to-visit variability (``ideation_visit_sd`` points), rounded to a
level. Calibrated on the Taiwan RCT (Su et al. 2023).

>>> c = simulate_course(Arm(regimen="0.5 mg/kg IV over 40 min"), "trd", n=200, seed=1,
...                     horizon_h=24 * 7)
>>> s = c.scores(); s.shape == (200, len(c.times))
True
>>> bool(s[:, c.index(24.0)].mean() < c.baseline.mean() - 8)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy.special import expit, logit

from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import Regimen
from ketasim.errors import ModelError
from ketasim.mechanism.cascade import (
    Cascade,
    CascadeInputs,
    cascade_inputs,
    course_grid,
    run_cascade,
)
from ketasim.mechanism.kinetics import relax
from ketasim.mechanism.parameters import Branches
from ketasim.outcomes.indications import Indication, get_indication, require_efficacy
from ketasim.outcomes.parameters import values
from ketasim.population.pkrun import run_pk
from ketasim.scales import get_instrument

Control = Literal["placebo", "midazolam"]
IDEATION = "cssrs_ideation"
PSYCHOTHERAPIES = ("cbt", "mbrp", "psychotherapy")


@dataclass(frozen=True)
class Arm:
    """One arm: a ketamine regimen or a control, with optional adjuncts.

    ``regimen`` and ``sham`` take regimen text or a :class:`~ketasim.dosing.regimen.Regimen`;
    text is parsed once, here, and the arm keeps both: the text in ``regimen``/``sham`` (for
    display and JSON) and the parsed object in ``dosing``/``sham_dosing``, which everything
    below uses.
    """

    regimen: str | Regimen | None = None
    control: Control | None = None
    psychotherapy: str | None = None
    naltrexone: bool = False
    background: str | None = None
    model: str | None = None
    sham: str | Regimen | None = None
    large_trial: bool = False  # a large multi-site trial (n ≥ 100): the expectancy covariate
    dosing: Regimen | None = field(default=None, init=False, repr=False, compare=False)
    sham_dosing: Regimen | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.regimen is None) == (self.control is None):
            raise ModelError("arm", "needs exactly one of regimen or control",
                             'give regimen = "..." or control = "placebo" | "midazolam"')
        if self.control is not None and self.control not in ("placebo", "midazolam"):
            raise ModelError("control", f"is {self.control!r}", 'use "placebo" or "midazolam"')
        if self.psychotherapy is not None and self.psychotherapy not in PSYCHOTHERAPIES:
            raise ModelError("psychotherapy", f"is {self.psychotherapy!r}",
                             f"use one of {', '.join(PSYCHOTHERAPIES)}")
        if self.background not in (None, "oral_antidepressant"):
            raise ModelError("background", f"is {self.background!r}",
                             'use "oral_antidepressant" or leave it out')
        for name, parsed in (("regimen", "dosing"), ("sham", "sham_dosing")):
            given = getattr(self, name)
            if given is None:
                continue
            reg = given if isinstance(given, Regimen) else parse_regimen(given)
            object.__setattr__(self, parsed, reg)
            if isinstance(given, Regimen):
                object.__setattr__(self, name, given.to_text())

    @property
    def active_placebo(self) -> bool:
        """Whether this arm is an active placebo (midazolam)."""
        return self.control == "midazolam"

    def session_times(self) -> list[float]:
        """Treatment (or sham) session times: doses, the ``sham`` schedule of a control arm,
        or one visit at 0."""
        return _times(self.dosing or self.sham_dosing) or [0.0]

    def dose_times(self) -> list[float]:
        """Administration times (h)."""
        return _times(self.dosing)


def _times(regimen: Regimen | None) -> list[float]:
    """Administration times (h) of a regimen (none for no regimen)."""
    if regimen is None:
        return []
    return [t for t, _, _ in regimen.administrations(70.0)]


@lru_cache(maxsize=64)
def _pk_inputs(regimen: Regimen, model: str | None, n: int, seed: int, grid: bytes,
               weight_kg: float | None = None) -> tuple[CascadeInputs, np.ndarray]:
    t = np.frombuffer(grid)
    covs = {"weight": weight_kg} if weight_kg is not None else None
    run = run_pk(regimen, model=model, subjects=n, seed=seed, times=t, covariates=covs)
    s_keta = next((run.concentration(a, "ng/mL") for a in ("s_ketamine", "esketamine")
                   if a in run.concentrations), np.zeros((n, len(t))))
    return cascade_inputs(run), s_keta


@dataclass(frozen=True, eq=False)
class Ideation:
    """C-SSRS ideation of the same patients: improvement fraction (patients, times), latent
    baselines, and rating noise (standard normal, patients × times)."""

    improvement: np.ndarray
    baseline: np.ndarray
    noise: np.ndarray
    noise_sd: float


@dataclass(frozen=True, eq=False)
class Course:
    """Symptom trajectories of ``n`` virtual patients on one arm."""

    arm: Arm
    indication: Indication
    times: np.ndarray
    improvement: np.ndarray
    baseline: np.ndarray
    noise: np.ndarray
    residual_fraction: float
    drive: np.ndarray | None = None
    cascade: Cascade | None = None
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    ideation: Ideation | None = None

    @property
    def n(self) -> int:
        """Number of patients."""
        return int(self.improvement.shape[0])

    def index(self, time_h: float) -> int:
        """Index of the grid time nearest ``time_h``."""
        return int(np.argmin(np.abs(self.times - time_h)))

    def _ideation(self) -> Ideation:
        if self.ideation is None:
            raise ModelError("instrument", "cssrs_ideation is not forecast for "
                             f"{self.indication.name}",
                             "use suicidal_ideation, give ideation_baseline_mean, or "
                             "choose another instrument")
        return self.ideation

    def baseline_of(self, instrument: str | None = None) -> np.ndarray:
        """Baselines on ``instrument`` (default: the indication's)."""
        inst = get_instrument(instrument or self.indication.instrument)
        prim = get_instrument(self.indication.instrument)
        if inst.id == prim.id:
            return self.baseline
        if inst.id == IDEATION:
            return self._ideation().baseline
        lo, hi = prim.total_range
        frac = (self.baseline - lo) / (hi - lo)
        lo2, hi2 = inst.total_range
        return lo2 + frac * (hi2 - lo2)

    def scores(self, instrument: str | None = None, *, noise: bool = True) -> np.ndarray:
        """(patients, times) scores on ``instrument``: observed ratings (with rating noise,
        whole numbers as totals are) or, with ``noise=False``, the model's expectation."""
        inst = get_instrument(instrument or self.indication.instrument)
        base = self.baseline_of(inst.id)
        lo, hi = inst.total_range
        if inst.id == IDEATION:
            si = self._ideation()
            improvement, z, sd = si.improvement, si.noise, si.noise_sd
        else:
            improvement, z = self.improvement, self.noise
            sd = self.residual_fraction * float(np.mean(base - lo))
        s = lo + (base[:, None] - lo) * (1.0 - improvement)
        if noise:
            s = np.rint(s + sd * z)
        return np.clip(s, lo, hi)


def simulate_course(arm: Arm, indication: str | Indication, *, n: int, seed: int,
                    horizon_h: float, times: np.ndarray | None = None,
                    branches: Branches | None = None,
                    overrides: Mapping[str, float] | None = None,
                    baseline_mean: float | None = None, baseline_sd: float | None = None,
                    weight_kg: float | None = None, keep_cascade: bool = False,
                    ideation_baseline_mean: float | None = None) -> Course:
    """Simulate ``n`` patients of ``indication`` on ``arm`` from a seed (reproducible).

    ``weight_kg`` fixes every virtual patient's weight (a forecast for one person: the band
    is then the between-patient variability of response at that weight); ``baseline_mean``
    and ``baseline_sd`` override the indication's baseline distribution;
    ``ideation_baseline_mean`` sets (or, for a depression indication without one, gives) the
    mean C-SSRS ideation baseline, with the spread of the suicidal-ideation population."""
    ind = indication if isinstance(indication, Indication) else get_indication(indication)
    require_efficacy(ind)
    if n < 1:
        raise ModelError("n", f"is {n}", "simulate at least one patient")
    if ideation_baseline_mean is not None and ind.pathway != "cascade":
        raise ModelError("ideation_baseline_mean", f"ideation is not modelled for {ind.name}",
                         "leave it out")
    v = values(dict(overrides or {}))
    t = times if times is not None else course_grid(arm.dose_times() or [0.0], horizon_h)
    ss = np.random.SeedSequence(seed)
    pk_seed = int(ss.generate_state(1)[0])
    rng = np.random.default_rng(ss.spawn(1)[0])
    z_e, z_p, z_a = rng.standard_normal((3, n))
    noise = rng.standard_normal((n, len(t)))
    bmean = ind.baseline_mean if baseline_mean is None else baseline_mean
    inst = get_instrument(ind.instrument)
    lo, hi = inst.total_range
    bsd = ind.baseline_sd if baseline_sd is None else baseline_sd
    baseline = np.clip(bmean + bsd * rng.standard_normal(n), lo + 1.0, hi)

    p_i = placebo_share(z_p, ind, v, active=arm.active_placebo, large_trial=arm.large_trial)
    placebo = p_i[:, None] * expectancy(t, arm.session_times(), v)[None, :]
    parts = {"placebo": placebo}
    one_minus = 1.0 - placebo
    if arm.background == "oral_antidepressant":
        a_i = expit(logit(v["ad_max"]) + v["omega_placebo"] * z_a)
        ad = a_i[:, None] * (1.0 - 2.0 ** (-t / v["t_half_antidepressant_h"]))[None, :]
        parts["antidepressant"] = ad
        one_minus = one_minus * (1.0 - ad)
    not_drug = one_minus  # what placebo and antidepressant leave (ideation shares it)
    ad_part = parts.get("antidepressant")
    drive = None
    cascade = None
    if arm.dosing is not None:
        inputs, s_keta = _pk_inputs(arm.dosing, arm.model, n, pk_seed,
                                    np.ascontiguousarray(t, dtype=float).tobytes(), weight_kg)
        e_i = drug_share(z_e, ind, v)
        if ind.pathway == "analgesia":
            c50 = v["c50_analgesia_ng_ml"] * np.exp(v["omega_c50_analgesia"] * z_a)
            ce = relax(t, s_keta, v["t_half_analgesia_h"])
            effect = e_i[:, None] * ce / (c50[:, None] + ce)
        else:
            settings = cascade_settings(ind, v, psychotherapy=bool(arm.psychotherapy))
            block = v["naltrexone_block"] if arm.naltrexone else 0.0
            cascade = run_cascade(inputs, settings, branches, opioid_block=block)
            drive = np.maximum(cascade.drive, 0.0)
            effect = e_i[:, None] * drive / (v["d50"] + drive)
            if _is_esketamine(arm.dosing):
                # structural hypothesis H1: racemic carries an antidepressant contribution
                # (R-ketamine, (2R,6R)-HNK) that esketamine lacks (1 = none)
                effect = effect * v["esketamine_efficacy"]
        if ad_part is not None:
            # structural hypothesis H2: sub-multiplicative interaction with a newly started
            # oral antidepressant (0 = independent, multiplicative)
            effect = effect * (1.0 - v["ad_interaction"] * ad_part / v["ad_max"])
        parts["ketamine"] = effect
        one_minus = one_minus * (1.0 - effect)
    ideation = None
    if ind.forecasts_ideation or ideation_baseline_mean is not None:
        # drawn after everything else: adding ideation leaves the mood course unchanged
        ideation = _ideation(ind, ideation_baseline_mean, v, t, rng, not_drug, cascade, z_e)
    return Course(arm, ind, t, 1.0 - one_minus, baseline, noise, v["residual_fraction"],
                  drive, cascade if keep_cascade else None, parts, ideation)


def _ideation(ind: Indication, baseline_mean: float | None, v: Mapping[str, float],
              t: np.ndarray, rng: np.random.Generator, not_drug: np.ndarray,
              cascade: Cascade | None, z_e: np.ndarray) -> Ideation:
    """The C-SSRS ideation component (module docstring) for the same patients."""
    n = z_e.size
    lo, hi = get_instrument(IDEATION).total_range
    spread = ind if ind.forecasts_ideation else get_indication("suicidal_ideation")
    mean = baseline_mean if baseline_mean is not None else ind.ideation_baseline_mean
    base = np.clip(mean + spread.ideation_baseline_sd * rng.standard_normal(n), lo + 0.5, hi)
    noise = rng.standard_normal((n, len(t)))
    natural = v["ideation_natural"] * (1.0 - 2.0 ** (-t / v["t_half_ideation_natural_h"]))
    keep = not_drug * (1.0 - natural)[None, :]
    if cascade is not None:
        w = v["w_fast_ideation"]
        d_si = np.maximum(w * cascade.fast + (1.0 - w) * cascade.slow, 0.0)
        e_si = expit(logit(min(max(v["emax_ideation"], 1e-4), 0.999)) + v["omega_emax"] * z_e)
        keep = keep * (1.0 - e_si[:, None] * d_si / (v["d50_ideation"] + d_si))
    return Ideation(1.0 - keep, base, noise, v["ideation_visit_sd"])


@lru_cache(maxsize=256)
def _is_esketamine(reg: Regimen) -> bool:
    return any((d.compound or reg.compound) == "esketamine" for d in reg.doses)


def expectancy(t: np.ndarray, session_times: list[float], v: Mapping[str, float]
               ) -> np.ndarray:
    """The placebo/expectancy time course (0-1): rises from the first visit with half-life
    ``t_half_placebo_h``, wanes from 24 h after the last session (``t_half_placebo_wane_h``).
    Times before the first visit (t < 0) are 0.

    >>> from ketasim.outcomes.parameters import values
    >>> e = expectancy(np.array([0.0, 12.0, 1000.0]), [0.0], values())
    >>> [round(float(x), 3) for x in e]
    [0.0, 0.5, 0.013]
    """
    t = np.asarray(t, dtype=float)
    t_half_h, t_half_wane_h = v["t_half_placebo_h"], v["t_half_placebo_wane_h"]
    on = 1.0 - 2.0 ** (-np.maximum(t, 0.0) / t_half_h)
    end = max(session_times) + 24.0
    at_end = 1.0 - 2.0 ** (-end / t_half_h)
    return np.where(t <= end, on, at_end * 2.0 ** (-(t - end) / t_half_wane_h))


def placebo_share(z_p: np.ndarray, ind: Indication, v: Mapping[str, float], *,
                  active: bool = False, large_trial: bool = False) -> np.ndarray:
    """Each patient's placebo/expectancy plateau pᵢ (logit-normal, module docstring) from
    standard-normal ``z_p``.

    >>> from ketasim.outcomes.parameters import values
    >>> round(float(placebo_share(np.zeros(1), get_indication("trd"), values())[0]), 3) > 0
    True
    """
    p_mean = min(v.get(f"placebo_{ind.id}", 0.0) * (v["active_placebo"] if active else 1.0)
                 * (1.0 + v["large_trial_expectancy"] if large_trial else 1.0), 0.99)
    return np.asarray(expit(logit(max(p_mean, 1e-4)) + v["omega_placebo"] * z_p))


def drug_share(z_e: np.ndarray, ind: Indication, v: Mapping[str, float]) -> np.ndarray:
    """Each patient's maximal ketamine effect Eᵢ (logit-normal around the indication's
    ``emax``) from standard-normal ``z_e``.

    >>> from ketasim.outcomes.parameters import values
    >>> v = values(); ind = get_indication("trd")
    >>> bool(abs(drug_share(np.zeros(1), ind, v)[0] - v["emax_trd"]) < 1e-12)
    True
    """
    return np.asarray(expit(logit(min(max(v[f"emax_{ind.id}"], 1e-4), 0.999))
                            + v["omega_emax"] * z_e))


def cascade_settings(ind: Indication, v: Mapping[str, float], *, psychotherapy: bool = False
                     ) -> dict[str, float]:
    """The cascade settings an indication uses: any cascade constant ``v`` sets (a
    sensitivity draw), its fast weight, and spine persistence, longer with psychotherapy.

    >>> from ketasim.outcomes.parameters import values
    >>> sorted(cascade_settings(get_indication("trd"), values()))
    ['t_half_spine_h', 'w_fast']
    """
    from ketasim.mechanism.parameters import CASCADE
    settings = {k: float(v[k]) for k in CASCADE if k in v}
    settings.update({"w_fast": v.get(f"w_fast_{ind.id}", v["w_fast"]),
                     "t_half_spine_h": v["t_half_spine_h"]})
    if psychotherapy:
        settings["t_half_spine_h"] *= v["psychotherapy_persistence"]
    return settings


def is_esketamine(regimen: str | Regimen) -> bool:
    """Whether any dose of ``regimen`` is esketamine (structural hypothesis H1).

    >>> is_esketamine("56 mg esketamine intranasal"), is_esketamine("0.5 mg/kg IV over 40 min")
    (True, False)
    """
    return _is_esketamine(regimen if isinstance(regimen, Regimen) else parse_regimen(regimen))


def hours(text: str) -> float:
    """'24 h', '40 min', 'day 28', 'week 4', '3 days' → hours."""
    s = text.strip().lower()
    units = {"min": 1 / 60, "minute": 1 / 60, "minutes": 1 / 60, "h": 1.0, "hour": 1.0,
             "hours": 1.0, "day": 24.0, "days": 24.0, "d": 24.0, "week": 168.0,
             "weeks": 168.0, "w": 168.0}
    parts = s.replace("_", " ").split()
    try:
        if len(parts) == 2 and parts[0] in units:
            value, unit = float(parts[1]), parts[0]
        elif len(parts) == 2:
            value, unit = float(parts[0]), parts[1]
        else:
            raise ValueError(s)
        if unit not in units or not math.isfinite(value) or value < 0:
            raise ValueError(s)
    except ValueError:
        raise ModelError("time", f"cannot read {text!r}",
                         'write e.g. "24 h", "40 min", "day 28" or "week 4"') from None
    return value * units[unit]


__all__ = ["IDEATION", "Arm", "Course", "Ideation", "cascade_settings", "drug_share",
           "expectancy", "hours", "is_esketamine", "placebo_share", "simulate_course"]
