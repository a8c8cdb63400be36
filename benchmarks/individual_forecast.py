"""Benchmark: this patient's forecast (issue #14) and a population schedule search.

Prints, each the median of ``--repeat`` runs:
(a) the individual update (MAP + Laplace + importance resampling) for a patient with 10
    ratings and 6 sessions, first call in the process and warm (target < 1 s warm);
(b) the same with two drug levels (PK MAP included);
(c) the full forecast under a plan (individual and population bands, relapse curve);
(d) the population design search over 50 schedules x 2,000 patients (target < 60 s);
(e) how much PK variability moves the drive term D/(d50 + D) (5th-95th percentile over
    2,000 virtual patients), the figure behind using the typical PK without levels.
Figures are printed, not asserted.

    python benchmarks/individual_forecast.py [--repeat 5] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ketasim.design.population import DesignSpec, run_design
from ketasim.estimation.forecast import forecast_patient
from ketasim.estimation.individual import fit_patient
from ketasim.estimation.patient import read_patient
from ketasim.outcomes.course import Arm, simulate_course
from ketasim.outcomes.parameters import values

ROOT = Path(__file__).resolve().parent.parent
PLAN = "0.5 mg/kg IV over 40 min weekly for 4 weeks"


def _time(fn: Callable[[], object], repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small design search (CI smoke)")
    a = ap.parse_args()
    full = read_patient(ROOT / "examples" / "patient_responder.csv")
    ratings = full.ratings[:10]
    no_levels = type(full)(full.weight_kg, full.age, full.regimen, ratings, full.readings)
    t0 = time.perf_counter()
    fit_patient(no_levels, "trd")
    first = time.perf_counter() - t0
    warm = _time(lambda: fit_patient(no_levels, "trd"), a.repeat)
    print(f"(a) individual update, {len(ratings)} ratings, "
          f"{no_levels.regimen.n_administrations} sessions, {len(no_levels.readings)} session "
          f"readings: first {first:.2f} s, warm {warm * 1000:.0f} ms (target < 1 s)")
    with_levels = _time(lambda: fit_patient(full, "trd"), a.repeat)
    print(f"(b) with {len(full.levels)} drug levels (PK MAP cached after the first): "
          f"warm {with_levels * 1000:.0f} ms")
    fc = _time(lambda: forecast_patient(full, "trd", plan=PLAN), a.repeat)
    print(f"(c) full forecast under '{PLAN}': warm {fc:.2f} s")
    intervals = (3, 4, 5, 6, 7, 8, 10, 12, 14, 21)
    doses = ("0.25 mg/kg", "0.5 mg/kg", "0.75 mg/kg", "1 mg/kg", "1.5 mg/kg")
    patients = 2000
    if a.quick:
        intervals, doses, patients = (7, 14), ("0.5 mg/kg",), 500
    spec = DesignSpec(indication="trd", induction="0.5 mg/kg IV over 40 min twice weekly "
                      "for 3 weeks", intervals_days=tuple(float(k) for k in intervals),
                      doses=doses, weeks=12, patients=patients, max_relapse=0.3)
    t0 = time.perf_counter()
    res = run_design(spec)
    print(f"(d) design search: {len(res.candidates)} schedules x {patients} patients in "
          f"{time.perf_counter() - t0:.1f} s (target < 60 s for 50 x 2,000)")
    course = simulate_course(Arm(regimen="0.5 mg/kg IV over 40 min twice weekly for 3 weeks"),
                             "trd", n=500 if a.quick else 2000, seed=1,
                             horizon_h=24 * 28, weight_kg=70)
    v = values()
    for day in (1, 7, 14, 21, 28):
        d = course.drive[:, course.index(day * 24.0)]
        f = d / (v["d50"] + d)
        lo, mid, hi = np.percentile(f, [5, 50, 95])
        print(f"(e) day {day:2d}: D/(d50 + D) median {mid:.3f}, 5-95 % {lo:.3f}-{hi:.3f} "
              f"(±{(hi - lo) / 2 / max(mid, 1e-9) * 100:.1f} %)")


if __name__ == "__main__":
    main()
