"""This patient's parameters from their own data, with the population model as the prior.

The statistical model (the outcome model of :mod:`ketasim.outcomes.course`, for one person):

- **Per-patient parameters** θ = (z_E, z_P, u): standard-normal deviations of the patient's
  maximal ketamine effect Eᵢ = expit(logit(Emax) + ω_E z_E) and placebo plateau
  pᵢ = expit(logit(p) + ω_P z_P), and of their true baseline b = b̄ + s_b u on the
  indication's primary instrument (truncated to the instrument's range). The prior is the
  population's: z_E, z_P, u ~ N(0, 1) independently (u truncated). Other instruments'
  baselines sit at the same fraction of their range.
- **Expected score** at time t: μ(t) = lo + (b − lo) (1 − Y(t)), 1 − Y = (1 − pᵢ X(t)) ·
  (1 − Eᵢ D(t)/(d50 + D(t))), X the expectancy course of the sessions given so far and D the
  cascade drive of this patient's own doses at their weight.
- **Likelihood of a rating**: ratings are whole numbers in a bounded range, so a rating r is
  the rounded, clipped value of μ + σ ε (ε ~ N(0, 1), σ = ``residual_fraction`` times the
  population's mean baseline on that instrument above its floor), exactly as the model's
  virtual patients are rated:
  P(r) = Φ((r + ½ − μ)/σ) − Φ((r − ½ − μ)/σ), with the bottom and top of the range taking the
  tails.
- **Drug levels** (when a clinic has them) give the PK random effects their MAP under the
  library model's OMEGA and residual error (:mod:`ketasim.estimation.pk`); the drive D then
  follows this patient's own PK. Without levels D is the typical patient's at their weight:
  PK variability moves D/(d50 + D) by ±2 % (5th-95th percentile) against ω_E = 2.9 on the
  logit scale, so the ratings carry no usable information about PK (measured with
  ``benchmarks/individual_forecast.py``).
- **Session readings** (CADSS, SBP, DBP) update the acute model's own random effects
  (:mod:`ketasim.pd.session_forecast`); they are independent of θ in the model.

Estimation: the MAP by L-BFGS-B from several starts (as NONMEM's MAXEVAL=0 POSTHOC or
mapbayr give), the Laplace covariance from a finite-difference Hessian there, and a
posterior sample by importance resampling from a defensive mixture (80 % a Student-t with
4 degrees of freedom at the MAP with 1.5² times the Laplace covariance, 20 % the prior),
adapted once (the t then takes the first round's weighted mean and covariance), so the
sample stays honest where the posterior is not Gaussian (an effect near its ceiling). The
effective sample size of 8,000 proposals is reported. Chosen over MCMC: three parameters,
one mode in practice, and a deterministic answer in well under a second.

>>> import io
>>> from ketasim.estimation.patient import read_patient
>>> text = ("TIME,EVID,AMT,DUR,ROUTE,DVID,DV,WT\\n0,0,,,,madrs,32,70\\n0,1,35,0.667,iv,,,\\n"
...         "24,0,,,,madrs,14,\\n")
>>> fit = fit_patient(read_patient(io.StringIO(text)), "trd", n=500)
>>> bool(fit.map_values()["emax"] > 0.6)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import optimize, stats
from scipy.special import log_ndtr
from threadpoolctl import threadpool_limits

from ketasim.dosing.regimen import Regimen
from ketasim.errors import ModelError
from ketasim.estimation.patient import PatientData, PatientDataError, Rating
from ketasim.mechanism.cascade import cascade_inputs, course_grid, run_cascade
from ketasim.outcomes.course import (
    cascade_settings,
    drug_share,
    expectancy,
    is_esketamine,
    placebo_share,
)
from ketasim.outcomes.indications import Indication, get_indication, require_efficacy
from ketasim.outcomes.parameters import values
from ketasim.pd.session_forecast import AcuteObservation
from ketasim.scales import get_instrument

NAMES = ("z_emax", "z_placebo", "u_baseline")
PROPOSALS = 8000
DEFENSIVE = 0.2


def log_interval_prob(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Φ(b) − Φ(a)) for a < b, accurate in both tails.

    >>> round(float(np.exp(log_interval_prob(np.array([-1.0]), np.array([1.0]))[0])), 4)
    0.6827
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    flip = a > 0  # upper tail: use the mirror image, where the CDF is small and exact
    lo = np.where(flip, -b, a)
    hi = np.where(flip, -a, b)
    lh, ll = log_ndtr(hi), log_ndtr(lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = lh + np.log1p(-np.exp(np.minimum(ll - lh, 0.0)))
    return np.where(np.isfinite(out), out, -1e300)


def rating_log_likelihood(rating: np.ndarray, mu: np.ndarray, sd: float,
                          bounds: tuple[float, float]) -> np.ndarray:
    """log P(rating | μ) for a rounded, clipped normal rating (module docstring).

    >>> x = rating_log_likelihood(np.arange(0, 28), np.full(28, 3.0), 1.5, (0, 27))
    >>> round(float(np.exp(x).sum()), 9)
    1.0
    """
    lo, hi = bounds
    r = np.asarray(rating, dtype=float)
    a = np.where(r <= lo, -np.inf, (r - 0.5 - mu) / sd)
    b = np.where(r >= hi, np.inf, (r + 0.5 - mu) / sd)
    return log_interval_prob(a, b)


@lru_cache(maxsize=32)
def _drive_cached(regimen: Regimen, indication: str, weight_kg: float, grid: bytes,
                  pk_model: str | None, etas: tuple[tuple[str, float], ...],
                  psychotherapy: bool) -> np.ndarray:
    from ketasim.estimation.pk import individual_pk
    t = np.frombuffer(grid)
    ind = get_indication(indication)
    run = individual_pk(regimen, weight_kg, t, dict(etas), pk_model)
    casc = run_cascade(cascade_inputs(run), cascade_settings(ind, values(),
                                                             psychotherapy=psychotherapy))
    return np.maximum(casc.drive[0], 0.0)


def patient_drive(regimen: Regimen, ind: Indication, weight_kg: float, times: np.ndarray, *,
                  pk_etas: Mapping[str, float] | None = None, pk_model: str | None = None,
                  psychotherapy: bool = False) -> np.ndarray:
    """The cascade drive D(t) of one patient's doses (typical PK at their weight, or their
    own PK random effects), at ``times`` (solved on the course grid; cached).

    >>> d = patient_drive(Regimen.parse("0.5 mg/kg IV over 40 min"), get_indication("trd"),
    ...                   70.0, np.array([0.0, 24.0, 24.0 * 28]))
    >>> bool(d[1] > d[2] >= d[0] == 0.0)
    True
    """
    t = np.asarray(times, dtype=float)
    dose_times = [x for x, _, _ in regimen.administrations(weight_kg)]
    grid = np.ascontiguousarray(np.unique(np.concatenate(
        [course_grid(dose_times, max(float(t.max()), max(dose_times)) + 1.0), t])))
    etas = tuple(sorted((k, round(float(v), 12)) for k, v in (pk_etas or {}).items()))
    d = _drive_cached(regimen, ind.id, float(weight_kg), grid.tobytes(), pk_model,
                      etas, psychotherapy)
    return np.interp(t, grid, d)


@dataclass(frozen=True, eq=False)
class SymptomModel:
    """The patient-specific pieces of the outcome model that do not depend on θ."""

    indication: Indication
    params: Mapping[str, float]
    regimen: Regimen
    weight_kg: float
    times: np.ndarray  # the grid the drive lives on (h from the first dose)
    drive: np.ndarray
    esketamine: bool
    session_times: tuple[float, ...]
    pk_etas: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def baseline_bounds(self) -> tuple[float, float]:
        """Bounds of u (the standardised primary baseline)."""
        inst = get_instrument(self.indication.instrument)
        lo, hi = inst.total_range
        ind = self.indication
        return ((lo + 1.0 - ind.baseline_mean) / ind.baseline_sd,
                (hi - ind.baseline_mean) / ind.baseline_sd)

    def residual_sd(self, instrument: str) -> float:
        """σ on ``instrument``: residual fraction × the population's mean baseline above the
        floor."""
        return float(self.params["residual_fraction"] * (self.baseline_on(
            np.array([self.indication.baseline_mean]), instrument)[0]
            - get_instrument(instrument).total_range[0]))

    def baseline_on(self, b_primary: np.ndarray, instrument: str) -> np.ndarray:
        """Primary-instrument baselines mapped to ``instrument`` (same fraction of range)."""
        plo, phi = get_instrument(self.indication.instrument).total_range
        lo, hi = get_instrument(instrument).total_range
        return lo + (np.asarray(b_primary) - plo) / (phi - plo) * (hi - lo)

    def improvement(self, theta: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Y (patients θ, times t). Expectancy is held while sessions continue and wanes
        from 24 h after the last one (given or planned), as in the population model."""
        th = np.atleast_2d(theta)
        if np.size(t) and float(np.max(t)) > self.times[-1] + 1e-9:
            raise ModelError("horizon", f"day {float(np.max(t)) / 24:g} is beyond the "
                             f"model's horizon (day {self.times[-1] / 24:g})",
                             "build the symptom model with a later horizon_h")
        v = self.params
        e_i = drug_share(th[:, 0], self.indication, v)
        p_i = placebo_share(th[:, 1], self.indication, v)
        d = np.interp(t, self.times, self.drive)
        f = d / (v["d50"] + d) * (v["esketamine_efficacy"] if self.esketamine else 1.0)
        x = expectancy(t, list(self.session_times), v)
        return 1.0 - (1.0 - p_i[:, None] * x[None, :]) * (1.0 - e_i[:, None] * f[None, :])

    def expected(self, theta: np.ndarray, t: np.ndarray, instrument: str) -> np.ndarray:
        """Expected scores μ (patients, times) on ``instrument``."""
        th = np.atleast_2d(theta)
        ind = self.indication
        b = self.baseline_on(ind.baseline_mean + ind.baseline_sd * th[:, 2], instrument)
        lo = get_instrument(instrument).total_range[0]
        return lo + (b[:, None] - lo) * (1.0 - self.improvement(th, t))


def symptom_model(data: PatientData, indication: str | Indication, *,
                  plan: Regimen | None = None, horizon_h: float = 0.0,
                  pk_etas: Mapping[str, float] | None = None, pk_model: str | None = None,
                  psychotherapy: bool = False) -> SymptomModel:
    """The :class:`SymptomModel` of a patient's doses (and a ``plan`` after them, already
    on the patient's clock) up to ``horizon_h``."""
    ind = indication if isinstance(indication, Indication) else get_indication(indication)
    require_efficacy(ind)
    if ind.pathway != "cascade":
        raise ModelError("indication", f"individual forecasts are built for the cascade "
                         f"indications, not {ind.name}", "use trd, bipolar_depression, ptsd …")
    regimen = data.regimen if plan is None else data.regimen.combine(plan)
    dose_times = [t for t, _, _ in regimen.administrations(data.weight_kg)]
    end = max(horizon_h, data.last_time_h, max(dose_times)) + 24.0
    grid = course_grid(dose_times, end)
    drive = patient_drive(regimen, ind, data.weight_kg, grid, pk_etas=pk_etas,
                          pk_model=pk_model, psychotherapy=psychotherapy)
    text = regimen.to_text()
    from ketasim.population.pkrun import resolve_model
    warnings = resolve_model(pk_model, regimen).extrapolation({"weight": data.weight_kg},
                                                              allow=True)
    return SymptomModel(ind, values(), regimen, data.weight_kg, grid, drive,
                        is_esketamine(text), tuple(dose_times), dict(pk_etas or {}),
                        tuple(warnings))


@dataclass(frozen=True)
class _Ratings:
    t: np.ndarray
    value: np.ndarray


def _prepare(model: SymptomModel, ratings: tuple[Rating, ...]) -> dict[str, _Ratings]:
    ind = model.indication
    out: dict[str, list[Rating]] = {}
    for r in ratings:
        if r.instrument not in ind.instruments:
            raise PatientDataError(
                f"row {r.row}: DVID", f"{r.instrument} is not an instrument of {ind.name} "
                f"({', '.join(ind.instruments)})",
                "rate the patient on one of those, or choose the indication that fits")
        out.setdefault(r.instrument, []).append(r)
    return {inst: _Ratings(np.array([max(r.time_h, 0.0) for r in rs]),
                           np.array([r.value for r in rs])) for inst, rs in out.items()}


def _log_posterior(model: SymptomModel, prepared: Mapping[str, _Ratings],
                   theta: np.ndarray) -> np.ndarray:
    """log p(θ | ratings) up to a constant, for each row of θ (M, 3)."""
    th = np.atleast_2d(theta)
    lo_u, hi_u = model.baseline_bounds
    lp = -0.5 * np.sum(th * th, axis=1)
    lp = np.where((th[:, 2] < lo_u) | (th[:, 2] > hi_u), -np.inf, lp)
    for inst, r in prepared.items():
        mu = model.expected(th, r.t, inst)
        ll = rating_log_likelihood(r.value[None, :], mu, model.residual_sd(inst),
                                   get_instrument(inst).total_range)
        lp = lp + np.sum(ll, axis=1)
    return lp


@dataclass(frozen=True, eq=False)
class IndividualFit:
    """A patient's posterior: the MAP, the Laplace covariance, and a posterior sample of θ
    (``draws``, n × 3) from importance resampling with its effective sample size."""

    data: PatientData
    model: SymptomModel
    map: np.ndarray
    cov: np.ndarray
    draws: np.ndarray
    ess: float
    log_posterior_at_map: float
    pk_etas: Mapping[str, float] = field(default_factory=dict)
    pk_map: Mapping[str, float] = field(default_factory=dict)
    acute: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def map_values(self) -> dict[str, float]:
        """The MAP on the natural scale: Eᵢ, pᵢ, the true baseline on the primary
        instrument; PK random effects and acute effects when they were estimated."""
        ind = self.model.indication
        v = self.model.params
        th = self.map
        out = {"emax": float(drug_share(th[:1], ind, v)[0]),
               "placebo": float(placebo_share(th[1:2], ind, v)[0]),
               f"baseline_{ind.instrument}": float(ind.baseline_mean + ind.baseline_sd * th[2])}
        out.update({k: float(x) for k, x in self.pk_map.items() if x != 0.0})
        out.update({k: float(x) for k, x in self.acute.items()})
        return out

    def shrinkage(self) -> dict[str, float]:
        """Posterior SD / prior SD of each per-patient parameter (1: the data did not move
        it, it stays at the population's spread; near 0: the data pin it down)."""
        ind = self.model.indication
        sd = np.std(self.draws, axis=0)
        out = {"emax": float(sd[0]), "placebo": float(sd[1]),
               f"baseline_{ind.instrument}": float(sd[2])}
        return {k: round(min(x, 1.0), 3) for k, x in out.items()}


def _laplace(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float = 1e-3
             ) -> np.ndarray:
    """Central-difference Hessian of the negative log posterior, evaluated in one batch."""
    k = x.size
    eye = np.eye(k) * h
    pts = [x]
    for i in range(k):
        pts += [x + eye[i], x - eye[i]]
    for i in range(k):
        for j in range(i + 1, k):
            pts += [x + eye[i] + eye[j], x + eye[i] - eye[j], x - eye[i] + eye[j],
                    x - eye[i] - eye[j]]
    f = fun(np.array(pts))
    f0 = f[0]
    hess = np.zeros((k, k))
    for i in range(k):
        hess[i, i] = (f[1 + 2 * i] - 2 * f0 + f[2 + 2 * i]) / h ** 2
    pos = 1 + 2 * k
    for i in range(k):
        for j in range(i + 1, k):
            a, b, c, d = f[pos:pos + 4]
            hess[i, j] = hess[j, i] = (a - b - c + d) / (4 * h * h)
            pos += 4
    return hess


def fit_patient(data: PatientData, indication: str | Indication, *,
                plan: Regimen | None = None, horizon_h: float = 0.0, n: int = 2000,
                rng: np.random.Generator | None = None, pk_model: str | None = None,
                psychotherapy: bool = False) -> IndividualFit:
    """The individual posterior of ``data`` (module docstring). ``plan`` (on the patient's
    clock) and ``horizon_h`` size the drive for a later forecast; ``n`` posterior draws."""
    # the optimisations are 3-4 dimensional: BLAS threads only contend (10x slower under load)
    with threadpool_limits(limits=1):
        return _fit(data, indication, plan, horizon_h, n, rng, pk_model, psychotherapy)


def _fit(data: PatientData, indication: str | Indication, plan: Regimen | None,
         horizon_h: float, n: int, rng: np.random.Generator | None, pk_model: str | None,
         psychotherapy: bool) -> IndividualFit:
    rng = rng if rng is not None else np.random.default_rng(20261129)
    notes: list[str] = []
    pk_etas: dict[str, float] = {}
    pk_map: dict[str, float] = {}
    if data.levels:
        from ketasim.estimation.pk import fit_pk
        pk = fit_pk(data, pk_model=pk_model)
        pk_etas = dict(pk.etas)
        pk_map = {k: round(v, 4) for k, v in pk.etas.items()}
    model = symptom_model(data, indication, plan=plan, horizon_h=horizon_h, pk_etas=pk_etas,
                          pk_model=pk_model, psychotherapy=psychotherapy)
    prepared = _prepare(model, data.ratings)
    notes.extend(model.warnings)
    if not data.ratings:
        notes.append("no ratings: the forecast is the population's at this weight")
    elif not any(r.time_h <= 0.0 for r in data.ratings):
        first = min(data.ratings, key=lambda r: r.time_h)
        raise PatientDataError(f"row {first.row}: TIME", "there is no baseline rating (none "
                               "at or before the first dose)",
                               "give the rating taken before the first session")

    def nlp(th: np.ndarray) -> np.ndarray:
        return -_log_posterior(model, prepared, th)

    lo_u, hi_u = model.baseline_bounds
    u0 = 0.0
    prim = get_instrument(model.indication.instrument)
    for inst in (prim.id, *model.indication.instruments):
        base = data.baseline(inst)
        if base is not None:
            ilo, ihi = get_instrument(inst).total_range
            plo, phi = prim.total_range
            b_prim = plo + (base - ilo) / (ihi - ilo) * (phi - plo)
            u0 = float(np.clip((b_prim - model.indication.baseline_mean)
                               / model.indication.baseline_sd, lo_u + 1e-6, hi_u - 1e-6))
            break
    best = None
    bounds = [(-6.0, 6.0), (-6.0, 6.0), (max(lo_u, -6.0) + 1e-9, min(hi_u, 6.0) - 1e-9)]
    for z_e, z_p in ((0.0, 0.0), (1.5, -1.0), (-1.5, 1.0), (-1.5, -1.0), (1.5, 1.0)):
        res = optimize.minimize(lambda x: float(nlp(x)[0]), np.array([z_e, z_p, u0]),
                                method="L-BFGS-B", bounds=bounds,
                                options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": 500})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    x_map = np.asarray(best.x, dtype=float)
    hess = _laplace(nlp, x_map)
    vals, vecs = np.linalg.eigh(0.5 * (hess + hess.T))
    vals = np.clip(vals, 0.05, None)  # at most a variance of 20 along a flat direction
    cov = (vecs / vals) @ vecs.T
    draws, ess = _importance_resample(nlp, x_map, cov, n, rng)
    if ess < 200:
        notes.append(f"the posterior sample is rough (effective sample {ess:.0f})")
    acute_map = _acute_map(data)
    return IndividualFit(data, model, x_map, cov, draws, ess, float(-best.fun), pk_etas,
                         pk_map, acute_map, tuple(notes))


def _importance_resample(nlp: Callable[[np.ndarray], np.ndarray], x_map: np.ndarray,
                         cov: np.ndarray, n: int, rng: np.random.Generator
                         ) -> tuple[np.ndarray, float]:
    """SIR from the defensive mixture (module docstring), adapted once: the second round's
    Student-t takes the first round's weighted mean and covariance."""
    loc, shape = x_map, cov * 1.5 ** 2
    for _ in range(2):
        prop, w = _weighted(nlp, loc, shape, rng)
        ess = float(1.0 / np.sum(w * w))
        if ess < 30:
            break
        loc = w @ prop
        dev = prop - loc
        shape = (dev * w[:, None]).T @ dev * 1.2 ** 2 + 1e-9 * np.eye(x_map.size)
    idx = rng.choice(prop.shape[0], size=n, replace=True, p=w)
    return prop[idx], ess


def _weighted(nlp: Callable[[np.ndarray], np.ndarray], loc: np.ndarray, shape: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = loc.size
    t_dist = stats.multivariate_t(loc=loc, shape=shape, df=4)
    n_t = round(PROPOSALS * (1.0 - DEFENSIVE))
    prop = np.vstack([t_dist.rvs(size=n_t, random_state=rng).reshape(n_t, k),
                      rng.standard_normal((PROPOSALS - n_t, k))])
    log_q = np.logaddexp(math.log(1.0 - DEFENSIVE) + t_dist.logpdf(prop),
                         math.log(DEFENSIVE) + np.sum(stats.norm.logpdf(prop), axis=1))
    log_w = -nlp(prop) - log_q
    log_w = np.where(np.isfinite(log_w), log_w, -np.inf)
    w = np.exp(log_w - np.max(log_w))
    return prop, w / w.sum()


def _acute_map(data: PatientData) -> dict[str, float]:
    """MAP of the acute model's random effects from session readings (empty without)."""
    history = acute_history(data)
    if not history:
        return {}
    from ketasim.pd import acute
    from ketasim.pd.acute import PatientEffects
    from ketasim.pd.session_forecast import AcutePatient, log_likelihood
    patient = AcutePatient(weight=data.weight_kg, age=data.age or 45.0, sbp=125.0, dbp=78.0,
                           prior_sessions=max(o.session for o in history))
    p = acute.values()

    def nlp(x: np.ndarray) -> float:
        z = np.asarray(x, dtype=float).reshape(1, 4, 1)[0]
        eff = PatientEffects(z[0:1], z[1:2], z[2:3], z[3:4], np.zeros((1, 1)))
        return float(-log_likelihood(eff, history, patient, p)[0] + 0.5 * np.sum(z * z))

    res = optimize.minimize(nlp, np.zeros(4), method="L-BFGS-B", bounds=[(-6, 6)] * 4,
                            options={"ftol": 1e-12, "gtol": 1e-8})
    names = ("z_dissociation_c50", "z_dissociation_emax", "z_sbp_slope", "z_dbp_slope")
    informed = (any(o.cadss is not None for o in history),) * 2 + (
        any(o.sbp is not None for o in history), any(o.dbp is not None for o in history))
    return {k: round(float(x), 4) for k, x, use in zip(names, res.x, informed, strict=True)
            if use}


def acute_history(data: PatientData) -> list[AcuteObservation]:
    """The patient's session readings as :class:`AcuteObservation` records (one per reading
    time after a dose; BP at the dose's time is that session's pre-dose baseline)."""
    from ketasim.dosing.regimen import Dose
    if not data.readings:
        return []
    admin = data.regimen.administrations(data.weight_kg)
    out = []
    for k, (t0, mg, dose) in enumerate(admin):
        window = [r for r in data.readings if t0 - 1e-9 <= r.time_h <= t0 + 4.0 and
                  all(not (t1 > t0 and t1 <= r.time_h) for t1, _, _ in admin)]
        if not window:
            continue
        base = {r.kind: r.value for r in window if abs(r.time_h - t0) < 1e-9}
        one = Regimen((Dose(mg, dose.route, duration=dose.duration, rate=None,
                            compound=dose.compound),)).to_text()
        by_time: dict[float, dict[str, float]] = {}
        for r in window:
            if r.time_h - t0 > 1e-9:
                by_time.setdefault(r.time_h - t0, {})[r.kind] = r.value
        for dt, kinds in sorted(by_time.items()):
            sbp = kinds.get("sbp") if "sbp" in base else None
            dbp = kinds.get("dbp") if "dbp" in base else None
            out.append(AcuteObservation(k + 1, one, dt, cadss=kinds.get("cadss"), sbp=sbp,
                                        dbp=dbp, baseline_sbp=base.get("sbp") if sbp else None,
                                        baseline_dbp=base.get("dbp") if dbp else None))
    return out


__all__ = ["NAMES", "IndividualFit", "SymptomModel", "acute_history", "fit_patient",
           "log_interval_prob", "patient_drive", "rating_log_likelihood", "symptom_model"]
