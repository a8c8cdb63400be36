"""A virtual trial replicated many times: how its estimates and their differences spread,
and how often the trial would find its effect (power), here or on a Dask cluster.

Replicate 0 is the design as written (its seed); replicate r > 0 runs it with seed
:func:`ketasim.distributed.block_seed` ``(design.seed, r)`` (a child of
``SeedSequence(seed)`` keyed by r). Each replicate is :func:`ketasim.outcomes.trial.run_trial`
without prediction intervals, so replicate 0 prints what ``ketasim trial`` prints, and the
result is the same whatever the number of workers or how the replicates are grouped.
A difference (drug arm minus control arm) "is found" in a replicate when its 95 % interval,
from the two arms' intervals (normal approximation), excludes 0.

>>> from ketasim.outcomes.trial import TrialDesign
>>> d = TrialDesign.model_validate({"indication": "trd", "n_per_arm": 40, "seed": 3,
...     "arms": [{"name": "ketamine", "regimen": "0.5 mg/kg IV over 40 min"},
...              {"name": "placebo", "control": "placebo"}],
...     "endpoint": {"instrument": "madrs", "time": "24 h", "measure": "mean_change"}})
>>> r = run_replicates(d, 3)
>>> len(r.estimates["ketamine"]), r.power["ketamine - placebo"] is not None
(3, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ketasim.distributed import block_seed, map_blocks, n_workers
from ketasim.errors import KetasimError
from ketasim.outcomes.trial import TrialDesign, design_arms, run_trial

Z95 = 1.959963984540054


def replicate_design(design: TrialDesign, r: int) -> TrialDesign:
    """The design of replicate ``r`` (replicate 0 is ``design``)."""
    return design.model_copy(update={"seed": block_seed(design.seed, r)})


def _run_block(design: TrialDesign, first: int, stop: int
               ) -> list[dict[str, tuple[float | None, float | None, float | None]]]:
    out = []
    arms = design_arms(design)  # the regimens parsed once for every replicate of the block
    for r in range(first, stop):
        res = run_trial(replicate_design(design, r), predict=False, arms=arms)
        out.append({k: (a.estimate, a.ci95[0], a.ci95[1]) for k, a in res.arms.items()})
    return out


@dataclass(frozen=True)
class ReplicateResult:
    """Per arm and per drug-minus-control difference: the estimate of every replicate."""

    design: TrialDesign
    estimates: dict[str, np.ndarray]
    differences: dict[str, np.ndarray]
    power: dict[str, float | None]
    unit: str
    workers: int

    @property
    def replicates(self) -> int:
        """How many trials were run."""
        return len(next(iter(self.estimates.values())))

    def to_json(self) -> dict[str, Any]:
        """Mean, SD and 2.5/50/97.5 percentiles over replicates (NaN-free values only)."""
        def summary(x: np.ndarray) -> dict[str, float | None]:
            x = x[np.isfinite(x)]
            if x.size == 0:
                return {"mean": None, "sd": None, "p2.5": None, "p50": None, "p97.5": None}
            return {"mean": float(np.mean(x)), "sd": float(np.std(x, ddof=1)) if x.size > 1
                    else 0.0, "p2.5": float(np.percentile(x, 2.5)),
                    "p50": float(np.percentile(x, 50)), "p97.5": float(np.percentile(x, 97.5))}
        return {"replicates": self.replicates, "seed": self.design.seed, "unit": self.unit,
                "arms": {k: summary(v) for k, v in self.estimates.items()},
                "differences": {k: {**summary(v), "power": self.power[k]}
                                for k, v in self.differences.items()},
                "estimates": {k: [None if not math.isfinite(x) else float(x) for x in v]
                              for k, v in self.estimates.items()},
                "workers": self.workers}


def run_replicates(design: TrialDesign, replicates: int, *, client: Any = None,
                   block: int | None = None,
                   progress: Callable[[int], None] | None = None) -> ReplicateResult:
    """Run ``replicates`` trials of ``design`` in blocks of ``block`` replicates (default:
    about 4 blocks per worker), here or on a Dask ``client``; ``progress`` gets the number of
    replicates done."""
    if replicates < 1:
        raise KetasimError("replicates", f"is {replicates}", "run at least one trial")
    size = block or max(1, math.ceil(replicates / (4 * n_workers(client))))
    starts = list(range(0, replicates, size))
    rows: list[dict[str, tuple[float | None, float | None, float | None]]] = []
    for part in map_blocks(_run_block, ((design, a, min(replicates, a + size))
                                        for a in starts), client=client):
        rows.extend(part)
        if progress is not None:
            progress(len(rows))
    names = [a.name for a in design.arms]

    def col(name: str, i: int) -> np.ndarray:
        return np.array([np.nan if r[name][i] is None else float(r[name][i])  # type: ignore
                         for r in rows])
    est = {k: col(k, 0) for k in names}
    diffs: dict[str, np.ndarray] = {}
    power: dict[str, float | None] = {}
    drugs = [a.name for a in design.arms if a.regimen is not None]
    controls = [a.name for a in design.arms if a.regimen is None]
    relapse = design.endpoint.measure == "median_time_to_relapse"
    for d in drugs:
        for c in controls:
            key = f"{d} - {c}"
            diffs[key] = est[d] - est[c]
            if relapse:
                power[key] = None  # bootstrap intervals of medians do not combine this way
                continue
            se = [(col(k, 2) - col(k, 1)) / (2 * Z95) for k in (d, c)]
            half = Z95 * np.sqrt(se[0] ** 2 + se[1] ** 2)
            found = np.abs(diffs[key]) > half
            power[key] = float(np.mean(found))
    m = design.endpoint.measure
    unit = {"response": "fraction", "remission": "fraction",
            "mean_change": f"{design.endpoint.instrument} points",
            "median_time_to_relapse": "days"}[m]
    return ReplicateResult(design, est, diffs, power, unit, n_workers(client))


__all__ = ["ReplicateResult", "replicate_design", "run_replicates"]
