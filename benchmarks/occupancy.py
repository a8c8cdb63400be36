"""Occupancy benchmark: 5 analytes × 15 targets × 10,000 subjects × 2,000 time points.

Prints the wall time of the compiled peak-occupancy kernel (all targets, every subject, every
time point; only peaks are stored) after a warm-up, and of the full time courses for one
target with numpy.
"""

from __future__ import annotations

import time

import numpy as np

from ketasim.pd import load_target_data, occupancy, peak_occupancy

COMPOUNDS = ["s_ketamine", "r_ketamine", "s_norketamine", "r_norketamine", "hnk_2s6s"]


def main() -> None:
    data = load_target_data()
    targets = data.default_targets()[:15]
    inv_k = data.matrix(COMPOUNDS, targets)
    rng = np.random.default_rng(0)
    n, nt = 10_000, 2_000
    t = np.linspace(0, 24, nt)
    shape = np.exp(-0.3 * t) * (1 - np.exp(-5 * t))
    conc = rng.lognormal(0.0, 0.3, (len(COMPOUNDS), n, 1)) * 0.5 * shape  # µM unbound
    peak_occupancy(conc[:, :10], inv_k)
    t0 = time.perf_counter()
    peaks = peak_occupancy(conc, inv_k)
    wall = time.perf_counter() - t0
    print(f"peak occupancy, {len(COMPOUNDS)} analytes × {len(targets)} targets × {n:,} subjects "
          f"× {nt:,} times: {wall:.2f} s ({len(COMPOUNDS) * len(targets) * n * nt / wall / 1e9:.2f}"
          " G analyte-target-points/s)")
    t0 = time.perf_counter()
    occ = occupancy(conc, inv_k[:, :1])
    wall1 = time.perf_counter() - t0
    print(f"full time courses for one target (numpy): {wall1:.2f} s, "
          f"{occ.nbytes / 2**20:.0f} MiB; NMDA median peak {np.median(peaks[0]):.2f}")


if __name__ == "__main__":
    main()
