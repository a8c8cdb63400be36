"""The session forecast: bands, probabilities, the individual update and ``ketasim session``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ketasim.errors import CovariateError, DataError, KetasimError
from ketasim.pd import acute
from ketasim.pd.session_forecast import (
    REMS_MINIMUM_H,
    AcuteObservation,
    AcutePatient,
    forecast_session,
    read_history,
)

IN84 = "84 mg esketamine intranasal"
PATIENT = AcutePatient(80, 45, 132, 84)


def test_population_forecast_is_coherent() -> None:
    f = forecast_session(IN84, PATIENT, n=2000)
    assert not f.individual and f.ess is None
    # bands ordered at every time, probabilities ordered
    for arr in (f.cadss, f.sbp, f.dbp, f.hr):
        assert np.all(arr[0] <= arr[1] + 1e-12) and np.all(arr[1] <= arr[2] + 1e-12)
    assert 0.0 <= f.p_moaas_0 <= f.p_moaas_le_3 <= f.p_moaas_any_fall <= 1.0
    # the label's ~8 % SBP rise >= 40 over 8 doses is ~1 % per dose (< 65 y)
    assert 0.002 < f.p_sbp_rise_ge_40 < 0.04
    # ready to leave mostly before the REMS minimum, a tail after
    assert 0.9 < f.p_ready_by_rems < 1.0
    assert f.discharge_ready_h.p50 < REMS_MINIMUM_H < f.discharge_ready_h.p95 + 1.0
    # dissociation peaks near 40 min: the median curve's maximum
    assert 30 <= f.times_h[int(np.argmax(f.cadss[1]))] * 60 <= 50
    assert 0.2 < f.nmda_occupancy_peak < 0.8
    assert f.adverse_events["nausea"]["probability"] == pytest.approx(0.269)
    assert "hill_cadss" in f.evidence["calibrated"] and "hill" in f.evidence["assumed"]


def test_forecast_responds_to_dose_age_and_session() -> None:
    lo = forecast_session("56 mg esketamine intranasal", PATIENT, n=2000)
    hi = forecast_session(IN84, PATIENT, n=2000)
    assert lo.cadss_peak.p50 < hi.cadss_peak.p50
    later = forecast_session(IN84, AcutePatient(80, 45, 132, 84, prior_sessions=7), n=2000)
    assert later.cadss_peak.p50 < hi.cadss_peak.p50  # attenuation over sessions
    old = forecast_session(IN84, AcutePatient(80, 72, 132, 84), n=2000)
    assert old.p_sbp_rise_ge_40 > hi.p_sbp_rise_ge_40  # the label: 17 % vs 8 % over 8 doses


def test_bad_patient_values_are_typed_errors() -> None:
    with pytest.raises(CovariateError, match="weight"):
        AcutePatient(-80, 45, 132, 84)
    with pytest.raises(CovariateError, match="sbp"):
        AcutePatient(80, 45, 900, 84)
    with pytest.raises(CovariateError, match="swapped"):
        AcutePatient(80, 45, 80, 120)
    with pytest.raises(KetasimError, match="earlier session"):
        forecast_session(IN84, PATIENT, history=[AcuteObservation(1, IN84, 0.5, cadss=3)])


def _true_sessions(rng: np.random.Generator, k: int, sessions: int
                   ) -> tuple[acute.PatientEffects, list[list[AcuteObservation]], np.ndarray]:
    """``k`` patients drawn from the model: their readings in ``sessions`` earlier sessions
    (CADSS at 40 min; SBP/DBP at 40 and 90 min) and the next session's SBP rise read at the
    expected peak (the quantity ``sbp_rise_peak`` forecasts)."""
    p = acute.values()
    drv = acute.acute_driver(IN84, weight=80, age=45)
    d = drv.driver(p["c100_nk"])
    truth = acute.PatientEffects.draw(k, rng)
    g = "under_65"
    hist: list[list[AcuteObservation]] = [[] for _ in range(k)]
    for n in range(1, sessions + 1):
        for t_h in (40 / 60, 1.5):
            dt = np.array([[float(np.interp(t_h, drv.times, d[0]))]])
            cad = acute.dissociation(dt, p, truth.c50, truth.emax, n)[:, 0]
            cad = np.clip(cad + p["cadss_noise_sd"] * rng.standard_normal(k), 0, 92)
            rs = acute.bp_rise(dt, p, "sbp", g, truth.sbp)[:, 0] \
                + p[f"sbp_placebo_sd_{g}"] * rng.standard_normal(k)
            rd = acute.bp_rise(dt, p, "dbp", g, truth.dbp)[:, 0] \
                + p[f"dbp_placebo_sd_{g}"] * rng.standard_normal(k)
            for i in range(k):
                hist[i].append(AcuteObservation(
                    n, IN84, t_h, cadss=float(cad[i]) if t_h < 1 else None,
                    sbp=132 + float(rs[i]), dbp=84 + float(rd[i]), baseline_sbp=132,
                    baseline_dbp=84))
    expected = acute.bp_rise(d, p, "sbp", g, truth.sbp)  # (k, times)
    peak = expected[np.arange(k), np.argmax(expected, axis=1)]
    next_rise = peak + p[f"sbp_placebo_sd_{g}"] * rng.standard_normal(k)
    return truth, hist, next_rise


def test_individual_forecast_covers_the_truth_and_narrows() -> None:
    """Item 2: after 3 observed sessions the 90 % band of the next session's peak SBP rise
    covers the truth ~90 % of the time and is narrower than the population band."""
    rng = np.random.default_rng(7)
    k = 200
    _, hist, truth = _true_sessions(rng, k, 3)
    patient = AcutePatient(80, 45, 132, 84, prior_sessions=3)
    pop = forecast_session(IN84, patient, n=1000)
    pop_width = pop.sbp_rise_peak.p95 - pop.sbp_rise_peak.p5
    covered, widths, cad_widths = 0, [], []
    for i in range(k):
        f = forecast_session(IN84, patient, history=hist[i], n=1000,
                             rng=np.random.default_rng(1000 + i), prior_draws=20_000)
        b = f.sbp_rise_peak
        covered += b.p5 <= truth[i] <= b.p95
        widths.append(b.p95 - b.p5)
        cad_widths.append(f.cadss_peak.p95 - f.cadss_peak.p5)
        assert f.individual and f.n_history_sessions == 3
    coverage = covered / k
    # binomial SD at 90 % with k = 200 is 2.1 points: accept 84-96 %
    assert 0.84 <= coverage <= 0.96, coverage
    assert np.mean(widths) < pop_width
    assert np.mean(cad_widths) < 0.6 * (pop.cadss_peak.p95 - pop.cadss_peak.p5)


def test_history_csv(tmp_path: Path) -> None:
    good = tmp_path / "h.csv"
    good.write_text("session,regimen,time_min,cadss,sbp,dbp\n"
                    f"1,{IN84},0,,130,82\n1,{IN84},40,12,150,95\n1,{IN84},90,2,,\n")
    obs = read_history(good)
    assert len(obs) == 2 and obs[0].baseline_sbp == 130 and obs[0].t_h == pytest.approx(2 / 3)
    bad = tmp_path / "bad.csv"
    bad.write_text("session,regimen,time_min,cadss,sbp,dbp\n"
                   f"1,{IN84},0,,130,82\n1,{IN84},40,twelve,150,95\n")
    with pytest.raises(DataError, match="row 3, cadss"):
        read_history(bad)
    nobase = tmp_path / "nobase.csv"
    nobase.write_text(f"session,regimen,time_min,cadss,sbp,dbp\n1,{IN84},40,12,150,95\n")
    with pytest.raises(DataError, match="baseline_sbp"):
        read_history(nobase)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("ketasim")
    return subprocess.run([str(exe), "session", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_json_and_exit_codes(tmp_path: Path) -> None:
    base = ["--weight", "80", "--age", "45", "--sbp", "132", "--dbp", "84"]
    r = _cli("--regimen", IN84, *base, "--json", "--plot", str(tmp_path / "f.png"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("cadss_peak", "sbp_peak_mmhg", "dbp_peak_mmhg", "discharge_ready_h"):
        assert set(out[key]) == {"p5", "p50", "p95"}, key
        assert out[key]["p5"] <= out[key]["p50"] <= out[key]["p95"]
    for key in ("p_sbp_rise_ge_40", "p_dbp_rise_ge_25", "p_moaas_le_3", "nmda_occupancy_peak"):
        assert 0.0 <= out[key] <= 1.0, key
    assert out["adverse_events"]["dizziness"] == pytest.approx(0.383)
    assert "emax_cadss" in out["evidence"]["calibrated"]
    assert (tmp_path / "f.png").stat().st_size > 10_000
    # an individual forecast from a history file
    h = tmp_path / "h.csv"
    h.write_text("session,regimen,time_min,cadss,sbp,dbp\n"
                 f"1,{IN84},0,,132,84\n1,{IN84},40,30,175,104\n")
    r = _cli("--regimen", IN84, *base, "--history", str(h), "--json")
    assert r.returncode == 0, r.stderr
    ind = json.loads(r.stdout)
    assert ind["individual"] and ind["history_sessions"] == 1
    assert ind["cadss_peak"]["p50"] > out["cadss_peak"]["p50"]
    for bad, field in ((["--weight", "-80"], "weight"), (["--sbp", "900"], "sbp")):
        args = list(base)
        args[args.index(bad[0]) + 1] = bad[1]
        r = _cli("--regimen", IN84, *args)
        assert r.returncode == 2 and field in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) <= 2
    r = _cli("--regimen", "84 mg transdermal", *base)
    assert r.returncode == 2 and "route" in r.stderr and "Traceback" not in r.stderr
