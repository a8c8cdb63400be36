"""Sobol' sensitivity on a Dask cluster: throughput on 1 and 2 local workers (issue #16
item 5).

A forecast cheap enough for 10⁶ draws: TRD, one 0.5 mg/kg IV infusion, mean MADRS change at
24 h, 20 virtual patients per draw (the same patients in every draw), over eight calibrated and
assumed parameters of the symptom model, the cascade's ``w_fast`` and ``t_half_spine_h``
among them (10⁶ draws: N = 2¹⁷ base points × 10). The same run on a local cluster of 1 and of
2 worker processes prints draws per second and checks that the indices are identical.

A new value of ``w_fast`` costs nothing extra (it only weighs the normalised components) and
one of ``t_half_spine_h`` ~0.1 ms: the cascade's reference normalisation re-uses one cached
PK run (``ketasim.mechanism.cascade.reference_inputs``) and recomputes only the spines' peak.
``--all`` screens and varies every calibrated and assumed parameter, the cascade's time
constants included.

    python benchmarks/sensitivity.py            # 1,310,720 draws on 1, then 2 workers (~23 min)
    python benchmarks/sensitivity.py --quick    # ~2,000 draws (CI smoke)
"""

from __future__ import annotations

import argparse
import time

DESIGN = {
    "indication": "trd", "n_per_arm": 20, "seed": 16,
    "arms": [{"name": "ketamine", "regimen": "0.5 mg/kg IV over 40 min"}],
    "endpoint": {"instrument": "madrs", "time": "24 h", "measure": "mean_change"},
    "sensitivity": {"patients": 20,
                    "parameters": ["emax_trd", "d50", "placebo_trd", "omega_emax",
                                   "omega_placebo", "residual_fraction", "w_fast",
                                   "t_half_spine_h"]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 draws (CI smoke)")
    parser.add_argument("--draws", type=int, default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--all", action="store_true", help="every calibrated and assumed "
                        "parameter that moves the forecast, cascade constants included")
    args = parser.parse_args()
    draws = args.draws or (2_000 if args.quick else 1_000_000)

    from ketasim.distributed import cluster
    from ketasim.validation.sensitivity import parse_sensitivity_design, run_sensitivity
    raw = {**DESIGN, "sensitivity": dict(DESIGN["sensitivity"])}
    if args.all:
        raw["sensitivity"].pop("parameters")
    design, settings = parse_sensitivity_design(raw)
    results = {}
    print(f"{'workers':>7} {'draws':>10} {'parameters':>10} {'s':>9} {'draws/s':>9} "
          f"{'speed-up':>8}")
    for w in args.workers:
        with cluster(workers=w) as client:
            t0 = time.perf_counter()
            res = run_sensitivity(design, settings, draws=draws, seed=16, client=client)
            wall = time.perf_counter() - t0
        results[w] = (res, wall)
        base = results[args.workers[0]][1]
        print(f"{w:>7} {res.sobol.draws:>10,} {len(res.sobol.names):>10} {wall:>9.1f} "
              f"{res.sobol.draws / wall:>9,.0f} {base / wall:>8.2f}", flush=True)
    first = results[args.workers[0]][0]
    same = all(r.to_json()["indices"] == first.to_json()["indices"] for r, _ in results.values())
    print(f"indices identical on {', '.join(map(str, args.workers))} workers: "
          f"{'yes' if same else 'NO'}")
    print("largest total indices: " + ", ".join(
        f"{k} {first.sobol.st[k]:.3f}" for k in first.ranked()[:4]))
    print(f"forecast: {first.forecast} ({first.unit}), nominal {first.nominal:.3g}; "
          f"{first.patients} patients per draw; parameters: {', '.join(first.sobol.names)}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
