"""The trials of the outcome MBMA: every usable published result, with its likelihood.

Each :class:`~ketasim.validation.mbma.Datum` reuses the prediction of the matching
``ketasim validate outcomes`` target where one exists. Standard errors come from the paper
(CI, SE, or SD and n); where a paper gives a mean change without its dispersion, the
patient-level SD is assumed (MADRS change SD 10 for racemic trials, 11 for the esketamine
programme, the spread Singh 2016 and TRANSFORM-2 report; tagged ``sd assumed`` in
``source``) and the arm size comes from the paper.

Simplifications (documented in docs/outcomes.md): several results of one arm (a mean and a
response rate, or one rate at several visits) are treated as conditionally independent given
the trial effects; a difference and its own control arm likewise; Murrough 2013's response
rates are left out because its mean changes of the same arms are used.

Trials used: Murrough 2013, Zarate 2006, Singh 2016, Phillips 2019, Popova 2019 (TRANSFORM-2),
Fedgchin 2019 (TRANSFORM-1), Ochs-Ross 2020 (TRANSFORM-3), Takahashi 2021 (Japanese phase
2b), and the time-course facts (Fava 2020 dose ratios, peak and fading, mTOR) for TRD; Zarate
2012 (bipolar); Wilkinson 2018 and Su 2023 (suicidal ideation); Abdallah 2022 (PTSD);
Rodriguez 2013 (OCD); Taylor 2018 (social anxiety); Glue 2017 (GAD); Zhou 2024 (adolescent
depression); Sigtermans 2009 (CRPS). Left out: Feder 2014 (IES-R, not an instrument here),
Berman 2000 (HDRS-25), pooled analyses that repeat these trials (Turkoz 2021, Newport 2015).
"""

from __future__ import annotations

import math

from ketasim.validation import outcomes as vo
from ketasim.validation.mbma import Datum
from ketasim.validation.outcomes import ESKETAMINE_TARGETS, OutcomeTarget


def _t(tid: str) -> OutcomeTarget:
    return next(t for t in vo.ALL_TARGETS if t.id == tid)


def _arm_mean(tid: str, trial: str, n: int, sd: float, *, drug: bool, source: str = "",
              grade: str = "V") -> Datum:
    t = _t(tid)
    return Datum(tid, trial, "mean", t.value, t.compute, se=sd / math.sqrt(n), sd=sd,
                 drug=drug, control=True, better=-1, source=source or t.source, grade=grade)


def _prop(tid: str, trial: str, k: int, n: int, *, drug: bool, grade: str = "V") -> Datum:
    t = _t(tid)
    return Datum(tid, trial, "prop", k / n, t.compute, n=n, k=k, drug=drug, control=True,
                 better=+1, source=t.source, grade=grade)


def _diff_ci(tid: str, trial: str, value: float, se: float, sd: float, compute: vo.Compute,
             source: str, grade: str = "V", better: int = -1) -> Datum:
    return Datum(tid, trial, "mean", value, compute, se=se, sd=sd, drug=True, control=False,
                 better=better, source=source, grade=grade)


def _fact(tid: str) -> Datum:
    """A time-course fact as a normal pseudo-observation: the tolerance's nearer edge at
    1.96 SD (the stricter side of an asymmetric band), unless that edge is a mere cap on a
    one-sided band (under a quarter of the other side: e.g. 0.6-1.01 around 1.0)."""
    t = _t(tid)
    near, far = sorted((t.high - t.value, t.value - t.low))
    half = (near if near >= 0.25 * far else far) / 1.96
    return Datum(tid, f"fact:{tid}", "fact", t.value, t.compute, se=half, source=t.source)


def trd_data() -> list[Datum]:
    """Stage 1: the TRD trials and the time-course facts."""
    data = [
        _arm_mean("murrough_k_24h", "murrough2013", 47, 10.0, drug=True,
                  source=_t("murrough_k_24h").source + "; sd 10 assumed, n 47"),
        _arm_mean("murrough_m_24h", "murrough2013", 25, 10.0, drug=False,
                  source=_t("murrough_m_24h").source + "; sd 10 assumed, n 25"),
        _prop("zarate06_resp_d1", "zarate2006", 13, 18, drug=True, grade="M"),
        _prop("zarate06_resp_d7", "zarate2006", 6, 17, drug=True, grade="M"),
        _arm_mean("singh_2x_k", "singh2016", 17, 12.0, drug=True),
        _arm_mean("singh_3x_k", "singh2016", 17, 7.3, drug=True),
        _arm_mean("singh_placebo", "singh2016", 34, 8.3, drug=False),
        _prop("phillips_series", "phillips2019", 24, 41, drug=True),
        _diff_ci("popova_diff", "popova2019", -4.0, 1.69, 11.0, _t("popova_diff").compute,
                 _t("popova_diff").source),
        _arm_mean("popova_control", "popova2019", 109, 11.0, drug=False,
                  source=_t("popova_control").source + "; sd 11 assumed, n 109"),
    ]
    for t in ESKETAMINE_TARGETS:
        trial = t.id.split("_")[0] + {"fedgchin": "2019", "ochsross": "2020",
                                       "takahashi": "2021"}[t.id.split("_")[0]]
        se = (t.high - t.low) / 3.92
        if t.id == "takahashi_placebo":
            data.append(Datum(t.id, trial, "mean", t.value, t.compute, se=se, sd=11.0,
                              control=True, better=-1, source=t.source))
        else:
            data.append(_diff_ci(t.id, trial, t.value, se, 11.0, t.compute, t.source,
                                 grade="M" if "[M]" in t.source else "V"))
    data += [_fact(i) for i in vo.SHAPE_IN_FIT if i != "peak_near_24h"]
    # the time of the peak jumps between grid times (a step in the parameters, which a
    # gradient fit steps across); the fit uses a smooth reading of the same fact: the effect
    # at 24 h as a share of its largest value over 0-72 h is ~1 (SD 0.1)
    data.append(Datum("peak_near_24h_smooth", "fact:peak_near_24h_smooth", "fact", 1.0,
                      _peak_share_24h, se=0.1, source=_t("peak_near_24h").source))
    return data


def _peak_share_24h(s: vo.Sim) -> float:
    import numpy as np
    t, diff = vo._effect_curve(s)
    window = t <= 72.0
    return float(np.interp(24.0, t, diff) / max(float(diff[window].max()), 1e-12))


def indication_data(indication: str) -> list[Datum]:
    """Stage 3: one indication's trials."""
    su_si = [t.id for t in vo.INDICATION_TARGETS if t.id.startswith("su23_si_")]
    rows: dict[str, list[Datum]] = {
        "bipolar": [
            Datum("zarate12_d_40min", "zarate2012", "smd", 0.89,
                  _t("zarate12_d_40min").compute, se=(1.16 - 0.61) / 3.92, drug=True,
                  better=+1, source=_t("zarate12_d_40min").source),
            _prop("zarate12_resp_k", "zarate2012", 11, 14, drug=True),
            _prop("zarate12_resp_p", "zarate2012", 0, 14, drug=False)],
        "suicidal_ideation": [
            _arm_mean("wilkinson18_k", "wilkinson2018", 84, 10.0, drug=True,
                      source=_t("wilkinson18_k").source + "; sd 10 assumed, n ≈ 84"),
            _arm_mean("wilkinson18_c", "wilkinson2018", 83, 10.0, drug=False,
                      source=_t("wilkinson18_c").source + "; sd 10 assumed, n ≈ 83"),
            _prop("su23_madrs_resp_k", "su2023", 15, 42, drug=True),
            _prop("su23_madrs_resp_m", "su2023", 5, 42, drug=False),
            *[_prop(i, "su2023", round(_t(i).value * 42), 42, drug="_k_" in i)
              for i in su_si]],
        "ptsd": [_diff_ci("abdallah22_diff", "abdallah2022", 0.0, 15.0 * math.sqrt(2 / 53),
                          15.0, _t("abdallah22_diff").compute,
                          _t("abdallah22_diff").source + "; PCL-5 SD 15 assumed, n ≈ 53/arm")],
        "ocd": [_prop("rodriguez13_k", "rodriguez2013", 4, 8, drug=True),
                _prop("rodriguez13_p", "rodriguez2013", 0, 7, drug=False)],
        "social_anxiety": [_prop("taylor18_k", "taylor2018", 6, 18, drug=True),
                           _prop("taylor18_p", "taylor2018", 0, 18, drug=False)],
        "gad": [_prop("glue17_resp", "glue2017", 10, 12, drug=True)],
        "adolescent_depression": [
            _arm_mean("zhou24_k", "zhou2024", 27, 10.0, drug=True,
                      source=_t("zhou24_k").source + "; sd 10 assumed, n 27"),
            _arm_mean("zhou24_m", "zhou2024", 27, 10.0, drug=False,
                      source=_t("zhou24_m").source + "; sd 10 assumed, n 27")],
        "crps": [
            Datum("sigtermans_k", "sigtermans2009", "mean", 2.68, _t("sigtermans_k").compute,
                  se=0.51, sd=0.51 * math.sqrt(30), drug=True, control=True, better=-1,
                  source=_t("sigtermans_k").source),
            Datum("sigtermans_p", "sigtermans2009", "mean", 5.45, _t("sigtermans_p").compute,
                  se=0.48, sd=0.48 * math.sqrt(30), control=True, better=-1,
                  source=_t("sigtermans_p").source)],
    }
    if indication not in rows:
        raise KeyError(indication)
    return rows[indication]


__all__ = ["indication_data", "trd_data"]
