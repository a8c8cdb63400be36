"""The next session for this patient: the maintenance spacing that keeps relapse unlikely.

Candidates are what a clinician would consider: the same route and infusion as the last
dose, an interval of 3-28 days, doses from the last one or a list within the clinic's
limits. For each candidate, the patient's posterior draws (:mod:`ketasim.estimation`) are
followed over the horizon with weekly ratings; relapse is two consecutive weekly ratings
meeting the instrument's relapse rule (MADRS ≥ 22, SUSTAIN-1; otherwise no longer a response
from the baseline rating). The recommendation is the candidate with the fewest sessions
whose P(relapse) is at or below the target (ties: less drug, then the longer interval), and
every candidate is shown with its forecast. When the patient is not responding now, no
spacing meets the target and the answer says so.

ketasim supports decisions and research; it does not replace a clinician.

>>> import io
>>> from ketasim.estimation.patient import read_patient
>>> text = ("TIME,EVID,AMT,DUR,ROUTE,DVID,DV,WT\\n0,0,,,,madrs,32,70\\n0,1,35,0.667,iv,,,\\n"
...         "24,0,,,,madrs,12,\\n")
>>> r = recommend(read_patient(io.StringIO(text)), "trd", intervals_days=(7, 28), n=300)
>>> [(c.interval_days, c.sessions) for c in r.candidates]
[(28.0, 3), (7.0, 12)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ketasim.dosing.regimen import Dose, Regimen
from ketasim.errors import KetasimError, ModelError
from ketasim.estimation.forecast import (
    DISCLAIMER,
    baselines,
    choose_instrument,
    predictive,
    relapse_visits,
    responding,
)
from ketasim.estimation.individual import fit_patient, symptom_model
from ketasim.estimation.patient import PatientData
from ketasim.outcomes.indications import Indication, get_indication

INTERVALS_DAYS = (3.0, 4.0, 5.0, 7.0, 10.0, 14.0, 21.0, 28.0)


def relapsed(ratings: np.ndarray, base: np.ndarray, instrument: str) -> np.ndarray:
    """Whether each row of weekly ``ratings`` has two consecutive visits meeting the
    instrument's relapse rule.

    >>> relapsed(np.array([[10, 25, 26], [25, 10, 25]]), np.array([32, 32]), "madrs")
    array([ True, False])
    """
    bad = relapse_visits(ratings, base, instrument)
    if bad.shape[1] < 2:
        return np.zeros(bad.shape[0], dtype=bool)
    return np.asarray((bad[:, :-1] & bad[:, 1:]).any(axis=1))


@dataclass(frozen=True)
class Candidate:
    """One maintenance schedule and its forecast for this patient."""

    interval_days: float
    dose_text: str
    dose_mg: float
    sessions: int
    first_session_day: float
    p_relapse: float
    p_response_end: float
    median_end: float
    meets_target: bool

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"interval_days": self.interval_days, "dose": self.dose_text,
                "dose_mg": round(self.dose_mg, 1), "sessions": self.sessions,
                "first_session_day": round(self.first_session_day, 2),
                "p_relapse": self.p_relapse, "p_response_end": self.p_response_end,
                "median_score_end": self.median_end, "meets_target": self.meets_target}


@dataclass(frozen=True)
class Recommendation:
    """All candidates, the chosen one (None when none meets the target), and why."""

    instrument: str
    target_relapse: float
    horizon_days: float
    p_responding_now: float
    candidates: tuple[Candidate, ...]
    chosen: Candidate | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (the CLI's ``--json``)."""
        return {"instrument": self.instrument, "target_relapse": self.target_relapse,
                "horizon_days": self.horizon_days,
                "p_responding_now": self.p_responding_now,
                "recommended": None if self.chosen is None else self.chosen.to_json(),
                "next_session_day": None if self.chosen is None
                else round(self.chosen.first_session_day, 2),
                "reason": self.reason,
                "candidates": [c.to_json() for c in self.candidates],
                "disclaimer": DISCLAIMER}


def dose_mg(text: str, weight_kg: float) -> float:
    """A dose text ('0.5 mg/kg', '35 mg') in mg at ``weight_kg``.

    >>> dose_mg('0.5 mg/kg', 70.0)
    35.0
    """
    try:
        mg = Dose.of(text, "IM").amount_mg(weight_kg)
    except KetasimError as exc:
        raise ModelError("doses", f"{text!r}: {exc.problem}",
                         "write doses like '0.5 mg/kg' or '35 mg'") from None
    if not math.isfinite(mg) or mg <= 0:
        raise ModelError("doses", f"{text!r} is not a positive dose", "give a dose > 0")
    return mg


def recommend(data: PatientData, indication: str | Indication, *,
              target_relapse: float = 0.2, intervals_days: Sequence[float] = INTERVALS_DAYS,
              doses: Sequence[str] = (), max_mg_per_kg: float | None = None,
              horizon_days: float = 84.0, instrument: str | None = None, n: int = 1000,
              seed: int = 20261129) -> Recommendation:
    """Recommend the next sessions (module docstring). ``doses`` default to the last
    dose; ``max_mg_per_kg`` is the clinic's limit for this route."""
    ind = indication if isinstance(indication, Indication) else get_indication(indication)
    if not 0.0 < target_relapse < 1.0:
        raise ModelError("target_relapse", f"is {target_relapse:g}", "give a probability "
                         "between 0 and 1, e.g. 0.2")
    bad = [k for k in intervals_days if not 3.0 <= k <= 28.0]
    if bad or not intervals_days:
        raise ModelError("intervals", f"{bad[0] if bad else 'none'} days",
                         "give intervals between 3 and 28 days")
    if horizon_days < 28:
        raise ModelError("horizon", f"{horizon_days:g} days", "look at least 28 days ahead")
    rng = np.random.default_rng(seed)
    fit = fit_patient(data, ind, n=n, rng=rng)
    inst = choose_instrument(data, ind, instrument)
    admin = data.regimen.administrations(data.weight_kg)
    t_last, mg_last, last = admin[-1]
    dose_list = [(f"{mg_last:g} mg", mg_last)] if not doses else \
        [(d, dose_mg(d, data.weight_kg)) for d in doses]
    for text, mg in dose_list:
        if max_mg_per_kg is not None and mg / data.weight_kg > max_mg_per_kg + 1e-9:
            raise ModelError("doses", f"{text} is {mg / data.weight_kg:.2f} mg/kg, above the "
                             f"clinic's limit of {max_mg_per_kg:g} mg/kg",
                             "give doses within the clinic's limits")
    now = data.last_time_h
    base = baselines(fit.model, fit.draws, data, inst)
    r_now = predictive(fit.model, fit.draws, np.array([now]), inst, rng)[:, 0]
    p_now = round(float(responding(r_now, base, inst).mean()), 3)
    visits = np.arange(now + 168.0, now + horizon_days * 24.0 + 1e-9, 168.0)
    out = []
    for k in sorted(float(x) for x in intervals_days):
        first = max(t_last + 24.0 * k, now + 1.0)
        times = np.arange(first, now + horizon_days * 24.0, 24.0 * k)
        for text, mg in dose_list:
            plan = Regimen(tuple(Dose(mg, last.route, time=float(t), duration=last.duration,
                                      rate=last.rate, compound=last.compound) for t in times))
            model = symptom_model(data, ind, plan=plan if times.size else None,
                                  horizon_h=float(visits[-1]), pk_etas=fit.pk_etas)
            r = predictive(model, fit.draws, visits, inst, rng)
            p_rel = round(float(relapsed(r, base, inst).mean()), 3)
            p_end = round(float(responding(r[:, -1], base, inst).mean()), 3)
            out.append(Candidate(k, text, mg, int(times.size), first / 24.0, p_rel, p_end,
                                 float(np.median(r[:, -1])), p_rel <= target_relapse))
    ok = [c for c in out if c.meets_target]
    if ok:
        chosen = min(ok, key=lambda c: (c.sessions, c.sessions * c.dose_mg, -c.interval_days))
        reason = (f"the fewest sessions ({chosen.sessions} in {horizon_days:g} days) with "
                  f"P(relapse) {chosen.p_relapse:.2f} ≤ {target_relapse:g}")
    else:
        chosen = None
        reason = f"no candidate keeps P(relapse) ≤ {target_relapse:g}"
        latest = data.ratings_on(inst)[-1:] if data.ratings_on(inst) else []
        if latest and not responding(np.array([latest[0].value]), np.array([base[0]]),
                                     inst)[0]:
            reason += (f"; the last {inst} rating ({latest[0].value:g} on day "
                       f"{latest[0].time_h / 24:.0f}) is not a response: review the "
                       "treatment plan")
    return Recommendation(inst, target_relapse, horizon_days, p_now,
                          tuple(sorted(out, key=lambda c: (c.sessions, c.dose_mg))), chosen,
                          reason)


__all__ = ["INTERVALS_DAYS", "Candidate", "Recommendation", "dose_mg", "recommend", "relapsed"]
