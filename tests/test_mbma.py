"""The MBMA machinery against mathematics: random-effects meta-analysis, exact one-step LOTO
for linear models, and prediction-interval coverage on simulated trials."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from ketasim.validation.mbma import (
    Datum,
    covariance,
    fit,
    leave_one_trial_out,
    prediction_interval,
)


def _smd(i: int, y: float, se: float) -> Datum:
    return Datum(f"t{i}", f"trial{i}", "smd", y, compute=lambda s: 0.0, se=se, drug=True,
                 better=+1)


def _ml_meta(y: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood random-effects meta-analysis (μ, τ), by direct optimisation."""
    def nll(x: np.ndarray) -> float:
        mu, tau = x[0], math.exp(x[1])
        v = se ** 2 + tau ** 2
        return float(0.5 * np.sum((y - mu) ** 2 / v + np.log(v)))
    r = minimize(nll, np.array([y.mean(), math.log(0.3)]), method="Nelder-Mead",
                 options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    return float(r.x[0]), float(math.exp(r.x[1]))


def test_fit_equals_random_effects_meta_analysis() -> None:
    rng = np.random.default_rng(3)
    se = rng.uniform(0.1, 0.4, 12)
    y = 0.5 + 0.3 * rng.standard_normal(12) + se * rng.standard_normal(12)
    data = [_smd(i, float(v), float(s)) for i, (v, s) in enumerate(zip(y, se, strict=True))]
    res = fit(data, lambda p: np.full(len(data), p["mu"]), ["mu"], {"mu": (-5.0, 5.0)},
              {"mu": 0.0}, tau0=(0.2, 0.2), rounds=20, max_nfev=200, diff_step=1e-6)
    mu, tau = _ml_meta(y, se)
    assert res.params()["mu"] == pytest.approx(mu, abs=2e-3)
    assert res.tau[0] == pytest.approx(tau, rel=2e-2)
    # Laplace SE of μ: 1/sqrt(Σ 1/(se²+τ²))
    w = 1.0 / (se ** 2 + res.tau[0] ** 2)
    assert res.se()["mu"] == pytest.approx(1.0 / math.sqrt(w.sum()), rel=1e-2)


def test_trial_covariance_structure() -> None:
    drug = Datum("d", "t", "mean", -16.0, compute=lambda s: 0.0, se=1.5, sd=10.0, drug=True,
                 control=True, better=-1)
    ctrl = Datum("c", "t", "mean", -9.0, compute=lambda s: 0.0, se=2.0, sd=10.0,
                 control=True, better=-1)
    c = covariance([drug, ctrl], [0, 1], tau_d=0.2, tau_p=0.3)
    assert c[0, 0] == pytest.approx(1.5 ** 2 + (0.2 * 10) ** 2 + (0.3 * 10) ** 2)
    assert c[1, 1] == pytest.approx(2.0 ** 2 + (0.3 * 10) ** 2)
    assert c[0, 1] == pytest.approx((0.3 * 10) ** 2)  # shared control effect only
    prop = Datum("p", "t", "prop", 0.6, compute=lambda s: 0.0, n=40, k=24, drug=True,
                 control=True, better=+1)
    c2 = covariance([drug, prop], [0, 1], tau_d=0.2, tau_p=0.3)
    # a larger fall and a higher response rate are both "better": negative covariance
    assert c2[0, 1] < 0


def test_one_step_loto_is_exact_for_a_linear_model() -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 2, 10)
    se = np.full(10, 0.2)
    y = 1.0 + 0.5 * x + 0.1 * rng.standard_normal(10) + se * rng.standard_normal(10)
    data = [_smd(i, float(v), 0.2) for i, v in enumerate(y)]

    def predict(p: dict[str, float]) -> np.ndarray:
        return p["a"] + p["b"] * x
    bounds = {"a": (-10.0, 10.0), "b": (-10.0, 10.0)}
    res = fit(data, predict, ["a", "b"], bounds, {"a": 0.0, "b": 0.0}, fix_tau=(0.1, 0.1),
              max_nfev=200, diff_step=1e-6)
    one = leave_one_trial_out(res)
    full = leave_one_trial_out(res, predict, {"a": 0.0, "b": 0.0}, bounds, refit=True,
                               max_nfev=200)
    for a, b in zip(one, full, strict=True):
        assert a.predicted == pytest.approx(b.predicted, abs=1e-4)
        assert a.pi95[0] == pytest.approx(b.pi95[0], abs=1e-3)


def test_prediction_interval_covers_new_trials() -> None:
    """Trials simulated from a random-effects model: the 95 % PI of a new trial, from a fit
    on 15 trials, covers it ~95 % of the time (over 100 replications)."""
    rng = np.random.default_rng(11)
    hits, reps = 0, 100
    for _ in range(reps):
        se = rng.uniform(0.1, 0.3, 16)
        y = 0.4 + 0.25 * rng.standard_normal(16) + se * rng.standard_normal(16)
        data = [_smd(i, float(v), float(s)) for i, (v, s) in enumerate(zip(y, se,
                                                                            strict=True))]
        res = fit(data[:15], lambda p: np.full(15, p["mu"]), ["mu"], {"mu": (-5.0, 5.0)},
                  {"mu": 0.0}, rounds=4, max_nfev=50, diff_step=1e-6)
        lo, hi = prediction_interval(data[15], res.params()["mu"], np.array([1.0]), res.cov,
                                     res.tau)
        hits += lo <= y[15] <= hi
    assert 0.88 <= hits / reps <= 1.0
