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
    ('\n[sensitivity]\nparameters = ["t_half_mtor_h"]\n', "cascade constant"),
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
