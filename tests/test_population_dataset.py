"""Many-subject datasets on the population engine through the one entry point.

``simulate(model, dataset, engine=PopulationEngine())`` takes any dataset (an EventTable with
an ID column, or a NonmemDataset): subjects with different regimens, records, times and
covariates; per-subject parameters and ETAs keyed by ID. Its results equal the per-subject
engines' (1e-6 relative, stated per test) and NONMEM's own outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from ketasim.dosing import EventTable
from ketasim.engine import AnalyticEngine, Engine, OdeEngine, PopulationEngine, simulate
from ketasim.engine.core import SubjectEngine
from ketasim.engine.prepare import Prepared
from ketasim.engine.result import Result, Status
from ketasim.engine.simulate import POPULATION_MIN_SUBJECTS, default_engine
from ketasim.errors import CovariateError, EventError, SolverError
from ketasim.io import read_nonmem_csv
from ketasim.model import Compartment, Covariate, Flow, Model, Output, Parameter
from ketasim.model.variability import Eta
from nmtests_model import nmtests_model

RTOL = 1e-6  # the bound the brief sets: population engine against the per-subject engines
DATA = Path(__file__).resolve().parent / "data" / "nonmem_public"


def depot_two_cmt() -> Model:
    """Oral depot, two compartments, weight on clearance, ETAs on cl and v; a lag and F on
    the depot from covariates (so they vary by subject)."""
    src = "test model (assumed values, no source needed: compared engine against engine)"
    return Model(
        "depot_two_cmt",
        {"cl": Parameter(5.0, "L/h", source=src, evidence="assumed"),
         "v": Parameter(40.0, "L", source=src, evidence="assumed"),
         "q": Parameter(8.0, "L/h", source=src, evidence="assumed"),
         "v2": Parameter(60.0, "L", source=src, evidence="assumed"),
         "ka": Parameter(1.2, "1/h", source=src, evidence="assumed")},
        [Compartment("depot", f="fdep", lag="lag"), Compartment("central"),
         Compartment("periph")],
        flows=[Flow("depot", "central", "ka"), Flow("central", "periph", "q / v"),
               Flow("periph", "central", "q / v2"),
               Flow("central", None, "cl * (wt / 70) ** 0.75 / v")],
        covariates={"wt": Covariate(70.0, "kg", "body weight"),
                    "lag": Covariate(0.0, "h", "lag time of the depot"),
                    "fdep": Covariate(1.0, "", "bioavailability of the depot")},
        etas={"eta_cl": Eta("cl"), "eta_v": Eta("v")},
        omega={"eta_cl": 0.09, "eta_v": 0.04},  # assumed: only the ETAs given are used
        outputs={"cp": Output("central / v", "mg/L")}, routes={"oral": "depot"},
    )


def heterogeneous_dataset(rng: np.random.Generator, n: int = 50
                          ) -> tuple[EventTable, dict[int, dict[str, float]]]:
    """``n`` subjects with shuffled, non-consecutive IDs; five regimen shapes (oral q12h with
    ADDL, IV bolus into the central compartment, zero-order infusion by RATE and by DUR,
    oral then a reset-and-dose EVID 4), amounts, weights, lags, F and observation times
    that differ by subject — some subjects share a shape and times, most do not."""
    ids = rng.permutation(np.arange(n)) * 7 + 3
    records: list[dict] = []
    etas: dict[int, dict[str, float]] = {}
    for k, sid in enumerate(ids):
        sid = int(sid)
        kind = k % 5
        amt = float(rng.uniform(20, 200))
        covs = dict(wt=float(rng.uniform(45, 110)), lag=float(rng.choice([0.0, 0.5])),
                    fdep=float(rng.uniform(0.4, 1.0)))
        shared_times = k < 15  # the first 15 share observation times with their shape
        obs = np.array([0.25, 1, 2, 6, 12, 24, 36]) if shared_times else \
            np.sort(rng.uniform(0.0, 48.0, rng.integers(3, 12)))
        if kind == 0:
            doses = [dict(TIME=0.0, EVID=1, AMT=amt, CMT=1, II=12.0, ADDL=2)]
        elif kind == 1:
            doses = [dict(TIME=0.0, EVID=1, AMT=amt, CMT=2)]
        elif kind == 2:
            doses = [dict(TIME=1.0, EVID=1, AMT=amt, CMT=2, RATE=amt / 2.0)]
        elif kind == 3:
            doses = [dict(TIME=0.0, EVID=1, AMT=amt, CMT=2, DUR=float(rng.uniform(0.5, 4)))]
        else:
            doses = [dict(TIME=0.0, EVID=1, AMT=amt, CMT=1),
                     dict(TIME=20.0, EVID=4, AMT=amt / 2, CMT=1)]
        rows = [{**d, "ID": sid, **covs} for d in doses]
        rows += [dict(ID=sid, TIME=float(t), EVID=0, AMT=0.0, CMT=2, **covs) for t in obs]
        rows.sort(key=lambda r: (r["TIME"], r["EVID"] == 0))  # a dose before its time's obs
        records += rows
        etas[sid] = {"eta_cl": float(rng.normal(0, 0.3)), "eta_v": float(rng.normal(0, 0.2))}
    table = EventTable.from_frame(pd.DataFrame(records).fillna(0.0),
                                  covariates=["wt", "lag", "fdep"])
    return table, etas


def assert_close(a: np.ndarray, b: np.ndarray, rtol: float = RTOL) -> None:
    """|a - b| <= rtol |b|, with an absolute floor of 1e-9 of the largest value (values that
    have decayed to nothing)."""
    a, b = np.asarray(a), np.asarray(b)
    scale = np.abs(b).max()
    bad = np.abs(a - b) > rtol * np.abs(b) + 1e-9 * scale
    assert not bad.any(), (int(bad.sum()), float(np.max(np.abs(a - b) / np.maximum(
        np.abs(b), 1e-300))))


@pytest.fixture(scope="module")
def dataset():
    return heterogeneous_dataset(np.random.default_rng(20261129))


# ------------------------------------------------------------------ heterogeneous dataset
def test_heterogeneous_dataset_equals_subject_by_subject(dataset) -> None:
    table, etas = dataset
    model = depot_two_cmt()
    pop = simulate(model, table, engine=PopulationEngine(), parameters=etas)
    assert pop.ok and pop.status is Status.OK
    # rows are the dataset's records, in its order (no output times: every record)
    assert np.array_equal(pop.id, table.id) and np.array_equal(pop.time, table.time)
    assert np.array_equal(pop.evid, table.evid)
    # each subject alone with the analytic engine, given its own ETAs
    start = 0
    for sid, sub in table.subjects():
        one = simulate(model, sub, engine=AnalyticEngine(), parameters=etas[sid])
        n = len(one.time)
        assert_close(pop["cp"][start:start + n], one["cp"])
        start += n
    assert start == table.n_records
    # the kernel solved every subject: none went to a per-subject engine
    assert not any("solved with" in m for m in pop.messages), pop.messages


def test_output_times_and_observations_only_match_the_analytic_engine(dataset) -> None:
    table, etas = dataset
    model = depot_two_cmt()
    times = np.linspace(0.0, 48.0, 25)
    kw = dict(parameters=etas, times=times)
    pop = simulate(model, table, engine=PopulationEngine(keep_states=True), **kw)
    ref = simulate(model, table, engine=AnalyticEngine(), **kw)
    assert np.array_equal(pop.id, ref.id) and np.array_equal(pop.time, ref.time)
    assert np.array_equal(pop.evid, ref.evid)
    assert_close(pop["cp"], ref["cp"])
    for j in range(3):
        assert_close(pop.states[:, j], ref.states[:, j])
    # rows per subject: its observation records and the 25 output times
    n_obs = int(np.sum(table.evid == 0))
    assert len(pop.time) == n_obs + 25 * len(table.subject_ids)


def test_a_nonlinear_state_model_on_a_dataset_matches_a_tight_ode() -> None:
    """Nonlinear states (the reference model's effect and plasticity) on a dataset of
    different regimens: the kernel's adaptive part against a tight ODE solve, 1e-6."""
    from ketasim.engine.reference import reference_model
    model = reference_model()
    rng = np.random.default_rng(5)
    records = []
    for sid in (11, 4, 27, 9, 30, 2):
        amt = float(rng.uniform(20, 60))
        dur = float(rng.choice([0.25, 0.67, 1.0]))
        obs = np.sort(rng.uniform(0.1, 30.0, 8))
        records.append(dict(ID=sid, TIME=0.0, EVID=1, AMT=amt, CMT=1, DUR=dur))
        if sid % 2:
            records.append(dict(ID=sid, TIME=24.0, EVID=1, AMT=amt, CMT=1, DUR=dur))
        records += [dict(ID=sid, TIME=float(t), EVID=0, CMT=1) for t in obs]
    frame = pd.DataFrame(records).fillna(0.0).sort_values(
        ["ID", "TIME", "EVID"], ascending=[True, True, False])  # a dose before its time's obs
    table = EventTable.from_frame(frame.reset_index(drop=True))
    weights = {sid: {"weight": float(rng.uniform(50, 100))} for sid in table.subject_ids}
    pop = simulate(model, table, engine=PopulationEngine(), covariates=weights)
    tight = simulate(model, table, engine=OdeEngine(rtol=1e-11, atol=1e-13), covariates=weights)
    assert pop.ok and np.array_equal(pop.time, tight.time)
    for name in ("c1", "ce", "effect", "plasticity"):
        b = tight[name]
        mask = np.abs(b) > 1e-6 * np.abs(b).max()
        rel = np.abs(pop[name][mask] - b[mask]) / np.abs(b[mask])
        assert rel.max() < RTOL, (name, float(rel.max()))


# ------------------------------------------------------------------ values keyed by ID
def test_order_of_the_values_cannot_change_the_result(dataset) -> None:
    table, etas = dataset
    model = depot_two_cmt()
    a = simulate(model, table, engine=PopulationEngine(), parameters=etas)
    reversed_ = dict(reversed(list(etas.items())))
    b = simulate(model, table, engine=PopulationEngine(), parameters=reversed_)
    frame = pd.DataFrame.from_dict(etas, orient="index").sample(frac=1.0, random_state=1)
    frame.index.name = "ID"
    c = simulate(model, table, engine=PopulationEngine(), parameters=frame)
    assert np.array_equal(a["cp"], b["cp"]) and np.array_equal(a["cp"], c["cp"])
    # and the ETAs do act: all zero gives other concentrations
    d = simulate(model, table, engine=PopulationEngine())
    assert np.max(np.abs(d["cp"] - a["cp"])) > 1e-3 * np.max(a["cp"])


def test_missing_unknown_and_positional_values_are_typed_errors(dataset) -> None:
    table, etas = dataset
    model = depot_two_cmt()
    first = int(table.subject_ids[0])
    missing = {k: v for k, v in etas.items() if k != first}
    with pytest.raises(CovariateError, match=f"ID {first}"):
        simulate(model, table, engine=PopulationEngine(), parameters=missing)
    with pytest.raises(CovariateError, match="ID 100000 is not in the dataset"):
        simulate(model, table, engine=PopulationEngine(), parameters={**etas, 100000: {
            "eta_cl": 0.0, "eta_v": 0.0}})
    frame = pd.DataFrame.from_dict(etas, orient="index").drop(index=first)
    with pytest.raises(CovariateError, match=f"ID {first}"):
        simulate(model, table, parameters=frame)
    # one value per subject by position is refused for a dataset: IDs could be misread
    n = len(table.subject_ids)
    with pytest.raises(CovariateError, match="key per-subject values by ID"):
        simulate(model, table, engine=PopulationEngine(), parameters={"eta_cl": np.zeros(n)})
    with pytest.raises(CovariateError, match="set_index"):
        simulate(model, table, parameters=pd.DataFrame({"ID": [first], "eta_cl": [0.1]}))
    with pytest.raises(CovariateError, match="mixes"):
        simulate(model, table, parameters={first: {"eta_cl": 0.1}, "eta_v": 0.2})


def test_a_regimen_for_several_subjects_takes_ids_or_positions() -> None:
    model = depot_two_cmt()
    times = np.array([0.5, 2.0, 8.0])
    covs = {"wt": np.array([50.0, 90.0])}
    by_position = simulate(model, "100 mg oral", engine=PopulationEngine(), covariates=covs,
                           times=times)
    assert by_position.id.tolist() == [1, 1, 1, 2, 2, 2]
    by_id = simulate(model, "100 mg oral", engine=PopulationEngine(),
                     covariates={8: {"wt": 90.0}, 5: {"wt": 50.0}}, times=times)
    assert by_id.id.tolist() == [5, 5, 5, 8, 8, 8]
    assert np.array_equal(by_id["cp"], by_position["cp"])


# ------------------------------------------------------------------ NONMEM oracles
def same_5_digits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    fa = np.array([float(f"{x:.5g}") for x in a])
    fb = np.array([float(f"{x:.5g}") for x in b])
    return (fa == fb) | (np.abs(a - b) < 1e-6)


@pytest.mark.parametrize("name", ["dosing", "time-varying"])
def test_nmtests_datasets_on_the_population_engine_match_nonmem(name) -> None:
    covs = ["LAGT", "BIOAV", "RAT2", "DUR2"] + (["WT"] if name == "time-varying" else [])
    table, _ = read_nonmem_csv(shared_path("data", "nmtests", name, "input.csv"),
                               covariates=covs, lowercase_covariates=True)
    ref = pd.read_csv(shared_path("data", "nmtests", name, "nonmem-output.csv"))
    pop = simulate(nmtests_model(), table, engine=PopulationEngine())
    assert np.array_equal(pop.time, ref.TIME.to_numpy())
    ok = same_5_digits(pop["cp"], ref.CP.to_numpy())
    assert ok.all(), sorted(set(ref.ID[~ok]))
    ana = simulate(nmtests_model(), table, engine=AnalyticEngine())
    assert_close(pop["cp"], ana["cp"])


def test_pheno_nonmem_dataset_with_phi_etas_keyed_by_id_matches_nonmem_ipred() -> None:
    """pharmpy's pheno (59 neonates, LGPL, tests/data/nonmem_public): the NonmemDataset as
    read, NONMEM's .phi ETAs as a DataFrame indexed by ID (rows shuffled): IPRED of the
    .tab to NONMEM's 5 printed digits, and the analytic engine's to 1e-6."""
    from ketasim.io import final_estimates, read_nonmem_control, read_phi, read_table
    ctl = read_nonmem_control(DATA / "pharmpy" / "pheno_real.mod")
    ds = ctl.read_data(covariates={"wgt": "WGT", "apgr": "APGR"})
    est = final_estimates(DATA / "pharmpy" / "pheno_real.ext")
    th = est.theta
    src = "pharmpy pheno_real (tests/data/nonmem_public/README.md)"
    model = Model(
        "pheno_advan1",
        {f"th{k + 1}": Parameter(float(t), "", f"THETA{k + 1}", source=src, evidence="assumed")
         for k, t in enumerate(th)},
        [Compartment("central")], flows=[Flow("central", None, "cl / v")],
        definitions={"cl": "th1 * wgt", "v": "th2 * wgt * where(apgr < 5, 1 + th3, 1)"},
        etas={"eta1": Eta("cl"), "eta2": Eta("v")}, omega=np.asarray(est.omega),
        outputs={"ipred": Output("central / v", "mg/L")},
        covariates={"wgt": Covariate(1.0, "kg", "weight"), "apgr": Covariate(7.0, "", "Apgar")})
    phi = read_phi(DATA / "pharmpy" / "pheno_real.phi")[-1].etas
    etas = phi.rename(columns={"ETA(1)": "eta1", "ETA(2)": "eta2"}).sample(
        frac=1.0, random_state=3)
    pop = simulate(model, ds, engine=PopulationEngine(), parameters=etas)
    tab = read_table(DATA / "pharmpy" / "pheno_real.tab")
    rounded = np.array([float(f"{x:.4E}") for x in pop["ipred"]])
    ok = np.isclose(rounded, tab["IPRED"].to_numpy(), rtol=1.5e-4, atol=1e-6)
    assert ok.all(), f"{(~ok).sum()} of {ok.size} IPRED values differ"
    ana = simulate(model, ds, engine=AnalyticEngine(), parameters=etas)
    assert_close(pop["ipred"], ana["ipred"])


# ------------------------------------------------------------------ the engine protocol
def test_every_engine_is_an_engine_and_simulate_asks_the_object() -> None:
    assert isinstance(PopulationEngine(), Engine)
    assert isinstance(AnalyticEngine(), SubjectEngine) and isinstance(OdeEngine(), Engine)

    class Recorder(Engine):
        name = "recorder"

        def __init__(self) -> None:
            self.jobs: list[Prepared] = []

        def run_prepared(self, job: Prepared) -> Result:
            self.jobs.append(job)
            n = job.n_subjects
            return Result(job.model.name, self.name, job.ids, np.zeros(n),
                          np.zeros(n, dtype=int), [], np.empty((n, 0)), {}, {})

    eng = Recorder()
    table = EventTable.from_records([dict(ID=9, EVID=1, AMT=1, CMT=1),
                                     dict(ID=2, EVID=1, AMT=1, CMT=1)])
    r = simulate(nmtests_model(), table, engine=eng, parameters={2: {"cl": 2.0}, 9: {"cl": 3.0}})
    assert r.engine == "recorder" and eng.jobs[0].parameters["cl"].tolist() == [3.0, 2.0]


def test_default_engine_takes_the_population_engine_for_many_subjects() -> None:
    model = nmtests_model()
    assert default_engine(model).name == "analytic"
    assert default_engine(model, POPULATION_MIN_SUBJECTS).name == "population"
    n = POPULATION_MIN_SUBJECTS
    table = EventTable.from_frame(pd.DataFrame(
        [dict(ID=i, TIME=0.0, EVID=1, AMT=10.0 * i, CMT=1) for i in range(1, n + 1)]
        + [dict(ID=i, TIME=t, EVID=0, AMT=0.0, CMT=2) for i in range(1, n + 1)
           for t in (1.0, 4.0)]).sort_values(["ID", "TIME"], kind="stable"))
    r = simulate(model, table)
    assert r.engine == "population" and r.states.shape == (len(r.time), 2)
    assert_close(r["cp"], simulate(model, table, engine=AnalyticEngine())["cp"])


class Failing(SubjectEngine):
    """An engine whose integrator fails on the subject with a dose above 50 mg."""

    name = "failing"

    def propagate(self, prob, y, t0, t1, rates, rec):
        if y.sum() > 50:
            raise SolverError("engine", "step size underflow", "loosen the tolerances")
        return y


def test_solver_failure_is_a_status_and_a_type() -> None:
    table = EventTable.from_records([dict(ID=1, EVID=1, AMT=10, CMT=1),
                                     dict(ID=1, TIME=1, EVID=0, CMT=2),
                                     dict(ID=2, EVID=1, AMT=100, CMT=1),
                                     dict(ID=2, TIME=1, EVID=0, CMT=2)])
    r = simulate(nmtests_model(), table, engine=Failing())
    assert r.status is Status.FAILED and r.status == "failed" and not r.ok
    assert json.loads(json.dumps({"status": r.status})) == {"status": "failed"}
    assert np.isfinite(r["cp"][:2]).all() and np.isnan(r["cp"][2:]).all()
    assert r.messages and r.messages[0].startswith("subject 2:")
    with pytest.raises(SolverError, match="underflow"):
        simulate(nmtests_model(), table, engine=Failing(), throw=True)
    with pytest.raises(SolverError):
        r.raise_on_failure()
    # other errors are not solver failures: raised, never turned into a status
    with pytest.raises(EventError):
        simulate(nmtests_model(), EventTable.from_records([dict(ID=1, EVID=1, AMT=1, CMT=7)]),
                 engine=Failing())


def test_subjects_the_kernel_cannot_take_are_counted_and_exact() -> None:
    """Steady state, a covariate changing within a subject and an observation before a dose
    at its time go to the analytic engine; the others stay in the kernel."""
    model = nmtests_model()
    table = EventTable.from_frame(pd.DataFrame([
        dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=1, SS=1, II=12, WT=70),
        dict(ID=1, TIME=6, EVID=0, AMT=0, CMT=2, WT=70),
        dict(ID=2, TIME=0, EVID=1, AMT=100, CMT=1, WT=70),
        dict(ID=2, TIME=6, EVID=0, AMT=0, CMT=2, WT=90),
        dict(ID=3, TIME=0, EVID=0, AMT=0, CMT=2, WT=70),
        dict(ID=3, TIME=0, EVID=1, AMT=100, CMT=1, WT=70),
        dict(ID=3, TIME=6, EVID=0, AMT=0, CMT=2, WT=70),
        dict(ID=4, TIME=0, EVID=1, AMT=100, CMT=1, WT=70),
        dict(ID=4, TIME=6, EVID=0, AMT=0, CMT=2, WT=70)]).fillna(0.0), covariates=["WT"])
    table = EventTable(id=table.id, time=table.time, evid=table.evid, amt=table.amt,
                       cmt=table.cmt, rate=table.rate, dur=table.dur, ii=table.ii,
                       addl=table.addl, ss=table.ss, covariates={"wt": table.covariates["WT"]})
    pop = simulate(model, table, engine=PopulationEngine())
    assert any(m.startswith("3 subject(s) solved with the analytic engine")
               for m in pop.messages), pop.messages
    ana = simulate(model, table, engine=AnalyticEngine())
    assert_close(pop["cp"], ana["cp"], rtol=1e-9)
    assert pop["cp"][4] == 0.0  # subject 3's observation before its dose

