"""PK validation targets and the runner behind ``ketasim validate pk``.

Each :class:`Target` names a library model, a regimen and covariates of the typical subject,
what to measure (Cmax, Tmax, AUC over a window, a concentration at a time, or a derived
model property), the published value with its source, a tolerance and a kind:

* ``reproduction`` — the model against numbers its own paper (or a recomputation of its
  parameter set) reports;
* ``calibration`` — a number a ketasim calibration run was solved against
  (``ketasim.validation.calibration``): shown so that the run can be seen to hold;
* ``independent`` — an observation the model was not fitted to;
* ``plausibility`` — a band (e.g. the Kamp 2020 meta-analysis) that a model may lie outside
  of; reported, never a failure;
* ``known`` — a documented discrepancy (e.g. Perez-Ruixo noresketamine AUC): reported as
  such, and flagged if it ever starts to agree.

Verdicts: ``pass`` / ``fail`` (|ratio − 1| ≤ tolerance, or inside [low, high] for ranges),
``known discrepancy``, ``inside band`` / ``outside band``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np

from ketasim.pk.registry import get_model
from ketasim.population import metrics
from ketasim.population.pkrun import PKRun, run_pk

Kind = Literal["reproduction", "calibration", "independent", "plausibility", "known"]
Metric = Literal["cmax", "tmax", "auc", "conc_at", "auc_ratio", "property"]


@dataclass(frozen=True)
class Target:
    """One published number and how to predict it."""

    id: str
    model: str
    description: str
    published: float
    unit: str
    source: str
    kind: Kind = "reproduction"
    tolerance: float = 0.15
    regimen: str = ""
    covariates: dict[str, float] = field(default_factory=dict)
    analyte: str = ""
    metric: Metric = "cmax"
    window: tuple[float, float] | None = None
    at: float | None = None
    ratio_of: str = ""  # for auc_ratio: analyte / ratio_of
    scale: float = 1.0  # multiply the prediction (unit conversion, e.g. h → min)
    until: float = 24.0
    step: float = 1.0 / 60.0
    low: float | None = None  # ranges: inside [low, high] passes
    high: float | None = None
    compute: Callable[[], float] | None = None
    note: str = ""  # why a known discrepancy is known


@dataclass(frozen=True)
class Outcome:
    """A target with its prediction and verdict."""

    target: Target
    predicted: float
    ratio: float
    verdict: str

    @property
    def ok(self) -> bool:
        """True unless the verdict is ``fail`` (or a known discrepancy that now agrees)."""
        return self.verdict not in ("fail", "known discrepancy now agrees")


def _run(target: Target, cache: dict[tuple, PKRun]) -> PKRun:
    key = (target.model, target.regimen, tuple(sorted(target.covariates.items())),
           target.until, target.step)
    if key not in cache:
        times = np.arange(0.0, target.until + 1e-9, target.step)
        cache[key] = run_pk(target.regimen, model=target.model, covariates=target.covariates,
                            times=times, allow_extrapolation=True)
    return cache[key]


def predict(target: Target, cache: dict[tuple, PKRun] | None = None) -> float:
    """The model's value for ``target``."""
    if target.compute is not None:
        return float(target.compute()) * target.scale
    run = _run(target, {} if cache is None else cache)
    t = run.times
    c = run.concentration(target.analyte, "ng/mL")
    start, end = target.window if target.window else (None, None)
    if target.metric == "cmax":
        value = metrics.cmax(t, c, start, end)[0]
    elif target.metric == "tmax":
        value = metrics.tmax(t, c, start, end)[0]
    elif target.metric == "auc":
        value = metrics.auc(t, c, start, end)[0]
    elif target.metric == "conc_at":
        assert target.at is not None
        value = metrics.value_at(t, c, target.at)[0]
    elif target.metric == "auc_ratio":
        other = run.concentration(target.ratio_of, "ng/mL")
        value = metrics.auc(t, c, start, end)[0] / metrics.auc(t, other, start, end)[0]
    else:  # pragma: no cover - guarded by Metric
        raise ValueError(target.metric)
    return float(value) * target.scale


def judge(target: Target, predicted: float) -> Outcome:
    """Compare a prediction with the published value."""
    ratio = predicted / target.published if target.published else math.nan
    if target.low is not None and target.high is not None:
        inside = target.low <= predicted <= target.high
    else:
        inside = abs(ratio - 1.0) <= target.tolerance
    if target.kind == "plausibility":
        verdict = "inside band" if inside else "outside band"
    elif target.kind == "known":
        verdict = "known discrepancy" if not inside else "known discrepancy now agrees"
    else:
        verdict = "pass" if inside else "fail"
    return Outcome(target, predicted, ratio, verdict)


def run_pk_validation(targets: Sequence[Target] | None = None,
                      progress: Callable[[int], None] | None = None) -> list[Outcome]:
    """Predict and judge every target (typical subjects; deterministic)."""
    cache: dict[tuple, PKRun] = {}
    out = []
    for i, tgt in enumerate(PK_TARGETS if targets is None else targets):
        out.append(judge(tgt, predict(tgt, cache)))
        if progress is not None:
            progress(i + 1)
    return out


# ----------------------------------------------------------------------------- helpers
def _terminal_half_life(model: str, compartments: Sequence[str], weight: float = 70.0,
                        extra: dict[str, float] | None = None) -> float:
    """ln 2 / slowest eigenvalue of the sub-system made of ``compartments`` (h)."""
    lm = get_model(model)
    ind = lm.model.individual({"weight": weight, **(extra or {})})
    k = lm.model.system_matrix(ind)
    idx = [lm.model.compiled.cmt_names.index(c) for c in compartments]
    sub = k[np.ix_(idx, idx)]
    return math.log(2) / float(np.min(np.abs(np.linalg.eigvals(sub).real)))


def _param(model: str, expr: str, weight: float = 70.0) -> float:
    from ketasim.model.expr import Expression
    lm = get_model(model)
    ind = lm.model.individual({"weight": weight})
    return float(Expression.parse(expr, field="validation").evaluate(ind))


def _absolute_f(model: str, regimen_extravascular: str, regimen_iv: str) -> float:
    times = np.arange(0.0, 240.0 + 1e-9, 1.0 / 30.0)
    a = run_pk(regimen_extravascular, model=model, times=times)
    b = run_pk(regimen_iv, model=model, times=times)
    name = a.model.analytes[0].id
    return float(metrics.auc(times, a.concentration(name))[0]
                 / metrics.auc(times, b.concentration(name))[0])


RAC = "racemic_enantiomers"
PR = "perez_ruixo_2021"
T4 = "perezruixo2021, Table 4 (model-based, typical Caucasian 18-60 y) [V]"
S2 = "simons2022a, Table 2 (means, arterial) [V]"
O7 = "otto2021, CHDR1311 digitised medians (venous) [V]"
HASAN = "hasan2021, abstract: racemic 5 mg IV [V]"
HIJAZI = "hijazi2003, abstract (NCA, 12 ICU patients, mean ± SD) [V]"
FANTA_ABSTRACT = "fanta2015, abstract: CL 95 L/h/70 kg [V]"
KAMP = "kamp2020, abstract: weighted mean CL and its 95 % CI [V]"
IDVALL = ("; idvall1979, abstract: 41 µg/kg/min held 9.3 µmol/L in surgical patients (the "
          "note's comparison) [V]")
HASAN_THALF_NOTE = (
    "the slowest eigenvalue (7.37 h) is that of Fanta 2015's deep peripheral compartment "
    "(Vp1 187 L exchanging at Q1 23.2 L/h, k21 = 0.124 /h; paired as in Otto 2021's "
    "supplementary code, THETA(3)-(4), as nlmixr2lib transcribes it). It dominates the "
    "S-ketamine curve only after ~24 h (local half-life 1.9 h at 4 h, 5.1 h at 12 h, 7.3 h at "
    "24 h), when 5 mg IV leaves < 0.08 ng/mL. Hasan's 5.2 ± 3.4 h is an NCA λz, the slope over "
    "the last quantifiable samples, so it depends on their schedule and LLOQ (not "
    "retrieved): the model's 3-5-point slopes give 3.0-7.0 h for LLOQs of 0.02-0.2 ng/mL "
    "(tests/test_pk_fidelity.py); the eigenvalue itself lies inside Hasan's mean ± SD "
    "(racemic_hasan_thalf_s_spread). Reaching 5.2 h would mean changing Fanta's fixed deep "
    "compartment, which Otto 2021 validated on venous data; kept as published")
YAN = "yanagihara2003, abstract (n = 3) [V]"
CHONG06 = "chong2006, abstract: 25 mg, 6 patients, mean ± SD [V]"
CHONG09 = "chong2009, abstract: 25 mg lozenge, 6 patients [V]"
RECOMPUTED = "typical values recomputed from the published parameter set"
KEY = {"domino_1982": "domino1982", "clements_1981": "clements1981",
       "hijazi_2003": "hijazi2003", "herd_2007": "herd2007"}
PR_NOR_AUC_NOTE = (
    "Table 3 as printed reproduces every Table 4 esketamine Cmax and AUC and noresketamine "
    "Cmax within 1 % in all 18 strata (tests/test_pk_fidelity.py), so the noresketamine "
    "formation and Vcn/F are as published; the AUC column is not: the paper's CLn/F of "
    "38 L/h (Table 3 and abstract) fixes AUC0-inf = formed amount / CLn/F (28 mg: 0.714 × "
    "23.4 mg / 38 L/h = 439 ng·h/mL) and with its noresketamine Vss of 185 L (abstract) about "
    "88 % falls within 24 h, against Table 4's 274. Otto 2021's independently estimated "
    "S-norketamine disposition, fed by the same formation, gives 0.93× the library's AUC. "
    "No unit, molar-mass (0.941 would move Cmax too), volume, formation-fraction or window "
    "reading reproduces both columns; unresolved in the paper (also met by the nlmixr2lib "
    "authors)")
W70 = {"weight": 70.0}


def _nk_auc_per_mg(regimen: str, dose_mg: float, end_h: float) -> float:
    """Racemic norketamine AUC(0-end_h) per mg of dose (ng·h/mL/mg), typical 70-kg adult."""
    times = np.arange(0.0, end_h + 1e-9, 1.0 / 60.0)
    run = run_pk(regimen, model=RAC, covariates=W70, times=times)
    return float(metrics.auc(times, run.concentration("norketamine", "ng/mL"))[0]) / dose_mg


def _nca_half_life(analyte: str, start_h: float, end_h: float) -> float:
    """Half-life (h) from a log-linear fit over [start_h, end_h] after 5 mg IV over 30 min,
    as a non-compartmental analysis estimates the terminal slope."""
    times = np.arange(0.0, end_h + 1e-9, 0.25)
    run = run_pk("5 mg IV over 30 min", model=RAC, covariates=W70, times=times)
    c = run.concentration(analyte, "ng/mL")[0]
    m = times >= start_h
    return float(math.log(2) / -np.polyfit(times[m], np.log(c[m]), 1)[0])


def _volume_beta_per_kg(model: str, compartments: Sequence[str]) -> float:
    """Vβ = CL / λz (L/kg) of a typical 70-kg subject: the NCA volume Hijazi 2003 reports."""
    cl_per_kg = _param(model, "k10 * v1 / weight")  # L/h/kg
    return cl_per_kg * _terminal_half_life(model, compartments) / math.log(2)


def _flint_steady_state() -> float:
    times = np.arange(0.0, 72.0 + 1e-9, 0.5)
    run = run_pk("172.8 mg/kg esketamine IV at 2.4 mg/kg/h", model="flint_2017",
                 covariates={"weight": 7.0}, times=times, allow_extrapolation=True)
    return float(run.concentration("s_ketamine", "ng/mL")[0, -1])


PK_TARGETS: list[Target] = [
    # --- racemic ketamine, recomputed parameter sets ----------------------------------------
    *[Target(f"{m}_40min", m, f"{m}: 35 mg over 40 min, 70 kg, C at 40 min", v, "ng/mL",
             f"{RECOMPUTED} of {KEY[m]} (35 mg over 40 min, 70 kg)",
             tolerance=0.03, regimen="35 mg IV over 40 min", covariates=W70,
             analyte="ketamine", metric="conc_at", at=40 / 60, until=6.0)
      for m, v in (("domino_1982", 240.0), ("clements_1981", 177.0), ("hijazi_2003", 225.0),
                   ("herd_2007", 253.0))],
    *[Target(f"domino_1982_{int(t)}min", "domino_1982",
             f"Domino: 35 mg over 40 min, C at {t:g} min", v, "ng/mL",
             f"{RECOMPUTED} of domino1982",
             tolerance=0.05, regimen="35 mg IV over 40 min", covariates=W70,
             analyte="ketamine", metric="conc_at", at=t / 60, until=6.0)
      for t, v in ((80.0, 46.0), (120.0, 36.0), (230.0, 18.0))],
    # --- racemic, independent observations -------------------------------------------------
    Target("racemic_05mgkg_cmax", RAC, "racemic 0.5 mg/kg over 40 min: Cmax (Zarate 2006 via "
           "Zanos 2018 Table 1)", 185.0, "ng/mL", "zarate2006 as tabulated by zanos2018, "
           "Table 1 [S]", kind="independent",
           tolerance=0.25, regimen="0.5 mg/kg IV over 40 min", covariates=W70,
           analyte="ketamine", metric="cmax", until=6.0),
    Target("racemic_05mgkg_tmax", RAC, "racemic 0.5 mg/kg over 40 min: Tmax at the end of "
           "the infusion", 40.0, "min", "zarate2006: design (0.5 mg/kg over 40 min)",
           kind="independent", tolerance=0.05,
           regimen="0.5 mg/kg IV over 40 min", covariates=W70, analyte="ketamine",
           metric="tmax", scale=60.0, until=6.0),
    Target("racemic_oral_05mgkg_cmax", RAC, "racemic oral 0.5 mg/kg: Cmax (Grant 1981, "
           "45 ± 10 ng/mL)", 45.0, "ng/mL", "grant1981 as tabulated by zanos2018, "
           "Table 1 [S]", kind="known",
           note="held out, not tuned: 45 ng/mL after 35 mg at the same group's oral F of 17 % "
           "(Clements 1982) is ≥ 93 % of the dose-over-V1 bound of 48 ng/mL for their own "
           "V1 of 123 L (Clements 1981), i.e. it needs near-instant absorption; Chong 2006 "
           "measured 22.8 ± 12.8 ng/mL after 25 mg (0.91 ng/mL per mg, 32 for 35 mg) with "
           "Tmax ~1 h. The model (F 0.20, Tmax 0.96 h calibrated to Chong) gives 16",
           regimen="0.5 mg/kg oral", covariates=W70, analyte="ketamine", metric="cmax",
           low=35.0, high=55.0, until=12.0),
    Target("racemic_chong_oral_tmax", RAC, "oral 25 mg: ketamine Tmax (0.96 ± 0.8 h)", 0.96,
           "h", CHONG06, kind="calibration", tolerance=0.01, regimen="25 mg oral",
           covariates=W70, analyte="ketamine", metric="tmax", until=6.0, step=1.0 / 360.0),
    *[Target(f"racemic_chong_{route}_{a}_cmax", RAC,
             f"{route} 25 mg: {a} Cmax ({v:g} ± {sd:g} ng/mL; inside mean ± SD)", v, "ng/mL",
             CHONG06, kind=cast(Kind, "known" if known else "independent"), low=v - sd,
             high=v + sd, note=known, regimen=f"25 mg {'sublingual' if route == 'sl' else 'oral'}",
             covariates=W70, analyte=a, metric="cmax", until=12.0, step=1.0 / 120.0)
      for route, a, v, sd, known in (
          ("oral", "ketamine", 22.8, 12.8, ""),
          ("oral", "norketamine", 82.0, 34.0, ""),
          ("sl", "ketamine", 28.6, 6.6,
           "Chong's patients cleared ketamine more slowly than Fanta's volunteers: their IV "
           "AUC0-8 per mg, 13.5 ng·h/mL (oral 3.1 / F 0.23), is 1.5× the model's 9.05, so "
           "their peaks run ~1.5× higher (19.5 × 1.5 = 29). The oral peak is inside its wide SD"),
          ("sl", "norketamine", 66.0, 29.0,
           "the model's sublingual NK peak (30 ng/mL) is half Chong's 66 while its NK/K AUC "
           "ratio is calibrated to the same study (2.1); Chong's NK peak came at 1.9 h, "
           "later and higher than a first pass at the oral rate gives; their IV exposure was "
           "1.5× the model's (see the ketamine peak)"))],
    Target("racemic_hasan_cl_s", RAC, "S-ketamine clearance", 1620.0, "mL/min", HASAN,
           kind="independent", tolerance=0.25,
           compute=lambda: _param(RAC, "cl_si") * 1000 / 60),
    Target("racemic_hasan_cl_r", RAC, "R-ketamine clearance", 1530.0, "mL/min", HASAN,
           kind="independent", tolerance=0.25,
           compute=lambda: _param(RAC, "cl_ri") * 1000 / 60),
    Target("racemic_hasan_vss", RAC, "S-ketamine Vss", 6.6, "L/kg", HASAN, kind="independent",
           tolerance=0.25, compute=lambda: _param(RAC, "(v1i + vp1 + vp2) / weight")),
    Target("racemic_hasan_thalf_s", RAC, "S-ketamine terminal half-life (slowest eigenvalue "
           "of the disposition)", 5.2, "h", HASAN, kind="known", tolerance=0.25,
           note=HASAN_THALF_NOTE,
           compute=lambda: _terminal_half_life(RAC, ("s_central", "s_periph1", "s_periph2"))),
    Target("racemic_hasan_thalf_s_spread", RAC, "S-ketamine terminal half-life (slowest "
           "eigenvalue) inside Hasan's between-subject mean ± SD, 5.2 ± 3.4 h", 5.2, "h", HASAN,
           kind="independent", low=5.2 - 3.4, high=5.2 + 3.4,
           compute=lambda: _terminal_half_life(RAC, ("s_central", "s_periph1", "s_periph2"))),
    Target("racemic_fanta_cl_s", RAC, "S-ketamine clearance at 70 kg (Fanta 2015: 95 L/h/70 kg)",
           95.0, "L/h", FANTA_ABSTRACT, tolerance=0.01, compute=lambda: _param(RAC, "cl_si")),
    Target("racemic_hasan_thalf_s_nca", RAC, "S-ketamine half-life from the log-linear slope "
           "over 6-24 h after 5 mg IV (an NCA terminal phase; Hasan's λz window not "
           "retrieved, 6-24 h assumed)", 5.2, "h", HASAN, kind="independent", tolerance=0.25,
           compute=lambda: _nca_half_life("s_ketamine", 6.0, 24.0)),
    Target("racemic_hasan_thalf_r_nca", RAC, "R-ketamine half-life, log-linear slope over "
           "6-24 h after 5 mg IV (Hasan 6.1 ± 3.1 h)", 6.1, "h", HASAN, kind="independent",
           tolerance=0.25, compute=lambda: _nca_half_life("r_ketamine", 6.0, 24.0)),
    Target("racemic_hasan_hnk_ratio_s", RAC, "(2S,6S)-HNK / S-ketamine AUC after 5 mg IV",
           1.7, "ratio", HASAN, kind="independent", tolerance=0.35,
           regimen="5 mg IV over 30 min", covariates=W70, analyte="s_hnk", metric="auc_ratio",
           ratio_of="s_ketamine", until=96.0, step=0.05),
    Target("racemic_hasan_hnk_ratio_r", RAC, "(2R,6R)-HNK / R-ketamine AUC after 5 mg IV",
           3.1, "ratio", HASAN, kind="known", tolerance=0.35,
           note="R-metabolite formation uses the S parameters (no R model retrieved); Hasan "
           "found more HNK from R",
           regimen="5 mg IV over 30 min", covariates=W70, analyte="r_hnk", metric="auc_ratio",
           ratio_of="r_ketamine", until=96.0, step=0.05),
    Target("racemic_yanagihara_in_nk_auc", RAC, "25 mg intranasal: norketamine AUC0-6 "
           "(read as S + R)", 100.0, "ng·h/mL", YAN, kind="independent", tolerance=0.35,
           note="the abstract gives '~100 ng·h/mL in both enantiomers'; read as the racemic "
           "sum, the reading under which its oral, sublingual and rectal values agree with "
           "Chong 2006's oral norketamine per mg (12.1 ng·h/mL/mg, 0-8 h)",
           regimen="25 mg intranasal", covariates=W70, analyte="norketamine",
           metric="auc", window=(0.0, 6.0), until=6.0),
    Target("racemic_yanagihara_in_vs_oral_nk", RAC, "norketamine per mg: intranasal "
           "(AUC0-6) / oral tablet (AUC0-8) = (100/25)/(500/50)", 0.40, "ratio", YAN,
           kind="independent", tolerance=0.35,
           compute=lambda: _nk_auc_per_mg("25 mg intranasal", 25.0, 6.0)
           / _nk_auc_per_mg("50 mg oral", 50.0, 8.0)),
    Target("racemic_yanagihara_sl_vs_oral_nk", RAC, "norketamine AUC0-8 per mg: sublingual "
           "tablet / oral tablet = (280-460)/500", 0.74, "ratio", YAN, kind="independent",
           low=280.0 / 500.0, high=460.0 / 500.0,
           compute=lambda: _nk_auc_per_mg("50 mg sublingual", 50.0, 8.0)
           / _nk_auc_per_mg("50 mg oral", 50.0, 8.0)),
    Target("racemic_yanagihara_rectal_vs_oral_nk", RAC, "norketamine AUC0-8 per mg: "
           "suppository / oral tablet = (280-460)/500", 0.74, "ratio", YAN, kind="known",
           low=280.0 / 500.0, high=460.0 / 500.0,
           note="rectal doses get the oral first pass in full (assumed: no rectal first-pass "
           "data); part of a rectal dose bypasses the liver, so the model's rectal "
           "norketamine is too high",
           compute=lambda: _nk_auc_per_mg("50 mg rectal", 50.0, 8.0)
           / _nk_auc_per_mg("50 mg oral", 50.0, 8.0)),
    Target("racemic_chong_sl_nk_ratio", RAC, "sublingual 25 mg: norketamine/ketamine AUC0-8h "
           "ratio", 2.1, "ratio", CHONG09, kind="calibration", tolerance=0.01,
           regimen="25 mg sublingual", covariates=W70, analyte="norketamine",
           metric="auc_ratio", window=(0.0, 8.0), ratio_of="ketamine", until=8.0, step=0.05),
    Target("racemic_chong_oral_nk_ratio", RAC, "oral 25 mg: norketamine/ketamine AUC0-8h "
           "ratio", 5.0, "ratio", CHONG09, kind="calibration", tolerance=0.01,
           regimen="25 mg oral", covariates=W70, analyte="norketamine", metric="auc_ratio",
           window=(0.0, 8.0), ratio_of="ketamine", until=8.0, step=0.05),
    # --- Kamp 2020 meta-analysis: plausibility band for racemic models ---------------------
    *[Target(f"{m}_kamp_cl", m, "clearance at 70 kg vs Kamp 2020 meta-analysis (69-90 L/h)",
             79.0, "L/h", KAMP + (IDVALL if m == "domino_1982" else ""), kind="plausibility",
             low=69.0, high=90.0, compute=fn, note=note)
      for m, fn, note in (
          ("domino_1982", lambda: _param("domino_1982", "k10 * v1"),
           "V1·k10 = 0.063 L/kg × 0.4381 /min = 27.6 mL/min/kg, as the set is coded by opentiva "
           "and fus_anes (they agree). The paper (Anesth Analg 1982) was not retrieved, so its "
           "own clearance cannot be compared. No unit reading brings it into the band with a "
           "ketamine-like disposition: rate constants per hour give CL 1.9 L/h and t½ 115 h, V1 "
           "per 70 kg 1.7 L/h, 10 × V1 1160 L/h; as coded, t½ 1.9 h and Vss 2.8 L/kg. It is "
           "also 1.5× the clearance implied by Idvall 1979's surgical infusions (41 µg/kg/min "
           "held 9.3 µmol/L: ≤ 18.5 mL/min/kg). Kept as coded; not a default model"),
          ("clements_1981", lambda: _param("clements_1981", "k10 * v1"), ""),
          ("hijazi_2003", lambda: _param("hijazi_2003", "k10 * v1"),
           "the paper's own NCA results are reproduced: CL 36.0 ± 13.3 mL/min/kg, t½ 4.9 ± "
           "1.6 h, Vβ 16.0 ± 8.6 L/kg (hijazi_2003_cl, _thalf, _vbeta), and they agree with "
           "one another (CL·t½/ln 2 = 15.3 L/kg), so 36.0 is no unit slip. ICU patients with "
           "brain or spinal-cord injury: 'pharmacokinetic variables ... greater than in "
           "healthy volunteers and in surgical patients' (the paper's conclusion), a population "
           "difference; Kamp pooled mixed-effects estimates, Hijazi's are NCA"),
          ("herd_2007", lambda: _param("herd_2007", "cli"), ""),
          (RAC, lambda: _param(RAC, "(cl_si + cl_ri) / 2"),
           "S-ketamine CL 95.2 L/h/70 kg is Fanta 2015's (abstract: 95 L/h/70 kg; target "
           "racemic_fanta_cl_s) and R = 0.944 × S (Hasan 2021). Hasan's own metabolic "
           "clearances, 1620 and 1530 mL/min (97 and 92 L/h, mean 94.5), lie above it too, so the "
           "excess is the sources', not a transcription; the band is the 95 % CI of a weighted "
           "mean, not a range of studies"))],
    Target("hijazi_2003_cl", "hijazi_2003", "clearance (NCA 36.0 ± 13.3 mL/min/kg)", 36.0,
           "mL/min/kg", "hijazi2003, abstract [V]", tolerance=0.05,
           compute=lambda: _param("hijazi_2003", "k10 * v1 / weight") * 1000 / 60),
    Target("hijazi_2003_thalf", "hijazi_2003", "terminal half-life (4.9 ± 1.6 h)", 4.9, "h",
           "hijazi2003, abstract [V]", tolerance=0.25,
           compute=lambda: _terminal_half_life("hijazi_2003", ("central", "periph1"))),
    Target("hijazi_2003_vbeta", "hijazi_2003", "volume of distribution Vβ = CL/λz "
           "(16.0 ± 8.6 L/kg)", 16.0, "L/kg", HIJAZI, tolerance=0.10,
           compute=lambda: _volume_beta_per_kg("hijazi_2003", ("central", "periph1"))),
    # --- esketamine: Perez-Ruixo 2021 Table 4 and the label --------------------------------
    *[Target(f"{PR}_{dose}mg_{a}_{m}", PR, f"{dose} mg intranasal: {a} {m}", v, unit, T4,
             regimen=f"{dose} mg esketamine intranasal", analyte=a, metric=cast(Metric, m),
             window=(0.0, 24.0) if m == "auc" else None, until=24.0)
      for dose, esk_c, esk_auc, nor_c in ((28, 43.8, 147.3, 59.1), (56, 72.5, 254.7, 119.7),
                                          (84, 101.0, 362.2, 180.0))
      for a, m, v, unit in (("esketamine", "cmax", esk_c, "ng/mL"),
                            ("esketamine", "auc", esk_auc, "ng·h/mL"),
                            ("noresketamine", "cmax", nor_c, "ng/mL"))],
    *[Target(f"{PR}_{dose}mg_noresketamine_auc", PR, f"{dose} mg intranasal: noresketamine "
             "AUC0-24 (Table 3 gives 1.41-1.46× Table 4)", v, "ng·h/mL", T4,
             kind="known", note=PR_NOR_AUC_NOTE,
             regimen=f"{dose} mg esketamine intranasal", analyte="noresketamine",
             metric="auc", window=(0.0, 24.0), until=24.0)
      for dose, v in ((28, 274.4), (56, 516.3), (84, 758.0))],
    Target(f"{PR}_84mg_japanese_cmax", PR, "84 mg, Japanese: esketamine Cmax", 131.3, "ng/mL",
           T4, regimen="84 mg esketamine intranasal", covariates={"asian": 1, "japanese": 1},
           analyte="esketamine", metric="cmax"),
    Target(f"{PR}_84mg_japanese_auc", PR, "84 mg, Japanese: esketamine AUC0-24", 475.4,
           "ng·h/mL", T4, regimen="84 mg esketamine intranasal",
           covariates={"asian": 1, "japanese": 1}, analyte="esketamine", metric="auc",
           window=(0.0, 24.0)),
    Target(f"{PR}_84mg_over60_cmax", PR, "84 mg, over 60 (Caucasian): esketamine Cmax", 102.7,
           "ng/mL", T4, regimen="84 mg esketamine intranasal", covariates={"age": 70},
           analyte="esketamine", metric="cmax"),
    Target(f"{PR}_84mg_over60_auc", PR, "84 mg, over 60: esketamine AUC0-24", 391.2,
           "ng·h/mL", T4, regimen="84 mg esketamine intranasal", covariates={"age": 70},
           analyte="esketamine", metric="auc", window=(0.0, 24.0)),
    Target(f"{PR}_label_tmax", PR, "84 mg: Tmax 20-40 min after the last spray (at 10 min)",
           0.5, "h", "spravato-label, section 12.3 [V]", kind="independent",
           regimen="84 mg esketamine intranasal", analyte="esketamine", metric="tmax",
           low=10 / 60 + 20 / 60, high=10 / 60 + 40 / 60),
    Target(f"{PR}_label_thalf", PR, "terminal half-life 7-12 h", 9.5, "h",
           "spravato-label, section 12.3 [V]", kind="independent", low=7.0, high=12.0,
           compute=lambda: _terminal_half_life(PR, ("central", "periph1", "periph2",
                                                    "liver"))),
    Target(f"{PR}_label_f", PR, "absolute bioavailability of 84 mg (label 48 %; model paper "
           "51 %)", 0.48, "fraction", "spravato-label [V]; perezruixo2021, abstract [V]",
           kind="independent", tolerance=0.15,
           compute=lambda: _absolute_f(PR, "84 mg esketamine intranasal",
                                       "84 mg esketamine IV over 40 min")),
    # --- esketamine film: Simons 2022 Table 2 ---------------------------------------------
    *[Target(f"simons_2022_{dose}mg_{a}_{m}", "simons_2022",
             f"{dose} mg film: {a} {m}", v, unit, S2,
             kind="known" if (dose, a, m) == (100, "s_hnk", "tmax") else "reproduction",
             note="a linear model's Tmax does not depend on dose; the observed mean S-HNK "
             "Tmax moved from 81 to 109 min" if (dose, a, m) == (100, "s_hnk", "tmax") else "",
             tolerance=0.30 if m == "tmax" else 0.20,
             regimen=f"{dose} mg esketamine sublingual", covariates={"weight": 73.0},
             analyte=a, metric=cast(Metric, m), window=(0.0, 6.0),
             scale=60.0 if m in ("tmax", "auc") else 1.0,
             until=6.0, step=0.5 / 60)
      for dose, rows in (
          (50, (("s_ketamine", 96, 18.8, 8363), ("s_norketamine", 276, 61, 38497),
                ("s_hnk", 101, 81, 24087))),
          (100, (("s_ketamine", 144, 19.1, 13347), ("s_norketamine", 426, 78, 67959),
                 ("s_hnk", 189, 109, 44972))))
      for a, cm, tm, au in rows
      for m, v, unit in (("cmax", cm, "ng/mL"), ("tmax", tm, "min"),
                         ("auc", au, "ng·min/mL"))],
    Target("simons_2022_iv_peak", "simons_2022", "20 mg IV over 20 min given 6 h after a "
           "50 mg film: S-ketamine peak (273, 95 % CI 259-287)", 273.0, "ng/mL", S2,
           regimen="50 mg esketamine sublingual then 20 mg IV over 20 min at 6 h",
           covariates={"weight": 73.0}, analyte="s_ketamine", metric="cmax",
           window=(6.0, 8.0), until=8.0, step=0.5 / 60),
    # --- esketamine IV: Otto 2021 CHDR1311 ------------------------------------------------
    *[Target(f"otto_2021_{a}_{t:g}h", "otto_2021", f"10 mg over 30 min: {a} at {t:g} h", v,
             "ng/mL", O7, tolerance=0.25, regimen="10 mg esketamine IV over 30 min",
             covariates={"weight": 68.0}, analyte=a, metric="conc_at", at=t, until=12.0)
      for a, vals in (("s_ketamine", (56, 27, 15.5, 11.5, 6.0, 4.2, 2.5, 1.8)),
                      ("s_norketamine", (10, 23, 20, 16, 12, 11, 8, 6.5)))
      for t, v in zip((0.5, 1, 2, 3, 5, 6, 8, 10), vals, strict=True)],
    # --- paediatric esketamine: Flint 2017 -------------------------------------------------
    Target("flint_2017_steady_state", "flint_2017", "2.4 mg/kg/h for 72 h, 7-kg child: "
           "S-ketamine at 72 h (steady state = R/CL)", 844.0, "ng/mL",
           "flint2017: parameter set, infusion rate / CL (recomputed)",
           tolerance=0.03, compute=_flint_steady_state),
]

__all__ = ["PK_TARGETS", "Outcome", "Target", "judge", "predict", "run_pk_validation"]
