"""Acute effects of a ketamine dose: dissociation, drug high, sedation, BP, HR, adverse events.

Every output is driven by the **S-ketamine effect-site concentration** (t½ke0 8.3 min;
R-ketamine has no detectable effect, Olofsen 2022 [V]), antagonised by S-norketamine through
Olofsen's C50 scaling C50,eff = C50·(1 + Ce,NK/C100,NK). Written as one driver,

    D = Ce,S / (1 + Ce,NK / C100,NK)        (ng/mL S-ketamine equivalent),

every model below is a pure function of D (arrays with a leading subject axis):

* dissociation: CADSS = Emaxᵢ·f(n)·Dᵞ/(C50ᵢᵞ + Dᵞ) (γ calibrated to the resolution by
  90-120 min), log-normal IIV on C50 and Emax, attenuated
  over sessions by f(n) = f∞ + (1 − f∞)·exp(−(n − 1)/τ);
* perception / "drug high": the same Hill term as a fraction of the (unpublished) maximum;
* sedation: proportional-odds MOAA/S, P(MOAA/S ≤ j) = logistic(γₛ·(ln D − ln C50ⱼ));
* SBP/DBP: rise = μ_p + bᵢ·D + σ_p·ε per reading (age group), HR: relative rise ∝ D;
* adverse-event incidence per route and dose from the published tables.

Parameters without a published value are calibrated (``ketasim.validation.acute_calibration``)
to the summary statistics they name and stored in ``ketasim/data/acute_fit.json``.

>>> import numpy as np
>>> p = acute_parameters()
>>> round(hill(np.array(121.0), 121.0, 2.0).item(), 3)   # at C50: half the maximum
0.5
>>> p["c50_perception"].evidence, p["emax_cadss"].evidence
('literature', 'calibrated')
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import Regimen
from ketasim.dosing.route import Route
from ketasim.errors import ModelError
from ketasim.model.model import Parameter
from ketasim.pd.effect_site import KE0_PER_H, effect_site
from ketasim.pk.library._common import assumed, calibrated, lit
from ketasim.population.pkrun import PKRun, run_pk

FIT_FILE = "acute_fit.json"
CALIBRATION_RUN = "ketasim.validation.acute_calibration.calibrate"

# ---- sources: bibliography keys (ketasim.references; `ketasim references KEY`) --------------
OLOFSEN = "olofsen2022"
SIMONS = "simons2022b"
BOWDLE = "bowdle1998"
GLUE_2018 = "glue2018"
VAN_SCHALKWYK = "vanschalkwyk2018"
LABEL = "spravato-label"
MEDINFO = "janssen-medinfo"
DOHERTY = "doherty2020"
LANGSJO = "langsjo2005"
CANUSO = "canuso2021, Table 2"
TAIWAN_RCT = ("su2023: racemic 0.5 mg/kg vs midazolam in TRD with suicidal ideation "
              "(n = 42/42), adverse-event table (its attribution to this paper is uncertain)")
CHEN = "chen2022"
ACEVEDO = "acevedodiaz2020"
DEL_SANT = "delsant2023"
READY_POSTER = "transform-readiness2019"

LEVELS = (5, 4, 3, 2, 1, 0)  # MOAA/S, awake to unresponsive
AGE_GROUPS = ("under_65", "65_plus")
BP_READINGS_H = (40.0 / 60.0, 1.5)  # post-dose BP checks of the esketamine trials
CADSS_CASE = 4.0  # label: a dissociation "case" is a CADSS total above 4 (and a rise)
CADSS_MAX = 92.0

FIXED: dict[str, Parameter] = {
    "c50_perception": lit(121.0, "ng/mL", "S-ketamine effect-site C50 of external perception "
                          "(and dissociation); 0.51 nmol/mL, 95 % CI 90-157 ng/mL", OLOFSEN),
    "c50_high": lit(71.0, "ng/mL", "S-ketamine C50 of 'drug high' (11-point VAS); "
                    "0.3 nmol/mL", SIMONS),
    "t_half_ke0": lit(8.3, "min", "S-ketamine effect-site equilibration half-time (95 % CI "
                      "5.1-13.0); used for S-norketamine as well (assumed)", OLOFSEN),
    "hill": assumed(2.0, "", "Hill coefficient γ of the perception and drug-high Emax "
                    "models (VAS endpoints)",
                    "gap in " + OLOFSEN + "; γ 1-2 reproduces the near-linear rise of "
                    + BOWDLE + "; 2 taken"),
    "f_inf": lit(0.44, "fraction", "dissociation remaining after many sessions (f∞): mean "
                 "CADSS 20 at week 1 → 8.8 at week 14, SC racemic 1 mg/kg weekly (derived)",
                 GLUE_2018),
    "tau_sessions": assumed(1.0, "sessions", "attenuation constant τ of dissociation over "
                            "sessions", "most of the fall happens after the first dose, then "
                            "the level holds (rodrigues2020; " + DEL_SANT + "); the "
                            "suggested range is 1-3 sessions; 1 taken"),
    "moaas_background": lit(0.11, "probability", "any MOAA/S fall without drug (placebo, "
                            "fixed-dose study < 65 y)", LABEL + ", sedation table",
                            grade="M"),
    "hr_noise_sd": assumed(6.0, "beats/min", "SD of a heart-rate reading's non-drug change "
                           "from the pre-dose reading (the forecast band of a reading)",
                           "no per-reading HR variability is published for ketamine "
                           "sessions (" + DOHERTY + " gives HR events only); repeated "
                           "resting readings in adults typically differ by a few beats/min, "
                           "6 taken"),
    "hr_slope": lit(43.5 / 1959.0, "%/(ng/mL)", "relative HR rise per ng/mL S-ketamine: "
                    "+43.5 % at 1959 ng/mL, taken linear through zero (linearity assumed)",
                    LANGSJO),
}

# calibrated: name -> (unit, description)
CALIBRATED: dict[str, tuple[str, str]] = {
    "c100_nk": ("ng/mL", "S-norketamine effect-site concentration that doubles C50 "
                "(Olofsen's antagonism structure; value a gap)"),
    "hill_cadss": ("", "Hill coefficient γ of dissociation (CADSS; a gap in Olofsen 2022): "
                   "sets how fast dissociation resolves as the driver falls"),
    "emax_cadss": ("CADSS points", "maximal dissociation (typical patient, first session)"),
    "omega_c50": ("log-SD", "between-patient SD of ln C50 (dissociation; lumps PK and PD)"),
    "omega_emax": ("log-SD", "between-patient SD of ln Emax (dissociation)"),
    "cadss_noise_sd": ("CADSS points", "SD of a reading's non-drug change from pre-dose"),
    "c50_moaas4": ("ng/mL", "driver at which half of patients fall to MOAA/S ≤ 4"),
    "gamma_moaas": ("", "slope γₛ of the proportional-odds MOAA/S model on ln D"),
    "c50_moaas0": ("ng/mL", "driver at which half of patients reach MOAA/S 0"),
    **{f"{bp}_{what}_{g}": (unit, f"{desc} ({bp.upper()}, age {g.replace('_', ' ')})")
       for g in AGE_GROUPS for bp in ("sbp", "dbp") for what, unit, desc in (
           ("placebo_mean", "mmHg", "mean non-drug rise of a post-dose reading"),
           ("placebo_sd", "mmHg", "SD of a post-dose reading's non-drug change"),
           ("slope", "mmHg/(ng/mL)", "mean drug-attributable rise per ng/mL of driver"),
           ("slope_sd", "mmHg/(ng/mL)", "between-patient SD of that slope"))},
}


@cache
def load_fit() -> dict[str, Any]:
    """The stored calibration (values, the statistic each was fitted to, diagnostics)."""
    text = resources.files("ketasim.data").joinpath(FIT_FILE).read_text(encoding="utf-8")
    return dict(json.loads(text))


def acute_parameters(fit: Mapping[str, Any] | None = None) -> dict[str, Parameter]:
    """Every acute-effect parameter with unit, description, source and evidence tag.

    ``fit`` replaces the stored calibration (``{"parameters": {name: {"value", "statistic"}}}``).

    >>> p = acute_parameters()
    >>> sorted({q.evidence for q in p.values()})
    ['assumed', 'calibrated', 'literature']
    """
    stored = (fit if fit is not None else load_fit())["parameters"]
    out = dict(FIXED)
    for name, (unit, desc) in CALIBRATED.items():
        if name not in stored:
            raise ModelError(name, f"missing from {FIT_FILE}",
                             "rerun python -m ketasim.validation.acute_calibration")
        rec = stored[name]
        out[name] = calibrated(float(rec["value"]), unit, desc,
                               f"{CALIBRATION_RUN}: {rec['statistic']}")
    return out


def values(params: Mapping[str, Parameter] | None = None) -> dict[str, float]:
    """Plain floats of :func:`acute_parameters` (or of ``params``)."""
    return {k: float(p.value) for k, p in (params or acute_parameters()).items()}


# ---- the driver ----------------------------------------------------------------------------

_S = ("s_ketamine", "esketamine")
_NK = ("s_norketamine", "noresketamine")


@dataclass(frozen=True, eq=False)
class AcuteDriver:
    """Effect-site S-ketamine and S-norketamine (ng/mL), (subjects, times), hours."""

    times: np.ndarray
    ce_s: np.ndarray
    ce_nk: np.ndarray
    regimen: str
    model: str

    def driver(self, c100_nk: float) -> np.ndarray:
        """D = Ce,S / (1 + Ce,NK / C100,NK)."""
        return antagonised(self.ce_s, self.ce_nk, c100_nk)


def driver_from_run(run: PKRun, ke0: float = KE0_PER_H) -> AcuteDriver:
    """Effect-site S-ketamine and S-norketamine of a PK run (half of a racemic total when
    the model does not resolve enantiomers; no S-norketamine if the model has none)."""
    names = list(run.concentrations)
    s = next((a for a in _S if a in names), None)
    if s is not None:
        cs = run.concentration(s, "ng/mL")
    elif "ketamine" in names:
        cs = 0.5 * run.concentration("ketamine", "ng/mL")
    else:
        raise ModelError("model", f"{run.model.name} predicts no ketamine",
                         "use a model with S-ketamine (ketasim models)")
    nk = next((a for a in _NK if a in names), None)
    if nk is not None:
        cn = run.concentration(nk, "ng/mL")
    elif "norketamine" in names:
        cn = 0.5 * run.concentration("norketamine", "ng/mL")
    else:
        cn = np.zeros_like(cs)
    return AcuteDriver(run.times, effect_site(run.times, cs, ke0),
                       effect_site(run.times, cn, ke0), run.regimen.to_text(), run.model.name)


def acute_driver(regimen: str | Regimen, *, weight: float = 70.0, age: float = 45.0,
                 until_h: float = 4.0, step_h: float = 1.0 / 60.0,
                 model: str | None = None) -> AcuteDriver:
    """The typical patient's effect-site concentrations after ``regimen`` (default model of
    its compound and route). The PD variability was calibrated on top of typical PK.

    >>> d = acute_driver("0.5 mg/kg IV over 40 min")
    >>> 50 < float(d.ce_s.max()) < 80
    True
    """
    reg = parse_regimen(regimen) if isinstance(regimen, str) else regimen
    times = np.arange(0.0, until_h + 1e-9, step_h)
    cov: dict[str, float] = {"weight": float(weight), "age": float(age)}
    run = run_pk(reg, model=model, covariates=cov, times=times, allow_extrapolation=True)
    return driver_from_run(run)


# ---- pure array functions ------------------------------------------------------------------

def antagonised(ce_s: np.ndarray, ce_nk: np.ndarray, c100_nk: float) -> np.ndarray:
    """Olofsen's S-norketamine antagonism as a driver: Ce,S / (1 + Ce,NK/C100,NK)."""
    return np.asarray(ce_s, float) / (1.0 + np.asarray(ce_nk, float) / c100_nk)


def hill(c: np.ndarray, c50: np.ndarray | float, gamma: float) -> np.ndarray:
    """Fraction of maximal effect cᵞ/(c50ᵞ + cᵞ) (0 at c = 0, ½ at c50, increasing)."""
    x = np.power(np.maximum(np.asarray(c, float), 0.0) / np.asarray(c50, float), gamma)
    return x / (1.0 + x)


def attenuation(session: int | np.ndarray, f_inf: float, tau: float) -> np.ndarray:
    """f(n) = f∞ + (1 − f∞)·exp(−(n − 1)/τ): 1 at the first session, → f∞.

    >>> attenuation(1, 0.44, 1.0).item(), round(attenuation(50, 0.44, 1.0).item(), 3)
    (1.0, 0.44)
    """
    n = np.asarray(session, float)
    if np.any(n < 1):
        raise ModelError("session", "must be ≥ 1", "count the first session as 1")
    return f_inf + (1.0 - f_inf) * np.exp(-(n - 1.0) / tau)


def dissociation(d: np.ndarray, p: Mapping[str, float], eta_c50: np.ndarray | float = 0.0,
                 eta_emax: np.ndarray | float = 0.0, session: int = 1) -> np.ndarray:
    """Drug-attributable CADSS total (0-92) for driver ``d`` (subjects, times); ``eta_*``
    (subjects, 1) are standard-normal patient effects scaled by ``omega_c50``/``omega_emax``."""
    c50 = p["c50_perception"] * np.exp(p["omega_c50"] * np.asarray(eta_c50, float))
    emax = p["emax_cadss"] * np.exp(p["omega_emax"] * np.asarray(eta_emax, float))
    f = attenuation(session, p["f_inf"], p["tau_sessions"])
    return np.minimum(emax * f * hill(d, c50, p["hill_cadss"]), CADSS_MAX)


def drug_high(d: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
    """'Drug high' as a fraction of its (unpublished) maximum, C50 71 ng/mL (Simons 2022)."""
    return hill(d, p["c50_high"], p["hill"])


def perception(d: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
    """External perception as a fraction of its maximum, C50 121 ng/mL (Olofsen 2022)."""
    return hill(d, p["c50_perception"], p["hill"])


def moaas_c50(p: Mapping[str, float]) -> np.ndarray:
    """C50 of MOAA/S ≤ 4, ≤ 3, ≤ 2, ≤ 1, 0: calibrated ends, log-evenly spaced between
    (assumed: no published distribution of levels 1-3)."""
    return np.exp(np.linspace(math.log(p["c50_moaas4"]), math.log(p["c50_moaas0"]), 5))


def moaas_cumulative(d: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
    """P(MOAA/S ≤ j) for j = 4, 3, 2, 1, 0 (last axis), drug-attributable."""
    c50 = moaas_c50(p)
    return hill(np.asarray(d, float)[..., None], c50, p["gamma_moaas"])


def moaas_probabilities(d: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
    """P(MOAA/S = 5, 4, 3, 2, 1, 0) (last axis; sums to 1).

    >>> p = values()
    >>> moaas_probabilities(np.array([0.0, 80.0]), p).sum(axis=-1).round(12).tolist()
    [1.0, 1.0]
    """
    cum = moaas_cumulative(d, p)
    edge = (*cum.shape[:-1], 1)
    le = np.concatenate([np.ones(edge), cum, np.zeros(edge)], axis=-1)
    return le[..., :-1] - le[..., 1:]


def moaas_levels(d: np.ndarray, u: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
    """MOAA/S (5 → 0) of patients with logistic latent tolerance ``u`` (subjects, 1): a
    patient is at ≤ j when γₛ(ln D − ln C50ⱼ) > u, which gives the proportional-odds
    marginals of :func:`moaas_probabilities` at every time."""
    c50 = moaas_c50(p)
    with np.errstate(divide="ignore"):
        z = p["gamma_moaas"] * (np.log(np.maximum(np.asarray(d, float), 0.0))[..., None]
                                - np.log(c50))
    return 5 - (z > np.asarray(u, float)[..., None]).sum(axis=-1)


def bp_rise(d: np.ndarray, p: Mapping[str, float], kind: str, group: str,
            eta_slope: np.ndarray | float = 0.0) -> np.ndarray:
    """Expected rise (mmHg) of ``kind`` (``sbp``/``dbp``) in age ``group``: non-drug mean
    plus slope·D (slope normal across patients, ``eta_slope`` standard normal)."""
    if kind not in ("sbp", "dbp") or group not in AGE_GROUPS:
        raise ModelError("kind/group", f"{kind!r}/{group!r} is not known",
                         f"use sbp or dbp and one of {', '.join(AGE_GROUPS)}")
    slope = p[f"{kind}_slope_{group}"] + p[f"{kind}_slope_sd_{group}"] * np.asarray(
        eta_slope, float)
    return p[f"{kind}_placebo_mean_{group}"] + slope * np.asarray(d, float)


def age_group(age: float) -> str:
    """``under_65`` or ``65_plus`` (the label's BP tables)."""
    return "65_plus" if age >= 65.0 else "under_65"


# ---- a simulated session -------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class AcuteSession:
    """One simulated session for ``n`` virtual patients; curves are (patients, times)."""

    times: np.ndarray
    driver: np.ndarray
    cadss: np.ndarray  # drug-attributable CADSS
    cadss_reading: np.ndarray  # with a reading's non-drug change
    drug_high: np.ndarray
    moaas: np.ndarray
    sbp: np.ndarray  # expected (no reading noise)
    dbp: np.ndarray
    sbp_reading: np.ndarray
    dbp_reading: np.ndarray
    hr: np.ndarray
    baseline_sbp: np.ndarray
    baseline_dbp: np.ndarray
    ready_h: np.ndarray

    def p_moaas_le(self, level: int) -> float:
        """Share of patients reaching MOAA/S ≤ ``level`` at some time (drug-attributable)."""
        return float(np.mean(self.moaas.min(axis=1) <= level))


def ready_time(times: np.ndarray, ok: np.ndarray, start_h: float = 0.0) -> np.ndarray:
    """First time ≥ ``start_h`` after which ``ok`` (patients, times) holds to the end
    (inf if it never does)."""
    times = np.asarray(times, float)
    ok = np.asarray(ok, bool) | (times < start_h)
    bad = ~ok
    last_bad = np.where(bad.any(axis=1), bad.shape[1] - 1 - np.argmax(bad[:, ::-1], axis=1), -1)
    idx = np.minimum(last_bad + 1, len(times) - 1)
    out = np.maximum(times[idx], start_h)
    out[last_bad == len(times) - 1] = np.inf
    return out


@dataclass(frozen=True, eq=False)
class PatientEffects:
    """Each virtual patient's random effects, shape (n, 1): standard normal on the
    dissociation C50 and Emax and on the SBP and DBP slopes, logistic MOAA/S tolerance."""

    c50: np.ndarray
    emax: np.ndarray
    sbp: np.ndarray
    dbp: np.ndarray
    u: np.ndarray

    @classmethod
    def draw(cls, n: int, rng: np.random.Generator) -> PatientEffects:
        """``n`` patients from the population (the prior)."""
        shape = (n, 1)
        c50, emax, sbp, dbp = (rng.standard_normal(shape) for _ in range(4))
        return cls(c50, emax, sbp, dbp, rng.logistic(size=shape))

    def take(self, index: np.ndarray) -> PatientEffects:
        """The patients at ``index`` (resampling)."""
        return PatientEffects(self.c50[index], self.emax[index], self.sbp[index],
                              self.dbp[index], self.u[index])

    def __len__(self) -> int:
        return int(self.c50.shape[0])


def simulate_session(driver: AcuteDriver, n: int, rng: np.random.Generator, *,
                     age: float = 45.0, baseline_sbp: float | np.ndarray = 125.0,
                     baseline_dbp: float | np.ndarray = 78.0, baseline_hr: float = 75.0,
                     session: int = 1, params: Mapping[str, float] | None = None,
                     effects: PatientEffects | None = None,
                     bp_limits: tuple[float, float] = (180.0, 110.0)) -> AcuteSession:
    """``n`` virtual patients in one session (``session`` = 1 for the first).

    Readiness: MOAA/S 5, drug-attributable CADSS ≤ 4, SBP/DBP below ``bp_limits`` (default
    180/110) and rises below 40/25 mmHg on the expected (noise-free) curves (assumed
    criteria, after the label's thresholds). ``effects`` gives the patients' random effects
    (a posterior sample); by default they are drawn from the population.

    >>> d = acute_driver("84 mg esketamine intranasal")
    >>> s = simulate_session(d, 500, np.random.default_rng(1))
    >>> 0.4 < s.p_moaas_le(4) < 0.7, s.moaas.shape == s.cadss.shape
    (True, True)
    """
    p = dict(params) if params is not None else values()
    if n < 1:
        raise ModelError("n", f"is {n}", "simulate at least one patient")
    d = driver.driver(p["c100_nk"])
    if d.shape[0] == 1:
        d = np.repeat(d, n, axis=0)
    elif d.shape[0] != n:
        raise ModelError("driver", f"has {d.shape[0]} subjects, not {n}",
                         "give one typical curve or one per patient")
    t = driver.times
    shape = (n, 1)
    eff = effects if effects is not None else PatientEffects.draw(n, rng)
    if len(eff) != n:
        raise ModelError("effects", f"has {len(eff)} patients, not {n}",
                         "give one set of effects per simulated patient")
    e_c50, e_emax, e_s, e_d, u = eff.c50, eff.emax, eff.sbp, eff.dbp, eff.u
    cadss = dissociation(d, p, e_c50, e_emax, session)
    noise = p["cadss_noise_sd"] * rng.standard_normal(cadss.shape)
    reading = np.clip(cadss + noise, 0.0, CADSS_MAX)
    g = age_group(age)
    sbp0 = np.broadcast_to(np.asarray(baseline_sbp, float), (n,)).reshape(shape)
    dbp0 = np.broadcast_to(np.asarray(baseline_dbp, float), (n,)).reshape(shape)
    rise_s = bp_rise(d, p, "sbp", g, e_s)
    rise_d = bp_rise(d, p, "dbp", g, e_d)
    sbp, dbp = sbp0 + rise_s, dbp0 + rise_d
    sbp_r = sbp + p[f"sbp_placebo_sd_{g}"] * rng.standard_normal(sbp.shape)
    dbp_r = dbp + p[f"dbp_placebo_sd_{g}"] * rng.standard_normal(dbp.shape)
    # HR: relative spread as for the SBP slope (assumed)
    cv = p[f"sbp_slope_sd_{g}"] / p[f"sbp_slope_{g}"]
    hr = baseline_hr * (1.0 + p["hr_slope"] / 100.0 * d * (1.0 + cv * e_s))
    moaas = moaas_levels(d, u, p)
    ok = ((moaas == 5) & (cadss <= CADSS_CASE) & (sbp < bp_limits[0]) & (dbp < bp_limits[1])
          & (rise_s < 40.0) & (rise_d < 25.0))
    ready = ready_time(t, ok, start_h=float(t[1]) if len(t) > 1 else 0.0)
    return AcuteSession(t, d, cadss, reading, drug_high(d, p), moaas, sbp, dbp, sbp_r, dbp_r,
                        hr, sbp0[:, 0], dbp0[:, 0], ready)


# ---- adverse events ------------------------------------------------------------------------

@dataclass(frozen=True)
class AdverseEventRate:
    """Incidence on drug and on placebo (fractions) in one published table."""

    drug: float
    placebo: float
    source: str
    grade: str


def _rows(table: dict[str, tuple[float, float]], source: str, grade: str
          ) -> dict[str, AdverseEventRate]:
    return {k: AdverseEventRate(a / 100.0, b / 100.0, source, grade)
            for k, (a, b) in table.items()}


_ASPIRE = _rows({"dizziness": (38.3, 13.8), "nausea": (26.9, 13.8), "somnolence": (20.7, 10.2),
                 "headache": (20.3, 20.4), "dysgeusia": (19.8, 12.9), "vomiting": (11.5, 5.3),
                 "dissociation": (33.9, 5.8), "sedation": (10.1, 2.2),
                 "blood_pressure_increased": (11.5, 4.0)}, CANUSO, "V")
_LABEL_TRD = _rows({"dizziness": (29, 8), "nausea": (28, 9), "vertigo": (23, 3),
                    "headache": (20, 17), "vomiting": (9, 2), "dissociation": (41, 9),
                    "sedation": (23, 9), "blood_pressure_increased": (10, 3)},
                   LABEL + ", adverse reactions table (TRD, pooled 56/84 mg)", "M")
_RACEMIC_IV = _rows({"dizziness": (57.1, 11.9)}, TAIWAN_RCT, "U")

# (compound, route, dose, per_kg) -> table; doses as prescribed
AE_TABLES: dict[tuple[str, Route, float, bool], dict[str, AdverseEventRate]] = {
    ("esketamine", Route.INTRANASAL, 84.0, False): {**_ASPIRE, "vertigo": _LABEL_TRD["vertigo"]},
    ("esketamine", Route.INTRANASAL, 56.0, False): _LABEL_TRD,
    ("racemic", Route.IV_INFUSION, 0.5, True): _RACEMIC_IV,
}
AE_NAMES = ("nausea", "vomiting", "dizziness", "headache", "dysgeusia", "vertigo", "somnolence")


def adverse_events(regimen: str | Regimen) -> dict[str, AdverseEventRate]:
    """Published incidence per session course for the regimen's first dose (route, dose).

    Only route/dose pairs with a published table are answered; others raise ``ModelError``
    naming those available. 56 mg intranasal uses the label's pooled 56/84 mg table.

    >>> round(adverse_events("84 mg esketamine intranasal")["nausea"].drug, 3)
    0.269
    """
    reg = parse_regimen(regimen) if isinstance(regimen, str) else regimen
    dose = reg.doses[0]
    compound = dose.compound or reg.compound or "racemic"
    key = (compound, dose.route, float(dose.amount), dose.per_kg)
    if key not in AE_TABLES:
        have = "; ".join(f"{a:g} {'mg/kg' if k else 'mg'} {c} {r.value}"
                         for c, r, a, k in AE_TABLES)
        raise ModelError("regimen", f"no published adverse-event table for {reg.to_text()}",
                         f"use one of: {have}")
    return AE_TABLES[key]


__all__ = ["AE_NAMES", "AE_TABLES", "AGE_GROUPS", "BP_READINGS_H", "CADSS_CASE",
           "CALIBRATED", "FIXED", "LEVELS", "AcuteDriver", "AcuteSession", "AdverseEventRate",
           "PatientEffects",
           "acute_driver", "acute_parameters", "adverse_events", "age_group", "antagonised",
           "attenuation", "bp_rise", "dissociation", "driver_from_run", "drug_high", "hill",
           "load_fit", "moaas_c50", "moaas_cumulative", "moaas_levels", "moaas_probabilities",
           "perception", "ready_time", "simulate_session", "values"]
