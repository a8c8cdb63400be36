"""Effect-site (biophase) concentrations from a plasma curve.

dCe/dt = ke0 (C − Ce), solved exactly for a plasma curve that is linear between output
times: with h = t₁ − t₀ and E = e^{−ke0·h},

    Ce₁ = Ce₀·E + C₀·(1 − E) + (C₁ − C₀)·(1 − (1 − E)/(ke0·h)).

The error is that of linear interpolation of C (below 0.1 % at 1-2 min spacing for ketamine;
``tests/test_pd.py`` checks it against the exact effect compartment).

t½ke0 = 8.3 min for S-ketamine, the same for psychedelic and analgesic effects (Olofsen 2022
[V], ``olofsen2022``); ketasim uses it for every analyte (assumed for metabolites).

>>> import numpy as np
>>> t = np.array([0.0, 1.0, 2.0]); c = np.array([1.0, 1.0, 1.0])
>>> effect_site(t, c, KE0_PER_H).round(4).tolist()
[0.0, 0.9933, 1.0]
"""

from __future__ import annotations

import math

import numpy as np

from ketasim.pd.occupancy import _njit

T_HALF_KE0_MIN = 8.3  # Olofsen 2022 [V]
KE0_PER_H = math.log(2.0) / (T_HALF_KE0_MIN / 60.0)


def effect_site(t: np.ndarray, c: np.ndarray, ke0: float = KE0_PER_H,
                ce0: np.ndarray | float = 0.0) -> np.ndarray:
    """Ce at times ``t`` (last axis of ``c``); Ce = ``ce0`` at ``t[0]``."""
    t = np.ascontiguousarray(t, dtype=float)
    c = np.asarray(c, dtype=float)
    if c.shape[-1] > 1 and np.any(np.diff(t) <= 0):
        raise ValueError("times must increase")
    flat = np.ascontiguousarray(c.reshape(-1, c.shape[-1]))
    start = np.broadcast_to(np.asarray(ce0, dtype=float), c.shape[:-1]).reshape(-1).copy()
    out = np.empty_like(flat)
    _filter(t, flat, float(ke0), start, out)
    return out.reshape(c.shape)


@_njit(cache=True)
def _filter(t, c, ke0, start, out):  # pragma: no cover - compiled
    n, nt = c.shape
    for i in range(n):
        out[i, 0] = start[i]
    for k in range(nt - 1):
        h = t[k + 1] - t[k]
        x = ke0 * h
        e = math.exp(-x)
        w = 1.0 - (1.0 - e) / x if x > 1e-8 else x / 2.0
        for i in range(n):
            out[i, k + 1] = out[i, k] * e + c[i, k] * (1.0 - e) + (c[i, k + 1] - c[i, k]) * w


__all__ = ["KE0_PER_H", "T_HALF_KE0_MIN", "effect_site"]
