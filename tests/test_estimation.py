"""This patient's forecast (issue #14): the likelihood, the MAP, posterior calibration on
patients simulated from the model, PK MAP against a reference solution, bad input, and the
CLI as users run it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

from ketasim.dosing.language import parse_regimen
from ketasim.engine.ode import OdeEngine
from ketasim.engine.simulate import simulate
from ketasim.estimation.forecast import forecast_patient, predictive, responding
from ketasim.estimation.individual import (
    _log_posterior,
    _prepare,
    fit_patient,
    rating_log_likelihood,
)
from ketasim.estimation.patient import PatientData, PatientDataError, Rating, read_patient
from ketasim.estimation.pk import fit_pk
from ketasim.outcomes.course import Arm, simulate_course
from ketasim.pk.registry import get_model

ROOT = Path(__file__).resolve().parent.parent
KETASIM = str(Path(sys.executable).with_name("ketasim"))
RESPONDER = ROOT / "examples" / "patient_responder.csv"
NONRESPONDER = ROOT / "examples" / "patient_nonresponder.csv"
REG = "0.5 mg/kg IV over 40 min twice weekly for 3 weeks"


def _csv(*rows: str, header: str = "TIME,EVID,AMT,DUR,ROUTE,DVID,DV,WT") -> io.StringIO:
    return io.StringIO("\n".join([header, *rows]) + "\n")


# --- the likelihood is the simulator's rating process ----------------------------------

def test_rating_likelihood_matches_rounded_clipped_normal() -> None:
    rng = np.random.default_rng(4)
    mu, sd, lo, hi = 2.3, 1.7, 0, 27
    r = np.clip(np.rint(mu + sd * rng.standard_normal(400_000)), lo, hi)
    freq = np.bincount(r.astype(int), minlength=hi + 1) / r.size
    p = np.exp(rating_log_likelihood(np.arange(lo, hi + 1), np.full(hi + 1, mu), sd, (lo, hi)))
    assert abs(p.sum() - 1.0) < 1e-12
    assert np.max(np.abs(p - freq)) < 3e-3  # Monte Carlo SE ~8e-4 at p = 0.3
    # the floor takes the whole lower tail
    assert abs(p[0] - stats.norm.cdf((0.5 - mu) / sd)) < 1e-12


def test_rating_likelihood_is_finite_far_in_the_tails() -> None:
    x = rating_log_likelihood(np.array([27.0, 0.0]), np.array([-40.0, 80.0]), 1.0, (0, 27))
    assert np.all(np.isfinite(x)) and np.all(x < -100)


# --- the MAP ----------------------------------------------------------------------------

def test_map_is_the_posterior_mode() -> None:
    data = read_patient(RESPONDER)
    fit = fit_patient(data, "trd", n=500)
    prepared = _prepare(fit.model, data.ratings)

    def f(x: np.ndarray) -> float:
        return float(-_log_posterior(fit.model, prepared, x)[0])
    ref = optimize.minimize(f, np.zeros(3), method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000})
    assert np.allclose(fit.map, ref.x, atol=1e-4)
    assert f(fit.map) <= ref.fun + 1e-8


def test_more_ratings_shrink_the_posterior() -> None:
    data = read_patient(RESPONDER)
    phq = data.ratings_on("phq9")
    base_only = fit_patient(data.with_ratings(phq[:1]), "trd", n=2000).shrinkage()["emax"]
    few = fit_patient(data.with_ratings(phq[:2]), "trd", n=2000).shrinkage()["emax"]
    many = fit_patient(data, "trd", n=2000).shrinkage()["emax"]
    assert many < few < base_only
    assert base_only > 0.9  # a baseline says nothing about the effect


# --- calibration of the posterior on patients simulated from the model -------------------

@pytest.mark.slow
def test_posterior_is_calibrated_on_500_simulated_patients() -> None:
    """90 % intervals for the next rating (day 21) and for the day-28 rating — the response
    criterion, with the baseline known — cover 85-95 % of truths drawn from the model with
    its full variability (PK included); the individual forecast of the next rating beats the
    population's once 4 ratings are in."""
    n = 500
    course = simulate_course(Arm(regimen=REG), "trd", n=n, seed=7, horizon_h=24 * 30,
                             weight_kg=70)
    days = [0, 1, 7, 14, 21, 28]
    truth = course.scores("madrs")[:, [course.index(d * 24.0) for d in days]]
    reg = parse_regimen(REG)
    rng = np.random.default_rng(3)
    cover_next, cover_28, err_ind, err_pop, p_ind, responded = [], [], [], [], [], []
    t = np.array([21 * 24.0, 28 * 24.0])
    for i in range(n):
        ratings = tuple(Rating(d * 24.0, "madrs", float(truth[i, j]), j + 1)
                        for j, d in enumerate(days[:4]))
        data = PatientData(70.0, None, reg, ratings)
        fit = fit_patient(data, "trd", n=1000, rng=rng, horizon_h=t[-1])
        pop = fit_patient(data.with_ratings(ratings[:1]), "trd", n=1000, rng=rng,
                          horizon_h=t[-1])
        r = predictive(fit.model, fit.draws, t, "madrs", rng)
        q = predictive(pop.model, pop.draws, t, "madrs", rng)
        lo, hi = np.percentile(r, [5, 95], axis=0)
        cover_next.append(lo[0] <= truth[i, 4] <= hi[0])
        cover_28.append(lo[1] <= truth[i, 5] <= hi[1])
        err_ind.append(abs(np.median(r[:, 0]) - truth[i, 4]))
        err_pop.append(abs(np.median(q[:, 0]) - truth[i, 4]))
        base = np.full(r.shape[0], truth[i, 0])
        p_ind.append(responding(r[:, 1], base, "madrs").mean())
        responded.append(responding(truth[i, 5:6], truth[i, :1], "madrs")[0])
    c_next, c_28 = float(np.mean(cover_next)), float(np.mean(cover_28))
    mae_ind, mae_pop = float(np.mean(err_ind)), float(np.mean(err_pop))
    print(f"coverage next rating {c_next:.3f}, day 28 {c_28:.3f}; MAE of the next rating "
          f"individual {mae_ind:.2f} vs population {mae_pop:.2f} MADRS points")
    assert 0.85 <= c_next <= 0.95
    assert 0.85 <= c_28 <= 0.95
    assert mae_ind < 0.6 * mae_pop
    # P(response at day 28) is calibrated on average (truth: a Bernoulli per patient)
    assert abs(np.mean(p_ind) - np.mean(responded)) < 0.04


# --- PK: the MAP of the levels against a reference solution ------------------------------

def test_pk_map_agrees_with_a_reference_solution() -> None:
    """The production MAP (analytic engine, L-BFGS-B) against the same posterior solved
    independently: LSODA at rtol 1e-10 and Powell's method to 1e-9 (Otto 2021 S-ketamine
    model: S-ketamine and S-norketamine levels after an infusion)."""
    data = read_patient(_csv("0,1,17.5,0.667,iv,,,70", "0.5,0,,,,s_ketamine,160,",
                             "0.67,0,,,,s_ketamine,190,", "2,0,,,,s_ketamine,62,",
                             "2,0,,,,s_norketamine,55,", "4,0,,,,s_norketamine,40,",
                             header="TIME,EVID,AMT,DUR,ROUTE,DVID,DV,WT"))
    fit = fit_pk(data, pk_model="otto_2021")
    lm = get_model("otto_2021")
    assert lm.iiv is not None
    names = lm.iiv.names
    times = np.array([lv.time_h for lv in data.levels])
    grid = np.unique(times)
    col = np.searchsorted(grid, times)
    obs = np.array([lv.value for lv in data.levels])
    kinds = [lv.analyte for lv in data.levels]
    omega_inv = np.linalg.inv(lm.iiv.omega)

    def objective(eta: np.ndarray) -> float:
        r = simulate(lm.model, data.regimen, engine=OdeEngine(),
                     covariates={"weight": data.weight_kg},
                     parameters=dict(zip(names, eta, strict=True)), times=grid, throw=True)
        total = float(eta @ omega_inv @ eta)
        for j, k in enumerate(kinds):
            pred = float(np.asarray(r[lm.analyte(k).output])[col[j]]) * 1000.0
            g = lm.residual[k].proportional * pred
            total += ((obs[j] - pred) / g) ** 2 + 2 * np.log(g)
        return total
    ref = optimize.minimize(objective, np.zeros(len(names)), method="Powell",
                            options={"xtol": 1e-9, "ftol": 1e-14, "maxiter": 20_000})
    got = np.array([fit.etas[k] for k in names])
    print(dict(zip(names, got.round(5), strict=True)), ref.x.round(5))
    assert np.all(np.abs(got) > 1e-3)  # every random effect moved
    assert np.allclose(got, ref.x, rtol=1e-3, atol=1e-6)


# --- the forecast and the recommendation -----------------------------------------------

def test_responder_and_non_responder_examples() -> None:
    plan = "0.5 mg/kg IV over 40 min weekly for 4 weeks"
    good = forecast_patient(read_patient(RESPONDER), "trd", plan=plan, n=1000)
    poor = forecast_patient(read_patient(NONRESPONDER), "trd", plan=plan, n=1000)
    assert good.p_response > 0.5 > 0.05 > poor.p_response
    assert good.map["emax"] > poor.map["emax"]
    # this patient's band is narrower than the population's where data are
    i = good.days.index(7.0)
    assert good.p95[i] - good.p5[i] < good.population_p95[i] - good.population_p5[i]
    # the non-responder is forecast above the population median: the data moved it
    assert poor.p50[i] > poor.population_p50[i] + 5
    assert set(good.to_json()) >= {"instrument", "days", "p5", "p50", "p95", "p_response",
                                   "p_relapse_by", "map", "shrinkage"}


def test_esketamine_spray_patient_uses_the_label_model_with_its_devices() -> None:
    """The drive follows the library model's own dose handling (84 mg = three 28-mg devices
    5 min apart in Perez-Ruixo 2021), the same concentrations as a population run."""
    from ketasim.estimation.pk import individual_pk
    from ketasim.population.pkrun import run_pk
    reg = parse_regimen("84 mg esketamine intranasal")
    t = np.array([0.25, 0.5, 1.0, 2.0])
    mine = individual_pk(reg, 80.0, t).concentration("esketamine", "ng/mL")
    ref = run_pk(reg, covariates={"weight": 80.0}, times=t).concentration("esketamine", "ng/mL")
    assert np.allclose(mine, ref, rtol=1e-12)
    data = read_patient(_csv("0,0,,,,madrs,34,80", "0,1,56,intranasal,esketamine,,,",
                             "24,0,,,,madrs,26,", "84,1,84,intranasal,esketamine,,,",
                             "168,0,,,,madrs,20,", header="TIME,EVID,AMT,ROUTE,CMPD,DVID,DV,WT"))
    f = forecast_patient(data, "trd", plan="84 mg esketamine intranasal weekly for 4 weeks",
                         n=500)
    assert f.instrument == "madrs" and f.next_session["dose"].startswith("84 mg esketamine")


def test_single_subject_random_effects_are_checked() -> None:
    from ketasim.errors import KetasimError
    from ketasim.population.pkrun import run_pk
    with pytest.raises(KetasimError, match="eta_nope"):
        run_pk("35 mg IV over 40 min", covariates={"weight": 70.0}, etas={"eta_nope": 0.1})
    with pytest.raises(KetasimError, match="one subject"):
        run_pk("35 mg IV over 40 min", subjects=5, seed=1, etas={"eta_cl": 0.1})
    a = run_pk("35 mg IV over 40 min", covariates={"weight": 70.0}, etas={"eta_cl": 0.5},
               times=[4.0]).concentration("ketamine")
    b = run_pk("35 mg IV over 40 min", covariates={"weight": 70.0},
               times=[4.0]).concentration("ketamine")
    assert a[0, 0] < b[0, 0]  # higher clearance, lower level


def test_recommendation_is_the_fewest_sessions_meeting_the_target() -> None:
    from ketasim.design.recommend import recommend
    r = recommend(read_patient(RESPONDER), "trd", target_relapse=0.5, n=500)
    assert r.chosen is not None and r.chosen.p_relapse <= 0.5
    assert all(c.sessions >= r.chosen.sessions for c in r.candidates if c.meets_target)
    by_k = {c.interval_days: c.p_relapse for c in r.candidates}
    assert by_k[3.0] < by_k[28.0]
    none = recommend(read_patient(NONRESPONDER), "trd", target_relapse=0.2, n=500)
    assert none.chosen is None and "not a response" in none.reason
    assert len(none.candidates) == 8  # the alternatives are always shown


def test_population_design_search() -> None:
    from ketasim.design.population import DesignSpec, run_design
    spec = DesignSpec(indication="trd", induction=REG, intervals_days=(4.0, 7.0, 28.0),
                      doses=("0.5 mg/kg",), weeks=8, patients=500, max_relapse=0.3)
    res = run_design(spec)
    by_k = {c.interval_days: c for c in res.candidates}
    assert by_k[4.0].p_relapse < by_k[28.0].p_relapse
    assert by_k[4.0].sessions > by_k[7.0].sessions > by_k[28.0].sessions
    if res.chosen is not None:
        assert res.chosen.p_relapse <= 0.3
        assert all(c.sessions >= res.chosen.sessions for c in res.candidates
                   if c.meets_targets)


# --- bad input names the row -------------------------------------------------------------

@pytest.mark.parametrize(("rows", "where", "words"), [
    (("0,0,,,,phq9,31,70", "0,1,35,0.667,iv,,,"), "row 1: DV", "0-27"),
    (("0,0,,,,phq9,12.5,70", "0,1,35,0.667,iv,,,"), "row 1: DV", "whole number"),
    (("0,0,,,,phq9,20,70", "0,1,35,0.667,iv,,,", "24,0,,,,happiness,3,"), "row 3: DVID",
     "not a known instrument"),
    (("-1,0,,,,cadss,10,70", "0,1,35,0.667,iv,,,"), "row 1: TIME", "before the first dose"),
    (("-1,0,,,,ketamine,10,70", "0,1,35,0.667,iv,,,"), "row 1: TIME",
     "before the first dose"),
    (("0,1,35,0.667,teleport,,,70",), "row 1: ROUTE", "not a route"),
])
def test_bad_rows_are_named(rows: tuple[str, ...], where: str, words: str) -> None:
    with pytest.raises(PatientDataError) as exc:
        read_patient(_csv(*rows))
    assert exc.value.field == where and words in exc.value.problem


def test_ratings_without_a_baseline_are_refused() -> None:
    data = read_patient(_csv("0,1,35,0.667,iv,,,70", "24,0,,,,phq9,12,"))
    with pytest.raises(PatientDataError) as exc:
        fit_patient(data, "trd", n=200)
    assert exc.value.field == "row 2: TIME" and "baseline" in exc.value.problem


def test_an_instrument_of_another_indication_is_refused() -> None:
    data = read_patient(_csv("0,0,,,,ybocs,30,70", "0,1,35,0.667,iv,,,"))
    with pytest.raises(PatientDataError, match="row 1: DVID"):
        fit_patient(data, "trd", n=200)


# --- the CLI, as users run it ------------------------------------------------------------

def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KETASIM, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


def test_cli_forecast_json_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "f.png"
    r = _run("forecast", str(RESPONDER), "--plan", "0.5 mg/kg IV over 40 min weekly for "
             "4 weeks", "--json", "--plot", str(png), "--draws", "500")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["instrument"] == "phq9" and len(out["p5"]) == len(out["days"])
    assert all(a <= b <= c for a, b, c in zip(out["p5"], out["p50"], out["p95"], strict=True))
    assert set(out["p_relapse_by"]) == {"7", "14", "28", "56", "84"}
    assert "emax" in out["map"] and "emax" in out["shrinkage"]
    # the session readings made the next session's forecast individual
    assert out["next_session"]["individual"] is True
    assert out["next_session"]["cadss_peak"]["p5"] <= out["next_session"]["cadss_peak"]["p95"]
    assert png.stat().st_size > 10_000


def test_cli_recommend_and_design(tmp_path: Path) -> None:
    r = _run("recommend", str(RESPONDER), "--target-relapse", "0.5", "--json",
             "--intervals", "4,14", "--draws", "300")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["candidates"]) == 2 and "disclaimer" in out
    design = tmp_path / "d.toml"
    design.write_text('indication = "trd"\ninduction = "0.5 mg/kg IV over 40 min twice weekly '
                      'for 2 weeks"\npatients = 200\n[maintenance]\nintervals_days = [7, 14]\n'
                      'doses = ["0.5 mg/kg"]\nweeks = 4\n[targets]\nmax_relapse = 0.5\n')
    r = _run("design", str(design))
    assert r.returncode == 0, r.stderr
    assert "fewest maintenance sessions" in r.stdout or "no candidate" in r.stdout


@pytest.mark.parametrize(("args", "words"), [
    (("forecast", "missing.csv"), "does not exist"),
    (("recommend", str(RESPONDER), "--intervals", "1,7"), "intervals"),
    (("recommend", str(RESPONDER), "--target-relapse", "2"), "target_relapse"),
])
def test_cli_bad_input_exits_2_with_one_line(args: tuple[str, ...], words: str) -> None:
    r = _run(*args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) <= 2 and words in r.stderr and "Traceback" not in r.stderr


def test_cli_bad_row_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "p.csv"
    bad.write_text("TIME,EVID,AMT,DUR,ROUTE,DVID,DV,WT\n0,0,,,,phq9,40,70\n0,1,35,0.667,iv,,,\n")
    r = _run("forecast", str(bad))
    assert r.returncode == 2 and "row 1: DV" in r.stderr and "Traceback" not in r.stderr


def test_cli_bad_design_exits_2(tmp_path: Path) -> None:
    design = tmp_path / "d.toml"
    design.write_text('indication = "trd"\ninduction = "0.5 mg/kg IV over 40 min"\n'
                      '[maintenance]\nintervals_days = [7]\ndoses = ["0.5 mg/kg"]\n'
                      'colour = "blue"\n')
    r = _run("design", str(design))
    assert r.returncode == 2 and "colour" in r.stderr
