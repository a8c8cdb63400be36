"""Parameters of the symptom model, with provenance, and the stored calibration.

Calibrated values live in ``ketasim/data/outcomes_fit.json``, written by
``ketasim calibrate outcomes`` (:mod:`ketasim.validation.outcomes`) with its diagnostics; the
rest are literature or assumed values stated here.

>>> p = outcome_parameters()
>>> p["t_half_placebo_h"].evidence, p["emax_trd"].evidence
('assumed', 'calibrated')
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from ketasim.mechanism.cascade import CALIBRATED_DEFAULTS
from ketasim.model.model import Parameter
from ketasim.pk.library._common import assumed, calibrated, lit

FIT_FILE = "outcomes_fit.json"
CALIBRATION_RUN = "ketasim calibrate outcomes (ketasim.validation.outcomes.calibrate)"

FIXED: dict[str, Parameter] = {
    "t_half_placebo_h": assumed(
        12.0, "h", "placebo/expectancy onset half-life",
        "midazolam arms improve by 24 h (murrough2013); onset within a day"),
    "t_half_placebo_wane_h": assumed(
        168.0, "h", "waning half-life of the placebo/expectancy response after treatment ends",
        "no published placebo-durability data; expectancy is tied to being treated, and "
        "placebo responses in the 12-week CRPS trial persisted beyond the infusion "
        "(sigtermans2009) [V]; one week"),
    "t_half_antidepressant_h": assumed(
        168.0, "h", "onset half-life of a newly started oral antidepressant",
        "oral antidepressants act over weeks; only used for designs with background = "
        "'oral_antidepressant' (TRANSFORM-2 arms)"),
    "t_half_ideation_natural_h": assumed(
        168.0, "h", "half-life of the fall of suicidal ideation under usual care (regression "
        "from the high point at which patients enrol)",
        "trials enrol at high ideation (su2023: MADRS item 10 ≥ 4) and ideation then falls "
        "in the control arm over two weeks (su2023: midazolam remission 7 % → 17 % by day "
        "14); no published time constant, one week"),
    "residual_fraction": assumed(
        0.09, "fraction of the baseline mean", "rating noise (SD) at each visit",
        "≈3 MADRS points at a baseline of 32 (typical inter-visit rating noise); "
        "the same fraction for every instrument"),
    "c50_analgesia_ng_ml": lit(
        10.5, "ng/mL", "S-ketamine C50 of sustained CRPS analgesia",
        "dahan2011, abstract [V]", grade="V"),
    "omega_c50_analgesia": lit(
        0.46, "log-SD", "between-patient variability of the analgesic C50",
        "dahan2011, abstract: C50 10.5 ± 4.8 ng/mL (SD/mean 0.46 as log-SD) [V]", grade="V"),
    "t_half_analgesia_h": lit(
        261.6, "h", "onset/offset half-life of CRPS analgesia (10.9 days)",
        "dahan2011, abstract: onset/offset t½ 10.9 days [V]", grade="V"),
    "esketamine_efficacy": assumed(
        1.0, "fraction", "esketamine's antidepressant effect relative to what its cascade "
        "drive gives (structural hypothesis H1; 1 = no R-ketamine/HNK contribution missing)",
        "default structure; ketasim calibrate outcomes fits it when H1 is chosen"),
    "ad_interaction": assumed(
        0.0, "fraction", "loss of ketamine effect at a newly started oral antidepressant's "
        "full effect (structural hypothesis H2; 0 = independent)",
        "default structure; fitted when H2 is chosen"),
    "large_trial_expectancy": assumed(
        0.0, "fraction", "extra placebo/expectancy response in large multi-site trials "
        "(n ≥ 100; structural hypothesis H3; 0 = none)",
        "default structure; fitted when H3 is chosen"),
    "naltrexone_block": assumed(
        1.0, "fraction", "opioid block by naltrexone 50 mg pre-treatment (opioid branch only)",
        "williams2018 [V]: the antidepressant effect was abolished; full block"),
}

DESCRIPTIONS = {
    "esketamine_efficacy": FIXED["esketamine_efficacy"].description,
    "ad_interaction": FIXED["ad_interaction"].description,
    "large_trial_expectancy": FIXED["large_trial_expectancy"].description,
    "w_fast": "weight of the fast (mTOR-independent) component of the drive",
    "t_half_spine_h": "persistence half-life of new spines",
    "d50": "drive (reference units) giving half the maximal effect",
    "omega_emax": "between-patient SD of the maximal effect (logit scale)",
    "omega_placebo": "between-patient SD of the placebo response (logit scale)",
    "active_placebo": "expectancy of a perceptible drug (midazolam, ketamine) relative to "
                      "an inert placebo",
    "ad_max": "maximal improvement from a newly started oral antidepressant",
    "psychotherapy_persistence": "factor on spine persistence with psychotherapy",
    "emax_ideation": "maximal improvement fraction of C-SSRS suicidal ideation (all "
                     "indications that forecast it)",
    "d50_ideation": "ideation drive (reference units) giving half the maximal ideation effect",
    "w_fast_ideation": "weight of the fast component in the ideation drive (ideation "
                       "responds within hours and its effect fades sooner than mood's)",
    "ideation_visit_sd": "visit-to-visit variability of a C-SSRS ideation rating (points)",
    "ideation_natural": "fall of suicidal ideation under usual care from the high point at "
                        "enrolment (fraction reached over weeks)",
}

UNITS = {"esketamine_efficacy": "fraction", "ad_interaction": "fraction",
         "large_trial_expectancy": "fraction", "d50": "drive (reference units)",
         "d50_ideation": "drive (reference units)",
         "t_half_spine_h": "h", "ideation_visit_sd": "C-SSRS ideation points"}


@cache
def fitted_values() -> dict[str, Any]:
    """The stored calibration: {'parameters': {...}, 'diagnostics': {...}}."""
    path = resources.files("ketasim.data").joinpath(FIT_FILE)
    if not path.is_file():
        return {"parameters": {}, "diagnostics": {}}
    return dict(json.loads(path.read_text("utf-8")))


def outcome_parameters(overrides: dict[str, float] | None = None) -> dict[str, Parameter]:
    """Every symptom-model parameter (fixed and calibrated), overrides applied."""
    out = dict(FIXED)
    fitted = dict(fitted_values()["parameters"])
    fitted.update({k: v for k, v in CALIBRATED_DEFAULTS.items() if k not in fitted})
    for k, v in fitted.items():
        if k in DESCRIPTIONS:
            desc = DESCRIPTIONS[k]
        elif k.startswith("emax_"):
            desc = f"maximal improvement fraction, {k[5:]}"
        elif k.startswith("w_fast_"):
            desc = f"weight of the fast component, {k[7:]} (onset differs by indication)"
        else:
            desc = f"inert-placebo improvement fraction, {k[8:]}"
        out[k] = calibrated(float(v), UNITS.get(k, ""), desc, CALIBRATION_RUN)
    for k, v in (overrides or {}).items():
        base = out.get(k)
        out[k] = Parameter(float(v), base.unit if base else "", base.description if base else k,
                           "override", "assumed")
    return out


def values(overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Parameter values by name."""
    return {k: p.value for k, p in outcome_parameters(overrides).items()}


__all__ = ["CALIBRATION_RUN", "DESCRIPTIONS", "FIT_FILE", "FIXED", "fitted_values",
           "outcome_parameters", "values"]
