"""Outcomes: courses, trials, endpoints, calibration and the validation verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ketasim.cli.app import app
from ketasim.errors import KetasimError, ModelError
from ketasim.outcomes import Arm, get_indication, hours, simulate_course
from ketasim.outcomes import endpoints as ep
from ketasim.outcomes.longterm import summarise_regimen, tolerance_factors
from ketasim.outcomes.parameters import fitted_values, outcome_parameters
from ketasim.outcomes.trial import DesignError, load_design, parse_design, run_trial
from ketasim.validation.outcomes import (
    ALL_TARGETS,
    HYPOTHESES,
    KNOWN,
    STAGE1,
    Sim,
    calibrate,
    leave_one_trial_out,
    run_outcome_validation,
)

runner = CliRunner()

DESIGN = {"indication": "trd", "n_per_arm": 200, "seed": 3,
          "arms": [{"name": "ketamine", "regimen": "0.5 mg/kg IV over 40 min"},
                   {"name": "midazolam", "control": "midazolam"}],
          "endpoint": {"instrument": "madrs", "time": "24 h", "measure": "response"}}


def test_every_parameter_has_provenance() -> None:
    for name, p in outcome_parameters().items():
        assert p.evidence in ("literature", "calibrated", "assumed"), name
        assert p.source and p.description, name
    assert fitted_values()["diagnostics"], "the stored fit carries its diagnostics"


@pytest.fixture(scope="module")
def verdicts() -> list:
    return run_outcome_validation(n=1000)


def test_validation_targets_pass_except_the_known_discrepancies(verdicts: list) -> None:
    failed = [(v.target.id, v.predicted, v.target.low, v.target.high) for v in verdicts
              if not v.ok]
    assert not failed
    # the known list stays true: each listed target really is missed
    assert {v.target.id for v in verdicts if v.verdict == "known discrepancy"} == set(KNOWN)
    calibration = [v for v in verdicts if v.target.kind == "calibration"]
    assert sum(v.passed for v in calibration) >= len(calibration) - len(KNOWN)


def test_validation_covers_every_indication_and_fact(verdicts: list) -> None:
    inds = {v.target.indication for v in verdicts}
    assert {"trd", "bipolar", "suicidal_ideation", "ptsd", "ocd", "social_anxiety", "gad",
            "adolescent_depression", "crps"} <= inds
    kinds = {v.target.kind for v in verdicts}
    assert kinds == {"calibration", "qualitative"}
    assert len(verdicts) == len(ALL_TARGETS)


def test_fast_calibration_runs_and_keeps_parameters_in_bounds() -> None:
    """The CI mode of ``ketasim calibrate outcomes``: one structure, small populations."""
    from ketasim.validation.mbma import FitResult
    from ketasim.validation.mbma_data import trd_data
    stored = fitted_values()
    structure = stored["diagnostics"]["mbma"]["structure"]
    res = calibrate(n=150, max_nfev=2, rounds=1, only=["trd"], structure=structure,
                    start=dict(stored["parameters"]))
    p = res["parameters"]
    for k, (lo, hi) in {**STAGE1, **HYPOTHESES[structure]}.items():
        assert lo <= p[k] <= hi, k
    rep = res["diagnostics"]["stage1_trd"]
    fr = FitResult.from_report(rep, trd_data())
    assert np.all(np.linalg.eigvalsh(fr.cov) >= -1e-9)  # a covariance
    assert res["diagnostics"]["mbma"]["structure"] == structure


def test_stored_fit_matches_the_code() -> None:
    """The fit file is a calibration run, not a hand edit: the stored predictions of every
    stage are what the simulator gives at the stored parameters (same n and seed; the
    parameters are stored to 5 decimals, which moves a prediction by < 0.02)."""
    from ketasim.validation.mbma_data import indication_data, trd_data
    stored = fitted_values()
    d = stored["diagnostics"]
    assert d["method"] == "mbma"
    sim = Sim(stored["parameters"], d["n_per_arm"], d["seed"])
    for stage, data in (("stage1_trd", trd_data()), ("stage3_ocd", indication_data("ocd")),
                        ("stage3_crps", indication_data("crps"))):
        fitted = {r["id"]: r["fitted"] for r in d[stage]["data"]}
        for datum in data:
            assert datum.compute(sim) == pytest.approx(fitted[datum.id], abs=0.02), datum.id


def test_mbma_structures_compared_and_documented() -> None:
    mb = fitted_values()["diagnostics"]["mbma"]
    assert set(mb["hypotheses"]) == set(HYPOTHESES)
    chosen = mb["hypotheses"][mb["structure"]]
    # the rule: lowest AIC, or within 2 AIC units the best leave-one-trial-out lpd
    close = [r for r in mb["hypotheses"].values() if r["delta_aic"] < 2.0]
    assert chosen in close
    if len(close) > 1:
        assert chosen["loto_lpd"] == max(r["loto_lpd"] for r in close)
    lo, hi = mb["tau_drug_ci95"]
    assert lo <= mb["tau_drug"] <= hi
    text = (Path(__file__).resolve().parents[1] / "docs" / "outcomes.md").read_text()
    assert f"structure {mb['structure']}" in text


def test_leave_one_trial_out_coverage() -> None:
    """Issue #13: the 95 % prediction intervals cover ≥ 85 % of the calibration trials'
    results when each trial is left out (one-step update from the stored fit)."""
    rep = leave_one_trial_out()
    assert rep["total"] >= 20 and rep["trials"] >= 9
    assert rep["coverage"] >= 0.85, [r["id"] for r in rep["rows"] if not r["covered"]]
    for r in rep["rows"]:
        assert r["pi95"][0] < r["predicted"] < r["pi95"][1]


def test_calibrate_rejects_unknown_stages() -> None:
    with pytest.raises(ModelError, match="unknown stage"):
        calibrate(n=10, max_nfev=1, only=["tdr"])
    r = runner.invoke(app, ["calibrate", "outcomes", "--only", "tdr"])
    assert isinstance(r.exception, ModelError) and r.exception.field == "only"
    with pytest.raises(ModelError, match="structure"):
        calibrate(n=10, max_nfev=1, only=["trd"], structure="H9")
    r = runner.invoke(app, ["calibrate", "outcomes", "--fast", "--only", "gad"])
    assert r.exit_code == 0, r.output
    assert "stage3_gad: −log L" in r.output
    assert "stage1_trd: −log L" in r.output      # kept as stored, still reported


def test_trial_is_reproducible_and_seed_sensitive() -> None:
    a = run_trial(parse_design(DESIGN)).to_json()
    b = run_trial(parse_design(DESIGN)).to_json()
    assert a == b
    c = run_trial(parse_design({**DESIGN, "seed": 4})).to_json()
    assert c != a
    for arm in a["arms"].values():
        lo, hi = arm["ci95"]
        assert 0.0 <= lo <= arm["estimate"] <= hi <= 1.0


def test_trial_measures() -> None:
    for measure, check in (("mean_change", lambda x: x < 0), ("remission",
                                                               lambda x: 0 <= x <= 1)):
        d = {**DESIGN, "endpoint": {**DESIGN["endpoint"], "measure": measure}}
        r = run_trial(parse_design(d)).to_json()
        assert all(check(a["estimate"]) for a in r["arms"].values())


def test_psychotherapy_lengthens_time_to_relapse() -> None:
    d = {"indication": "trd", "n_per_arm": 300, "seed": 5,
         "arms": [{"name": "ketamine", "regimen": "0.5 mg/kg IV over 40 min twice weekly "
                   "for 2 weeks"},
                  {"name": "ketamine+cbt", "regimen": "0.5 mg/kg IV over 40 min twice "
                   "weekly for 2 weeks", "psychotherapy": "cbt"}],
         "endpoint": {"instrument": "madrs", "time": "week 30",
                      "measure": "median_time_to_relapse"}}
    r = run_trial(parse_design(d)).to_json()["arms"]
    alone = r["ketamine"]["estimate"]
    both = r["ketamine+cbt"]["estimate"]
    assert alone is not None
    assert both is None or both > alone


@pytest.mark.parametrize(("patch", "field"), [
    ({"n_per_arm": 0}, "n_per_arm"),
    ({"endpoint": {"instrument": "madrs", "time": "tomorrow", "measure": "response"}},
     "endpoint.time"),
    ({"endpoint": {"instrument": "pcl5", "time": "24 h", "measure": "response"}},
     "endpoint.instrument"),
    ({"arms": [{"name": "x", "regimen": "0.5 mg/kg IV over 40 min", "control": "placebo"}]},
     "arms.x"),
    ({"arms": [{"name": "x", "control": "saline"}]}, "arms.0.control"),
    ({"indication": "eating_disorders"}, "indication"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_designs_are_typed_errors(patch: dict, field: str) -> None:
    with pytest.raises(KetasimError) as info:
        parse_design({**DESIGN, **patch})
    assert info.value.field.startswith(field)


SI_DESIGN = {**DESIGN, "indication": "suicidal_ideation", "n_per_arm": 400,
             "endpoint": {"instrument": "cssrs_ideation", "time": "day 3",
                          "measure": "remission"}}


def test_cssrs_ideation_trial_separates_ketamine_from_midazolam() -> None:
    res = run_trial(parse_design(SI_DESIGN)).to_json()["arms"]
    k, m = res["ketamine"], res["midazolam"]
    assert k["ci95"][0] > m["ci95"][1]          # remission = 0 on the ideation item
    change = {**SI_DESIGN, "endpoint": {**SI_DESIGN["endpoint"], "measure": "mean_change"}}
    res = run_trial(parse_design(change)).to_json()["arms"]
    assert res["ketamine"]["estimate"] < res["midazolam"]["estimate"] < 0
    with pytest.raises(DesignError, match="no response definition"):
        parse_design({**SI_DESIGN, "endpoint": {**SI_DESIGN["endpoint"],
                                                "measure": "response"}})


def test_example_designs_are_valid() -> None:
    found = sorted((Path(__file__).resolve().parents[1] / "examples").glob("trial_*.toml"))
    assert len(found) >= 2
    for f in found:
        assert load_design(f).n_per_arm > 0


def test_cssrs_ideation_needs_an_indication_with_an_ideation_baseline() -> None:
    d = {**DESIGN, "endpoint": {"instrument": "cssrs", "time": "24 h", "measure": "remission"}}
    with pytest.raises(DesignError, match="needs the population's baseline") as info:
        parse_design(d)
    assert info.value.field == "ideation_baseline_mean"
    with pytest.raises(DesignError, match="not modelled"):
        parse_design({**d, "indication": "crps"})
    c = simulate_course(Arm(control="placebo"), "trd", n=5, seed=1, horizon_h=24)
    with pytest.raises(ModelError, match="not forecast"):
        c.scores("cssrs_ideation")


def test_ideation_baseline_can_come_from_the_design() -> None:
    zhou = {**DESIGN, "indication": "adolescent_depression", "n_per_arm": 300,
            "arms": [{"name": "esketamine",
                      "regimen": "14 mg esketamine IV over 40 min every other day for 6 days"},
                     {"name": "midazolam", "control": "midazolam"}],
            "endpoint": {"instrument": "cssrs_ideation", "time": "day 6",
                         "measure": "mean_change"}}
    with pytest.raises(DesignError) as info:
        parse_design(zhou)
    assert info.value.field == "ideation_baseline_mean"
    lo = run_trial(parse_design({**zhou, "ideation_baseline_mean": 2.0})).to_json()["arms"]
    hi = run_trial(parse_design({**zhou, "ideation_baseline_mean": 4.0})).to_json()["arms"]
    # improvement is a fraction of the baseline: a higher baseline, a larger fall in points
    assert hi["esketamine"]["estimate"] < lo["esketamine"]["estimate"] < 0
    assert hi["esketamine"]["estimate"] < hi["midazolam"]["estimate"]
    for bad, field in (({"ideation_baseline_mean": 7.0}, "ideation_baseline_mean"),
                       ({"indication": "crps", "ideation_baseline_mean": 3.0,
                         "endpoint": {"instrument": "nrs_pain", "time": "day 6",
                                      "measure": "mean_change"}}, "ideation_baseline_mean")):
        with pytest.raises(DesignError) as info:
            parse_design({**zhou, **bad})
        assert info.value.field == field


def test_ideation_component_follows_its_equation_and_leaves_mood_alone() -> None:
    from dataclasses import replace
    ind = get_indication("suicidal_ideation")
    arm = Arm(control="midazolam")
    c = simulate_course(arm, ind, n=300, seed=8, horizon_h=24 * 15)
    v = {k: p.value for k, p in outcome_parameters().items()}
    natural = v["ideation_natural"] * (1 - 2 ** (-c.times / v["t_half_ideation_natural_h"]))
    expected = c.baseline_of("cssrs_ideation")[:, None] * (1 - c.parts["placebo"]) \
        * (1 - natural)[None, :]
    np.testing.assert_allclose(c.scores("cssrs_ideation", noise=False),
                               np.clip(expected, 0, 5), rtol=1e-12)
    observed = c.scores("cssrs_ideation")
    assert np.array_equal(observed, np.rint(observed)) and observed.min() >= 0
    assert observed.max() <= 5
    assert abs(c.baseline_of("cssrs_ideation").mean() - 3.06) < 0.15
    # the mood course does not change when ideation is added (drawn after everything else)
    plain = simulate_course(arm, replace(ind, ideation_baseline_mean=0.0), n=300, seed=8,
                            horizon_h=24 * 15)
    assert plain.ideation is None
    np.testing.assert_array_equal(plain.scores(), c.scores())


def test_ideation_effect_is_quick_and_fades_before_mood() -> None:
    """Su 2023: ideation remits within hours, and its advantage fades sooner than the
    MADRS one (ideation separated to day 5, MADRS to day 14)."""
    s = Sim(n=600)
    k = s.course("suicidal_ideation", Arm(regimen="0.5 mg/kg IV over 40 min"), "day 15")
    m = s.course("suicidal_ideation", Arm(control="midazolam"), "day 15")
    def gap(at: float, inst: str) -> float:
        return float(m.scores(inst, noise=False)[:, m.index(at)].mean()
                     - k.scores(inst, noise=False)[:, k.index(at)].mean()) / \
            float(k.baseline_of(inst).mean())
    assert gap(280 / 60, "cssrs_ideation") > 0.5 * gap(72.0, "cssrs_ideation")
    # the ordering is the published fact; the margin (10 %) is ours. The MBMA's shared
    # parameters (a faster mood fade than the earlier point fit) leave ideation at 0.62 of
    # its day-3 advantage by day 7 against 0.73 for MADRS
    assert gap(168.0, "cssrs_ideation") / gap(72.0, "cssrs_ideation") \
        < 0.9 * gap(168.0, "madrs") / gap(72.0, "madrs")


def test_observed_ratings_are_whole_numbers() -> None:
    c = simulate_course(Arm(regimen="0.5 mg/kg IV over 40 min"), "trd", n=50, seed=4,
                        horizon_h=48)
    s = c.scores()
    assert np.array_equal(s, np.rint(s))
    assert not np.array_equal(c.scores(noise=False), np.rint(c.scores(noise=False)))


def test_cannot_predict_where_evidence_is_case_reports() -> None:
    with pytest.raises(ModelError, match="cannot predict efficacy"):
        simulate_course(Arm(regimen="0.5 mg/kg IV over 40 min"), "eating_disorders", n=10,
                        seed=1, horizon_h=48)
    assert get_indication("aud").predicts_efficacy is False


def test_control_arm_needs_no_drug_and_bad_arms_fail() -> None:
    c = simulate_course(Arm(control="placebo"), "trd", n=50, seed=1, horizon_h=72)
    assert c.drive is None and c.improvement.min() >= 0.0
    with pytest.raises(ModelError):
        Arm(regimen="0.5 mg/kg IV over 40 min", control="placebo")
    with pytest.raises(KetasimError):
        Arm(regimen="half a vial")


def test_instrument_mapping_and_endpoints() -> None:
    c = simulate_course(Arm(regimen="0.5 mg/kg IV over 40 min"), "trd", n=300, seed=2,
                        horizon_h=24 * 8)
    for inst in ("madrs", "hamd17", "qids_sr16", "phq9"):
        s = c.scores(inst)
        assert np.all(s >= 0) and s.shape == c.improvement.shape
    frac = ep.responders(c, 24.0, "madrs").mean()
    assert 0.2 < frac < 0.95
    with pytest.raises(KetasimError):
        ep.remitters(c, 24.0, "lsas")


def test_hours() -> None:
    assert hours("24 h") == 24.0 and hours("day 28") == 672.0 and hours("40 min") == 40 / 60
    assert hours("week 4") == 672.0
    with pytest.raises(ModelError):
        hours("soon")


def test_longterm_flags_and_tolerance() -> None:
    crps = summarise_regimen("2000 mg esketamine IV at 20 mg/h", weight_kg=70)
    assert "liver" in [f.id for f in crps.flags]
    long = summarise_regimen("0.5 mg/kg IV over 40 min weekly for 20 weeks", weight_kg=70)
    assert {"bladder", "cognition"} <= {f.id for f in long.flags}
    tol = tolerance_factors([0.0, 84.0, 168.0, 252.0])
    assert tol[0] == 1.0 and np.all(np.diff(tol) < 0)
    # recovers after a long break
    assert tolerance_factors([0.0, 24.0 * 120])[1] > 0.95


def test_trial_cli_json_and_plot(tmp_path: Path) -> None:
    design = tmp_path / "d.toml"
    design.write_text("""indication = "trd"
n_per_arm = 100
seed = 1
[[arms]]
name = "ketamine"
regimen = "0.5 mg/kg IV over 40 min"
[[arms]]
name = "placebo"
control = "placebo"
[endpoint]
instrument = "madrs"
time = "24 h"
measure = "mean_change"
""")
    res = runner.invoke(app, ["trial", str(design), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out["arms"]) == {"ketamine", "placebo"}
    assert out["arms"]["ketamine"]["estimate"] < out["arms"]["placebo"]["estimate"]
    assert (tmp_path / "d.png").stat().st_size > 10_000


def test_trial_cli_bad_design(tmp_path: Path) -> None:
    from ketasim.cli.app import main
    bad = tmp_path / "bad.toml"
    bad.write_text('indication = "trd"\nn_per_arm = "many"\n')
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", "from ketasim.cli.app import main; main()",
                        "trial", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "n_per_arm" in r.stderr and "Traceback" not in r.stderr
    assert callable(main)
    with pytest.raises(DesignError):
        parse_design({"indication": "trd"})


def test_explain_report(tmp_path: Path) -> None:
    out = tmp_path / "e.html"
    res = runner.invoke(app, ["explain", "--regimen", "0.5 mg/kg IV over 40 min twice weekly "
                              "for 3 weeks", "--indication", "trd", "--out", str(out),
                              "--patients", "60"])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    for part in ("Plasma", "occupancy", "Glutamate", "mTORC1", "Synapses", "Symptoms",
                 "long-term", "(2R,6R)-HNK", "against", "naltrexone", "does not replace"):
        assert part in text, part


def test_validate_outcomes_cli_reports_every_target() -> None:
    res = runner.invoke(app, ["validate", "outcomes", "--patients", "100", "--json"])
    assert res.exit_code in (0, 1), res.output
    rows = json.loads(res.output)["targets"]
    assert [r["id"] for r in rows] == [t.id for t in ALL_TARGETS]
    for r in rows:
        assert r["source"] and r["low"] <= r["high"]
        assert r["verdict"] in ("pass", "fail", "known discrepancy", "known, now passes")


def test_docs_list_every_parameter() -> None:
    from ketasim.mechanism import CASCADE
    from ketasim.outcomes.longterm import TOLERANCE
    from ketasim.outcomes.parameters import FIXED
    text = (Path(__file__).resolve().parents[1] / "docs" / "outcomes.md").read_text()
    for name in [*CASCADE, *FIXED, *TOLERANCE, *fitted_values()["parameters"]]:
        stem = name.split("_")[0] if name.startswith(("emax_", "placebo_")) else name
        assert f"`{stem}" in text, name
    for k in KNOWN:
        assert k in text, k


def test_trial_reports_prediction_intervals() -> None:
    """A new real trial varies more than a simulated one: the PI contains the CI."""
    r = run_trial(parse_design(DESIGN)).to_json()
    for arm in r["arms"].values():
        lo, hi = arm["pi95"]
        assert lo <= arm["ci95"][0] <= arm["estimate"] <= arm["ci95"][1] <= hi
        assert hi - lo > arm["ci95"][1] - arm["ci95"][0]
    assert r["differences"]
    for dd in r["differences"].values():
        assert dd["pi95"][0] < dd["ci95"][0] <= dd["ci95"][1] < dd["pi95"][1]


def test_dissociation_attenuates_while_antidepressant_effect_holds(verdicts: list) -> None:
    """Tolerance to dissociation, not to the antidepressant effect (§F; Singh 2016)."""
    s = summarise_regimen("0.5 mg/kg IV over 40 min three times weekly for 2 weeks",
                          weight_kg=70)
    assert s.dissociation_relative[5] < 0.8 * s.dissociation_relative[0]
    v = next(v for v in verdicts if v.target.id == "no_antidepressant_tolerance")
    assert v.passed and v.predicted >= 0.9



