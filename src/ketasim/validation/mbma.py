"""Model-based meta-analysis (MBMA): every trial of an indication in one fit, with between-trial
heterogeneity, parameter uncertainty and prediction intervals for a new trial.

**Data.** Each published result is a :class:`Datum` with the likelihood that matches what was
reported: an arm's or a difference's mean change with its standard error (normal), a
responder count k/n (normal on the logit scale with a ½ continuity correction, standard error
1/√(n p̃(1 − p̃))), a standardised effect with its confidence interval, or a time-course fact
(normal with the tolerance's half-width as 1.96 SD, no trial effect).

**Trial effects.** Trial j has two random effects in patient-level SD units: u_j ~ N(0, τ_d²)
on the ketamine effect and v_j ~ N(0, τ_p²) on the placebo/expectancy (control) response. A
datum loads on them through its scale s (its outcome's patient-level SD for a mean change,
π/√3 for a logit, 1 for a standardised effect) and its sign (+1 when a larger value is better):
drug arms load on both, control arms on v only, differences on u only. Integrating them out,
the data of a trial are jointly normal,

    y_j ~ N(f_j(θ), diag(se_j²) + τ_d² a_j a_jᵀ + τ_p² b_j b_jᵀ),

which is the marginal likelihood (exact for normal data, the usual approximation for counts).
f_j(θ) is the simulator's prediction (:mod:`ketasim.outcomes.course`), with common random
numbers.

**Fit.** θ by ``scipy.optimize.least_squares`` on the trial-whitened residuals (Cholesky of
each trial's covariance) with τ fixed; τ by maximising the same marginal likelihood with θ
fixed (no simulation: predictions do not depend on τ; Nelder-Mead on log τ); alternated until
τ moves < 1 % (at most three rounds). Parameter uncertainty: the Laplace approximation
Cov(θ) = (JᵀJ)⁻¹ of the whitened Jacobian at the optimum; τ's 95 % profile interval from the
closed form. Why not MCMC: one simulator evaluation takes ~1 s, a Laplace fit needs a few
hundred; an MCMC chain would need a surrogate, and with 10-30 data per stage the normal
approximation is what the data support.

**Prediction for a new trial** of an arm difference: estimate ± 1.96 √(g Cov(θ) gᵀ + τ_d² s² +
sampling variance of the trial's size), g the gradient of the prediction.

**Leave one trial out.** Each trial's data removed, θ moved by one Gauss-Newton step from the
full fit on the remaining data (the standard one-step approximation of a refit; ``refit=True``
refits with ``least_squares`` from the full fit), τ kept; the removed trial predicted
with its prediction interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares, minimize

from ketasim.errors import ModelError

LOGIT_SCALE = math.pi / math.sqrt(3.0)  # one patient-level SD on the logit scale


@dataclass(frozen=True)
class Datum:
    """One published result of one trial and its likelihood."""

    id: str
    trial: str
    kind: str  # "mean" (change or difference), "prop" (k of n), "smd", "fact"
    value: float
    compute: Callable[[Any], float] = field(compare=False)
    se: float = 0.0  # mean / smd / fact
    n: int = 0  # prop
    k: int = 0  # prop
    sd: float = 1.0  # patient-level SD of the outcome (mean): scales the trial effects
    drug: bool = False  # loads on the trial's ketamine effect
    control: bool = False  # loads on the trial's control (placebo/expectancy) effect
    better: int = -1  # +1 when a larger value is better (responders, d), -1 for a fall
    source: str = ""
    grade: str = "V"

    def __post_init__(self) -> None:
        if self.kind not in ("mean", "prop", "smd", "fact"):
            raise ModelError("kind", f"{self.kind!r}", "use mean, prop, smd or fact")
        if self.kind == "prop" and not 0 <= self.k <= self.n:
            raise ModelError(self.id, f"k = {self.k} of n = {self.n}", "0 ≤ k ≤ n")
        if self.kind != "prop" and not self.se > 0:
            raise ModelError(self.id, "needs a standard error", "give se > 0")

    @property
    def y(self) -> float:
        """The observation on the likelihood's scale (logit for a proportion)."""
        if self.kind == "prop":
            return _logit((self.k + 0.5) / (self.n + 1.0))
        return float(self.value)

    @property
    def sampling_se(self) -> float:
        if self.kind == "prop":
            p = (self.k + 0.5) / (self.n + 1.0)
            return 1.0 / math.sqrt((self.n + 1.0) * p * (1.0 - p))
        return float(self.se)

    @property
    def scale(self) -> float:
        """One patient-level SD on this datum's scale, signed so + is better."""
        if self.kind == "fact":
            return 0.0
        s = LOGIT_SCALE if self.kind == "prop" else (1.0 if self.kind == "smd" else self.sd)
        return self.better * s

    def transform(self, predicted: float) -> float:
        """A prediction on the likelihood's scale."""
        if self.kind == "prop":
            return _logit(min(max(predicted, 1e-4), 1.0 - 1e-4))
        return float(predicted)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def trials_of(data: Sequence[Datum]) -> dict[str, list[int]]:
    """Row indices of each trial, in first-seen order."""
    out: dict[str, list[int]] = {}
    for i, d in enumerate(data):
        out.setdefault(d.trial, []).append(i)
    return out


def covariance(data: Sequence[Datum], rows: Sequence[int], tau_d: float, tau_p: float
               ) -> np.ndarray:
    """The marginal covariance of one trial's data."""
    se = np.array([data[i].sampling_se for i in rows])
    a = np.array([data[i].scale if data[i].drug else 0.0 for i in rows])
    b = np.array([data[i].scale if data[i].control else 0.0 for i in rows])
    return np.diag(se * se) + tau_d ** 2 * np.outer(a, a) + tau_p ** 2 * np.outer(b, b)


def neg_log_lik(data: Sequence[Datum], pred: np.ndarray, tau_d: float, tau_p: float) -> float:
    """−log marginal likelihood of all data given predictions on the likelihood scale."""
    total = 0.0
    y = np.array([d.y for d in data])
    for rows in trials_of(data).values():
        c = covariance(data, rows, tau_d, tau_p)
        r = y[rows] - pred[rows]
        chol = np.linalg.cholesky(c)
        z = np.linalg.solve(chol, r)
        total += 0.5 * float(z @ z) + float(np.sum(np.log(np.diag(chol)))) \
            + 0.5 * len(rows) * math.log(2.0 * math.pi)
    return total


def whitened(data: Sequence[Datum], pred: np.ndarray, tau_d: float, tau_p: float
             ) -> np.ndarray:
    """Residuals whitened trial by trial (their sum of squares is the quadratic form)."""
    y = np.array([d.y for d in data])
    out = np.empty(len(data))
    for rows in trials_of(data).values():
        chol = np.linalg.cholesky(covariance(data, rows, tau_d, tau_p))
        out[rows] = np.linalg.solve(chol, y[rows] - pred[rows])
    return out


def fit_tau(data: Sequence[Datum], pred: np.ndarray, start: tuple[float, float]
            ) -> tuple[float, float]:
    """τ_d, τ_p maximising the marginal likelihood with the predictions fixed (bounded to
    0.001-3 patient-level SDs)."""
    def f(x: np.ndarray) -> float:
        td, tp = np.exp(np.clip(x, math.log(1e-3), math.log(3.0)))
        return neg_log_lik(data, pred, float(td), float(tp))
    x0 = np.log(np.maximum(np.array(start), 1e-2))
    res = minimize(f, x0, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-7})
    td, tp = np.exp(np.clip(res.x, math.log(1e-3), math.log(3.0)))
    return float(td), float(tp)


def profile_ci(data: Sequence[Datum], pred: np.ndarray, tau: tuple[float, float], which: int
               ) -> tuple[float, float]:
    """95 % profile-likelihood interval of τ_d (``which`` 0) or τ_p (1), the other τ
    re-maximised, θ fixed."""
    best = neg_log_lik(data, pred, *tau)
    grid = np.concatenate([[0.0], np.geomspace(1e-3, 3.0, 80)])
    inside = []
    for g in grid:
        def other(x: np.ndarray, g: float = g) -> float:
            t = [0.0, 0.0]
            t[which] = g
            t[1 - which] = float(np.exp(np.clip(x[0], math.log(1e-3), math.log(3.0))))
            return neg_log_lik(data, pred, t[0], t[1])
        r = minimize(other, np.array([math.log(max(tau[1 - which], 1e-2))]),
                     method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-6})
        if r.fun - best <= 1.92:  # χ²₁(0.95)/2
            inside.append(g)
    return (float(min(inside)), float(max(inside))) if inside else (tau[which], tau[which])


@dataclass
class FitResult:
    """One MBMA fit."""

    names: list[str]
    theta: np.ndarray
    tau: tuple[float, float]
    cov: np.ndarray  # Laplace covariance of θ
    pred: np.ndarray  # predictions on the likelihood scale at θ
    raw: np.ndarray  # predictions on the reported scale
    jac: np.ndarray  # d pred / d θ (likelihood scale)
    nll: float
    nfev: int
    data: list[Datum]

    @property
    def aic(self) -> float:
        """2·(−log L) + 2·(number of θ + the two τ)."""
        return 2.0 * self.nll + 2.0 * (len(self.names) + 2)

    @classmethod
    def from_report(cls, report: Mapping[str, Any], data: Sequence[Datum]) -> FitResult:
        """A stored stage report (``ketasim calibrate outcomes``) with its data."""
        ids = [r["id"] for r in report["data"]]
        if ids != [d.id for d in data]:
            raise ModelError("fit file", "its data rows differ from the current trial table",
                             "run ketasim calibrate outcomes --write again")
        names = list(report["cov"]["names"])
        theta = np.array([report["params"][k] for k in names], float)
        raw = np.array([r["fitted"] for r in report["data"]], float)
        pred = np.array([d.transform(v) for d, v in zip(data, raw, strict=True)])
        tau = (float(report["tau_drug"]), float(report["tau_control"]))
        return cls(names, theta, tau, np.array(report["cov"]["matrix"], float), pred, raw,
                   np.array(report["jac"], float), float(report["nll"]),
                   int(report["nfev"]), list(data))

    def params(self) -> dict[str, float]:
        return dict(zip(self.names, (float(v) for v in self.theta), strict=True))

    def se(self) -> dict[str, float]:
        return dict(zip(self.names, (float(math.sqrt(max(v, 0.0)))
                                     for v in np.diag(self.cov)), strict=True))


Predictor = Callable[[dict[str, float]], np.ndarray]


def fit(data: Sequence[Datum], predict: Predictor, names: Sequence[str],
        bounds: Mapping[str, tuple[float, float]], start: Mapping[str, float], *,
        tau0: tuple[float, float] = (0.2, 0.2), fix_tau: tuple[float, float] | None = None,
        rounds: int = 3, max_nfev: int = 40, diff_step: float = 0.05,
        progress: Callable[[str], None] | None = None) -> FitResult:
    """Fit θ (``names``, within ``bounds``) and τ (unless ``fix_tau``) to ``data``.

    ``predict(params)`` returns every datum's prediction on the reported scale."""
    say = progress or (lambda _m: None)
    data = list(data)
    lo = np.array([bounds[k][0] for k in names])
    hi = np.array([bounds[k][1] for k in names])
    x = np.array([min(max(start[k], bounds[k][0] * 1.001 if bounds[k][0] > 0 else
                          bounds[k][0] + 1e-6), bounds[k][1] * 0.999) for k in names])
    tau = fix_tau if fix_tau is not None else tau0
    cache: dict[bytes, np.ndarray] = {}
    nfev = 0

    def raw_at(x: np.ndarray) -> np.ndarray:
        nonlocal nfev
        key = np.asarray(x, float).tobytes()
        if key not in cache:
            nfev += 1
            cache[key] = np.asarray(predict({**start, **dict(zip(names, x, strict=True))}),
                                    float)
        return cache[key]

    def on_scale(raw: np.ndarray) -> np.ndarray:
        return np.array([d.transform(v) for d, v in zip(data, raw, strict=True)])

    res = None
    for rnd in range(rounds):
        say(f"  round {rnd + 1}: θ with τ = ({tau[0]:.3f}, {tau[1]:.3f})")
        t = tau
        res = least_squares(lambda x, t=t: whitened(data, on_scale(raw_at(x)), *t), x,
                            bounds=(lo, hi), diff_step=diff_step, max_nfev=max_nfev,
                            xtol=1e-4, ftol=1e-6)
        x = res.x
        if fix_tau is not None:
            break
        new = fit_tau(data, on_scale(raw_at(x)), tau)
        moved = max(abs(new[0] - tau[0]) / max(tau[0], 1e-2),
                    abs(new[1] - tau[1]) / max(tau[1], 1e-2))
        tau = new
        if moved < 0.01:
            break
    assert res is not None
    raw = raw_at(x)
    pred = on_scale(raw)
    # d pred / d θ: forward differences at the optimum (the same step as the fit)
    jac = np.empty((len(data), len(names)))
    for i in range(len(names)):
        h = diff_step * max(abs(x[i]), 1e-3)
        xi = x.copy()
        xi[i] = xi[i] + h if xi[i] + h <= hi[i] else xi[i] - h
        jac[:, i] = (on_scale(raw_at(xi)) - pred) / (xi[i] - x[i])
    wj = _whiten_matrix(data, jac, tau)
    cov = np.linalg.pinv(wj.T @ wj)
    return FitResult(list(names), x, tau, cov, pred, raw, jac,
                     neg_log_lik(data, pred, *tau), nfev, data)


def _whiten_matrix(data: Sequence[Datum], m: np.ndarray, tau: tuple[float, float]
                   ) -> np.ndarray:
    out = np.empty_like(m)
    for rows in trials_of(data).values():
        chol = np.linalg.cholesky(covariance(data, rows, *tau))
        out[rows] = np.linalg.solve(chol, m[rows])
    return out


def predictive_variance(d: Datum, grad: np.ndarray, cov: np.ndarray,
                        tau: tuple[float, float]) -> float:
    """Variance of a new trial's datum around its prediction (likelihood scale): parameter
    uncertainty + between-trial heterogeneity + the trial's own sampling error."""
    var = float(grad @ cov @ grad) + d.sampling_se ** 2
    if d.drug:
        var += (tau[0] * d.scale) ** 2
    if d.control:
        var += (tau[1] * d.scale) ** 2
    return var


def prediction_interval(d: Datum, pred: float, grad: np.ndarray, cov: np.ndarray,
                        tau: tuple[float, float], level: float = 0.95
                        ) -> tuple[float, float]:
    """The datum's prediction interval for a new trial (likelihood scale → reported scale)."""
    from scipy.stats import norm
    var = predictive_variance(d, grad, cov, tau)
    z = float(norm.ppf(0.5 + level / 2.0))
    lo, hi = pred - z * math.sqrt(var), pred + z * math.sqrt(var)
    if d.kind == "prop":
        return 1.0 / (1.0 + math.exp(-lo)), 1.0 / (1.0 + math.exp(-hi))
    return lo, hi


@dataclass(frozen=True)
class LotoRow:
    """One datum predicted without its trial."""

    datum: Datum
    predicted: float  # reported scale
    pi95: tuple[float, float]
    log_density: float = 0.0  # of the observation under the left-out prediction


    @property
    def covered(self) -> bool:
        return self.pi95[0] <= self.datum.value <= self.pi95[1]


def leave_one_trial_out(res: FitResult, predict: Predictor | None = None,
                        start: Mapping[str, float] | None = None,
                        bounds: Mapping[str, tuple[float, float]] | None = None,
                        refit: bool = False, max_nfev: int = 15) -> list[LotoRow]:
    """Each trial predicted from the others (module docstring). ``refit`` (with
    ``predict``, ``start`` and ``bounds``) refits θ instead of the one-step update."""
    data = res.data
    out: list[LotoRow] = []
    y = np.array([d.y for d in data])
    for rows in trials_of(data).values():
        keep = [i for i in range(len(data)) if i not in rows]
        kept = [data[i] for i in keep]
        if all(d.kind == "fact" for d in (data[i] for i in rows)):
            continue
        wj = _whiten_matrix(kept, res.jac[keep], res.tau)
        info = wj.T @ wj
        cov = np.linalg.pinv(info)
        if refit and predict is not None and start is not None and bounds is not None:
            whole: Predictor = predict

            def sub_predict(p: dict[str, float], keep: list[int] = keep,
                            full: Predictor = whole) -> np.ndarray:
                return np.asarray(full(p))[keep]
            sub = fit(kept, sub_predict, res.names, bounds, {**start, **res.params()},
                      fix_tau=res.tau, max_nfev=max_nfev)
            theta = sub.theta
            full = np.asarray(predict({**start, **sub.params()}), float)
            pred_rows = np.array([data[i].transform(full[i]) for i in rows])
            cov = sub.cov
        else:
            r = _whiten_vector(kept, y[keep] - res.pred[keep], res.tau)
            step = cov @ (wj.T @ r)
            theta = res.theta + step
            pred_rows = res.pred[rows] + res.jac[rows] @ step
        del theta
        for i, pr in zip(rows, pred_rows, strict=True):
            d = data[i]
            if d.kind == "fact":
                continue
            pi = prediction_interval(d, float(pr), res.jac[i], cov, res.tau)
            var = predictive_variance(d, res.jac[i], cov, res.tau)
            logd = -0.5 * ((d.y - float(pr)) ** 2 / var + math.log(2.0 * math.pi * var))
            shown = 1.0 / (1.0 + math.exp(-pr)) if d.kind == "prop" else float(pr)
            out.append(LotoRow(d, shown, pi, logd))
    return out


def _whiten_vector(data: Sequence[Datum], v: np.ndarray, tau: tuple[float, float]
                   ) -> np.ndarray:
    return _whiten_matrix(data, v[:, None], tau)[:, 0]


__all__ = ["LOGIT_SCALE", "Datum", "FitResult", "LotoRow", "covariance", "fit", "fit_tau",
           "leave_one_trial_out", "neg_log_lik", "prediction_interval", "predictive_variance",
           "profile_ci", "trials_of", "whitened"]
