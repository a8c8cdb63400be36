"""The session forecast: what the hour after a planned dose will look like for this patient.

For a planned dose and a patient (weight, age, baseline SBP/DBP/HR, number of earlier
sessions) :func:`forecast_session` simulates virtual replicates of the session with the acute
models of :mod:`ketasim.pd.acute` and summarises them: CADSS, MOAA/S, SBP, DBP and HR curves
with 90 % bands, the label's BP threshold probabilities at the trials' 40-min and 1.5-h
checks, sedation probabilities, published adverse-event incidences, peak NMDA occupancy and
the time the patient is forecast ready to leave, set against the 2-hour minimum of the
esketamine REMS.

**Individual forecasts.** Given the patient's own readings from earlier sessions
(:class:`AcuteObservation`: CADSS, SBP, DBP at stated times after the dose), the population
model is the prior on the patient's random effects (dissociation C50 and Emax, SBP and DBP
slopes) and the readings update it by sampling-importance-resampling: ``prior_draws``
population draws are weighted by the likelihood of the readings (CADSS normal with the
calibrated reading SD, censored at 0; BP rises normal with the calibrated per-reading SD) and
``n`` replicates are resampled from them. The importance sample's effective size is reported
(``ess``); the forecast says when it is small. SIR is exact as the draws grow, needs no
tuning, and with four random effects and 50,000 draws answers in well under a second.

A forecast supports a clinician's judgement; it does not replace the observation the label
requires (at least 2 h, then a clinical decision).

>>> f = forecast_session("84 mg esketamine intranasal", AcutePatient(80, 45, 132, 84),
...                      n=400, rng=np.random.default_rng(1))
>>> 0.0 < f.p_sbp_rise_ge_40 < 0.2, f.individual
(True, False)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.stats import norm

from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import Regimen
from ketasim.errors import CovariateError, DataError, KetasimError, ModelError
from ketasim.pd import acute
from ketasim.pd.acute import AcuteDriver, PatientEffects
from ketasim.references import render_source

REMS_MINIMUM_H = 2.0  # SPRAVATO REMS: observe at least 2 h after the dose
HORIZON_H = 4.0
STEP_H = 1.0 / 60.0
BANDS = (5.0, 50.0, 95.0)
LIMITS = {"weight": (20.0, 300.0, "kg"), "age": (12.0, 110.0, "years"),
          "sbp": (70.0, 250.0, "mmHg"), "dbp": (40.0, 150.0, "mmHg"),
          "hr": (30.0, 200.0, "beats/min")}


def _check(name: str, value: float) -> float:
    lo, hi, unit = LIMITS[name]
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise CovariateError(name, f"{value!r} {unit} is outside {lo:g}-{hi:g} {unit}",
                         f"give the patient's {name} in {unit}")
    return v


@dataclass(frozen=True)
class AcutePatient:
    """The patient for a session forecast (checked on construction)."""

    weight: float
    age: float
    sbp: float
    dbp: float
    hr: float = 75.0
    prior_sessions: int = 0

    def __post_init__(self) -> None:
        for name in ("weight", "age", "sbp", "dbp", "hr"):
            object.__setattr__(self, name, _check(name, getattr(self, name)))
        if self.dbp >= self.sbp:
            raise CovariateError("dbp", f"{self.dbp:g} is not below SBP {self.sbp:g}",
                             "check that SBP and DBP are not swapped")
        if int(self.prior_sessions) != self.prior_sessions or self.prior_sessions < 0:
            raise CovariateError("prior_sessions", f"{self.prior_sessions!r}",
                             "give a whole number ≥ 0 of earlier sessions")

    @property
    def session(self) -> int:
        """The planned session's number (1 for the first)."""
        return int(self.prior_sessions) + 1


@dataclass(frozen=True)
class AcuteObservation:
    """One reading from an earlier session: ``t_h`` hours after its dose; any of CADSS total,
    SBP, DBP (mmHg); BP rises are taken from that session's pre-dose ``baseline_*``."""

    session: int
    regimen: str
    t_h: float
    cadss: float | None = None
    sbp: float | None = None
    dbp: float | None = None
    baseline_sbp: float | None = None
    baseline_dbp: float | None = None

    def __post_init__(self) -> None:
        if int(self.session) != self.session or self.session < 1:
            raise ModelError("session", f"{self.session!r}", "number sessions from 1")
        if not (math.isfinite(self.t_h) and 0.0 < self.t_h <= HORIZON_H):
            raise ModelError("time", f"{self.t_h * 60:g} min after the dose",
                             f"give a reading between 1 and {HORIZON_H * 60:g} min after it")
        if self.cadss is not None and not 0.0 <= self.cadss <= acute.CADSS_MAX:
            raise ModelError("cadss", f"{self.cadss!r}", "a CADSS total lies in 0-92")
        for kind in ("sbp", "dbp"):
            v, b = getattr(self, kind), getattr(self, f"baseline_{kind}")
            if v is not None:
                _check(kind, v)
                if b is None:
                    raise ModelError(f"baseline_{kind}", "missing",
                                     "give the session's pre-dose reading (time 0)")
                _check(kind, b)


@dataclass(frozen=True)
class Band:
    """5th, 50th and 95th percentiles."""

    p5: float
    p50: float
    p95: float

    @classmethod
    def of(cls, x: np.ndarray) -> Band:
        """Percentiles of ``x`` as order statistics (an ``inf``, never ready, stays inf)."""
        q = np.percentile(np.asarray(x, float), BANDS, method="inverted_cdf")
        return cls(*(float(v) for v in q))

    def as_dict(self) -> dict[str, float | None]:
        return {k: (None if not math.isfinite(v) else round(v, 4))
                for k, v in (("p5", self.p5), ("p50", self.p50), ("p95", self.p95))}


@dataclass(frozen=True, eq=False)
class SessionForecast:
    """A session forecast; curves are (3, times) arrays of the 5th/50th/95th percentiles."""

    regimen: str
    model: str
    patient: AcutePatient
    n: int
    times_h: np.ndarray
    cadss: np.ndarray
    sbp: np.ndarray
    dbp: np.ndarray
    hr: np.ndarray
    p_moaas_le: dict[int, np.ndarray]  # level -> P(MOAA/S ≤ level) over time
    cadss_peak: Band
    sbp_peak: Band
    dbp_peak: Band
    sbp_rise_peak: Band
    discharge_ready_h: Band
    p_ready_by_rems: float
    p_sbp_rise_ge_40: float
    p_dbp_rise_ge_25: float
    p_sbp_ge_180: float
    p_dbp_ge_110: float
    p_moaas_any_fall: float
    p_moaas_le_3: float
    p_moaas_0: float
    adverse_events: dict[str, dict[str, Any]]
    nmda_occupancy_peak: float
    individual: bool
    n_history_sessions: int
    ess: float | None
    evidence: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``ketasim session --json`` object."""
        def r(x: float) -> float:
            return round(float(x), 4)
        return {
            "regimen": self.regimen, "model": self.model,
            "patient": {"weight_kg": self.patient.weight, "age_y": self.patient.age,
                        "sbp_mmhg": self.patient.sbp, "dbp_mmhg": self.patient.dbp,
                        "hr_bpm": self.patient.hr, "session": self.patient.session},
            "replicates": self.n, "individual": self.individual,
            "history_sessions": self.n_history_sessions,
            "effective_sample_size": None if self.ess is None else r(self.ess),
            "cadss_peak": self.cadss_peak.as_dict(), "sbp_peak_mmhg": self.sbp_peak.as_dict(),
            "dbp_peak_mmhg": self.dbp_peak.as_dict(),
            "sbp_rise_peak_mmhg": self.sbp_rise_peak.as_dict(),
            "discharge_ready_h": self.discharge_ready_h.as_dict(),
            "rems_minimum_h": REMS_MINIMUM_H, "p_ready_by_rems_minimum": r(self.p_ready_by_rems),
            "p_sbp_rise_ge_40": r(self.p_sbp_rise_ge_40),
            "p_dbp_rise_ge_25": r(self.p_dbp_rise_ge_25),
            "p_sbp_ge_180": r(self.p_sbp_ge_180), "p_dbp_ge_110": r(self.p_dbp_ge_110),
            "p_moaas_any_fall": r(self.p_moaas_any_fall), "p_moaas_le_3": r(self.p_moaas_le_3),
            "p_moaas_0": r(self.p_moaas_0),
            "nmda_occupancy_peak": r(self.nmda_occupancy_peak),
            "adverse_events": {k: v["probability"] for k, v in self.adverse_events.items()},
            "adverse_event_sources": {k: {"source": v["source"],
                                          "citation": render_source(v["source"]),
                                          "grade": v["grade"]}
                                      for k, v in self.adverse_events.items()},
            "curves": {"times_min": [r(t * 60.0) for t in self.times_h[::5]],
                       **{k: {b: [r(v) for v in arr[i, ::5]] for i, b in
                              enumerate(("p5", "p50", "p95"))}
                          for k, arr in (("cadss", self.cadss), ("sbp", self.sbp),
                                         ("dbp", self.dbp), ("hr", self.hr))},
                       "p_moaas_le_3": [r(v) for v in self.p_moaas_le[3][::5]]},
            "evidence": self.evidence, "notes": self.notes,
            "disclaimer": DISCLAIMER,
        }

    def band_at(self, output: str, t_h: float) -> tuple[float, float, float]:
        """(p5, p50, p95) of ``output`` (cadss, sbp, dbp, hr) at ``t_h`` hours."""
        arr = {"cadss": self.cadss, "sbp": self.sbp, "dbp": self.dbp, "hr": self.hr}[output]
        vals = [float(np.interp(t_h, self.times_h, arr[i])) for i in range(3)]
        return vals[0], vals[1], vals[2]


DISCLAIMER = ("A model forecast to support the clinician's judgement, not a replacement for "
              "it: observe every patient for at least 2 h (esketamine REMS) and decide on "
              "discharge clinically.")


@lru_cache(maxsize=64)
def _driver(regimen_text: str, weight: float, age: float) -> tuple[AcuteDriver, float]:
    from ketasim.pd.exposure import target_exposure
    from ketasim.population.pkrun import run_pk
    reg = parse_regimen(regimen_text)
    times = np.arange(0.0, HORIZON_H + 1e-9, STEP_H)
    run = run_pk(reg, covariates={"weight": weight, "age": age}, times=times,
                 allow_extrapolation=True)
    nmda = float(target_exposure(run, ["nmda"]).peak["nmda"][0])
    return acute.driver_from_run(run), nmda


def _regimen(regimen: str | Regimen) -> str:
    return _canonical(regimen) if isinstance(regimen, str) else regimen.to_text()


@lru_cache(maxsize=256)
def _canonical(text: str) -> str:
    return parse_regimen(text).to_text()


def evidence_summary(params: Mapping[str, Any] | None = None) -> dict[str, list[str]]:
    """Parameter names by evidence tag (``calibrated``, ``assumed``, ``literature``)."""
    out: dict[str, list[str]] = {}
    for name, p in (params or acute.acute_parameters()).items():
        out.setdefault(p.evidence, []).append(name)
    return {k: sorted(v) for k, v in sorted(out.items())}


def log_likelihood(effects: PatientEffects, history: Sequence[AcuteObservation],
                    patient: AcutePatient, p: Mapping[str, float]) -> np.ndarray:
    """log p(readings | effects) for each draw (M,): CADSS (normal, a reading of 0 the
    lower tail) and the SBP/DBP rises from each session's pre-dose baseline."""
    g = acute.age_group(patient.age)
    ll = np.zeros(len(effects))
    sd_c = p["cadss_noise_sd"]
    for obs in history:
        drv, _ = _driver(_regimen(obs.regimen), patient.weight, patient.age)
        d = np.array([[float(np.interp(obs.t_h, drv.times, drv.driver(p["c100_nk"])[0]))]])
        if obs.cadss is not None:
            mu = acute.dissociation(d, p, effects.c50, effects.emax, obs.session)[:, 0]
            if obs.cadss <= 0.0:
                ll += norm.logcdf((0.0 - mu) / sd_c)
            else:
                ll += norm.logpdf((obs.cadss - mu) / sd_c) - math.log(sd_c)
        for kind, eta in (("sbp", effects.sbp), ("dbp", effects.dbp)):
            v = getattr(obs, kind)
            if v is None:
                continue
            rise = v - float(getattr(obs, f"baseline_{kind}"))
            mu = acute.bp_rise(d, p, kind, g, eta)[:, 0]
            sd = p[f"{kind}_placebo_sd_{g}"]
            ll += norm.logpdf((rise - mu) / sd) - math.log(sd)
    return ll


def posterior_effects(history: Sequence[AcuteObservation], patient: AcutePatient, n: int,
                      rng: np.random.Generator, prior_draws: int = 50_000,
                      params: Mapping[str, float] | None = None
                      ) -> tuple[PatientEffects, float]:
    """``n`` draws of the patient's random effects given their readings (SIR), and the
    importance sample's effective size."""
    p = dict(params) if params is not None else acute.values()
    prior = PatientEffects.draw(prior_draws, rng)
    ll = log_likelihood(prior, history, patient, p)
    w = np.exp(ll - ll.max())
    w /= w.sum()
    ess = float(1.0 / np.sum(w * w))
    idx = rng.choice(prior_draws, size=n, replace=True, p=w)
    return prior.take(idx), ess


def _peak_reading(expected: np.ndarray, reading: np.ndarray) -> np.ndarray:
    """Each patient's reading at the time of their expected peak."""
    k = np.argmax(expected, axis=1)
    return reading[np.arange(len(k)), k]


def forecast_session(regimen: str | Regimen, patient: AcutePatient, *,
                     history: Iterable[AcuteObservation] = (), n: int = 1000,
                     rng: np.random.Generator | None = None, prior_draws: int = 50_000,
                     bp_limits: tuple[float, float] = (180.0, 110.0)) -> SessionForecast:
    """Forecast one session of ``regimen`` for ``patient`` (see the module docstring).

    ``rng`` defaults to a fixed seed so that a forecast shown twice is the same forecast.
    """
    if n < 100:
        raise ModelError("n", f"{n} replicates", "use at least 100 for a 90 % band")
    rng = rng if rng is not None else np.random.default_rng(20261129)
    text = _regimen(regimen)
    hist = list(history)
    for obs in hist:
        if obs.session > patient.prior_sessions:
            raise ModelError("history", f"session {obs.session} is not an earlier session "
                             f"(the patient has had {patient.prior_sessions})",
                             "set prior sessions to at least the history's last session")
    drv, nmda = _driver(text, patient.weight, patient.age)
    p = acute.values()
    notes: list[str] = []
    ess: float | None = None
    if hist:
        effects, ess = posterior_effects(hist, patient, n, rng, prior_draws, p)
        if ess < 50:
            notes.append(f"the earlier readings leave few plausible patients (effective "
                         f"sample {ess:.0f}); the individual band is rough")
    else:
        effects = PatientEffects.draw(n, rng)
    s = acute.simulate_session(drv, n, rng, age=patient.age, baseline_sbp=patient.sbp,
                               baseline_dbp=patient.dbp, baseline_hr=patient.hr,
                               session=patient.session, params=p, effects=effects,
                               bp_limits=bp_limits)
    t = s.times
    checks = [int(np.argmin(np.abs(t - h))) for h in acute.BP_READINGS_H]
    rise_s = s.sbp_reading[:, checks] - s.baseline_sbp[:, None]
    rise_d = s.dbp_reading[:, checks] - s.baseline_dbp[:, None]
    bg = p["moaas_background"]
    pct = np.percentile
    # the band of a single reading at each time: expected curve plus one reading error; one
    # error per replicate gives every time the same marginal as independent errors, and
    # smooth percentile curves
    g = acute.age_group(patient.age)
    eps = rng.standard_normal((4, n, 1))
    try:
        ae = {k: {"probability": round(v.drug, 4), "placebo": round(v.placebo, 4),
                  "source": v.source, "grade": v.grade}
              for k, v in acute.adverse_events(text).items()}
    except ModelError:
        ae = {}
        notes.append("no published adverse-event table for this route and dose")
    reg = parse_regimen(text)
    first = reg.doses[0]
    if (first.compound or reg.compound or "racemic") == "racemic" \
            and first.route.value == "intranasal":
        notes.append("read as racemic ketamine; for the esketamine spray write e.g. "
                     "'84 mg esketamine intranasal'")
    if first.route.value == "sc":
        notes.append("SC dissociation runs high in this model (47 vs 20 CADSS after 1 mg/kg; "
                     "see ketasim validate pd), so its readiness time is conservative")
    return SessionForecast(
        regimen=text, model=drv.model, patient=patient, n=n, times_h=t,
        cadss=pct(np.clip(s.cadss + p["cadss_noise_sd"] * eps[0], 0.0, acute.CADSS_MAX),
                  BANDS, axis=0),
        sbp=pct(s.sbp + p[f"sbp_placebo_sd_{g}"] * eps[1], BANDS, axis=0),
        dbp=pct(s.dbp + p[f"dbp_placebo_sd_{g}"] * eps[2], BANDS, axis=0),
        hr=pct(s.hr + p["hr_noise_sd"] * eps[3], BANDS, axis=0),
        p_moaas_le={j: (s.moaas <= j).mean(axis=0) for j in (4, 3, 2, 1, 0)},
        cadss_peak=Band.of(s.cadss.max(axis=1)),
        sbp_peak=Band.of(_peak_reading(s.sbp, s.sbp_reading)),
        dbp_peak=Band.of(_peak_reading(s.dbp, s.dbp_reading)),
        sbp_rise_peak=Band.of(_peak_reading(s.sbp, s.sbp_reading) - s.baseline_sbp),
        discharge_ready_h=Band.of(s.ready_h),
        p_ready_by_rems=float(np.mean(s.ready_h <= REMS_MINIMUM_H + 1e-9)),
        p_sbp_rise_ge_40=float(np.mean((rise_s >= 40.0).any(axis=1))),
        p_dbp_rise_ge_25=float(np.mean((rise_d >= 25.0).any(axis=1))),
        p_sbp_ge_180=float(np.mean((s.sbp_reading[:, checks] >= 180.0).any(axis=1))),
        p_dbp_ge_110=float(np.mean((s.dbp_reading[:, checks] >= 110.0).any(axis=1))),
        p_moaas_any_fall=1.0 - (1.0 - bg) * (1.0 - s.p_moaas_le(4)),
        p_moaas_le_3=s.p_moaas_le(3), p_moaas_0=s.p_moaas_le(0),
        adverse_events=ae, nmda_occupancy_peak=nmda, individual=bool(hist),
        n_history_sessions=len({o.session for o in hist}), ess=ess,
        evidence=evidence_summary(), notes=notes)


HISTORY_COLUMNS = ("session", "regimen", "time_min", "cadss", "sbp", "dbp")


def read_history(path: Any) -> list[AcuteObservation]:
    """Earlier sessions' readings from a CSV with columns ``session, regimen, time_min,
    cadss, sbp, dbp`` (empty cells allowed). Each session's BP rises are measured from its
    pre-dose row (``time_min`` 0), which every session with BP readings needs.

    Errors name the row (as a spreadsheet shows it: the header is row 1) and the column.
    """
    import pandas as pd
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError) as exc:
        raise DataError("history", f"cannot read {path}: {exc}",
                         "give a CSV file with a header row") from exc
    df.columns = [c.strip().lower() for c in df.columns]
    missing = [c for c in ("session", "regimen", "time_min") if c not in df.columns]
    if missing:
        raise DataError("history", f"column(s) {', '.join(missing)} missing",
                         f"use the columns {', '.join(HISTORY_COLUMNS)}")

    def num(row: int, col: str, text: str) -> float | None:
        text = text.strip()
        if text == "":
            return None
        try:
            v = float(text)
        except ValueError:
            raise DataError(f"history row {row}, {col}", f"{text!r} is not a number",
                             "write a plain decimal number (or leave it empty)") from None
        if not math.isfinite(v):
            raise DataError(f"history row {row}, {col}", f"{text!r}", "give a finite number")
        return v

    rows: list[dict[str, Any]] = []
    for i, rec in enumerate(df.to_dict("records"), start=2):
        vals = {c: num(i, c, str(rec.get(c, ""))) for c in HISTORY_COLUMNS
                if c != "regimen"}
        if vals["session"] is None or vals["time_min"] is None:
            raise DataError(f"history row {i}", "session or time_min is empty",
                             "give both on every row")
        rows.append({**vals, "regimen": str(rec["regimen"]).strip(), "row": i})
    base: dict[int, dict[str, float | None]] = {}
    for r in rows:
        if r["time_min"] == 0.0:
            base[int(r["session"])] = {"sbp": r["sbp"], "dbp": r["dbp"]}
    out: list[AcuteObservation] = []
    for r in rows:
        if r["time_min"] == 0.0:
            continue
        sess = int(r["session"])
        b = base.get(sess, {})
        try:
            if not r["regimen"]:
                raise DataError("regimen", "empty", "give the dose as in 84 mg intranasal")
            _regimen(r["regimen"])
            out.append(AcuteObservation(sess, r["regimen"], r["time_min"] / 60.0, r["cadss"],
                                        r["sbp"], r["dbp"], b.get("sbp"), b.get("dbp")))
        except KetasimError as exc:
            raise DataError(f"history row {r['row']}, {exc.field}", exc.problem,
                            exc.fix) from None
    return out


__all__ = [
    "DISCLAIMER",
    "HISTORY_COLUMNS",
    "REMS_MINIMUM_H",
    "AcuteObservation",
    "AcutePatient",
    "Band",
    "SessionForecast",
    "evidence_summary",
    "forecast_session",
    "log_likelihood",
    "posterior_effects",
    "read_history",
]
