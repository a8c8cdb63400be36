"""Virtual-patient PK benchmark (issue: PK library).

10,000 virtual patients × Perez-Ruixo 2021 × the esketamine induction schedule (84 mg twice
weekly for 4 weeks, 8 sessions, each dose 3 nasal devices 5 min apart), output every 15 min
over 4 weeks (2,689 points, esketamine and noresketamine); and the same for the racemic
enantiomer-resolved model with 6 IV infusions (0.5 mg/kg over 40 min twice weekly for 3
weeks, 9 analytes, 2,017 points). Populations are streamed in chunks; each chunk's
concentrations are reduced to per-subject Cmax and AUC, so memory stays bounded.

    python benchmarks/pk_population.py            # 10,000 patients, median of 3
    python benchmarks/pk_population.py --quick    # 1,000 patients, one run (CI smoke)
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np

from ketasim.population import iter_pk, metrics

CASES = {
    "perez_ruixo_2021 (esketamine induction, 8 sessions)":
        ("84 mg esketamine intranasal twice weekly for 4 weeks", "perez_ruixo_2021", 672.0),
    "racemic_enantiomers (6 IV infusions)":
        ("0.5 mg/kg IV over 40 min twice weekly for 3 weeks", "racemic_enantiomers", 504.0),
}


def run(regimen: str, model: str, until: float, n: int, seed: int = 11) -> tuple[float, float]:
    times = np.arange(0.0, until + 1e-9, 0.25)
    t0 = time.perf_counter()
    total = 0.0
    for chunk in iter_pk(regimen, model=model, subjects=n, seed=seed, times=times,
                         chunk_size=2000):
        for a in chunk.concentrations:
            c = chunk.concentrations[a]
            total += float(metrics.cmax(times, c).sum() + metrics.auc(times, c).sum())
    return time.perf_counter() - t0, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--subjects", type=int, default=None)
    args = parser.parse_args()
    n = args.subjects or (1000 if args.quick else 10_000)
    repeats = 1 if args.quick else 3
    print(f"{'case':<52} {'N':>7} {'first s':>8} {'median s':>9} {'subjects/s':>11} "
          f"{'peak MiB':>9}")
    for name, (regimen, model, until) in CASES.items():
        t0 = time.perf_counter()
        run(regimen, model, until, 8)
        first = time.perf_counter() - t0
        walls = [run(regimen, model, until, n)[0] for _ in range(repeats)]
        tracemalloc.start()
        run(regimen, model, until, n)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        med = statistics.median(walls)
        print(f"{name:<52} {n:>7} {first:>8.2f} {med:>9.2f} {n / med:>11.0f} "
              f"{peak / 2**20:>9.0f}")
    print("first s: compile + 8 patients (once per process); median s: the timed runs")


if __name__ == "__main__":
    main()
