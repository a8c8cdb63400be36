"""The population kernel's blocks, lanes, buffers and threads (issue #16 item 3).

Subjects are solved in blocks (``block_lanes``) that share one step sequence and one op list (the
union of their events); these tests pin what that must not change: agreement with the other
engines, reproducibility whatever the chunk size or thread count, per-lane events when
subjects' event times differ, and the vectorised exp/log/pow the kernel uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numba import njit

from ketasim.dosing import EventTable
from ketasim.engine import AnalyticEngine, OdeEngine, PopulationEngine, simulate
from ketasim.engine import _kernel_template as kt
from ketasim.engine.kernels import hoisted_values, lane_code
from ketasim.engine.population import block_lanes
from ketasim.engine.reference import REFERENCE_REGIMEN, reference_model, reference_population
from ketasim.errors import ModelError
from ketasim.model import Compartment, Flow, Model, Output, Parameter, State
from nmtests_model import nmtests_model

TIMES = np.arange(0.0, 504.0 + 1e-9, 0.25)
OUTPUTS = ["c1", "cm", "ce", "effect", "plasticity"]
IIV = ("cl", "v1", "q2", "ke0", "kout")
LANES = block_lanes(reference_model())  # subjects per block for the reference model


def _population(n: int, seed: int = 3) -> tuple[dict, dict]:
    pop = reference_population(n, np.random.default_rng(seed))
    return {"weight": pop["weight"]}, {k: pop[k] for k in IIV}


# ------------------------------------------------------------------ vectorised math
@njit(fastmath=kt._FM, error_model="numpy")  # as the kernels compile them (fused multiply-adds)
def _apply(f_id, x, y, out):  # pragma: no cover - compiled
    for i in range(x.shape[0]):
        if f_id == 0:
            out[i] = kt._exp(x[i])
        elif f_id == 1:
            out[i] = kt._log(x[i])
        else:
            out[i] = kt._pow(x[i], y[i])


def test_vector_exp_log_pow_agree_with_libm_to_an_ulp() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-700.0, 700.0, 20_000)
    out = np.empty_like(x)
    _apply(0, x, x, out)
    assert np.max(np.abs(out - np.exp(x)) / np.exp(x)) <= 2.3e-16
    x = np.exp(rng.uniform(-700.0, 700.0, 20_000))
    _apply(1, x, x, out)
    assert np.max(np.abs(out - np.log(x))) <= 2.3e-16 * np.max(np.abs(np.log(x)))
    base = rng.uniform(0.0, 50.0, 20_000)
    power = rng.uniform(-4.0, 4.0, 20_000)
    _apply(2, base, power, out)
    ref = base ** power
    bound = 4e-16 * (1 + np.abs(power * np.log(base)))
    assert np.all(np.abs(out - ref) <= bound * ref)


def test_vector_pow_keeps_the_special_values_of_c_pow() -> None:
    x = np.array([0.0, -0.0, 1.0, -1.0, -2.0, -2.0, -2.0, np.inf, -np.inf, np.nan, 5e-324,
                  1e-310, 2.0, 0.0, 0.0, -8.0])
    y = np.array([1.5, 2.0, np.nan, 3.0, 2.0, 3.0, 0.5, -1.5, 3.0, 0.0, 0.5, 1.5, 1100.0,
                  0.0, -1.0, 1.0 / 3.0])
    out = np.empty_like(x)
    _apply(2, x, y, out)
    with np.errstate(all="ignore"):
        ref = np.power(x, y)
        same = (out == ref) | (np.isnan(out) & np.isnan(ref)) | (np.abs(out - ref)
                                                                  <= 1e-13 * np.abs(ref))
    assert same.all(), (out, ref)
    sp = np.array([0.0, -1.0, np.inf, np.nan, 1e-320])
    _apply(1, sp, sp, out[:5])
    assert out[0] == -np.inf and np.isnan(out[1]) and out[2] == np.inf and np.isnan(out[3])
    assert abs(out[4] - np.log(1e-320)) <= 1e-15 * abs(np.log(1e-320))
    e = np.array([-np.inf, np.inf, np.nan, 709.78, 710.0, -745.0, -746.0])
    _apply(0, e, e, out[:7])
    with np.errstate(over="ignore"):
        assert np.array_equal(out[:7], np.exp(e), equal_nan=True)


# ------------------------------------------------------------------ generated code
def test_costly_parts_of_individual_values_are_hoisted_and_repeats_computed_once() -> None:
    model = reference_model()
    code = lane_code(model, ["effect"])
    assert code.hoisted == ("ec50 ** hill",)
    assert code.source.count("_pow(ce, hill)") == 1  # ce ** hill appears twice in E
    ind = {k: np.asarray(v, dtype=float) for k, v in model.individual(
        {"weight": np.array([60.0, 80.0])}, {"ec50": np.array([0.2, 0.4])}).items()}
    vals = hoisted_values(code, ind, 2)
    assert np.allclose(vals[:, 0], np.array([0.2, 0.4]) ** 1.5, rtol=1e-15)


def test_the_documented_entry_point_takes_the_fast_path() -> None:
    """simulate(..., engine=PopulationEngine()) computes outputs only, by default."""
    cov, par = _population(3)
    r = simulate(reference_model(), REFERENCE_REGIMEN, engine=PopulationEngine(),
                 covariates=cov, parameters=par, times=TIMES[:100])
    assert r.states.shape == (300, 0) and r.state_names == []
    assert set(r.outputs) == set(OUTPUTS)
    full = PopulationEngine(keep_states=True).run(reference_model(), REFERENCE_REGIMEN,
                                                  covariates=cov, parameters=par,
                                                  times=TIMES[:100])
    assert full.states.shape == (300, 6)
    for k in OUTPUTS:
        assert np.array_equal(full[k], r[k])
    # the states are the model's: C1 = central / V1
    v1 = reference_model().individual(cov, par)["v1i"]
    assert np.allclose(full["central"] / np.repeat(v1, 100), full["c1"], rtol=1e-14)


# ------------------------------------------------------------------ blocks and lanes
def test_results_do_not_depend_on_chunk_size_or_threads() -> None:
    cov, par = _population(2 * LANES + 6)
    model = reference_model()
    runs = [PopulationEngine(chunk_size=cs, threads=th).run(
        model, REFERENCE_REGIMEN, covariates=cov, parameters=par, times=TIMES[:400],
        outputs=["c1", "plasticity"])
        for cs, th in ((7, None), (LANES, 1), (1000, 2), (LANES + 5, 1))]
    for r in runs[1:]:
        for k in ("c1", "plasticity"):
            assert np.array_equal(r[k], runs[0][k])


def test_a_subject_alone_and_in_a_block_agree_within_the_tolerance() -> None:
    cov, par = _population(LANES)
    model = reference_model()
    together = PopulationEngine().run(model, REFERENCE_REGIMEN, covariates=cov,
                                      parameters=par, times=TIMES, outputs=OUTPUTS)
    for i in (0, LANES - 1):
        alone = PopulationEngine().run(model, REFERENCE_REGIMEN,
                                       covariates={"weight": cov["weight"][i:i + 1]},
                                       parameters={k: v[i:i + 1] for k, v in par.items()},
                                       times=TIMES, outputs=OUTPUTS)
        rows = slice(i * len(TIMES), (i + 1) * len(TIMES))
        for k in OUTPUTS:
            a, b = together[k][rows], alone[k]
            mask = np.abs(b) > 1e-6 * np.abs(b).max()
            assert np.max(np.abs(a[mask] - b[mask]) / np.abs(b[mask])) < 1e-8, k


def test_threads_setting_is_validated_and_restored() -> None:
    import numba
    with pytest.raises(ModelError, match="threads"):
        PopulationEngine(threads=0)
    before = numba.get_num_threads()
    PopulationEngine(threads=1).run(reference_model(), REFERENCE_REGIMEN,
                                    covariates={"weight": 70.0}, times=TIMES[:10])
    assert numba.get_num_threads() == before


def test_the_decomposition_split_over_threads_equals_the_whole() -> None:
    """The chunk's eigen-decompositions run in parts on several threads: each subject's
    result (and the chunk's real or complex type, and which subjects are flagged) is the one
    the whole batch gives, also with a complex pair and a singular eigenvector matrix in one
    part only, so a run's results do not depend on the number of threads."""
    from ketasim.engine.population import _diagonalise
    rng = np.random.default_rng(5)
    n = 1100
    kmat = -np.abs(rng.normal(1.0, 0.3, (n, 3, 3))) * np.eye(3) + 0.05 * np.abs(
        rng.normal(size=(n, 3, 3)))
    kmat[10] = [[-1.0, 2.0, 0.0], [-2.0, -1.0, 0.0], [0.0, 0.0, -3.0]]  # λ = -1 ± 2i
    kmat[20] = [[-1.0, 1.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -2.0]]  # defective: V singular
    whole = _diagonalise(kmat, 1e8, threads=1)
    for threads in (2, 4):
        split = _diagonalise(kmat, 1e8, threads=threads)
        for a, b in zip(whole, split, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    assert whole[0].dtype == np.complex128 and whole[3][20] and whole[3].sum() == 1


def _lagged_effect_model() -> Model:
    """Oral depot with a lag time, central, and a nonlinear (Emax-driven) turnover state."""
    return Model(
        "lagged_effect",
        {"ka": Parameter(1.2, "1/h"), "k": Parameter(0.3, "1/h"), "lag": Parameter(0.5, "h"),
         "kout": Parameter(0.2, "1/h"), "ec50": Parameter(2.0, "mg"),
         "hill": Parameter(1.3, "")},
        [Compartment("depot", lag="lag"), Compartment("central")],
        [Flow("depot", "central", "ka"), Flow("central", None, "k")],
        states={"resp": State("kout * (1 + central ** hill / (ec50 ** hill + central ** hill))"
                              " - kout * resp", "1", "", "response")},
        outputs={"c": Output("central"), "resp": Output("resp")},
        routes={"oral": "depot"})


def test_subjects_with_their_own_event_times_share_a_block() -> None:
    """Different lag times: each lane acts at its own events (the block's op list is the
    union); every subject matches the tight ODE engine on its own."""
    model = _lagged_effect_model()
    lanes = block_lanes(model)
    lags = np.linspace(0.0, 2.0, lanes + 3)
    times = np.arange(0.0, 60.0, 0.5)
    pop = PopulationEngine(rtol=1e-8, atol=1e-10).run(
        model, "10 mg oral q12h x 4", parameters={"lag": lags}, times=times)
    assert pop.ok, pop.messages
    tight = OdeEngine(rtol=1e-11, atol=1e-13)
    for i in (0, 5, lanes - 1, lanes + 2):
        one = simulate(model, "10 mg oral q12h x 4", engine=tight,
                       parameters={"lag": lags[i]}, times=times)
        rows = slice(i * len(times), (i + 1) * len(times))
        for k in ("c", "resp"):
            assert np.allclose(pop[k][rows], one[k], rtol=1e-6, atol=1e-9), (i, k)


def test_resets_act_on_their_own_lanes() -> None:
    """EVID 4 (reset, then dose) with per-subject lag times: the analytic engine per subject."""
    model = nmtests_model()
    table = EventTable.from_records([
        dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=1),
        dict(ID=1, TIME=10, EVID=4, AMT=50, CMT=2, RATE=-2),
        dict(ID=1, TIME=20, EVID=3, AMT=0, CMT=1),
        dict(ID=1, TIME=25, EVID=1, AMT=30, CMT=1)])
    covs = {"lagt": np.linspace(0.0, 3.0, 5), "dur2": np.linspace(0.5, 4.0, 5)}
    times = np.linspace(0.0, 40.0, 161)
    pop = PopulationEngine().run(model, table, covariates=covs, times=times)
    for i in range(5):
        one = simulate(model, table, engine=AnalyticEngine(),
                       covariates={k: v[i] for k, v in covs.items()}, times=times)
        rows = slice(i * len(times), (i + 1) * len(times))
        assert np.allclose(pop["cp"][rows], one["cp"], rtol=1e-9, atol=1e-9), i


def test_complex_eigenvalues() -> None:
    """A cycle of transfers has complex modes: the kernel's complex path."""
    model = Model("cycle", {"k": Parameter(2.0, "1/h"), "ke": Parameter(0.1, "1/h")},
                  [Compartment("a"), Compartment("b"), Compartment("c")],
                  [Flow("a", "b", "k"), Flow("b", "c", "k"), Flow("c", "a", "k"),
                   Flow("a", None, "ke")],
                  outputs={"a": Output("a"), "b": Output("b")}, routes={"iv_bolus": "a"})
    kmat = model.system_matrix(model.individual())
    assert np.abs(np.linalg.eigvals(kmat).imag).max() > 0.1
    times = np.linspace(0.0, 10.0, 81)
    pop = PopulationEngine().run(model, "10 mg IV bolus q3h x 3", times=times,
                                 parameters={"k": np.array([1.5, 2.0, 2.5])})
    for i, k in enumerate((1.5, 2.0, 2.5)):
        one = simulate(model, "10 mg IV bolus q3h x 3", engine=AnalyticEngine(),
                       parameters={"k": k}, times=times)
        rows = slice(i * len(times), (i + 1) * len(times))
        for name in ("a", "b"):
            assert np.allclose(pop[name][rows], one[name], rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ streaming buffers
def test_streamed_chunks_reuse_dropped_buffers_and_keep_kept_ones() -> None:
    cov, par = _population(5 * LANES)
    model = reference_model()
    engine = PopulationEngine(chunk_size=LANES)
    ref = engine.run(model, REFERENCE_REGIMEN, covariates=cov, parameters=par,
                     times=TIMES[:50], outputs=["c1", "plasticity"])
    bases, values = [], []
    for chunk in engine.iter_chunks(model, REFERENCE_REGIMEN, covariates=cov, parameters=par,
                                    times=TIMES[:50], outputs=["c1", "plasticity"]):
        bases.append(id(chunk.outputs["c1"].base))
        values.append(chunk.outputs["c1"].max())
    # three arrays take turns (the caller's chunk, the one handed over next, the one being
    # solved ahead): no allocation per chunk
    assert len(set(bases)) == 3
    assert np.allclose(values, ref["c1"].reshape(5, -1).max(axis=1), rtol=0, atol=0)
    # a later call on the same engine reuses them too (a fresh array costs page faults)
    del chunk
    again = [id(chunk.outputs["c1"].base) for chunk in engine.iter_chunks(
        model, REFERENCE_REGIMEN, covariates=cov, parameters=par, times=TIMES[:50],
        outputs=["c1", "plasticity"])]
    assert set(again) <= set(bases)
    kept = list(engine.iter_chunks(model, REFERENCE_REGIMEN, covariates=cov, parameters=par,
                                   times=TIMES[:50], outputs=["c1", "plasticity"]))
    assert len({id(c.outputs["c1"].base) for c in kept}) == 5  # kept chunks are never reused
    for k in ("c1", "plasticity"):
        joined = np.concatenate([c.outputs[k] for c in kept]).reshape(-1)
        assert np.array_equal(joined, ref[k])


def test_a_chunk_solved_ahead_hands_on_its_error_and_an_early_stop_waits_for_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The next chunk is solved in a background thread while the caller holds this one: an
    error there reaches the caller when it asks for that chunk (not before, not lost), and a
    caller that stops early gets control back once the chunk in flight is done."""
    import threading

    from ketasim.engine.population import PopulationEngine as Engine
    from ketasim.errors import SolverError
    cov, par = _population(3 * LANES)
    engine = PopulationEngine(chunk_size=LANES)
    solve = Engine._solve

    def failing(self: Engine, setup: Any, start: int, *args: Any, **kw: Any) -> Any:
        if start >= LANES:
            raise SolverError("engine", "injected", "nothing")
        return solve(self, setup, start, *args, **kw)

    monkeypatch.setattr(Engine, "_solve", failing)
    chunks = engine.iter_chunks(reference_model(), REFERENCE_REGIMEN, covariates=cov,
                                parameters=par, times=TIMES[:20], outputs=["c1"])
    first = next(chunks)
    assert first.ok and first.outputs["c1"].shape == (LANES, 20)
    with pytest.raises(SolverError, match="injected"):
        next(chunks)
    monkeypatch.setattr(Engine, "_solve", solve)
    chunks = engine.iter_chunks(reference_model(), REFERENCE_REGIMEN, covariates=cov,
                                parameters=par, times=TIMES[:20], outputs=["c1"])
    next(chunks)
    chunks.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("ketasim-chunk")]


def test_streamed_chunks_match_a_run_whatever_the_chunk_edges() -> None:
    """iter_chunks writes time-major buffers (streaming stores where a block's lanes are
    consecutive rows, plain stores in blocks cut by a chunk's edge); its chunks hold exactly
    what run() computes, also for subjects that the fallback engine solves. A chunk of LANES
    rows is one whole block, written in whole cache lines."""
    cov, par = _population(2 * LANES + 9)
    model = reference_model()
    for size in (7, LANES + 5, LANES):
        engine = PopulationEngine(chunk_size=size)
        ref = engine.run(model, REFERENCE_REGIMEN, covariates=cov, parameters=par,
                         times=TIMES[:60], outputs=OUTPUTS)
        chunks = list(engine.iter_chunks(model, REFERENCE_REGIMEN, covariates=cov,
                                         parameters=par, times=TIMES[:60], outputs=OUTPUTS))
        assert len(chunks[0].subject) == size
        for k in OUTPUTS:
            assert chunks[0].outputs[k].shape == (size, 60)
            joined = np.concatenate([c.outputs[k] for c in chunks]).reshape(-1)
            assert np.array_equal(joined, ref[k])
    # a condition bound no eigenvector matrix meets: every subject goes to the fallback
    few = {k: v[:3] for k, v in cov.items()}, {k: v[:3] for k, v in par.items()}
    engine = PopulationEngine(chunk_size=2, max_condition=1.0)
    ref = engine.run(model, REFERENCE_REGIMEN, covariates=few[0], parameters=few[1],
                     times=TIMES[:20], outputs=OUTPUTS)
    chunks = list(engine.iter_chunks(model, REFERENCE_REGIMEN, covariates=few[0],
                                     parameters=few[1], times=TIMES[:20], outputs=OUTPUTS))
    assert any("solved with the" in m for m in ref.messages)
    assert any("solved with the" in m for c in chunks for m in c.messages)
    for k in OUTPUTS:
        joined = np.concatenate([c.outputs[k] for c in chunks]).reshape(-1)
        assert np.array_equal(joined, ref[k])


# ------------------------------------------------------------------ compartments a dose reaches
@pytest.mark.parametrize("regimen, live", [
    ("35 mg IV over 40 min", 14),              # the S and R disposition chains only
    ("35 mg IM", 16),                          # ... and the two IM depots
])
def test_only_the_compartments_a_dose_reaches_are_decomposed(
        regimen: str, live: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The racemic model has 32 compartments, 18 of them depots of routes a regimen may not
    use: those hold nothing, so only the compartments the doses reach are diagonalised (the
    others get unexcited unit modes), and the result still equals the matrix-exponential
    engine's."""
    from ketasim.dosing import parse_regimen
    from ketasim.engine import population as pe
    from ketasim.pk import get_model
    lm = get_model("racemic_enantiomers")
    table = parse_regimen(regimen).to_events().expand_addl()
    weights = np.array([55.0, 70.0, 95.0])
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def spy(kmat: np.ndarray, dosed: np.ndarray) -> np.ndarray:
        mask = pe_reachable(kmat, dosed)
        seen.append((kmat, mask))
        return mask
    pe_reachable = pe._reachable
    monkeypatch.setattr(pe, "_reachable", spy)
    times = np.arange(0.0, 24.0, 0.5)
    pop = PopulationEngine().run(lm.model, table, covariates={"weight": weights}, times=times)
    (kmat, mask), = seen
    assert mask.sum() == live and lm.model.n_cmt == 32
    lam, vmat, vinv, bad = pe._diagonalise(kmat, 1e8, mask)
    assert not bad.any()
    # exact on the reached block: K V = V Λ there, and V⁻¹ V = I everywhere
    idx = np.flatnonzero(mask)
    kv = kmat[:, idx[:, None], idx] @ vmat[:, idx[:, None], idx]
    np.testing.assert_allclose(kv, vmat[:, idx[:, None], idx] * lam[:, None, idx],
                               atol=1e-9 * np.abs(kmat).max())
    np.testing.assert_allclose(vinv @ vmat, np.broadcast_to(np.eye(32), kmat.shape),
                               atol=1e-9)
    # no flow leaves the reached compartments (else a dose would reach more)
    assert not np.any(kmat[:, ~mask][:, :, mask])
    for i, w in enumerate(weights):
        ref = simulate(lm.model, table, engine=AnalyticEngine(), covariates={"weight": w},
                       times=times)
        rows = slice(i * len(times), (i + 1) * len(times))
        for name in ("s_ketamine", "r_ketamine", "s_hnk"):
            np.testing.assert_allclose(pop[name][rows], ref[name], rtol=1e-8,
                                       atol=1e-12 * np.abs(ref[name]).max())
