"""Outcome calibration targets, the joint calibration, and ``ketasim validate outcomes``.

Every target is a published number (its source names bibliography keys) with its
tolerance: the published 95 % CI where one is given (or derived from the published
SD and arm size), otherwise ±20 % of the effect. Targets of ``kind="calibration"`` are fitted
(one parameter set per indication, no per-trial knobs); ``kind="qualitative"`` are the
qualitative facts the default model must show; both are judged by ``run_outcome_validation``.

Calibration (``calibrate``): stage 1 fits the shared parameters and the TRD parameters to all
TRD trials jointly (scipy ``least_squares``, bounded, finite-difference step 5 %, common random
numbers); stage 2 fits psychotherapy persistence to Wilkinson 2017; stage 3 fits each other
indication's ``emax`` and ``placebo`` to its own trials with the shared parameters fixed
(suicidal ideation also fits the C-SSRS ideation component). ``only`` runs chosen stages. The
result, its diagnostics, start values and the stages run are written to
``ketasim/data/outcomes_fit.json``; ``repeat_stored_fit`` runs that calibration again.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ketasim.errors import ModelError
from ketasim.mechanism.parameters import Branches
from ketasim.outcomes import endpoints as ep
from ketasim.outcomes.course import Arm, Course, hours, simulate_course
from ketasim.outcomes.parameters import FIT_FILE, FIXED, fitted_values

K05 = "0.5 mg/kg IV over 40 min"
PLACEBO = Arm(control="placebo")
MIDAZOLAM = Arm(control="midazolam")


class Sim:
    """Simulates arms with one parameter set (cached by arm), ``n`` patients per arm."""

    def __init__(self, overrides: Mapping[str, float] | None = None, n: int = 400,
                 seed: int = 20261126, branches: Branches | None = None) -> None:
        self.overrides = dict(overrides or {})
        self.n = n
        self.seed = seed
        self.branches = branches
        self._cache: dict[Any, Course] = {}

    def course(self, indication: str, arm: Arm, horizon: str | float,
               baseline_mean: float | None = None) -> Course:
        """One arm's course (same seed per arm: common random numbers across parameters)."""
        h = hours(horizon) if isinstance(horizon, str) else float(horizon)
        key = (indication, arm, h, baseline_mean)
        if key not in self._cache:
            seed = self.seed + sum(map(ord, repr(key[:2]))) % 100_000
            self._cache[key] = simulate_course(arm, indication, n=self.n, seed=seed,
                                               horizon_h=h + 1.0, branches=self.branches,
                                               overrides=self.overrides,
                                               baseline_mean=baseline_mean)
        return self._cache[key]


Compute = Callable[[Sim], float]


@dataclass(frozen=True)
class OutcomeTarget:
    """A published outcome (or a qualitative fact) and how the model predicts it."""

    id: str
    indication: str
    description: str
    value: float
    low: float
    high: float
    unit: str
    source: str
    compute: Compute = field(compare=False)
    kind: str = "calibration"
    known: str = ""  # a known discrepancy: why the model misses it (kept visible)

    def residual(self, predicted: float) -> float:
        """(predicted − published) over the distance to the tolerance limit on that side:
        |r| ≤ 1 exactly when the prediction is inside the tolerance."""
        side = (self.value - self.low) if predicted < self.value else (self.high - self.value)
        return (predicted - self.value) / max(side, 1e-9)


@dataclass(frozen=True)
class OutcomeVerdict:
    """A target judged."""

    target: OutcomeTarget
    predicted: float

    @property
    def passed(self) -> bool:
        """Inside the tolerance."""
        return bool(self.target.low <= self.predicted <= self.target.high)

    @property
    def verdict(self) -> str:
        """pass, fail, known discrepancy, or 'known, now passes' (update the list)."""
        if self.target.known:
            return "known, now passes" if self.passed else "known discrepancy"
        return "pass" if self.passed else "fail"

    @property
    def ok(self) -> bool:
        """Pass, or a documented known discrepancy."""
        return self.verdict in ("pass", "known discrepancy")


def _ci20(v: float) -> tuple[float, float]:
    return (v * 0.8, v * 1.2) if v >= 0 else (v * 1.2, v * 0.8)


def _wilson(k: int, n: int) -> tuple[float, float]:
    ci = ep.proportion(np.arange(n) < k)[1]
    return round(ci[0], 3), round(ci[1], 3)


def _ci_sd(mean: float, sd: float, n: int) -> tuple[float, float]:
    half = 1.96 * sd / math.sqrt(n)
    return mean - half, mean + half


def _change(ind: str, arm: Arm, at: str, instrument: str | None = None,
            baseline: float | None = None, horizon: str | None = None) -> Compute:
    return lambda s: float(ep.change(s.course(ind, arm, horizon or at, baseline), hours(at),
                                     instrument).mean())


def _resp(ind: str, arm: Arm, at: str, instrument: str | None = None,
          horizon: str | None = None) -> Compute:
    return lambda s: float(ep.responders(s.course(ind, arm, horizon or at), hours(at),
                                         instrument).mean())


def _remit(ind: str, arm: Arm, at: str, instrument: str | None = None,
           horizon: str | None = None) -> Compute:
    return lambda s: float(ep.remitters(s.course(ind, arm, horizon or at), hours(at),
                                        instrument).mean())


def _diff(a: Compute, b: Compute) -> Compute:
    return lambda s: a(s) - b(s)


def _ever_resp(ind: str, arm: Arm, visits_h: Sequence[float], horizon: str) -> Compute:
    def f(s: Sim) -> float:
        c = s.course(ind, arm, horizon)
        return float(np.any([ep.responders(c, v) for v in visits_h], axis=0).mean())
    return f


def _cohen_d(ind: str, arm: Arm, ctrl: Arm, at: str, horizon: str,
             instrument: str | None = None) -> Compute:
    """Difference in mean score over the pooled SD of the scores at that time."""
    def f(s: Sim) -> float:
        a, c = s.course(ind, arm, horizon), s.course(ind, ctrl, horizon)
        x = a.scores(instrument)[:, a.index(hours(at))]
        y = c.scores(instrument)[:, c.index(hours(at))]
        sd = math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2.0)
        return float((y.mean() - x.mean()) / sd)
    return f


def _relapse(ind: str, arm: Arm, last_dose: float, until: str) -> Compute:
    def f(s: Sim) -> float:
        c = s.course(ind, arm, until)
        days, hit = ep.relapse_times(c, last_dose, hours(until))
        med = ep.km_median(days, hit)
        # not reached: report the follow-up length (a lower bound) so fits stay finite
        return med if math.isfinite(med) else (hours(until) - last_dose) / 24.0
    return f


SINGH2 = "0.5 mg/kg IV over 40 min twice weekly for 4 weeks"
SINGH3 = "0.5 mg/kg IV over 40 min three times weekly for 4 weeks"
PHILLIPS = "0.5 mg/kg IV over 40 min three times weekly for 2 weeks"
POPOVA = "56 mg esketamine intranasal twice weekly for 1 week then 84 mg twice weekly for 3 weeks"
ESK_AD = Arm(regimen=POPOVA, background="oral_antidepressant", large_trial=True)
PLA_AD = Arm(control="placebo", background="oral_antidepressant", sham=POPOVA,
             large_trial=True)
WILKINSON17 = "0.5 mg/kg IV over 40 min twice weekly for 2 weeks"
ZHOU = "14 mg esketamine IV over 40 min every other day for 6 days"
CRPS = ("120 mg esketamine IV at 5 mg/h on day 1 then 240 mg at 10 mg/h on day 2 then "
        "360 mg at 15 mg/h on day 3 then 560 mg at 20 mg/h on day 4")
K = Arm(regimen=K05)
CRPS_P = Arm(control="placebo", sham=CRPS)


def _t(id_: str, ind: str, desc: str, value: float, ci: tuple[float, float], unit: str,
       source: str, compute: Compute, kind: str = "calibration", known: str = ""
       ) -> OutcomeTarget:
    return OutcomeTarget(id_, ind, desc, value, ci[0], ci[1], unit, source, compute, kind,
                         known)


TRD_TARGETS = [
    _t("murrough_k_24h", "trd", "Murrough 2013: MADRS change at 24 h, ketamine 0.5 mg/kg",
       -16.5, _ci20(-16.5), "MADRS points", "murrough2013 [V]", _change("trd", K, "24 h")),
    _t("murrough_m_24h", "trd", "Murrough 2013: MADRS change at 24 h, midazolam", -8.8,
       _ci20(-8.8), "MADRS points", "murrough2013 [V]", _change("trd", MIDAZOLAM, "24 h")),
    _t("murrough_resp_k", "trd", "Murrough 2013: response at 24 h, ketamine", 0.64,
       _ci20(0.64), "fraction", "murrough2013 [M]", _resp("trd", K, "24 h")),
    _t("murrough_resp_m", "trd", "Murrough 2013: response at 24 h, midazolam", 0.28,
       _ci20(0.28), "fraction", "murrough2013 [M]", _resp("trd", MIDAZOLAM, "24 h")),
    _t("zarate06_resp_d1", "trd", "Zarate 2006: HDRS response at day 1, ketamine", 0.71,
       _ci20(0.71), "fraction", "zarate2006 [M]; HAM-D17 stands in for HDRS-21",
       _resp("trd", K, "24 h", "hamd17", horizon="day 8")),
    _t("zarate06_resp_d7", "trd", "Zarate 2006: still responding at day 7", 0.35,
       _ci20(0.35), "fraction", "zarate2006 [M]",
       _resp("trd", K, "day 7", "hamd17", horizon="day 8")),
    _t("singh_2x_k", "trd", "Singh 2016: day-15 MADRS change, ketamine twice weekly", -18.4,
       _ci_sd(-18.4, 12.0, 17), "MADRS points", "singh2016 [V] (SD 12.0; n≈17/arm)",
       _change("trd", Arm(regimen=SINGH2), "day 15", horizon="day 29")),
    _t("singh_3x_k", "trd", "Singh 2016: day-15 MADRS change, ketamine three times weekly",
       -17.7, _ci_sd(-17.7, 7.3, 17), "MADRS points", "singh2016 [V] (SD 7.3; n≈17/arm)",
       _change("trd", Arm(regimen=SINGH3), "day 15", horizon="day 29")),
    _t("singh_placebo", "trd", "Singh 2016: day-15 MADRS change, placebo (2x and 3x arms "
       "pooled: -5.7 SD 10.2, -3.1 SD 5.7)", -4.4, _ci_sd(-4.4, 8.3, 34), "MADRS points",
       "singh2016 [V]",
       _change("trd", Arm(control="placebo", sham=SINGH2), "day 15", horizon="day 29")),
    _t("phillips_series", "trd", "Phillips 2019: response after 6 infusions (3x weekly)", 0.59,
       _ci20(0.59), "fraction", "phillips2019 [V]",
       _resp("trd", Arm(regimen=PHILLIPS), "day 13", horizon="day 29")),
    _t("popova_diff", "trd", "Popova 2019: day-28 MADRS difference, esketamine + new oral "
       "antidepressant vs antidepressant + placebo", -4.0, (-7.31, -0.64), "MADRS points",
       "popova2019 [V]", _diff(_change("trd", ESK_AD, "day 28", baseline=37.3),
                               _change("trd", PLA_AD, "day 28", baseline=37.3))),
    _t("popova_control", "trd", "Popova 2019: day-28 MADRS change, antidepressant + placebo "
       "(women -15.8, men -16.0)", -15.9, _ci20(-15.9), "MADRS points", "popova2019 [V]",
       _change("trd", PLA_AD, "day 28", baseline=37.3)),
]

AD = "oral_antidepressant"
T1_56 = "56 mg esketamine intranasal twice weekly for 4 weeks"
T1_84 = "84 mg esketamine intranasal twice weekly for 4 weeks"
T3 = ("28 mg esketamine intranasal on day 1 then 56 mg twice weekly for 1 week then 84 mg "
      "twice weekly for 3 weeks")
JP = {28: "28 mg esketamine intranasal twice weekly for 4 weeks",
      56: "56 mg esketamine intranasal twice weekly for 4 weeks",
      84: "84 mg esketamine intranasal twice weekly for 4 weeks"}
FEDGCHIN = "fedgchin2019 (TRANSFORM-1)"
OCHS_ROSS = "ochsross2020 (TRANSFORM-3)"
TAKAHASHI = "takahashi2021 (Japanese phase 2b)"


def _esk_diff(regimen: str, at: str, baseline: float | None, ad: bool) -> Compute:
    bg = AD if ad else None
    drug = Arm(regimen=regimen, background=bg, large_trial=True)
    ctrl = Arm(control="placebo", background=bg, sham=regimen, large_trial=True)
    return _diff(_change("trd", drug, at, baseline=baseline),
                 _change("trd", ctrl, at, baseline=baseline))


# the rest of the esketamine programme (all large multi-site trials)
ESKETAMINE_TARGETS = [
    _t("fedgchin_diff_56", "trd", "TRANSFORM-1 (Fedgchin 2019): day-28 MADRS difference, "
       "56 mg + new oral antidepressant vs antidepressant + placebo (nominal)", -4.1,
       (-4.1 - 1.96 * 1.87, -4.1 + 1.96 * 1.87), "MADRS points",
       FEDGCHIN + " [M]; SE as for 84 mg", _esk_diff(T1_56, "day 28", 37.0, True)),
    _t("fedgchin_diff_84", "trd", "TRANSFORM-1 (Fedgchin 2019): day-28 MADRS difference, "
       "84 mg (95 % CI −6.88 to 0.45)", -3.2, (-6.88, 0.45), "MADRS points",
       FEDGCHIN + " [M]", _esk_diff(T1_84, "day 28", 37.0, True)),
    _t("ochsross_diff", "trd", "TRANSFORM-3 (Ochs-Ross 2020, ≥ 65 y): day-28 MADRS "
       "difference, flexible 28-84 mg + new oral antidepressant (p = 0.059)", -3.6,
       (-3.6 - 1.96 * 1.90, -3.6 + 1.96 * 1.90), "MADRS points",
       OCHS_ROSS + " [M]; SE from the p-value", _esk_diff(T3, "day 28", 35.0, True)),
    *[_t(f"takahashi_diff_{mg}", "trd", f"Japanese phase 2b (Takahashi 2021): day-28 MADRS "
         f"difference, {mg} mg vs placebo (continued oral antidepressant)", v,
         (v - 1.96 * 2.2, v + 1.96 * 2.2), "MADRS points",
         TAKAHASHI + " [V]; SE from SD 11 (assumed) and n ≈ 50/arm",
         _esk_diff(JP[mg], "day 28", None, False))
      for mg, v in ((28, 0.1), (56, 0.8), (84, 0.2))],
    _t("takahashi_placebo", "trd", "Japanese phase 2b (Takahashi 2021): day-28 MADRS change, "
       "placebo", -15.3, (-15.3 - 1.96 * 1.56, -15.3 + 1.96 * 1.56), "MADRS points",
       TAKAHASHI + " [V]; SE from SD 11 (assumed), n ≈ 50",
       _change("trd", Arm(control="placebo", sham=JP[56], large_trial=True), "day 28")),
]

PSYCHOTHERAPY_TARGETS = [
    _t("wilkinson17_relapse", "trd", "Wilkinson 2017: median time to relapse after 4 "
       "infusions + CBT (weeks 0-2, twice weekly assumed)", 84.0, _ci20(84.0), "days",
       "wilkinson2017 [V]",
       _relapse("trd", Arm(regimen=WILKINSON17, psychotherapy="cbt"), 3.5 * 24, "week 30")),
]

INDICATION_TARGETS = [
    _t("zarate12_d_40min", "bipolar", "Zarate 2012: effect size d at 40 min vs placebo", 0.89,
       (0.61, 1.16), "Cohen's d", "zarate2012 [V]",
       _cohen_d("bipolar", K, PLACEBO, "40 min", "day 14")),
    _t("zarate12_resp_k", "bipolar", "Zarate 2012: responders within 14 days, ketamine", 0.79,
       _ci20(0.79), "fraction", "zarate2012 [V]",
       _ever_resp("bipolar", K, [0.67, 1.33, 1.83, 3.83, 24, 48, 72, 168, 240, 336], "day 14")),
    _t("zarate12_resp_p", "bipolar", "Zarate 2012: responders within 14 days, placebo", 0.0,
       (0.0, 0.15), "fraction", "zarate2012 [V] (0 %; tolerance 0-15 %)",
       _ever_resp("bipolar", PLACEBO, [0.67, 1.33, 1.83, 3.83, 24, 48, 72, 168, 240, 336],
                  "day 14")),
    _t("wilkinson18_k", "suicidal_ideation", "Wilkinson 2018: MADRS change at day 1, "
       "ketamine (33.8 → 19.5)", -14.3, _ci20(-14.3), "MADRS points", "wilkinson2018 [V]",
       _change("suicidal_ideation", K, "24 h")),
    _t("wilkinson18_c", "suicidal_ideation", "Wilkinson 2018: MADRS change at day 1, control "
       "(32.9 → 29.2; saline stands in for the mixed controls)", -3.7, _ci20(-3.7),
       "MADRS points", "wilkinson2018 [V]", _change("suicidal_ideation", PLACEBO, "24 h")),
    _t("su23_madrs_resp_k", "suicidal_ideation", "Taiwan RCT (Su 2023): MADRS response at "
       "day 2 or 3, ketamine (15/42)", 0.357, _wilson(15, 42), "fraction",
       "su2023 [V]; Wilson 95 % CI", _ever_resp("suicidal_ideation", K, [48, 72], "day 15")),
    _t("su23_madrs_resp_m", "suicidal_ideation", "Taiwan RCT (Su 2023): MADRS response at "
       "day 2 or 3, midazolam (5/42)", 0.119, _wilson(5, 42), "fraction",
       "su2023 [V]; Wilson 95 % CI",
       _ever_resp("suicidal_ideation", MIDAZOLAM, [48, 72], "day 15")),
    # one infusion; "240 min post infusion" is read as 240 min after the 40-min infusion
    *[_t(f"su23_si_{arm_id}_{label.replace(' ', '_')}", "suicidal_ideation",
         f"Taiwan RCT (Su 2023): C-SSRS ideation remission (score 0) at {label}, {arm_name} "
         f"({k}/42)", k / 42, _wilson(k, 42), "fraction", "su2023 [V]; Wilson 95 % CI",
         _remit("suicidal_ideation", arm, at, "cssrs_ideation", horizon="day 15"))
      for arm_id, arm_name, arm, counts in (("k", "ketamine", K, (14, 14, 8, 7)),
                                            ("m", "midazolam", MIDAZOLAM, (3, 3, 5, 7)))
      for (label, at), k in zip((("240 min", "280 min"), ("day 3", "day 3"),
                                 ("day 7", "day 7"), ("day 14", "day 14")), counts,
                                strict=True)],
    _t("abdallah22_diff", "ptsd", "Abdallah 2022: PCL-5 difference after 8 infusions vs "
       "placebo (no group x time effect); tolerance ±5 points (half the ~10-point meaningful "
       "change)", 0.0, (-5.0, 5.0), "PCL-5 points",
       "abdallah2022 [V]; meaningful PCL-5 change ~10 points [M]",
       _diff(_change("ptsd", Arm(regimen=SINGH2), "day 28"),
             _change("ptsd", Arm(control="placebo", sham=SINGH2), "day 28"))),
    _t("rodriguez13_k", "ocd", "Rodriguez 2013: Y-BOCS response at 1 week, ketamine (4/8)",
       0.5, (0.215, 0.785), "fraction", "rodriguez2013 [V]; Wilson 95 % CI",
       _resp("ocd", K, "day 7")),
    _t("rodriguez13_p", "ocd", "Rodriguez 2013: Y-BOCS response at 1 week, placebo (0/7)", 0.0,
       (0.0, 0.354), "fraction", "rodriguez2013 [V]; Wilson 95 % CI",
       _resp("ocd", PLACEBO, "day 7")),
    _t("taylor18_k", "social_anxiety", "Taylor 2018: LSAS response, ketamine (6/18; read at "
       "day 7, assumed)", 0.333, (0.163, 0.563), "fraction", "taylor2018 [V]; Wilson 95 % CI",
       _resp("social_anxiety", K, "day 7")),
    _t("taylor18_p", "social_anxiety", "Taylor 2018: LSAS response, placebo (0/18)", 0.0,
       (0.0, 0.176), "fraction", "taylor2018 [V]; Wilson 95 % CI",
       _resp("social_anxiety", PLACEBO, "day 7")),
    _t("glue17_resp", "gad", "Glue 2017: responders at 0.5-1 mg/kg SC (10/12; read 24 h after "
       "the 1 mg/kg dose; GAD-7 stands in for the trial's scales)", 0.833, (0.552, 0.953),
       "fraction", "glue2017 [V]; Wilson 95 % CI",
       _resp("gad", Arm(regimen="0.25 mg/kg SC once then 0.5 mg/kg SC on day 8 then 1 mg/kg "
                        "SC on day 15"), "day 16")),
    _t("zhou24_k", "adolescent_depression", "Zhou 2024: day-6 MADRS change, IV esketamine "
       "0.25 mg/kg x3 (14 mg at ~55 kg, assumed)", -15.3, _ci20(-15.3), "MADRS points",
       "zhou2024 [V]", _change("adolescent_depression", Arm(regimen=ZHOU), "day 6")),
    _t("zhou24_m", "adolescent_depression", "Zhou 2024: day-6 MADRS change, midazolam", -8.8,
       _ci20(-8.8), "MADRS points", "zhou2024 [V]",
       _change("adolescent_depression", Arm(control="midazolam", sham=ZHOU), "day 6")),
    _t("sigtermans_k", "crps", "Sigtermans 2009: week-1 NRS, S-ketamine 100-h infusion "
       "(titration 5-20 mg/h assumed in 4 daily steps)", 2.68, _ci_sd(2.68, 0.51 * 5.48, 30),
       "NRS", "sigtermans2009 [V] (± SEM 0.51, n=30)",
       lambda s: float(s.course("crps", Arm(regimen=CRPS), "week 2").scores()[
           :, s.course("crps", Arm(regimen=CRPS), "week 2").index(168.0)].mean())),
    _t("sigtermans_p", "crps", "Sigtermans 2009: week-1 NRS, placebo", 5.45,
       _ci_sd(5.45, 0.48 * 5.48, 30), "NRS", "sigtermans2009 [V] (± SEM 0.48, n=30)",
       lambda s: float(s.course("crps", CRPS_P, "week 2").scores()[
           :, s.course("crps", CRPS_P, "week 2").index(168.0)].mean())),
]


def _eff(ind: str, arm: Arm, ctrl: Arm, at: str, horizon: str) -> Compute:
    return lambda s: float(ep.change(s.course(ind, ctrl, horizon), hours(at)).mean()
                           - ep.change(s.course(ind, arm, horizon), hours(at)).mean())


def _effect_curve(s: Sim) -> tuple[np.ndarray, np.ndarray]:
    """Mean ketamine-placebo difference (noise-free scores) after one standard infusion."""
    k = s.course("trd", K, "day 21")
    m = s.course("trd", PLACEBO, "day 21")
    diff = np.interp(k.times, m.times, m.scores(noise=False).mean(axis=0)) \
        - k.scores(noise=False).mean(axis=0)
    return k.times, diff


def _peak_time(s: Sim) -> float:
    t, diff = _effect_curve(s)
    return float(t[int(np.argmax(diff))])


def _half_time(s: Sim) -> float:
    t, diff = _effect_curve(s)
    i = int(np.argmax(diff))
    below = np.flatnonzero((t > t[i]) & (diff < diff[i] / 2.0))
    return float((t[below[0]] - t[i]) / 24.0) if below.size else float((t[-1] - t[i]) / 24.0)


def _ratio(a: Compute, b: Compute) -> Compute:
    return lambda s: a(s) / b(s)


def _mtor(at: str) -> Compute:
    def f(s: Sim) -> float:
        off = Sim(s.overrides, s.n, s.seed, Branches(mtor=False))
        e_on = _eff("trd", K, PLACEBO, at, "day 8")(s)
        e_off = _eff("trd", K, PLACEBO, at, "day 8")(off)
        return e_off / e_on
    return f


# drug effect = ketamine arm minus an inert-placebo arm (both carry the same expectancy)
E24 = _eff("trd", K, PLACEBO, "24 h", "day 8")
QUALITATIVE_TARGETS = [
    _t("onset_110min", "trd", "effect under way by 110 min: effect at 110 min / effect at 24 h",
       0.5, (0.25, 2.0), "ratio",
       "onset 40-110 min: zarate2012 (40 min) [V], zarate2006 (110 min) [M]",
       _ratio(_eff("trd", K, PLACEBO, "110 min", "day 8"), E24), "qualitative"),
    _t("peak_near_24h", "trd", "time of the largest ketamine-placebo difference", 24.0,
       (12.0, 72.0), "h", "zarate2006: peak ~24 h [V/M]; bipolar: day 2", _peak_time,
       "qualitative"),
    _t("fades_in_a_week", "trd", "single-dose effect fades over about a week: days from its "
       "peak until the ketamine-placebo difference has halved", 7.0, (3.0, 10.0), "days",
       "zarate2006: 71 % → 35 % responders from day 1 to day 7 [M]",
       _half_time, "qualitative"),
    _t("cumulative_series", "trd", "response after 6 infusions minus after 1 (same arm)", 0.1,
       (0.0, 1.0), "fraction", "phillips2019: cumulative effect [V]",
       lambda s: _resp("trd", Arm(regimen=PHILLIPS), "day 13", horizon="day 29")(s)
       - _resp("trd", Arm(regimen=PHILLIPS), "24 h", horizon="day 29")(s), "qualitative"),
    _t("no_antidepressant_tolerance", "trd", "antidepressant effect 24 h after the 6th infusion "
       "/ after the 1st (3x weekly; dissociation attenuates meanwhile, see longterm)", 1.5,
       (0.9, 10.0), "ratio", "singh2016: dissociation attenuates while efficacy "
       "holds [V]",
       _ratio(_eff("trd", Arm(regimen=PHILLIPS), Arm(control="placebo", sham=PHILLIPS),
                   "304 h", "day 29"),
              _eff("trd", Arm(regimen=PHILLIPS), Arm(control="placebo", sham=PHILLIPS),
                   "24 h", "day 29")), "qualitative"),
    _t("dose_01_weaker", "trd", "0.1 mg/kg effect at 24 h / 0.5 mg/kg", 0.5, (0.0, 0.8),
       "ratio", "fava2020: 0.1 weak, 0.2 null, 0.5 ≈ 1.0 [V]",
       _ratio(_eff("trd", Arm(regimen="0.1 mg/kg IV over 40 min"), PLACEBO, "24 h",
                   "day 8"), E24), "qualitative"),
    _t("dose_02_weaker", "trd", "0.2 mg/kg effect at 24 h / 0.5 mg/kg", 0.5, (0.0, 0.9),
       "ratio", "fava2020 [V]",
       _ratio(_eff("trd", Arm(regimen="0.2 mg/kg IV over 40 min"), PLACEBO, "24 h",
                   "day 8"), E24), "qualitative"),
    _t("dose_10_similar", "trd", "1.0 mg/kg effect at 24 h / 0.5 mg/kg", 1.0, (0.8, 1.3),
       "ratio", "fava2020: 0.5 ≈ 1.0 [V]",
       _ratio(_eff("trd", Arm(regimen="1.0 mg/kg IV over 40 min"), PLACEBO, "24 h",
                   "day 8"), E24), "qualitative"),
    _t("mtor_sustained", "trd", "mTORC1 blocked: day-3 effect / intact", 0.0, (-0.1, 0.35),
       "ratio", "li2010; modasava2019 [V]",
       _mtor("day 3"), "qualitative"),
    _t("mtor_immediate", "trd", "mTORC1 blocked: effect at 110 min (the onset window) / intact",
       1.0, (0.6, 1.01), "ratio", "modasava2019: initial effect kept [V]",
       _mtor("110 min"), "qualitative"),
    _t("wilkinson18_si_d", "suicidal_ideation", "suicidal ideation effect size at day 1 vs "
       "placebo (C-SSRS ideation stands in for the pooled SI measures; not fitted)", 0.665,
       (0.48, 0.85), "Cohen's d", "wilkinson2018: d = 0.48-0.85 over days 1-7 [V]",
       _cohen_d("suicidal_ideation", K, PLACEBO, "24 h", "day 8", "cssrs_ideation"),
       "qualitative"),
]

# the published time-course facts are fitted with the TRD trials (they are data too)
SHAPE_IN_FIT = ("peak_near_24h", "fades_in_a_week", "dose_01_weaker", "dose_02_weaker",
                "dose_10_similar", "mtor_immediate")

STAGE1_TARGETS = TRD_TARGETS + [t for t in QUALITATIVE_TARGETS if t.id in SHAPE_IN_FIT]
ALL_TARGETS = (TRD_TARGETS + ESKETAMINE_TARGETS + PSYCHOTHERAPY_TARGETS + INDICATION_TARGETS
               + QUALITATIVE_TARGETS)

SHARED = {"w_fast": (0.05, 0.95), "t_half_spine_h": (12.0, 720.0), "d50": (0.02, 5.0),
          "omega_emax": (0.1, 3.0), "omega_placebo": (0.1, 3.0),
          "active_placebo": (1.0, 8.0), "ad_max": (0.01, 0.8)}
STAGE1 = {**SHARED, "emax_trd": (0.05, 0.99), "placebo_trd": (0.01, 0.6)}
IDEATION_BOUNDS = {"emax_ideation": (0.005, 0.99), "d50_ideation": (0.005, 2.0),
                   "w_fast_ideation": (0.02, 0.98), "ideation_visit_sd": (0.1, 2.5),
                   "ideation_natural": (0.005, 0.9)}
INDICATION_PARAMS = {
    # onset 40 min in bipolar depression (Zarate 2012) vs ≤110 min in unipolar TRD
    "bipolar": ("emax_bipolar", "placebo_bipolar", "w_fast_bipolar"),
    # C-SSRS ideation's own component (ketasim.outcomes.course) is fitted with it
    "suicidal_ideation": ("emax_suicidal_ideation", "placebo_suicidal_ideation",
                          *IDEATION_BOUNDS),
    "ptsd": ("emax_ptsd",), "ocd": ("emax_ocd", "placebo_ocd"),
    "social_anxiety": ("emax_social_anxiety", "placebo_social_anxiety"),
    "gad": ("emax_gad",),
    "adolescent_depression": ("emax_adolescent_depression", "placebo_adolescent_depression"),
    "crps": ("emax_crps", "placebo_crps"),
}
# indications whose trials cannot identify a placebo response share TRD's (no control arm)
SHARED_PLACEBO = {"ptsd": "placebo_trd", "gad": "placebo_trd"}


STAGES = ("trd", "psychotherapy", *INDICATION_PARAMS)
FIXED_DEFAULTS = {k: float(p.value) for k, p in FIXED.items()}
# first guesses for parameters a stored fit may not have yet (C-SSRS ideation: from a coarse
# grid on the Taiwan RCT targets, 2026-11-26)
INITIAL = {"emax_ideation": 0.85, "d50_ideation": 0.06, "w_fast_ideation": 0.8,
           "ideation_visit_sd": 1.2, "ideation_natural": 0.4}


# structural hypotheses for esketamine vs racemic ketamine (stage 1): the extra parameter
# each adds, with its bounds (H0 adds none)
HYPOTHESES: dict[str, dict[str, tuple[float, float]]] = {
    "H0": {},
    "H1": {"esketamine_efficacy": (0.05, 1.5)},
    "H2": {"ad_interaction": (0.0, 1.0)},
    "H3": {"large_trial_expectancy": (0.0, 4.0)},
}
HYPOTHESIS_TEXT = {
    "H0": "esketamine acts through the same cascade as racemic ketamine (no extra term)",
    "H1": "racemic ketamine carries an antidepressant contribution (R-ketamine, "
          "(2R,6R)-HNK) that esketamine lacks: esketamine's effect scaled by a fitted factor",
    "H2": "a newly started oral antidepressant and ketamine combine sub-multiplicatively "
          "(all TRANSFORM arms start one): ketamine's effect falls with the antidepressant's",
    "H3": "expectancy is larger in large multi-site trials (n ≥ 100): their placebo response "
          "scaled by a fitted factor",
}
STRUCTURE_PARAMS = ("esketamine_efficacy", "ad_interaction", "large_trial_expectancy")
# where a hypothesis' parameter starts when the stored fit did not choose it (inside its
# bounds, away from the "no effect" edge so the first step can tell either way)
STRUCTURE_START = {"esketamine_efficacy": 0.7, "ad_interaction": 0.3,
                   "large_trial_expectancy": 0.5}


def _predictor(data: Sequence[Any], n: int, seed: int) -> Callable[[dict[str, float]],
                                                                     np.ndarray]:
    def predict(params: dict[str, float]) -> np.ndarray:
        sim = Sim(params, n, seed)
        return np.array([float(d.compute(sim)) for d in data])
    return predict


def _stage_report(res: Any) -> dict[str, Any]:
    from ketasim.validation.mbma import prediction_interval
    rows = []
    for i, d in enumerate(res.data):
        pi = (None if d.kind == "fact" else
              [round(v, 4) for v in prediction_interval(d, float(res.pred[i]), res.jac[i],
                                                        res.cov, res.tau)])
        rows.append({"id": d.id, "trial": d.trial, "kind": d.kind, "grade": d.grade,
                     "observed": round(float(d.value), 4),
                     "fitted": round(float(res.raw[i]), 4), "pi95": pi})
    return {"nll": round(res.nll, 4), "aic": round(res.aic, 4), "nfev": res.nfev,
            "tau_drug": round(res.tau[0], 5), "tau_control": round(res.tau[1], 5),
            "params": {k: round(v, 5) for k, v in res.params().items()},
            "se": {k: round(v, 5) for k, v in res.se().items()},
            "cov": {"names": res.names,
                    "matrix": [[round(float(x), 10) for x in row] for row in res.cov]},
            "jac": [[round(float(x), 10) for x in row] for row in res.jac],
            "data": rows}


def calibrate(*, n: int = 600, seed: int = 20261126, max_nfev: int = 40,
              start: Mapping[str, float] | None = None, only: Sequence[str] | None = None,
              structure: str | None = None, rounds: int = 3,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The model-based meta-analysis (:mod:`ketasim.validation.mbma`), stage by stage.

    Stage 1 fits the shared and TRD parameters and the between-trial SDs τ to every TRD
    trial under each structural hypothesis (``structure`` forces one) and keeps the one with
    the lowest AIC; stage 2 fits psychotherapy persistence (a log grid); stage 3 fits each
    other indication's parameters to its trials with τ from stage 1 (one or two trials cannot
    estimate a between-trial SD). ``only`` runs chosen stages from ``start`` (default: the
    stored fit). Returns the fit file's content."""
    from ketasim.validation.mbma import fit, profile_ci
    from ketasim.validation.mbma_data import indication_data, trd_data
    stored = fitted_values()
    params = {**INITIAL, **dict(start if start is not None else stored["parameters"])}
    run = list(STAGES if only is None else only)
    unknown = [x for x in run if x not in STAGES]
    if unknown:
        raise ModelError("only", f"unknown stage {unknown[0]!r}", f"use {', '.join(STAGES)}")
    if structure is not None and structure not in HYPOTHESES:
        raise ModelError("structure", f"{structure!r}", f"use {', '.join(HYPOTHESES)}")
    t0 = time.perf_counter()
    old = stored["diagnostics"]
    diagnostics: dict[str, Any] = {
        k: v for k, v in old.items()
        if only is not None and re.match(r"stage\d_", k) and k.split("_", 1)[1] not in run}
    mb_old = old.get("mbma", {})
    tau = (float(mb_old.get("tau_drug", 0.2)), float(mb_old.get("tau_control", 0.2)))
    mbma: dict[str, Any] = {k: v for k, v in mb_old.items() if only is not None}
    diagnostics.update({"method": "mbma", "n_per_arm": n, "seed": seed,
                        "max_nfev": max_nfev, "rounds": rounds, "stages_run": run,
                        "structure_requested": structure,
                        "start": {k: round(float(v), 5) for k, v in sorted(params.items())}})
    say = progress or (lambda _m: None)
    if "trd" in run:
        data = trd_data()
        predict = _predictor(data, n, seed)
        results = {}
        for h in ([structure] if structure else list(HYPOTHESES)):
            say(f"stage 1: shared + TRD, structure {h}")
            h_names = list(STAGE1) + list(HYPOTHESES[h])
            h_bounds = {**STAGE1, **HYPOTHESES[h]}
            base = {**params, **{k: FIXED_DEFAULTS[k] for k in STRUCTURE_PARAMS},
                    **{k: STRUCTURE_START[k] for k in HYPOTHESES[h]}}
            if h == mb_old.get("structure"):
                base.update({k: stored["parameters"][k] for k in HYPOTHESES[h]
                             if k in stored["parameters"]})
            results[h] = (fit(data, predict, h_names, h_bounds, base, tau0=tau, rounds=rounds,
                              max_nfev=max_nfev, progress=say), base)
        from ketasim.validation.mbma import leave_one_trial_out as loto
        lpd = {h: sum(r.log_density for r in loto(res_h)) for h, (res_h, _) in results.items()}
        best = min(results, key=lambda h: results[h][0].aic)
        close = [h for h in results if results[h][0].aic - results[best][0].aic < 2.0]
        if len(close) > 1:  # AIC cannot tell them apart: cross-validation over trials does
            best = max(close, key=lambda h: lpd[h])
        res, base = results[best]
        params.update(base)
        params.update(res.params())
        tau = res.tau
        pred = res.pred
        mbma = {"structure": best, "structure_text": HYPOTHESIS_TEXT[best],
                "tau_drug": round(tau[0], 5), "tau_control": round(tau[1], 5),
                "tau_drug_ci95": [round(v, 4) for v in profile_ci(data, pred, tau, 0)],
                "tau_control_ci95": [round(v, 4) for v in profile_ci(data, pred, tau, 1)],
                "tau_unit": "patient-level SD of the outcome (per trial)",
                "selection": "lowest AIC; within 2 AIC units, the highest leave-one-trial-"
                             "out log predictive density (lpd) decides",
                "hypotheses": {h: {"text": HYPOTHESIS_TEXT[h], "aic": round(r.aic, 3),
                                   "nll": round(r.nll, 3),
                                   "delta_aic": round(r.aic - min(
                                       x.aic for x, _ in results.values()), 3),
                                   "loto_lpd": round(lpd[h], 3),
                                   "params": {k: round(v, 5) for k, v in r.params().items()
                                              if k in HYPOTHESES[h]}}
                               for h, (r, _) in results.items()}}
        diagnostics["stage1_trd"] = _stage_report(res)
    chosen = mbma.get("structure", "H0")
    for k in STRUCTURE_PARAMS:  # only the chosen structure's parameter is a fitted value
        if k not in HYPOTHESES[chosen]:
            params.pop(k, None)
    if "psychotherapy" in run:
        say("stage 2: psychotherapy persistence")
        # one parameter, a step-like objective (relapse is read at weekly visits): a log grid
        grid = np.geomspace(1.0, 100.0, 25)
        target = PSYCHOTHERAPY_TARGETS[0]
        errs = [abs(target.residual(target.compute(
            Sim({**params, "psychotherapy_persistence": float(g)}, n, seed)))) for g in grid]
        best_g = int(np.argmin(errs))
        params["psychotherapy_persistence"] = float(grid[best_g])
        diagnostics["stage2_psychotherapy"] = {
            "method": "log grid 1-100 (25 points)", "residuals": {target.id: float(errs[best_g])}}
    for ind, names in INDICATION_PARAMS.items():
        if ind not in run:
            continue
        say(f"stage 3: {ind}")
        if ind in SHARED_PLACEBO:
            params[f"placebo_{ind}"] = params[SHARED_PLACEBO[ind]]
        bounds = {k: IDEATION_BOUNDS[k] if k in IDEATION_BOUNDS else
                  (0.005, 0.99) if k.startswith("emax") else
                  (0.02, 0.95) if k.startswith("w_fast") else (0.005, 0.6) for k in names}
        if f"w_fast_{ind}" in names:
            params.setdefault(f"w_fast_{ind}", params["w_fast"])
        data = indication_data(ind)
        res = fit(data, _predictor(data, n, seed), list(names), bounds, params, fix_tau=tau,
                  max_nfev=max_nfev, progress=say)
        params.update(res.params())
        diagnostics[f"stage3_{ind}"] = _stage_report(res)
    diagnostics["mbma"] = mbma
    diagnostics["seconds"] = round(time.perf_counter() - t0, 1)
    out = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in params.items()}
    return {"parameters": out, "diagnostics": diagnostics}


def _stage_data(stage: str) -> list[Any]:
    from ketasim.validation.mbma_data import indication_data, trd_data
    return trd_data() if stage == "stage1_trd" else indication_data(stage.split("_", 1)[1])


def leave_one_trial_out(*, refit: bool = False, n: int | None = None,
                        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every calibration trial predicted from the stored fit without it (one Gauss-Newton
    step, or ``refit``), with its 95 % prediction interval; stages with a single trial are
    listed as not predictable. Returns rows, coverage and the stages skipped."""
    from ketasim.validation.mbma import FitResult
    from ketasim.validation.mbma import leave_one_trial_out as loto
    diag = fitted_values()["diagnostics"]
    if diag.get("method") != "mbma":
        raise ModelError("fit file", "holds no model-based meta-analysis",
                         "run ketasim calibrate outcomes --write")
    params = dict(fitted_values()["parameters"])
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    say = progress or (lambda _m: None)
    for stage in [k for k in diag if k.startswith(("stage1_", "stage3_"))]:
        data = _stage_data(stage)
        trials = {d.trial for d in data if d.kind != "fact"}
        if len(trials) < 2:
            skipped[stage] = "a single trial: nothing left to predict it from"
            continue
        say(f"leave one trial out: {stage}")
        res = FitResult.from_report(diag[stage], data)
        predict = _predictor(data, n or int(diag["n_per_arm"]), int(diag["seed"])) \
            if refit else None
        bounds = {**STAGE1, **HYPOTHESES.get(diag.get("mbma", {}).get("structure", "H0"), {})} \
            if stage == "stage1_trd" else {k: (0.005, 0.99) if k.startswith("emax") else
                                           IDEATION_BOUNDS.get(k, (0.005, 0.6))
                                           for k in res.names}
        for r in loto(res, predict, params, bounds, refit=refit):
            rows.append({"stage": stage, "id": r.datum.id, "trial": r.datum.trial,
                         "observed": r.datum.value, "predicted": r.predicted,
                         "pi95": list(r.pi95), "covered": r.covered,
                         "grade": r.datum.grade})
    covered = sum(r["covered"] for r in rows)
    return {"method": "refit" if refit else "one Gauss-Newton step from the full fit",
            "rows": rows, "coverage": covered / len(rows) if rows else float("nan"),
            "covered": covered, "total": len(rows),
            "trials": len({r["trial"] for r in rows}), "skipped": skipped}


def repeat_stored_fit(progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the stored fit's calibration again, from its recorded start, with its settings
    (the result should equal the stored parameters)."""
    d = fitted_values()["diagnostics"]
    if "start" not in d:
        raise ModelError("fit file", "records no start", "run ketasim calibrate outcomes")
    stages = d.get("stages_run")
    return calibrate(n=d["n_per_arm"], seed=d["seed"], max_nfev=d["max_nfev"],
                     start=d["start"], only=None if stages == list(STAGES) else stages,
                     structure=d.get("structure_requested"), rounds=d.get("rounds", 3),
                     progress=progress)


def write_fit(result: Mapping[str, Any], path: Path | None = None) -> Path:
    """Store a calibration result (default: the packaged fit file)."""
    if path is None:
        path = Path(__file__).resolve().parent.parent / "data" / FIT_FILE
    path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    fitted_values.cache_clear()
    return path


def apply_known(targets: Sequence[OutcomeTarget], known: Mapping[str, str]
                ) -> list[OutcomeTarget]:
    """Targets with their known-discrepancy notes attached."""
    from dataclasses import replace
    return [replace(t, known=known[t.id]) if t.id in known else t for t in targets]


_MBMA = ("the model-based meta-analysis fits every trial at once with between-trial "
         "heterogeneity, so one trial's number is no longer matched on its own; ")
KNOWN = {
    "murrough_resp_m": _MBMA + "Murrough 2013's response rates are not in the fit (its mean "
    "changes of the same arms are); the midazolam rate lands just under ±20 % of 28 %",
    "zarate06_resp_d7": _MBMA + "Zarate 2006's day-7 rate ([M], n = 17) sits inside its 95 % "
    "prediction interval (3-76 %), under its ±20 % band",
    "singh_placebo": _MBMA + "placebo responses differ between trials (control SD τ_p ≈ 0.38 "
    "patient SDs); Singh 2016's small placebo fall is inside its prediction interval "
    "(−16.1 to 0.3)",
    "takahashi_placebo": _MBMA + "the Japanese trial's large placebo fall (−15.3) is the "
    "largest control-arm deviation in the TRD data, at the edge of its prediction interval "
    "(−15.5 to 3.5); the large-trial expectancy structure H3 that would absorb it ties with H1 "
    "on AIC and loses on leave-one-trial-out prediction",
    "wilkinson18_c": _MBMA + "the pooled controls of Wilkinson 2018 (saline stands in for "
    "mixed controls) fall slightly less than published; inside the prediction interval",
    "zhou24_k": "the chosen structure H1 scales esketamine's effect (0.24) in every "
    "indication; Zhou 2024's IV esketamine effect in adolescents is larger than that allows "
    "(emax_adolescent_depression reaches its bound) — evidence against H1 from outside "
    "stage 1, reported rather than tuned; inside the prediction interval (−22.9 to 1.3)",
}


def run_outcome_validation(*, n: int = 1000, seed: int = 20261126,
                           overrides: Mapping[str, float] | None = None,
                           branches: Branches | None = None,
                           targets: Sequence[OutcomeTarget] | None = None
                           ) -> list[OutcomeVerdict]:
    """Predict and judge every target with the stored (or overridden) parameters."""
    sim = Sim(overrides, n, seed, branches)
    chosen = apply_known(targets or ALL_TARGETS, KNOWN)
    return [OutcomeVerdict(t, float(t.compute(sim))) for t in chosen]


__all__ = [
    "ALL_TARGETS",
    "ESKETAMINE_TARGETS",
    "HYPOTHESES",
    "INDICATION_TARGETS",
    "INITIAL",
    "KNOWN",
    "QUALITATIVE_TARGETS",
    "STAGE1_TARGETS",
    "STAGES",
    "TRD_TARGETS",
    "OutcomeTarget",
    "OutcomeVerdict",
    "Sim",
    "apply_known",
    "calibrate",
    "leave_one_trial_out",
    "repeat_stored_fit",
    "run_outcome_validation",
    "write_fit",
]
