"""Summaries of simulation results: Cmax, Tmax and AUC per output (per subject, pooled).

>>> import numpy as np
>>> from ketasim.engine.result import Result
>>> r = Result("m", "analytic", np.ones(3, int), np.array([0.0, 1.0, 2.0]), np.zeros(3, int),
...            [], np.empty((3, 0)), {"cp": np.array([0.0, 2.0, 1.0])}, {"cp": "mg/L"})
>>> summarize(r).loc[0, ["cmax", "tmax_h", "auc"]].tolist()
[2.0, 1.0, 2.5]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ketasim.engine.result import Result


def summarize(result: Result, outputs: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per subject and output: ``cmax``, ``tmax_h``, ``auc`` (trapezoidal, over the
    simulated times), ``last`` value, and the output's unit."""
    names = list(outputs) if outputs is not None else list(result.outputs)
    rows = []
    for sid in np.unique(result.id):
        mask = result.id == sid
        t = result.time[mask]
        for name in names:
            y = result[name][mask]
            k = int(np.nanargmax(y)) if np.any(np.isfinite(y)) else 0
            rows.append({"id": int(sid), "output": name, "cmax": float(y[k]),
                         "tmax_h": float(t[k]),
                         "auc": float(np.trapezoid(y, t)) if len(t) > 1 else 0.0,
                         "last": float(y[-1]), "unit": result.output_units.get(name, "")})
    return pd.DataFrame(rows)


__all__ = ["summarize"]
