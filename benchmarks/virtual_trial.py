"""Benchmark: a 1,000-patient × 2-arm × 4-week virtual trial (target: under 30 s on 2 cores).

Prints the wall time of the trial (cold: first call in a fresh process, including the one-off
compilation of the numba kernels, reported separately) and of a second run with a new seed
(warm). Run: ``python benchmarks/virtual_trial.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time

from ketasim.outcomes.trial import parse_design, run_trial


def design(n: int, seed: int) -> dict:
    return {"indication": "trd", "n_per_arm": n, "seed": seed,
            "arms": [{"name": "ketamine", "regimen": "0.5 mg/kg IV over 40 min twice weekly "
                      "for 4 weeks"},
                     {"name": "placebo", "control": "placebo"}],
            "endpoint": {"instrument": "madrs", "time": "day 28", "measure": "response"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100 patients per arm (CI smoke)")
    args = ap.parse_args()
    n = 100 if args.quick else 1000
    t0 = time.perf_counter()
    from ketasim.population import run_pk
    run_pk("0.5 mg/kg IV over 40 min", subjects=2, seed=0)  # compile the kernels
    compile_s = time.perf_counter() - t0
    for label, seed in (("first", 1), ("second", 2)):
        t0 = time.perf_counter()
        r = run_trial(parse_design(design(n, seed)))
        dt = time.perf_counter() - t0
        est = {k: round(a.estimate or 0.0, 3) for k, a in r.arms.items()}
        print(f"virtual trial {n} patients x 2 arms x 4 weeks ({label} run): {dt:.2f} s; "
              f"day-28 response {est}")
    print(f"one-off kernel compilation: {compile_s:.1f} s")


if __name__ == "__main__":
    main()
