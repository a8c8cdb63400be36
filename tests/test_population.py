"""The population engine against the ODE engine, reproducibility and its limits."""

from __future__ import annotations

import numpy as np
import pytest

from ketasim.dosing import EventTable
from ketasim.engine import AnalyticEngine, OdeEngine, PopulationEngine, simulate
from ketasim.engine.population import _diagonalise
from ketasim.engine.reference import REFERENCE_REGIMEN, reference_model, reference_population
from ketasim.errors import DoseError, EventError, ModelError
from ketasim.model import Compartment, Flow, Flux, Model, Output, Parameter
from nmtests_model import nmtests_model

TIMES = np.arange(0.0, 504.0 + 1e-9, 0.25)


@pytest.fixture(scope="module")
def engine() -> PopulationEngine:
    return PopulationEngine(chunk_size=7)


@pytest.fixture(scope="module")
def population():
    pop = reference_population(12, np.random.default_rng(42))
    cov = {"weight": pop["weight"]}
    par = {k: pop[k] for k in ("cl", "v1", "q2", "ke0", "kout")}
    return cov, par


def test_reference_model_matches_tight_ode_to_1e6(engine, population) -> None:
    cov, par = population
    model = reference_model()
    r = simulate(model, REFERENCE_REGIMEN, engine=engine, covariates=cov, parameters=par,
                 times=TIMES)
    assert r.ok and len(r.time) == 12 * len(TIMES)
    tight = OdeEngine(rtol=1e-11, atol=1e-13)
    for i in (0, 5, 11):
        ref = simulate(model, REFERENCE_REGIMEN, engine=tight,
                       covariates={"weight": cov["weight"][i]},
                       parameters={k: v[i] for k, v in par.items()}, times=TIMES)
        rows = slice(i * len(TIMES), (i + 1) * len(TIMES))
        for name in ("c1", "cm", "ce", "effect", "plasticity"):
            a, b = r[name][rows], ref[name]
            mask = np.abs(b) > 1e-6 * np.abs(b).max()
            rel = np.abs(a[mask] - b[mask]) / np.abs(b[mask])
            assert rel.max() < 1e-6, (name, i, float(rel.max()))


def test_bit_for_bit_reproducible_and_chunk_independent(population) -> None:
    cov, par = population
    model = reference_model()
    a = PopulationEngine(chunk_size=5).run(model, REFERENCE_REGIMEN, covariates=cov,
                                           parameters=par, times=TIMES[:200])
    b = PopulationEngine(chunk_size=12).run(model, REFERENCE_REGIMEN, covariates=cov,
                                            parameters=par, times=TIMES[:200])
    for k in a.outputs:
        assert np.array_equal(a.outputs[k], b.outputs[k])


def test_linear_model_population_matches_analytic_and_nmtests_semantics() -> None:
    # lag time, bioavailability, modelled duration, ADDL with the NONMEM test model
    model = nmtests_model()
    table = EventTable.from_records([
        dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=2, RATE=-2, II=24, ADDL=3),
        dict(ID=1, TIME=30, EVID=1, AMT=50, CMT=1)])
    covs = {"lagt": np.array([0.0, 1.5, 0.0]), "bioav": np.array([1.0, 0.6, 0.3]),
            "dur2": np.array([2.0, 9.0, 0.5])}
    times = np.linspace(0, 120, 241)
    pop = PopulationEngine().run(model, table, covariates=covs, times=times)
    for i in range(3):
        one = simulate(model, table, engine=AnalyticEngine(),
                       covariates={k: v[i] for k, v in covs.items()}, times=times)
        rows = slice(i * len(times), (i + 1) * len(times))
        assert np.allclose(pop["cp"][rows], one["cp"], rtol=1e-9, atol=1e-9)


def test_near_repeated_eigenvalues_fall_back_to_the_matrix_exponential() -> None:
    _lam, _v, _vi, bad = _diagonalise(np.array([[[-1.0, 0.0], [1.0, -1.0]]]), 1e6)
    assert bad[0]
    model = Model("ka_eq_k", {"k": Parameter(1.0, "1/h")},
                  [Compartment("depot"), Compartment("central")],
                  [Flow("depot", "central", "k"), Flow("central", None, "k")],
                  outputs={"c": Output("central")}, routes={"oral": "depot"})
    r = PopulationEngine().run(model, "10 mg oral", times=np.array([0.0, 1.0, 2.0]),
                               parameters={"k": np.array([1.0, 1.0 + 1e-12])})
    t = np.array([0.0, 1.0, 2.0])
    expected = 10 * t * np.exp(-t)  # the ka = k closed form
    assert np.allclose(r["c"][:3], expected, rtol=1e-8, atol=1e-12)
    assert np.allclose(r["c"][3:], expected, rtol=1e-6, atol=1e-12)
    assert any("analytic engine" in m for m in r.messages)


def test_population_engine_limits_are_typed_errors() -> None:
    mm = Model("mm", {"vmax": Parameter(1.0, "mg/h")}, [Compartment("c")],
               fluxes=[Flux("c", None, "vmax * c / (1 + c)")], routes={"iv_bolus": "c"})
    with pytest.raises(ModelError, match="linear compartments"):
        simulate(mm, "1 mg IV bolus", engine=PopulationEngine(), times=[1.0])
    with pytest.raises(EventError, match="SS"):
        PopulationEngine().run(nmtests_model(), EventTable.from_records(
            [dict(ID=1, EVID=1, AMT=1, CMT=1, SS=1, II=12)]), times=np.array([1.0]))
    with pytest.raises(DoseError, match="weight"):
        PopulationEngine().run(reference_model(), REFERENCE_REGIMEN, times=np.array([1.0]))
    with pytest.raises(EventError, match="times"):
        PopulationEngine().run(reference_model(), "35 mg IV over 40 min", times=[])
    with pytest.raises(ModelError, match="tolerances"):
        PopulationEngine(rtol=1e-3)
    # an unknown parameter name is an error, as with the other engines (not silently dropped)
    with pytest.raises(ModelError, match="clx: is not a parameter of reference"):
        simulate(reference_model(), REFERENCE_REGIMEN, engine=PopulationEngine(),
                 covariates={"weight": np.array([60.0, 80.0])},
                 parameters={"clx": np.array([1.0, 2.0])}, times=[1.0])
    with pytest.raises(ModelError, match="clx: is not a parameter of reference"):
        simulate(reference_model(), REFERENCE_REGIMEN, engine=OdeEngine(),
                 covariates={"weight": 60.0}, parameters={"clx": 1.0}, times=[1.0])


def test_without_times_rows_are_the_records_as_with_the_ode_engine() -> None:
    """No output times: the population engine gives the dose record's row, as the others."""
    model = reference_model()
    pop = simulate(model, "35 mg IV over 40 min", engine=PopulationEngine(),
                   covariates={"weight": 70.0})
    ode = simulate(model, "35 mg IV over 40 min", engine=OdeEngine(rtol=1e-11, atol=1e-13),
                   covariates={"weight": 70.0})
    assert pop.time.tolist() == ode.time.tolist() == [0.0]
    assert pop.evid.tolist() == ode.evid.tolist() == [1]
    for name in ("c1", "ce"):
        assert pop[name][0] == ode[name][0] == 0.0


def test_record_covariates_match_per_subject_simulation() -> None:
    """Dose-record covariates (IOV on F and a zero-order duration) in the population engine
    equal the per-subject engine given the same values on the records."""
    from ketasim.dosing import parse_regimen
    from ketasim.pk import get_model
    lm = get_model("simons_2022")
    table = parse_regimen("50 mg esketamine sublingual q6h x 2").to_events().expand_addl()
    rng = np.random.default_rng(8)
    n = 4
    draws = {k: rng.normal(0.0, 0.3, (n, table.n_records))
             for k in ("iov_f1", "iov_d1", "iov_f2", "iov_d2")}
    times = np.arange(0.0, 14.0, 0.25)
    weights = np.array([60.0, 70.0, 80.0, 90.0])
    pop = PopulationEngine(chunk_size=3).run(lm.model, table, covariates={"weight": weights},
                                             times=times, record_covariates=draws)
    for i in range(n):
        one = simulate(lm.model, table.with_covariates(**{k: v[i] for k, v in draws.items()}),
                       covariates={"weight": weights[i]}, times=times)
        rows = slice(i * len(times), (i + 1) * len(times))
        for name in ("s_ketamine", "s_norketamine", "s_hnk"):
            a, b = pop[name][rows], one[name]
            assert np.allclose(a, b, rtol=1e-8, atol=1e-12 * np.abs(b).max()), name
