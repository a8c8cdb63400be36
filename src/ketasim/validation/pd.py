"""PD validation targets behind ``ketasim validate pd``: receptor occupancy and acute effects.

Each target reuses :class:`ketasim.validation.pk.Target` and its verdict rules. Acute targets
(:data:`ACUTE_TARGETS`) simulate 4,000 virtual patients (seed 20261130) on typical-patient PK;
those that :mod:`ketasim.validation.acute_calibration` fitted are ``kind="calibration"`` (a
fitted number shown to hold, not a validation); documented misses are ``known``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from ketasim.pd import acute
from ketasim.pd.exposure import target_exposure
from ketasim.pd.targets import load_target_data
from ketasim.population.pkrun import run_pk
from ketasim.validation.acute_calibration import peak_time_min
from ketasim.validation.pk import Outcome, Target, judge

OCC = ("derived: occ = C/(C + Ki) at ~0.6 µM unbound, the antidepressant peak of "
       "zarate2006 as tabulated by zanos2018, Table 1 [S], Ki from ebert1997 [V]")


def _peak(target: str, regimen: str, covariates: dict[str, float]) -> Callable[[], float]:
    def compute() -> float:
        run = run_pk(regimen, covariates=covariates, times=np.arange(0.0, 8.0, 1.0 / 60.0))
        return float(target_exposure(run, targets=[target]).peak[target][0])
    return compute


RACEMIC = "0.5 mg/kg IV over 40 min"

PD_TARGETS: list[Target] = [
    Target("occupancy_nmda_racemic", "racemic_enantiomers", "NMDA peak occupancy, racemic "
           "0.5 mg/kg over 40 min, 70 kg (literature estimate: ~50-65 % at ~0.6 µM unbound)",
           0.575, "fraction", OCC, kind="known", low=0.50, high=0.65,
           note="the estimate of 50-65 % assumes ~0.6 µM unbound; with Dayton's fu 0.53 [V], "
           "the model's 159 ng/mL peak and the 8.3-min effect-site lag the unbound peak is "
           "~0.3 µM, giving ~39 %; fu is not tuned",
           compute=_peak("nmda", RACEMIC, {"weight": 70.0})),
    *[Target(f"occupancy_{t}_racemic", "racemic_enantiomers",
             f"{t} peak occupancy below 15 % at racemic 0.5 mg/kg over 40 min", 0.075,
             "fraction", OCC + "; other targets' affinities: ketasim/data/targets.toml",
             kind="independent", low=0.0, high=0.15,
             compute=_peak(t, RACEMIC, {"weight": 70.0}))
      for t in load_target_data().default_targets() if t != "nmda"],
    Target("occupancy_d2high_disputed", "racemic_enantiomers", "D2High (disputed, off by "
           "default): occupancy that the refuted affinity would imply (~90 % if real "
           "at 0.6 µM unbound)", 0.9, "fraction", OCC + "; D2High Ki: kapur2002 [U]",
           kind="plausibility", low=0.0, high=0.15,
           compute=_peak("d2high", RACEMIC, {"weight": 70.0})),
]


def run_pd_validation() -> list[Outcome]:
    """Predict and judge every occupancy target (acute effects: :func:`run_acute_validation`)."""
    from ketasim.validation.pk import predict
    return [judge(t, predict(t)) for t in PD_TARGETS]


def run_acute_validation() -> list[Outcome]:
    """Predict and judge every acute-effect target (4,000 virtual patients, fixed seed)."""
    from ketasim.validation.pk import predict
    return [judge(t, predict(t)) for t in ACUTE_TARGETS]


# ---- acute effects -------------------------------------------------------------------------

N_ACUTE = 4000
SEED_ACUTE = 20261130
IN56, IN84 = "56 mg esketamine intranasal", "84 mg esketamine intranasal"
SC1 = "1 mg/kg SC"


@cache
def _session(regimen: str, session: int = 1, age: float = 45.0) -> acute.AcuteSession:
    d = acute.acute_driver(regimen, age=age)
    return acute.simulate_session(d, N_ACUTE, np.random.default_rng(SEED_ACUTE), age=age,
                                  session=session)


def _mean_cadss_at(regimen: str, t_h: float) -> Callable[[], float]:
    def f() -> float:
        s = _session(regimen)
        return float(np.interp(t_h, s.times, s.cadss.mean(axis=0)))
    return f


def _cadss_peak_time(regimen: str) -> Callable[[], float]:
    return lambda: peak_time_min(_session(regimen).times, _session(regimen).cadss.mean(axis=0))


def _cadss_peak_mean(regimen: str) -> Callable[[], float]:
    return lambda: float(_session(regimen).cadss.mean(axis=0).max())


def _share_gt4(regimen: str, session: int = 1) -> Callable[[], float]:
    def f() -> float:
        s = _session(regimen, session)
        k = int(np.argmin(np.abs(s.times - 40.0 / 60.0)))  # the 40-min reading
        return float(np.mean(s.cadss_reading[:, k] > acute.CADSS_CASE))
    return f


def _moaas_fall(regimen: str) -> Callable[[], float]:
    def f() -> float:
        bg = acute.values()["moaas_background"]
        return 1.0 - (1.0 - bg) * (1.0 - _session(regimen).p_moaas_le(4))
    return f


def _ready(regimen: str, by_h: float) -> Callable[[], float]:
    return lambda: float(np.mean(_session(regimen).ready_h <= by_h + 1e-9))


def _bp_share(kind: str, group: str) -> Callable[[], float]:
    def f() -> float:
        from ketasim.validation.acute_calibration import AGES, THRESHOLD, _bp_drug_stats
        p = acute.values()
        rows = [[float(np.interp(t, d.times, d.driver(p["c100_nk"])[0]))
                 for t in acute.BP_READINGS_H]
                for d in (acute.acute_driver(r, age=AGES[group]) for r in (IN56, IN84))]
        return _bp_drug_stats(p[f"{kind}_placebo_mean_{group}"],
                              p[f"{kind}_placebo_sd_{group}"], p[f"{kind}_slope_{group}"],
                              p[f"{kind}_slope_sd_{group}"], np.array(rows), THRESHOLD[kind])[1]
    return f


def _sbp_rise_at(regimen: str, t_h: float, relative_to_peak: bool = False
                 ) -> Callable[[], float]:
    def f() -> float:
        s = _session(regimen)
        m = (s.sbp - s.baseline_sbp[:, None]).mean(axis=0)
        v = float(np.interp(t_h, s.times, m))
        return v / float(m.max()) if relative_to_peak else v
    return f


def _moaas_peak_time(regimen: str) -> Callable[[], float]:
    def f() -> float:
        s = _session(regimen)
        return float(s.times[int(np.argmax((s.moaas <= 4).mean(axis=0)))] * 60.0)
    return f


def _moaas_resolved(regimen: str, t_h: float) -> Callable[[], float]:
    def f() -> float:
        s = _session(regimen)
        pr = (s.moaas <= 4).mean(axis=0)
        return float(np.interp(t_h, s.times, pr) / pr.max())
    return f


def _modal_sedated_is_4() -> float:
    lv = _session(IN84).moaas.min(axis=1)
    counts = [int(np.sum(lv == k)) for k in (4, 3, 2, 1, 0)]
    return 1.0 if counts[0] == max(counts) else 0.0


def _attenuation_ratio(session: int) -> float:
    p = acute.values()
    return float(acute.attenuation(session, p["f_inf"], p["tau_sessions"]))


def _share_ratio_8_vs_1() -> float:
    return _share_gt4(IN84, 8)() / _share_gt4(IN84, 1)()


def _bowdle() -> float:
    return float(acute.perception(np.array(100.0), acute.values()))


TRADE = ("fitted with weight ½ (a per-dose label row graded [M]) jointly with the [V] "
         "readiness shares: the PK driver falls only ~1.75-fold from 40 to 90 min, so a "
         "response steep enough to resolve by 90-120 min separates 56 from 84 mg more than "
         "this row says")

ACUTE_TARGETS: list[Target] = [
    Target("cadss_iv_end_mean", "racemic_enantiomers", "mean CADSS at the end of 0.5 mg/kg "
           "over 40 min IV (fitted: Emax, with the SD and the 56/84 mg shares)", 7.7, "points",
           acute.VAN_SCHALKWYK + " [V]", kind="calibration", low=5.0, high=20.0,
           compute=_mean_cadss_at(RACEMIC, 40.0 / 60.0)),
    Target("cadss_iv_peak_at_end", "racemic_enantiomers", "IV 0.5 mg/kg/40 min: mean CADSS "
           "peaks at the end of the infusion (40 min; effect-site lag allowed)", 40.0, "min",
           "luckenbaugh2014 [V]", kind="independent",
           low=35.0, high=50.0, compute=_cadss_peak_time(RACEMIC)),
    Target("cadss_in_peak_40min", "perez_ruixo_2021", "84 mg intranasal: mean CADSS peaks at "
           "~40 min (fitted: C100,NK on the typical patient)", 40.0, "min",
           acute.LABEL + "; popova2019 [V]", kind="calibration",
           low=35.0, high=45.0, compute=_cadss_peak_time(IN84)),
    Target("cadss_sc_peak_30min", "racemic_enantiomers", "SC 1 mg/kg racemic: mean CADSS peaks "
           "at ~30 min (observed for SC esketamine; ±10 min)", 30.0, "min",
           acute.DEL_SANT + " [V]", kind="independent", low=20.0, high=40.0,
           compute=_cadss_peak_time(SC1)),
    Target("cadss_sc_first_dose_mean", "racemic_enantiomers", "SC 1 mg/kg racemic, first "
           "dose: mean CADSS at its peak (±30 %)", 20.0, "points",
           acute.GLUE_2018 + " [V]", kind="known", tolerance=0.30,
           compute=_cadss_peak_mean(SC1),
           note="the steep dissociation response (γ fitted to the resolution by 90-120 min, "
           "Emax at the scale maximum) over-predicts the high SC peak driver (~112 ng/mL); "
           "fitting this mean as well drops readiness at 90 min to 73 %, so it is left out "
           "and reported (conservative: SC dissociation and readiness time run high)"),
    *[Target(f"cadss_resolved_2h_{name}", model, f"{reg}: mean CADSS below 2 points by "
             "120 min", 2.0, "points", acute.ACEVEDO + " [V]",
             kind="independent", low=0.0, high=2.0, compute=_mean_cadss_at(reg, 2.0))
      for name, model, reg in (("iv", "racemic_enantiomers", RACEMIC),
                               ("in84", "perez_ruixo_2021", IN84),
                               ("sc", "racemic_enantiomers", SC1))],
    Target("cadss_share_gt4_56mg", "perez_ruixo_2021", "share with CADSS > 4 at 40 min, "
           "56 mg intranasal (fitted)", 0.61, "fraction", acute.LABEL + ", per-dose table "
           "[M]", kind="known", low=0.56, high=0.66, compute=_share_gt4(IN56), note=TRADE),
    Target("cadss_share_gt4_84mg", "perez_ruixo_2021", "share with CADSS > 4 at 40 min, "
           "84 mg intranasal (fitted)", 0.69, "fraction", acute.LABEL + ", per-dose table "
           "[M]", kind="known", low=0.64, high=0.75, compute=_share_gt4(IN84), note=TRADE),
    Target("perception_bowdle_100", "—", "perception at 100 ng/mL S-ketamine as a fraction "
           "of maximum (Bowdle: most VAS items at 37-89 % of maximum at the top step)", 0.6,
           "fraction", acute.BOWDLE + " [V]", kind="plausibility", low=0.37,
           high=0.89, compute=_bowdle),
    *[Target(f"bp_{kind}_{tag}_{g}", "perez_ruixo_2021", f"{kind.upper()} rise ≥ {thr} mmHg "
             f"at least once over 8 doses of 56/84 mg, age {g.replace('_', ' ')} (fitted)",
             share, "fraction", acute.LABEL + ", blood-pressure table [V]",
             kind="calibration", low=share * 0.9, high=share * 1.1,
             compute=_bp_share(kind, g))
      for g, shares in (("under_65", (0.08, 0.13)), ("65_plus", (0.17, 0.14)))
      for (kind, tag, thr), share in zip((("sbp", "rise40", 40), ("dbp", "rise25", 25)),
                                         shares, strict=True)],
    Target("bp_sc_sbp_30min", "racemic_enantiomers", "SC 1 mg/kg racemic: mean SBP rise at "
           "30 min (±50 %)", 10.0, "mmHg", acute.GLUE_2018 + " [V]",
           kind="independent", tolerance=0.5, compute=_sbp_rise_at(SC1, 0.5)),
    Target("bp_iv_back_by_100min", "racemic_enantiomers", "IV 0.5 mg/kg/40 min: mean SBP rise "
           "at 100 min as a fraction of its peak (back near baseline: ≤ 0.5)", 0.0,
           "fraction of peak", "fang2019 [V]",
           kind="independent", low=0.0, high=0.5, compute=_sbp_rise_at(RACEMIC, 100 / 60, True)),
    Target("moaas_fall_56mg", "perez_ruixo_2021", "any MOAA/S fall, 56 mg, with the 11 % "
           "placebo background (fitted)", 0.50, "fraction", acute.LABEL + ", per-dose table "
           "[M]", kind="known", low=0.45, high=0.55, compute=_moaas_fall(IN56), note=TRADE),
    Target("moaas_fall_84mg", "perez_ruixo_2021", "any MOAA/S fall, 84 mg, with the 11 % "
           "placebo background (fitted)", 0.61, "fraction", acute.LABEL + ", per-dose table "
           "[M]", kind="known", low=0.55, high=0.67, compute=_moaas_fall(IN84), note=TRADE),
    Target("moaas_0", "perez_ruixo_2021", "MOAA/S 0 (loss of consciousness), 84 mg (fitted "
           "at 56/84 mg)", 0.003, "fraction", acute.LABEL + ", section 5.1 [V]",
           kind="calibration", low=0.0, high=0.006,
           compute=lambda: _session(IN84).p_moaas_le(0)),
    Target("moaas_peak_30_45min", "perez_ruixo_2021", "84 mg: share at MOAA/S ≤ 4 peaks at "
           "30-45 min", 37.5, "min", acute.LABEL + "; " + acute.MEDINFO + " [V]",
           kind="independent", low=30.0, high=45.0,
           compute=_moaas_peak_time(IN84)),
    Target("moaas_modal_level_4", "perez_ruixo_2021", "84 mg: MOAA/S 4 is the commonest "
           "sedated level (1 = yes)", 1.0, "", acute.MEDINFO + " [V]", kind="independent",
           low=1.0, high=1.0, compute=_modal_sedated_is_4),
    Target("moaas_resolved_90min", "perez_ruixo_2021", "84 mg: share at MOAA/S ≤ 4 at 90 min "
           "relative to its peak (resolved by 1-1.5 h: ≤ 0.1)", 0.0, "fraction of peak",
           acute.MEDINFO + " [V]", kind="known", low=0.0, high=0.1,
           compute=_moaas_resolved(IN84, 1.5),
           note="the effect-site driver is still ~57 % of its peak at 90 min; the joint fit "
           "trades this against the per-dose sedation rows (see moaas_fall_*)"),
    Target("ready_90min", "perez_ruixo_2021", "84 mg, first dose: share ready to leave at 90 "
           "min (MOAA/S 5, CADSS ≤ 4, BP below 180/110 and rises < 40/25)", 0.90, "fraction",
           acute.READY_POSTER + " [V]", kind="known", low=0.90, high=1.0,
           compute=_ready(IN84, 1.5),
           note="fitted (weight 1) but reached only in part: 80 % (45 % before γ was fitted); "
           "the rest is the compromise with the per-dose rows (cadss_share_*, moaas_fall_*)"),
    Target("ready_120min", "perez_ruixo_2021", "84 mg: share ready to leave by 120 min",
           0.965, "fraction", acute.READY_POSTER + " [V]", kind="calibration",
           low=0.965, high=1.0, compute=_ready(IN84, 2.0)),
    Target("attenuation_week14", "—", "dissociation at session 14 relative to session 1 "
           "(f∞ is taken from this ratio: a reproduction, not a validation)", 0.44,
           "fraction", acute.GLUE_2018 + " [V]", kind="calibration", tolerance=0.02,
           compute=lambda: _attenuation_ratio(14)),
    Target("attenuation_share_dose8", "perez_ruixo_2021", "84 mg: share with CADSS > 4 after "
           "the 8th dose relative to the 1st (fewer after the last dose: < 1)", 0.5,
           "ratio", acute.CHEN + " [V qualitative]", kind="independent",
           low=0.0, high=0.95, compute=_share_ratio_8_vs_1),
]


__all__ = ["ACUTE_TARGETS", "PD_TARGETS", "run_acute_validation", "run_pd_validation"]
