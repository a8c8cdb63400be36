"""Results at any size: population PK streamed to Parquet (issue #16 item 4).

Two runs of ``ketasim.population.stream`` with the default racemic model (racemic_enantiomers)
and 0.5 mg/kg IV over 40 min, each in a fresh process so its peak memory is its own:

- exposure metrics (Cmax, Tmax, AUC, hours above 100 ng/mL of ketamine, norketamine and
  HNK; covariates and random effects) for 10⁷ subjects on the 5-min grid to 24 h;
- full profiles of those analytes for 10⁶ subjects on an hourly grid to 24 h.

Prints subjects/s, peak RSS, the size estimated before writing and the file's size.

    python benchmarks/parquet_stream.py            # 10^7 metrics, 10^6 profiles (~1 h, 2 cores)
    python benchmarks/parquet_stream.py --quick    # 20,000 and 5,000 (CI smoke)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REGIMEN = "0.5 mg/kg IV over 40 min"
ANALYTES = ["ketamine", "norketamine", "hnk"]


def case(kind: str, subjects: int, path: Path) -> dict[str, float | int | str]:
    """One run in this process; returns its figures."""
    import numpy as np

    from ketasim.population.stream import plan_stream, write_stream
    profiles = kind == "profiles"
    times = np.arange(0.0, 24.0 + 1e-9, 1.0 if profiles else 5.0 / 60.0)
    t0 = time.perf_counter()
    job = plan_stream(REGIMEN, path=path, subjects=subjects, seed=16, times=times,
                      profiles=profiles, analytes=ANALYTES,
                      threshold=None if profiles else 100.0)
    step = max(1, subjects // 10)
    marks = iter(range(step, subjects + step, step))
    mark = next(marks)

    def report(done: int) -> None:
        nonlocal mark
        if done >= mark:
            rate = done / (time.perf_counter() - t0)
            print(f"  {kind}: {done:,}/{subjects:,} ({rate:,.0f} subjects/s)", file=sys.stderr,
                  flush=True)
            mark = next(marks, subjects + 1)
    res = write_stream(job, progress=report)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return {"kind": kind, "subjects": subjects, "rows": res.rows, "seconds": wall,
            "subjects_per_s": subjects / wall, "peak_rss_mib": rss,
            "estimate_bytes": res.estimated_bytes, "file_bytes": res.bytes,
            "columns": len(job.columns), "times": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs (CI smoke)")
    parser.add_argument("--metrics", type=int, default=None, help="subjects for metrics")
    parser.add_argument("--profiles", type=int, default=None, help="subjects for profiles")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a "
                        "temporary folder, removed afterwards)")
    parser.add_argument("--case", choices=["metrics", "profiles"], help=argparse.SUPPRESS)
    parser.add_argument("--subjects", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # the child process of one run
        print(json.dumps(case(args.case, args.subjects, args.path)))
        return
    n_metrics = args.metrics or (20_000 if args.quick else 10_000_000)
    n_profiles = args.profiles or (5_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        rows = []
        for kind, n in (("metrics", n_metrics), ("profiles", n_profiles)):
            path = Path(folder) / f"{kind}.parquet"
            out = subprocess.run([sys.executable, __file__, "--case", kind, "--subjects",
                                  str(n), "--path", str(path)], check=True,
                                 stdout=subprocess.PIPE, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            path.unlink(missing_ok=True)
    print(f"{'case':<9} {'subjects':>11} {'rows':>13} {'s':>8} {'subjects/s':>11} "
          f"{'peak RSS MiB':>13} {'estimate MB':>12} {'file MB':>9} {'file/est':>9}")
    for r in rows:
        print(f"{r['kind']:<9} {r['subjects']:>11,} {r['rows']:>13,} {r['seconds']:>8.1f} "
              f"{r['subjects_per_s']:>11,.0f} {r['peak_rss_mib']:>13,.0f} "
              f"{r['estimate_bytes'] / 1e6:>12,.1f} {r['file_bytes'] / 1e6:>9,.1f} "
              f"{r['file_bytes'] / r['estimate_bytes']:>9.2f}")
    print(f"model racemic_enantiomers, {REGIMEN}, analytes {', '.join(ANALYTES)}; metrics on "
          "the 5-min grid to 24 h (threshold 100 ng/mL), profiles hourly to 24 h")


if __name__ == "__main__":
    main()
