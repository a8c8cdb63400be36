"""This patient's forecast: their symptom course under a plan, from their own posterior.

For every posterior draw of the patient's parameters (:mod:`ketasim.estimation.individual`)
the expected score is followed under the doses given so far plus the ``plan``, and a rating
is drawn the way the patient would be rated (rounded, clipped, with the instrument's rating
noise). The forecast reports, per day from the first dose:

- ``p5``/``p50``/``p95``: the 90 % band of the rating the patient would give (what the next
  measured rating is compared with);
- ``population_p5``/``population_p50``/``population_p95``: the same for the population at
  this weight and baseline (the posterior given only the baseline rating): the band the
  clinic showed before this patient's own data;
- ``p_response`` and ``p_remission`` 24 h after the plan's last session (response: a fall of
  the instrument's response fraction from the baseline rating; remission: at or below its
  threshold);
- ``p_relapse_by``: among the draws responding then, the probability of relapse by each day
  after the last session (weekly visits; relapse at the first of two consecutive visits
  meeting the instrument's relapse rule: MADRS ≥ 22 (SUSTAIN-1), otherwise no longer a
  response), and ``median_days_to_relapse`` (Kaplan-Meier over the draws, censored at the
  end of follow-up);
- ``map`` and ``shrinkage`` of the fit, and the effective sample size;
- ``next_session``: the hour after the next dose (peak CADSS and SBP bands, P(ready by the
  REMS 2-h minimum)), updated by the patient's own session readings when there are any.

ketasim supports decisions and research; it does not replace a clinician.

>>> import io
>>> from ketasim.estimation.patient import read_patient
>>> text = ("TIME,EVID,AMT,DUR,ROUTE,DVID,DV,WT\\n0,0,,,,madrs,32,70\\n0,1,35,0.667,iv,,,\\n"
...         "24,0,,,,madrs,14,\\n")
>>> f = forecast_patient(read_patient(io.StringIO(text)), "trd",
...                      plan="0.5 mg/kg IV over 40 min twice weekly for 2 weeks", n=400)
>>> f.instrument, len(f.days) == len(f.p50), 0.0 <= f.p_response <= 1.0
('madrs', True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import Regimen
from ketasim.errors import ModelError
from ketasim.estimation.individual import IndividualFit, SymptomModel, fit_patient
from ketasim.estimation.patient import PatientData
from ketasim.outcomes.endpoints import km_median
from ketasim.outcomes.indications import Indication, get_indication
from ketasim.scales import get_instrument

DISCLAIMER = ("ketasim supports decisions and research; it does not replace a clinician. "
              "An individual forecast is the model's, updated with this patient's data.")
RELAPSE_DAYS = (7, 14, 28, 56, 84)


def plan_start(data: PatientData, plan: Regimen) -> float:
    """When a plan starts on the patient's clock (h from the first dose): one plan interval
    after the last dose (7 days for a single dose), and never before the last record.

    >>> import io
    >>> from ketasim.estimation.patient import read_patient
    >>> p = read_patient(io.StringIO("TIME,EVID,AMT,ROUTE,DVID,DV,WT\\n0,1,35,im,,,70\\n"))
    >>> plan_start(p, parse_regimen("0.5 mg/kg IM weekly for 4 weeks"))
    168.0
    """
    every = plan.doses[0].every or 168.0
    last_dose = max(data.dose_times)
    return float(max(last_dose + every, data.last_time_h + 1.0))


def place_plan(data: PatientData, plan: str | Regimen | None,
               start_h: float | None = None) -> Regimen | None:
    """The plan moved onto the patient's clock (``start_h``: its first dose, default
    :func:`plan_start`)."""
    if plan is None:
        return None
    reg = parse_regimen(plan) if isinstance(plan, str) else plan
    start = plan_start(data, reg) if start_h is None else float(start_h)
    if start < data.last_time_h - 1e-9:
        raise ModelError("start", f"the plan would start at {start / 24:.1f} days, before the "
                         f"last record ({data.last_time_h / 24:.1f} days)",
                         "start the plan after the patient's last dose and rating")
    return reg.shift(start - reg.first_time)


@dataclass(frozen=True)
class Forecast:
    """An individual forecast (module docstring); times are days from the first dose."""

    instrument: str
    days: list[float]
    p5: list[float]
    p50: list[float]
    p95: list[float]
    population_p5: list[float]
    population_p50: list[float]
    population_p95: list[float]
    baseline: float
    end_day: float
    p_response: float
    p_remission: float | None
    p_relapse_by: dict[int, float]
    median_days_to_relapse: float
    map: dict[str, float]
    shrinkage: dict[str, float]
    ess: float
    observed: list[tuple[float, float]]
    plan: str | None
    notes: tuple[str, ...] = ()
    next_rating: dict[str, float] = field(default_factory=dict)
    next_session: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the CLI's ``--json``)."""
        med = self.median_days_to_relapse
        return {
            "instrument": self.instrument, "days": self.days,
            "p5": self.p5, "p50": self.p50, "p95": self.p95,
            "population": {"p5": self.population_p5, "p50": self.population_p50,
                           "p95": self.population_p95},
            "observed": [{"day": d, "value": v} for d, v in self.observed],
            "baseline": self.baseline, "plan": self.plan, "end_day": self.end_day,
            "p_response": self.p_response, "p_remission": self.p_remission,
            "p_relapse_by": {str(k): v for k, v in self.p_relapse_by.items()},
            "median_days_to_relapse": None if not math.isfinite(med) else med,
            "map": self.map, "shrinkage": self.shrinkage, "ess": round(self.ess, 1),
            "next_rating": self.next_rating, "next_session": self.next_session,
            "notes": list(self.notes),
            "disclaimer": DISCLAIMER,
        }


def choose_instrument(data: PatientData, ind: Indication, instrument: str | None) -> str:
    """The instrument to forecast: the one asked for, else the one the patient is rated on
    most, else the indication's primary."""
    if instrument is not None:
        inst = get_instrument(instrument).id
        if inst not in ind.instruments:
            raise ModelError("instrument", f"{inst} is not an instrument of {ind.name}",
                             f"use one of {', '.join(ind.instruments)}")
        return inst
    counts = {i: len(data.ratings_on(i)) for i in ind.instruments}
    best = max(counts, key=lambda i: counts[i])
    return best if counts[best] else ind.instrument


def predictive(model: SymptomModel, draws: np.ndarray, t: np.ndarray, instrument: str,
               rng: np.random.Generator) -> np.ndarray:
    """Ratings (draws, times) the patient would give: expected score plus rating noise,
    rounded and clipped."""
    mu = model.expected(draws, t, instrument)
    lo, hi = get_instrument(instrument).total_range
    z = rng.standard_normal(mu.shape)
    return np.clip(np.rint(mu + model.residual_sd(instrument) * z), lo, hi)


def baselines(model: SymptomModel, fit_draws: np.ndarray, data: PatientData,
              instrument: str) -> np.ndarray:
    """Each draw's baseline: the measured baseline rating when there is one."""
    measured = data.baseline(instrument)
    if measured is not None:
        return np.full(fit_draws.shape[0], measured)
    ind = model.indication
    return model.baseline_on(ind.baseline_mean + ind.baseline_sd * fit_draws[:, 2], instrument)


def responding(ratings: np.ndarray, base: np.ndarray, instrument: str) -> np.ndarray:
    """Whether each rating is a response from its baseline."""
    inst = get_instrument(instrument)
    lo = inst.total_range[0]
    fall = inst.response_fall if inst.response_fall is not None else 0.5
    return (base - ratings) >= fall * (base - lo) - 1e-9


def relapse_visits(ratings: np.ndarray, base: np.ndarray, instrument: str) -> np.ndarray:
    """Which visits meet the instrument's relapse rule (MADRS ≥ 22, else no longer a
    response from ``base``, one baseline per row)."""
    inst = get_instrument(instrument)
    if inst.relapse_min is not None:
        return np.asarray(ratings >= inst.relapse_min)
    return np.asarray(~responding(ratings, np.asarray(base)[:, None], instrument))


def relapse_curve(model: SymptomModel, draws: np.ndarray, base: np.ndarray,
                  instrument: str, last_session_h: float,
                  follow_up_days: float, rng: np.random.Generator
                  ) -> tuple[float, dict[int, float], float, np.ndarray]:
    """(P(response) 24 h after the last session, P(relapse by day) among responders, KM
    median days to relapse, who responds)."""
    start = last_session_h + 24.0
    visits = np.arange(start + 168.0, last_session_h + follow_up_days * 24.0 + 1e-9, 168.0)
    t = np.concatenate([[start], visits])
    r = predictive(model, draws, t, instrument, rng)
    resp = responding(r[:, 0], base, instrument)
    s = r[:, 1:]
    bad = relapse_visits(s, base, instrument)
    hit: np.ndarray
    if s.shape[1] >= 2:
        two = bad[:, :-1] & bad[:, 1:]
        hit = np.asarray(two.any(axis=1), dtype=bool)
        first = np.where(hit, two.argmax(axis=1), len(visits) - 1)
        days = (visits[first] - last_session_h) / 24.0
    else:
        hit = np.zeros(len(s), dtype=bool)
        days = np.full(len(s), follow_up_days)
    p_resp = float(resp.mean())
    by = {}
    for d in RELAPSE_DAYS:
        if d > follow_up_days:
            continue
        by[d] = round(float(np.mean(hit[resp] & (days[resp] <= d))), 3) if resp.any() else 0.0
    med = km_median(days[resp], hit[resp]) if resp.any() else float("nan")
    return p_resp, by, med, resp


def forecast_patient(data: PatientData, indication: str | Indication, *,
                     plan: str | Regimen | None = None, start_h: float | None = None,
                     instrument: str | None = None, follow_up_days: float = 84.0,
                     n: int = 2000, seed: int = 20261129, pk_model: str | None = None,
                     fit: IndividualFit | None = None) -> Forecast:
    """Fit ``data`` and forecast the course under ``plan`` (module docstring)."""
    ind = indication if isinstance(indication, Indication) else get_indication(indication)
    if follow_up_days < 14:
        raise ModelError("follow_up", f"{follow_up_days:g} days",
                         "follow up for at least 14 days after the last session")
    placed = place_plan(data, plan, start_h)
    last_session = max(data.dose_times) if placed is None else \
        max(t for t, _, _ in placed.administrations(data.weight_kg))
    horizon = last_session + follow_up_days * 24.0
    rng = np.random.default_rng(seed)
    if fit is None:
        fit = fit_patient(data, ind, plan=placed, horizon_h=horizon, n=n, rng=rng,
                          pk_model=pk_model)
    model = fit.model
    inst = choose_instrument(data, ind, instrument)
    prior_fit = fit_patient(data.with_ratings([r for r in data.ratings if r.time_h <= 0.0]),
                            ind, plan=placed, horizon_h=horizon, n=n, rng=rng,
                            pk_model=pk_model)
    days = np.arange(0.0, math.floor(horizon / 24.0) + 1e-9, 1.0)
    t = days * 24.0
    bands = [np.percentile(predictive(model, f.draws, t, inst, rng), [5, 50, 95], axis=0)
             for f in (fit, prior_fit)]
    base = baselines(model, fit.draws, data, inst)
    p_resp, by, med, resp = relapse_curve(model, fit.draws, base, inst, last_session,
                                          follow_up_days, rng)
    p_rem = None
    rem_max = get_instrument(inst).remission_max
    if rem_max is not None:
        end = predictive(model, fit.draws, np.array([last_session + 24.0]), inst, rng)[:, 0]
        p_rem = round(float(np.mean(end <= rem_max)), 3)
    nxt = _next_rating(model, fit, data, inst, rng)
    session = next_session(data, placed, rng)
    notes = list(fit.notes)
    if not resp.any():
        notes.append("no draw responds at the end of the plan: relapse is not defined")
    (i5, i50, i95), (q5, q50, q95) = ([b.round(1).tolist() for b in band] for band in bands)
    return Forecast(
        instrument=inst, days=days.tolist(), p5=i5, p50=i50, p95=i95, population_p5=q5,
        population_p50=q50, population_p95=q95, baseline=round(float(np.median(base)), 1),
        end_day=round((last_session + 24.0) / 24.0, 2), p_response=round(p_resp, 3),
        p_remission=p_rem, p_relapse_by=by,
        median_days_to_relapse=round(med, 1) if math.isfinite(med) else med,
        map=fit.map_values(), shrinkage=fit.shrinkage(), ess=fit.ess,
        observed=[(round(r_.time_h / 24.0, 3), r_.value) for r_ in data.ratings_on(inst)],
        plan=None if placed is None else (plan if isinstance(plan, str) else placed.to_text()),
        notes=tuple(notes), next_rating=nxt, next_session=session)


def next_session(data: PatientData, plan: Regimen | None, rng: np.random.Generator
                 ) -> dict[str, Any]:
    """The hour after the next dose (the plan's first, else the last given), individual
    when the patient has session readings: peak CADSS and peak SBP bands, P(ready to leave
    by the REMS 2-h minimum) (:mod:`ketasim.pd.session_forecast`). Empty when the dose's
    route has no acute model."""
    from ketasim.dosing.regimen import Dose
    from ketasim.errors import KetasimError
    from ketasim.estimation.individual import acute_history
    from ketasim.pd.session_forecast import AcutePatient, forecast_session
    source = plan if plan is not None else data.regimen
    t0, mg, dose = source.administrations(data.weight_kg)[0 if plan is not None else -1]
    one = Regimen((Dose(mg, dose.route, duration=dose.duration, rate=dose.rate,
                        compound=dose.compound),))
    pre = {r.kind: r.value for r in data.readings if r.kind in ("sbp", "dbp")
           and any(abs(r.time_h - t) < 1e-9 for t in data.dose_times)}
    history = acute_history(data)
    try:
        patient = AcutePatient(data.weight_kg, data.age or 45.0, pre.get("sbp", 125.0),
                               pre.get("dbp", 78.0),
                               prior_sessions=data.regimen.n_administrations)
        f = forecast_session(one, patient, history=history, n=500, rng=rng)
    except KetasimError as exc:
        return {"note": f"no session forecast: {exc}"}
    return {"day": round(t0 / 24.0, 2), "dose": one.to_text(), "individual": f.individual,
            "cadss_peak": f.cadss_peak.as_dict(), "sbp_peak_mmhg": f.sbp_peak.as_dict(),
            "p_ready_by_rems_minimum": round(f.p_ready_by_rems, 3),
            "age_assumed": data.age is None}


def _next_rating(model: SymptomModel, fit: IndividualFit, data: PatientData,
                 instrument: str, rng: np.random.Generator) -> dict[str, float]:
    """The 90 % interval of a rating 7 days after the last record."""
    t = data.last_time_h + 168.0
    r = predictive(model, fit.draws, np.array([t]), instrument, rng)[:, 0]
    p5, p50, p95 = np.percentile(r, [5, 50, 95])
    return {"day": round(t / 24.0, 2), "p5": float(p5), "p50": float(p50), "p95": float(p95)}


__all__ = [
    "DISCLAIMER",
    "RELAPSE_DAYS",
    "Forecast",
    "baselines",
    "choose_instrument",
    "forecast_patient",
    "next_session",
    "place_plan",
    "plan_start",
    "predictive",
    "relapse_curve",
    "relapse_visits",
    "responding",
]
