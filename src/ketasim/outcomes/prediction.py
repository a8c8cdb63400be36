"""Prediction intervals for a new real trial, from the stored model-based meta-analysis.

A virtual trial's 95 % CI is the sampling error of the simulated size only. What a new
real trial of that design would observe also varies with the parameters' uncertainty and
with between-trial heterogeneity. For each arm and each drug-minus-control difference:

    PI95 = estimate ± 1.96 √(g Cov(θ) gᵀ + τ² s² + se²)

with Cov(θ) and τ (drug and control, in patient-level SDs) from the calibration
(``ketasim calibrate outcomes``), g the estimate's gradient over the indication's fitted
parameters (forward differences at 5 %, common random numbers, ``n_gradient`` patients per
arm), s the outcome's patient-level SD (π/√3 on the logit scale for a proportion), and se the
sampling error of the design's size. Drug arms carry both trial effects, control arms the
control effect, differences the drug effect. Proportions are handled on the logit scale.
Times to relapse get no interval (the calibration has no trial-level relapse data to
support one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ketasim.outcomes import endpoints as ep
from ketasim.outcomes.course import Arm, Course, hours
from ketasim.outcomes.parameters import fitted_values, values

Z95 = 1.959963984540054
LOGIT_SD = math.pi / math.sqrt(3.0)


def _stage(indication: str) -> dict[str, Any] | None:
    d = fitted_values()["diagnostics"]
    key = "stage1_trd" if indication == "trd" else f"stage3_{indication}"
    st = d.get(key)
    return st if isinstance(st, dict) and "cov" in st else None


def _tau() -> tuple[float, float] | None:
    m = fitted_values()["diagnostics"].get("mbma") or {}
    if "tau_drug" not in m:
        return None
    return float(m["tau_drug"]), float(m["tau_control"])


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1.0 - 1e-4)
    return math.log(p / (1.0 - p))


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def arm_statistic(course: Course, measure: str, at_h: float, instrument: str | None
                  ) -> tuple[float, float, float]:
    """(estimate, sampling SE, patient-level SD) of an endpoint on the likelihood scale
    (logit for a proportion)."""
    if measure in ("response", "remission"):
        hit = (ep.responders if measure == "response" else ep.remitters)(course, at_h,
                                                                          instrument)
        p = float(np.mean(hit))
        n = hit.size
        pc = (p * n + 0.5) / (n + 1.0)
        return _logit(p), 1.0 / math.sqrt((n + 1.0) * pc * (1.0 - pc)), LOGIT_SD
    x = ep.change(course, at_h, instrument)
    sd = float(np.std(x, ddof=1))
    return float(np.mean(x)), sd / math.sqrt(x.size), sd


def intervals(arms: Mapping[str, Arm], courses: Mapping[str, Course], indication: str,
              measure: str, time: str, instrument: str | None, *,
              simulate: Callable[[Arm, int, Mapping[str, float]], Course],
              n_gradient: int = 300) -> dict[str, Any]:
    """``{"arms": {name: {"pi95": [lo, hi]}}, "differences": {"A - B": {...}}}`` or
    ``{"note": ...}`` when no MBMA fit covers the indication or the measure."""
    if measure not in ("response", "remission", "mean_change"):
        return {"note": "no prediction interval for times to relapse (no trial-level "
                        "relapse data in the calibration)"}
    stage, tau = _stage(indication), _tau()
    if stage is None or tau is None:
        return {"note": f"no model-based meta-analysis stored for {indication}; run "
                        "ketasim calibrate outcomes"}
    names: list[str] = list(stage["cov"]["names"])
    cov = np.array(stage["cov"]["matrix"], float)
    base = values()
    at = hours(time)

    def stats(overrides: Mapping[str, float], k: int) -> dict[str, tuple[float, float, float]]:
        return {name: arm_statistic(simulate(arm, k, overrides), measure, at, instrument)
                for name, arm in arms.items()}

    full = {a: arm_statistic(courses[a], measure, at, instrument) for a in arms}
    n = min(c.n for c in courses.values())
    ref = stats({}, n_gradient)
    grads: dict[str, np.ndarray] = {a: np.zeros(len(names)) for a in arms}
    for j, p in enumerate(names):
        h = 0.05 * max(abs(base[p]), 1e-3)
        moved = stats({p: base[p] + h}, n_gradient)
        for a in arms:
            grads[a][j] = (moved[a][0] - ref[a][0]) / h
    drug = {a: arm.regimen is not None for a, arm in arms.items()}
    prop = measure in ("response", "remission")

    def pi(est: float, var: float) -> list[float]:
        lo, hi = est - Z95 * math.sqrt(var), est + Z95 * math.sqrt(var)
        return [_expit(lo), _expit(hi)] if prop else [lo, hi]

    out: dict[str, Any] = {"arms": {}, "differences": {},
                           "tau_drug": tau[0], "tau_control": tau[1]}
    for a in arms:
        est, se, sd = full[a]
        var = float(grads[a] @ cov @ grads[a]) + se * se + (tau[1] * sd) ** 2 \
            + ((tau[0] * sd) ** 2 if drug[a] else 0.0)
        out["arms"][a] = {"pi95": pi(est, var)}
    controls = [a for a in arms if not drug[a]]
    for d_ in [a for a in arms if drug[a]]:
        for c in controls:
            est = full[d_][0] - full[c][0]
            g = grads[d_] - grads[c]
            se2 = full[d_][1] ** 2 + full[c][1] ** 2
            sd = 0.5 * (full[d_][2] + full[c][2])
            var = float(g @ cov @ g) + se2 + (tau[0] * sd) ** 2
            if prop:  # a difference of proportions: report on the probability scale
                p_d, p_c = _expit(full[d_][0]), _expit(full[c][0])
                lo_d, hi_d = (_expit(full[d_][0] + s * Z95 * math.sqrt(var))
                              for s in (-1.0, 1.0))
                out["differences"][f"{d_} - {c}"] = {
                    "estimate": p_d - p_c,
                    "ci95": [p_d - p_c - Z95 * math.sqrt(
                        p_d * (1 - p_d) / n + p_c * (1 - p_c) / n),
                        p_d - p_c + Z95 * math.sqrt(p_d * (1 - p_d) / n + p_c * (1 - p_c) / n)],
                    "pi95": [lo_d - p_c, hi_d - p_c], "log_odds_ratio": est}
            else:
                out["differences"][f"{d_} - {c}"] = {
                    "estimate": est, "ci95": [est - Z95 * math.sqrt(se2),
                                              est + Z95 * math.sqrt(se2)],
                    "pi95": [est - Z95 * math.sqrt(var), est + Z95 * math.sqrt(var)]}
    return out


__all__ = ["arm_statistic", "intervals"]
