"""Benchmark: the session forecast for one patient, population and individual.

Prints the time of (a) the first forecast in this process (PK run and compilation included),
(b) a warm population forecast with 1,000 virtual replicates and its 90 % bands, and (c) a
warm individual forecast updated from 3 earlier sessions (6 readings each of CADSS, SBP and
DBP; 50,000 prior draws, sampling-importance-resampling), each the median of ``--repeat``
runs, with the targets of issue #12 (< 200 ms and < 1 s). Figures are printed, not asserted.

    python benchmarks/session_forecast.py [--repeat 20] [--replicates 1000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from ketasim.pd.session_forecast import AcuteObservation, AcutePatient, forecast_session

IN84 = "84 mg esketamine intranasal"


def _time(fn: object, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--replicates", type=int, default=1000)
    a = ap.parse_args()
    patient = AcutePatient(80, 45, 132, 84, prior_sessions=3)
    hist = [AcuteObservation(s, IN84, t, cadss=c, sbp=sb, dbp=db, baseline_sbp=132,
                             baseline_dbp=84)
            for s in (1, 2, 3) for t, c, sb, db in ((40 / 60, 18, 150, 95), (1.5, 3, 140, 88))]
    t0 = time.perf_counter()
    forecast_session(IN84, patient, n=a.replicates)
    first = time.perf_counter() - t0
    warm = _time(lambda: forecast_session(IN84, patient, n=a.replicates,
                                          rng=np.random.default_rng(1)), a.repeat)
    ind = _time(lambda: forecast_session(IN84, patient, history=hist, n=a.replicates,
                                         rng=np.random.default_rng(1)), a.repeat)
    f = forecast_session(IN84, patient, history=hist, n=a.replicates)
    print(f"first forecast in a new process: {first * 1000:.0f} ms")
    print(f"warm population forecast, {a.replicates} replicates: {warm * 1000:.1f} ms "
          f"(target < 200 ms: {'met' if warm < 0.2 else 'NOT met'})")
    print(f"warm individual forecast from 3 sessions: {ind * 1000:.1f} ms "
          f"(target < 1 s: {'met' if ind < 1.0 else 'NOT met'}); effective sample "
          f"{f.ess:.0f} of 50,000 prior draws")


if __name__ == "__main__":
    main()
