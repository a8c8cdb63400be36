"""Reference population benchmark (shared/benchmarks/reference-model.md).

Prints wall time and subjects/s for N = 1,000 / 10,000 / 100,000 virtual subjects on the
reference model (3-compartment PK + norketamine + effect site + indirect response; 0.5 mg/kg
over 40 min twice weekly for 3 weeks; outputs C1, Cm, Ce, E, S every 15 min over 0-504 h,
2,017 time points), the compile/start-up time, the time to a first result in a new process
with a warm kernel cache, peak memory, the agreement with scipy LSODA at rtol 1e-10 for a few
subjects, and the single-subject latency of the linear PK part alone.

    python benchmarks/reference_population.py            # full run (a few minutes)
    python benchmarks/reference_population.py --quick    # smoke run (CI)
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

import numpy as np

from ketasim.dosing import Route
from ketasim.engine import AnalyticEngine, OdeEngine, PopulationEngine, simulate
from ketasim.engine.reference import REFERENCE_REGIMEN, reference_model, reference_population
from ketasim.model import Compartment, Flow, Model, Output

TIMES = np.arange(0.0, 504.0 + 1e-9, 0.25)
OUTPUTS = ["c1", "cm", "ce", "effect", "plasticity"]
IIV = ("cl", "v1", "q2", "ke0", "kout")


def population(n: int, seed: int = 2024) -> tuple[dict, dict]:
    pop = reference_population(n, np.random.default_rng(seed))
    return {"weight": pop["weight"]}, {k: pop[k] for k in IIV}


def run_population(engine: PopulationEngine, n: int) -> tuple[float, float]:
    """Wall time of one streamed run and a checksum that uses every output value."""
    cov, par = population(n)
    model = reference_model()
    t0 = time.perf_counter()
    checksum = 0.0
    for chunk in engine.iter_chunks(model, REFERENCE_REGIMEN, covariates=cov, parameters=par,
                                    times=TIMES, outputs=OUTPUTS):
        assert chunk.ok, chunk.messages
        checksum += sum(float(v.max()) for v in chunk.outputs.values())
    return time.perf_counter() - t0, checksum


def accuracy(engine: PopulationEngine, n: int = 5) -> dict[str, float]:
    """Max relative difference against scipy LSODA (rtol 1e-10, atol 1e-12)."""
    cov, par = population(n, seed=7)
    model = reference_model()
    pop = engine.run(model, REFERENCE_REGIMEN, covariates=cov, parameters=par, times=TIMES)
    lsoda = OdeEngine(method="LSODA", rtol=1e-10, atol=1e-12)
    worst = {k: 0.0 for k in OUTPUTS}
    for i in range(n):
        ref = simulate(model, REFERENCE_REGIMEN, engine=lsoda,
                       covariates={"weight": cov["weight"][i]},
                       parameters={k: v[i] for k, v in par.items()}, times=TIMES)
        rows = slice(i * len(TIMES), (i + 1) * len(TIMES))
        for k in OUTPUTS:
            a, b = pop[k][rows], ref[k]
            mask = np.abs(b) > 1e-6 * np.abs(b).max()
            worst[k] = max(worst[k], float(np.max(np.abs(a[mask] - b[mask]) / np.abs(b[mask]))))
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
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = args.sizes or ([200, 1000] if args.quick else [1000, 10_000, 100_000])
    repeats = 1 if args.quick else args.repeats
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}")
    engine = PopulationEngine(chunk_size=2000)
    t0 = time.perf_counter()
    run_population(engine, 4)
    print(f"kernel (compile on a cold cache, else load) + first call, 4 subjects: "
          f"{time.perf_counter() - t0:.2f} s")
    inside, whole = first_result_new_process()
    print(f"first result in a new process, warm kernel cache: {inside:.2f} s after its first "
          f"import ({whole:.2f} s wall, interpreter start included)")
    print(f"{'N':>8} {'median s':>10} {'subjects/s':>12} {'peak traced MiB':>16} "
          f"{'max RSS MiB':>12}")
    for n in sizes:
        walls = [run_population(engine, n)[0] for _ in range(repeats)]
        # memory in a separate run: tracing allocations slows the run down
        tracemalloc.start()
        run_population(engine, n)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        med = statistics.median(walls)
        print(f"{n:>8} {med:>10.2f} {n / med:>12.0f} {peak / 2**20:>16.0f} {rss:>12.0f}")
    worst = accuracy(engine)
    print("max relative difference vs scipy LSODA (rtol 1e-10), 5 subjects, 2,017 points:")
    for k, v in worst.items():
        print(f"  {k:<11} {v:.2e}")
    ana_ms, ode_ms = latency(10 if args.quick else 50)
    print(f"single-subject latency, linear PK part (analytic engine): {ana_ms:.2f} ms")
    print(f"single-subject full model with the ODE engine (LSODA 1e-10): {ode_ms:.0f} ms "
          f"({1000 / ode_ms:.1f} subjects/s per core for scale)")


if __name__ == "__main__":
    main()
