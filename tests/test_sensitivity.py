"""Sobol' sensitivity of a forecast (ketasim.validation.sensitivity, ketasim sensitivity)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("SALib")

from ketasim.outcomes.parameters import fitted_values, outcome_parameters
from ketasim.outcomes.trial import DesignError, run_trial
from ketasim.validation.sensitivity import (
    Forecast,
    SensitivitySettings,
    Uncertainty,
    base_samples,
    parameter_ranges,
    parse_sensitivity_design,
    run_sensitivity,
    sobol,
)

KETASIM = Path(sys.executable).with_name("ketasim")
DESIGN = """
indication = "trd"
n_per_arm = 20
seed = 5

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
"""


def design(extra: str = "") -> tuple:
    import tomllib
    return parse_sensitivity_design(tomllib.loads(DESIGN + extra))


def toy(x: np.ndarray) -> np.ndarray:
    return 4.0 * x[:, 0] + x[:, 1] + 0.0 * x[:, 2]


def test_a_toy_model_gives_its_known_indices() -> None:
    # y = 4a + b + 0c, all uniform on [0, 1]: S_a = 16/17, S_b = 1/17, S_c = 0
    ranges = [Uncertainty(k, 0.5, 0.0, 1.0) for k in "abc"]
    r = sobol(toy, ranges, draws=5000, seed=3)
    assert r.draws == 1024 * 5 and r.base_samples == 1024
    assert r.st["a"] == pytest.approx(16 / 17, abs=0.03)
    assert r.s1["b"] == pytest.approx(1 / 17, abs=0.02)
    assert abs(r.st["c"]) < 1e-12
    again = sobol(toy, ranges, draws=5000, seed=3)
    assert again.st == r.st  # one seed, one answer


def test_base_samples_is_a_power_of_two() -> None:
    assert base_samples(10**6, 10) == 2**16 and base_samples(8, 10) == 4


def test_ranges_follow_the_stated_uncertainty() -> None:
    r = parameter_ranges()
    params = outcome_parameters()
    se = fitted_values()["diagnostics"]["stage1_trd"]["se"]
    emax = r["emax_trd"]  # calibrated: value ± 1.96 SE, within the fit's bounds (0.05, 0.99)
    assert emax.evidence == "calibrated" and emax.scale == "linear"
    v, half = params["emax_trd"].value, 1.959964 * se["emax_trd"]
    assert emax.low == pytest.approx(max(0.05, v - half))
    assert emax.high == pytest.approx(min(0.99, v + half))
    wane = r["t_half_placebo_wane_h"]  # assumed: ×/÷ 2 on a log scale
    assert (wane.low, wane.high, wane.scale) == (84.0, 336.0, "log")
    assert r["naltrexone_block"].high == 1.0  # a fraction stops at 1
    ad = r["ad_interaction"]  # 0 when its hypothesis is off: up to its fit under H2
    assert ad.low == 0.0 and ad.high == pytest.approx(
        fitted_values()["diagnostics"]["mbma"]["hypotheses"]["H2"]["params"]["ad_interaction"])
    assert "c50_analgesia_ng_ml" not in r  # literature values only when asked for
    assert "c50_analgesia_ng_ml" in parameter_ranges(("literature",))
    assert parameter_ranges(overrides={"d50": (0.1, 0.2)})["d50"].basis == "given in the design"


def test_the_nominal_forecast_is_the_trials_estimate() -> None:
    d, _ = design()
    fc = Forecast(d, "ketamine", None, d.n_per_arm, ())
    ref = run_trial(d, predict=False).arms["ketamine"].estimate
    assert fc(np.zeros((1, 0)))[0] == ref
    diff = Forecast(d, "ketamine", "placebo", d.n_per_arm, ())
    assert diff(np.zeros((1, 0)))[0] == ref - run_trial(d, predict=False).arms["placebo"].estimate


def test_a_dominant_parameter_is_found() -> None:
    # mean MADRS change at 24 h: the maximal effect moves it, the placebo's waning (which
    # starts 24 h after the last session) cannot
    d, s = design('\n[sensitivity]\npatients = 10\n'
                  'parameters = ["emax_trd", "t_half_placebo_wane_h"]\n')
    res = run_sensitivity(d, s, draws=160, seed=1)
    assert res.ranked()[0] == "emax_trd"
    assert res.sobol.st["emax_trd"] > 0.8 and abs(res.sobol.st["t_half_placebo_wane_h"]) < 1e-9
    assert res.sobol.draws == 32 * 4


def test_screening_drops_what_cannot_move_the_forecast() -> None:
    d, s = design('\n[sensitivity]\npatients = 10\n')
    kept: list[str] = []
    res = run_sensitivity(d, s, draws=24, seed=1,
                          on_ranges=lambda k, _s: kept.extend(r.name for r in k))
    assert "emax_trd" in kept and "emax_ptsd" in res.screened_out
    assert "active_placebo" in res.screened_out  # no midazolam arm in this forecast
    assert set(kept) == set(res.sobol.names)


@pytest.mark.parametrize(("extra", "match"), [
    ('\n[sensitivity]\nparameters = ["emax_tdr"]\n', "did you mean emax_trd"),
    ('\n[sensitivity]\nparameters = ["acute.hill_cadss"]\n', "acute-session parameter"),
    ('\n[sensitivity]\nacute = "sedation"\nparameters = ["d50"]\n', "not an acute-session"),
    ('\n[sensitivity]\nacute = "sedation"\nversus = "placebo"\n', "leave versus out"),
    ('\n[sensitivity]\nacute = "sedation"\narm = "placebo"\n', "gives no drug"),
    ('\n[sensitivity]\nacute = "mood"\n', "sensitivity.acute"),
    ('\n[sensitivity]\nparameters = ["glutamate_surge_ref_pct"]\n', "takes no part"),
    ('\n[sensitivity]\nacute = "sedation"\n[sensitivity.ranges]\nacute.hill = [1, 3]\n',
     "in quotes"),
    ('\n[sensitivity]\nversus = "ketamine"\n', "own arm"),
    ('\n[sensitivity]\narm = "nobody"\n', "no arm is called"),
    ('\n[sensitivity]\npatients = 2\n', "sensitivity.patients"),
    ('\n[sensitivity]\ncolour = "red"\n', "sensitivity.colour"),
    ('\n[sensitivity.ranges]\nd50 = [0.5, 0.1]\n', "is not a range"),
])
def test_bad_designs_are_typed_errors(extra: str, match: str) -> None:
    with pytest.raises(DesignError, match=match):
        d, s = design(extra)
        run_sensitivity(d, s, draws=8)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KETASIM), *args], capture_output=True, text=True, timeout=300)


def test_cli_prints_indices_and_exits_2_with_one_line(tmp_path: Path) -> None:
    good = tmp_path / "s.toml"
    good.write_text(DESIGN + '\n[sensitivity]\nparameters = ["emax_trd", "d50"]\n',
                    encoding="utf-8")
    ok = run_cli("sensitivity", str(good), "--draws", "32", "--patients", "10", "--json")
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert {r["name"] for r in out["indices"]} == {"emax_trd", "d50"}
    assert out["draws"] == 32 and out["ranges"][0]["basis"]
    table = run_cli("sensitivity", str(good), "--draws", "16", "--patients", "5")
    assert table.returncode == 0 and "what drives the forecast" in table.stdout
    assert "basis of the range" in table.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(DESIGN + '\n[sensitivity]\nparameters = ["nonsense"]\n', encoding="utf-8")
    for path in (bad, tmp_path / "missing.toml"):
        r = run_cli("sensitivity", str(path))
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("indication = ", encoding="utf-8")
    r = run_cli("sensitivity", str(broken))
    assert r.returncode == 2 and "not valid TOML" in r.stderr


def test_settings_defaults() -> None:
    s = SensitivitySettings()
    assert s.patients == 100 and s.draws == 4096 and s.evidence == ["calibrated", "assumed"]


# --------------------------------------------------------------------- cascade normalisation
def _reference_with_its_own_pk(settings: dict[str, float]) -> dict[str, float]:
    """The cascade's reference peaks as they were computed before the PK run was cached: a
    fresh PK run on the reference regimen for every parameter set."""
    from ketasim.mechanism import cascade as c
    from ketasim.mechanism.bdnf import bdnf_translation
    from ketasim.mechanism.modulators import slow_modulator
    from ketasim.mechanism.mtor import mtorc1
    from ketasim.mechanism.synapse import fast_potentiation, spines, synaptic_proteins
    from ketasim.population import run_pk
    s = dict(c._key(settings))
    t = c.course_grid([0.0], 24.0 * 21)
    inp = c.cascade_inputs(run_pk(c.REFERENCE_REGIMEN,
                                  covariates={"weight": c.REFERENCE_WEIGHT_KG}, times=t))
    raw = c._raw(inp, s, c._ALL)
    b = bdnf_translation(t, raw["glutamate"], s["t_half_bdnf_h"])
    sp = spines(t, synaptic_proteins(t, mtorc1(t, b, s["t_half_mtor_h"]),
                                     s["t_half_protein_h"]), s["t_half_spine_h"])
    return {"glutamate": float(raw["glutamate"].max()), "hnk": float(raw["hnk"].max()),
            "bdnf": float(b.max()), "spines": float(sp.max()),
            "potentiation": float(fast_potentiation(t, b, s["t_half_potentiation_h"]).max()),
            "lhb": float(raw["lhb"].max()), "kynurenine": float(raw["kynurenine"].max()),
            "monoamine": float(raw["monoamine"].max()),
            "neurogenesis": float(slow_modulator(t, b, s["t_half_neurogenesis_h"]).max())}


@pytest.mark.parametrize("settings", [{}, {"t_half_spine_h": 40.0, "w_fast": 0.7},
                                      {"t_half_mtor_h": 0.5, "o_zero": 0.7}])
def test_the_cached_reference_is_bit_identical(settings: dict[str, float]) -> None:
    from ketasim.mechanism import cascade as c
    assert c._reference(c._key(settings)) == _reference_with_its_own_pk(settings)


def test_a_new_cascade_value_needs_no_pk_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from ketasim.mechanism import cascade as c
    c.reference_inputs()  # the one PK run

    def no_pk(*_a: object, **_k: object) -> None:
        raise AssertionError("the reference normalisation ran PK again")
    monkeypatch.setattr(c, "run_pk", no_pk)
    def misses() -> int:
        return sum(f.cache_info().misses for f in c._REFERENCE_CACHES)
    c._reference(c._key({}))  # the stated values' normalisation, cached
    before = c._ref_spines_peak.cache_info()
    before_all = misses()
    t0 = time.perf_counter()
    peaks = [c._reference(c._key({"t_half_spine_h": 30.0 + 0.37 * i})) for i in range(40)]
    per_value = (time.perf_counter() - t0) / 40
    # ~0.1 ms measured (2 shared cores); a PK run on the 21-day grid alone took ~60 ms
    assert per_value < 0.01, per_value
    assert len({p["spines"] for p in peaks}) == 40  # each value its own normalisation
    # only the spines' peak was recomputed: the stages upstream of it were cached
    assert c._ref_spines_peak.cache_info().misses == before.misses + 40
    assert misses() == before_all + 40
    # w_fast and branch_share only weigh normalised parts: they key nothing
    for w in (0.1, 0.2, 0.3):
        c._reference(c._key({"w_fast": w, "branch_share": w}))
    assert misses() == before_all + 40
    assert c._ref_spines_peak.cache_info().maxsize == c.REFERENCE_CACHE_SIZE


def test_w_fast_and_spine_persistence_are_varied() -> None:
    d, s = design('\n[sensitivity]\npatients = 10\n'
                  'parameters = ["w_fast", "t_half_spine_h", "t_half_placebo_wane_h"]\n')
    res = run_sensitivity(d, s, draws=80, seed=2)
    ranges = {r.name: r for r in res.ranges}
    se = fitted_values()["diagnostics"]["stage1_trd"]["se"]
    for k in ("w_fast", "t_half_spine_h"):  # calibrated: the stored 95 % CI
        assert ranges[k].evidence == "calibrated" and ranges[k].scale == "linear"
        assert ranges[k].basis.startswith("calibration 95 % CI")
        assert ranges[k].high - ranges[k].low <= 2 * 1.959964 * se[k] + 1e-9
    # the 24-h change follows the weight of the fast component; spines (days) move it less
    assert res.ranked()[0] == "w_fast" and res.sobol.st["w_fast"] > 0.5
    assert abs(res.sobol.st["t_half_placebo_wane_h"]) < 1e-9
    assert res.sobol.seconds / res.sobol.draws < 0.05  # ~3 ms a draw; was ≥ 60 ms


# --------------------------------------------------------------------- cascade constants
def test_cascade_constants_have_the_assumed_range() -> None:
    from ketasim.mechanism.parameters import CASCADE
    r = parameter_ranges()
    mtor = r["t_half_mtor_h"]  # assumed: ×/÷ 2 on a log scale
    assert (mtor.low, mtor.high, mtor.scale, mtor.evidence) == (
        CASCADE["t_half_mtor_h"].value / 2, CASCADE["t_half_mtor_h"].value * 2, "log",
        "assumed")
    assert r["o_zero"].high == 1.0  # a fraction stops at 1
    assert "glutamate_surge_ref_pct" not in parameter_ranges(("literature",))  # report scale


def test_cascade_constants_move_the_forecast() -> None:
    from ketasim.mechanism.parameters import CASCADE
    d, _ = design()
    names = ("o_zero", "t_half_protein_h")
    fc = Forecast(d, "ketamine", None, 10, names)
    stated = [CASCADE[k].value for k in names]
    nominal = Forecast(d, "ketamine", None, 10, ())(np.zeros((1, 0)))[0]
    assert fc(np.array([stated]))[0] == nominal  # the stated values: unchanged, bit for bit
    # the surge's inverted U at the low end of its range (the drive stays normalised on the
    # reference infusion, so at that very dose the forecast moves only a little)
    moved = fc(np.array([[stated[0] / 2, stated[1]]]))[0]
    assert moved != nominal


def test_course_forwards_cascade_constants() -> None:
    from ketasim.mechanism.parameters import CASCADE
    from ketasim.outcomes.course import cascade_settings
    from ketasim.outcomes.indications import get_indication
    from ketasim.outcomes.parameters import values
    v = values({"t_half_mtor_h": 2 * CASCADE["t_half_mtor_h"].value})
    assert cascade_settings(get_indication("trd"), v)["t_half_mtor_h"] == v["t_half_mtor_h"]


# --------------------------------------------------------------------- acute forecasts
def test_an_acute_forecast_varies_acute_parameters() -> None:
    from ketasim.pd.acute import acute_driver, simulate_session
    d, s = design('\n[sensitivity]\nacute = "dissociation"\npatients = 100\n')
    res = run_sensitivity(d, s, draws=60, seed=3)
    # at the stated values: what simulate_session gives with its own defaults
    sess = simulate_session(acute_driver("0.5 mg/kg IV over 40 min"), 100,
                            np.random.default_rng(d.seed))
    assert res.nominal == float(np.mean(sess.cadss.max(axis=1) > 4.0))
    assert res.unit == "fraction" and "first session of ketamine" in res.forecast
    kept = set(res.sobol.names)
    assert {"acute.emax_cadss", "acute.hill_cadss"} <= kept
    # blood pressure, sedation and later sessions cannot move dissociation in session 1
    assert {"acute.sbp_slope_under_65", "acute.c50_moaas4", "acute.tau_sessions"} <= set(
        res.screened_out)
    assert all(k.startswith("acute.") for k in kept | set(res.screened_out))
    bp, s2 = design('\n[sensitivity]\nacute = "sbp_rise"\npatients = 50\n'
                    'parameters = ["acute.sbp_slope_under_65", "acute.emax_cadss"]\n')
    r2 = run_sensitivity(bp, s2, draws=32, seed=1)
    assert r2.sobol.st["acute.sbp_slope_under_65"] > 0.9
    assert abs(r2.sobol.st["acute.emax_cadss"]) < 1e-9
