"""Reference population benchmark (shared/benchmarks/reference-model.md), against two
hand-written numba kernels.

The reference model (3-compartment PK + norketamine + effect site + indirect response;
0.5 mg/kg over 40 min twice weekly for 3 weeks; outputs C1, Cm, Ce, E and S every 15 min over
0-504 h, 2,017 time points), N = 1,000 / 10,000 / 100,000 virtual subjects. For each N the
population engine (``PopulationEngine``, streamed in chunks with ``iter_chunks``) and the
hand-written baselines (``handwritten_baseline.py``: exact linear part + RK4 at 1-min steps,
the same chunks; ``solve``: one subject per thread iteration, as the issue describes it;
``solve_lanes``: the same scheme vectorised across blocks of 8 subjects) run in alternating
rounds in this one process; the table gives the median subjects/s of each, ketasim's ratio to
each, the peak traced memory of the engine's run, and the largest relative difference of each
against scipy LSODA (rtol 1e-10, atol 1e-16) on a few subjects.
Also printed: the compile/load time and the time to a first result in a new process with a
warm kernel cache, and the single-subject latency of the linear PK part alone.

    python benchmarks/reference_population.py            # full run (a few minutes)
    python benchmarks/reference_population.py --quick    # smoke run (CI, ~1 min)
    python benchmarks/reference_population.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial

import numpy as np

from ketasim.dosing import Route
from ketasim.engine import AnalyticEngine, OdeEngine, PopulationEngine, simulate
from ketasim.engine.reference import REFERENCE_REGIMEN, reference_model, reference_population
from ketasim.model import Compartment, Flow, Model, Output

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import handwritten_baseline  # (next to this file)

TIMES = np.arange(0.0, 504.0 + 1e-9, 0.25)
OUTPUTS = ["c1", "cm", "ce", "effect", "plasticity"]
IIV = ("cl", "v1", "q2", "ke0", "kout")
CHUNK = 2000


def population(n: int, seed: int = 2024) -> tuple[dict, dict]:
    pop = reference_population(n, np.random.default_rng(seed))
    return {"weight": pop["weight"]}, {k: pop[k] for k in IIV}


MODEL = reference_model()


def run_engine(engine: PopulationEngine, cov: dict, par: dict) -> float:
    """One streamed run; a checksum that reads every output value."""
    checksum = 0.0
    for chunk in engine.iter_chunks(MODEL, REFERENCE_REGIMEN, covariates=cov,
                                    parameters=par, times=TIMES, outputs=OUTPUTS):
        assert chunk.ok, chunk.messages
        checksum += sum(float(v.max()) for v in chunk.outputs.values())
    return checksum


def run_baseline(cov: dict, par: dict, solve: Callable = handwritten_baseline.solve) -> float:
    """A hand-written kernel over the same chunks, into one output array per run (as the
    engine allocates its arrays once per run and reuses them from chunk to chunk)."""
    n = len(cov["weight"])
    checksum = 0.0
    out = None
    for start in range(0, n, CHUNK):
        sl = slice(start, min(n, start + CHUNK))
        if out is not None and out.shape[1] != sl.stop - sl.start:
            out = None
        out = solve(cov["weight"][sl], {k: v[sl] for k, v in par.items()}, TIMES, out)
        checksum += float(out.max(axis=(1, 2)).sum())
    return checksum


def interleaved(fns: dict[str, Callable[[], float]], rounds: int
                ) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and process CPU time of each function, the functions alternating round by
    round (CPU time, all threads: what a run costs whatever else the machine is doing)."""
    walls: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            walls[k].append(time.perf_counter() - t0)
            cpus[k].append(time.process_time() - c0)
    return ({k: statistics.median(v) for k, v in walls.items()},
            {k: statistics.median(v) for k, v in cpus.items()})


def peak_memory(engine: PopulationEngine, cov: dict, par: dict) -> float:
    """Peak traced memory (MiB) of one streamed run (tracing slows it; not timed)."""
    tracemalloc.start()
    run_engine(engine, cov, par)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    mask = np.abs(b) > 1e-6 * np.abs(b).max()
    return float(np.max(np.abs(a[mask] - b[mask]) / np.abs(b[mask])))


def accuracy(engine: PopulationEngine, n: int) -> dict[str, dict[str, float]]:
    """Max relative difference of the engine and each baseline against scipy LSODA (rtol
    1e-10, atol 1e-16) over ``n`` subjects and all 2,017 points, where the reference exceeds
    1e-6 of its peak."""
    cov, par = population(n, seed=7)
    model = reference_model()
    pop = engine.run(model, REFERENCE_REGIMEN, covariates=cov, parameters=par, times=TIMES,
                     outputs=OUTPUTS)
    base = {"baseline": handwritten_baseline.solve(cov["weight"], par, TIMES),
            "lanes": handwritten_baseline.solve_lanes(cov["weight"], par, TIMES)}
    lsoda = OdeEngine(method="LSODA", rtol=1e-10, atol=1e-16)
    worst = {k: dict.fromkeys(OUTPUTS, 0.0) for k in ("ketasim", *base)}
    for i in range(n):
        ref = simulate(model, REFERENCE_REGIMEN, engine=lsoda,
                       covariates={"weight": cov["weight"][i]},
                       parameters={k: v[i] for k, v in par.items()}, times=TIMES)
        rows = slice(i * len(TIMES), (i + 1) * len(TIMES))
        for j, k in enumerate(OUTPUTS):
            worst["ketasim"][k] = max(worst["ketasim"][k], relative_error(pop[k][rows], ref[k]))
            for name, b in base.items():
                worst[name][k] = max(worst[name][k], relative_error(b[j, i], ref[k]))
    return worst


FIRST_RESULT = """
import time
t0 = time.perf_counter()
import numpy as np
from ketasim.engine import PopulationEngine
from ketasim.engine.reference import REFERENCE_REGIMEN, reference_model
r = PopulationEngine().run(reference_model(), REFERENCE_REGIMEN, covariates={"weight": 70.0},
                           times=np.arange(0.0, 504.0 + 1e-9, 0.25))
assert r.ok
print(time.perf_counter() - t0)
"""


def first_result_new_process() -> tuple[float, float]:
    """(seconds inside the new process from its first import to the first population result,
    wall seconds of the whole process), with the kernel cache already warm."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", FIRST_RESULT], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


def linear_pk_model() -> Model:
    m = reference_model()
    keep = {k: m.parameters[k] for k in ("cl", "v1", "q2", "v2", "q3", "v3")}
    return Model("reference_linear_pk", keep,
                 [Compartment("central"), Compartment("periph1"), Compartment("periph2")],
                 [Flow("central", None, "cl / v1"), Flow("central", "periph1", "q2 / v1"),
                  Flow("periph1", "central", "q2 / v2"), Flow("central", "periph2", "q3 / v1"),
                  Flow("periph2", "central", "q3 / v3")],
                 outputs={"c1": Output("central / v1", "mg/L")},
                 routes={Route.IV_INFUSION: "central"})


def latency(repeats: int) -> tuple[float, float]:
    """Median single-subject latency (ms): analytic engine (fresh each call) and ODE engine."""
    model = linear_pk_model()
    simulate(model, REFERENCE_REGIMEN, covariates={"weight": 70.0}, times=TIMES)
    lat = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        simulate(model, REFERENCE_REGIMEN, covariates={"weight": 70.0}, times=TIMES,
                 engine=AnalyticEngine())
        lat.append(time.perf_counter() - t0)
    full = reference_model()
    t0 = time.perf_counter()
    simulate(full, REFERENCE_REGIMEN, covariates={"weight": 70.0}, times=TIMES,
             engine=OdeEngine(method="LSODA", rtol=1e-10, atol=1e-12))
    ode = time.perf_counter() - t0
    return statistics.median(lat) * 1e3, ode * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a CI smoke run")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating rounds per size (default 7 after a warm-up round; "
                        "3 at 100,000)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both kernels (default: all cores)")
    parser.add_argument("--rtol", type=float, default=1e-8, help="engine rtol (atol = rtol/100)")
    args = parser.parse_args()
    sizes = args.sizes or ([1000] if args.quick else [1000, 10_000, 100_000])
    engine = PopulationEngine(rtol=args.rtol, atol=args.rtol / 100, chunk_size=CHUNK,
                              threads=args.threads)
    if args.threads is not None:
        import numba
        numba.set_num_threads(args.threads)  # the baseline's threads
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}; engine rtol "
          f"{engine.rtol:g}, atol {engine.atol:g}, threads {args.threads or 'all'}")
    t0 = time.perf_counter()
    cov, par = population(4)
    run_engine(engine, cov, par)
    print(f"engine kernel (compile on a cold cache, else load) + first call: "
          f"{time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    run_baseline(cov, par)
    run_baseline(cov, par, handwritten_baseline.solve_lanes)
    print(f"baseline kernels (compile, else load) + first calls: "
          f"{time.perf_counter() - t0:.2f} s")
    inside, whole = first_result_new_process()
    print(f"first result in a new process, warm kernel cache: {inside:.2f} s after its first "
          f"import ({whole:.2f} s wall, interpreter start included)")
    worst = accuracy(engine, 2 if args.quick else 5)
    err = {k: max(v.values()) for k, v in worst.items()}
    print(f"\n{'N':>8} {'ketasim /s':>11} {'baseline /s':>12} {'ratio':>6} {'lanes /s':>9} "
          f"{'ratio':>6} {'CPU us/subj: ketasim':>21} {'baseline':>9} {'lanes':>6} "
          f"{'peak MiB':>9} {'max RSS MiB':>12}")
    used_rounds: list[int] = []
    for n in sizes:
        cov, par = population(n)
        rounds = args.rounds or (5 if args.quick else 3 if n >= 100_000 else 7)
        used_rounds.append(rounds)
        fns = {"ketasim": partial(run_engine, engine, cov, par),
               "baseline": partial(run_baseline, cov, par),
               "lanes": partial(run_baseline, cov, par, handwritten_baseline.solve_lanes)}
        if n < 100_000:
            interleaved(fns, 1)  # warm-up round at this size, not counted
        med, cpu = interleaved(fns, rounds)
        peak = peak_memory(engine, cov, par)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n:>8} {n / med['ketasim']:>11,.0f} {n / med['baseline']:>12,.0f} "
              f"{med['baseline'] / med['ketasim']:>6.2f} {n / med['lanes']:>9,.0f} "
              f"{med['lanes'] / med['ketasim']:>6.2f} {cpu['ketasim'] / n * 1e6:>21.0f} "
              f"{cpu['baseline'] / n * 1e6:>9.0f} {cpu['lanes'] / n * 1e6:>6.0f} "
              f"{peak:>9.0f} {rss:>12.0f}")
    print(f"(medians of {'/'.join(str(r) for r in used_rounds)} alternating rounds; ratio = "
          f"ketasim/baseline subjects/s; baseline = one subject per thread iteration, lanes = "
          f"vectorised across 8 subjects; CPU = process CPU time, all threads; max relative "
          f"error over the 5 outputs: ketasim {err['ketasim']:.1e}, baseline "
          f"{err['baseline']:.1e}, lanes {err['lanes']:.1e}; load average now "
          f"{os.getloadavg()[0]:.1f})")
    print("\nmax relative difference vs scipy LSODA (rtol 1e-10, atol 1e-16), "
          f"{2 if args.quick else 5} subjects, 2,017 points:")
    print(f"  {'output':<11} {'ketasim':>9} {'baseline':>9} {'lanes':>9}")
    for k in OUTPUTS:
        print(f"  {k:<11} {worst['ketasim'][k]:>9.1e} {worst['baseline'][k]:>9.1e} "
              f"{worst['lanes'][k]:>9.1e}")
    ana_ms, ode_ms = latency(10 if args.quick else 50)
    print(f"\nsingle-subject latency, linear PK part (analytic engine): {ana_ms:.2f} ms")
    print(f"single-subject full model with the ODE engine (LSODA 1e-10): {ode_ms:.0f} ms "
          f"({1000 / ode_ms:.1f} subjects/s per core for scale)")


if __name__ == "__main__":
    main()
