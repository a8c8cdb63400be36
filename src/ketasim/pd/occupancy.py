"""Competitive occupancy of many targets by all analytes present at once.

For target j and analytes i with unbound effect-site concentrations Cᵢ (µM) and affinities
Kᵢⱼ (Ki or IC50, µM):

    occupancy_j = Sⱼ / (1 + Sⱼ),  Sⱼ = Σᵢ Cᵢ / Kᵢⱼ,   analyte i's share = (Cᵢ/Kᵢⱼ) / (1 + Sⱼ).

Simple competitive binding (as compiled by Zanos et al. 2018, ``zanos2018``): NMDA channel
block is use-dependent and trapping, so this is an approximation.

>>> import numpy as np
>>> c = np.array([[[0.3]], [[1.4]]])           # (analytes, subjects, times), µM
>>> inv_k = np.array([[1 / 0.3], [1 / 1.4]])   # (analytes, targets)
>>> float(occupancy(c, inv_k)[0, 0, 0])
0.6666666666666666
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import numba

    _njit: Any = numba.njit
    _prange: Any = numba.prange
except ImportError:  # pragma: no cover - exercised only without numba
    def _njit(*args: Any, **kwargs: Any) -> Any:
        return args[0] if args and callable(args[0]) else (lambda f: f)
    _prange = range


def occupancy(conc_um: np.ndarray, inv_k: np.ndarray) -> np.ndarray:
    """Occupancy per target, shape (targets, …) from ``conc_um`` (analytes, …) and
    ``inv_k`` (analytes, targets) = 1/K in 1/µM (0: does not bind)."""
    c = np.asarray(conc_um, dtype=float)
    s = np.tensordot(np.asarray(inv_k, dtype=float).T, c, axes=(1, 0))
    return np.asarray(s / (1.0 + s))


def shares(conc_um: np.ndarray, inv_k: np.ndarray) -> np.ndarray:
    """Each analyte's share of each target's occupancy, shape (analytes, targets, …)."""
    c = np.asarray(conc_um, dtype=float)
    ik = np.asarray(inv_k, dtype=float)
    parts = ik[(..., *([None] * (c.ndim - 1)))] * c[:, None]
    return np.asarray(parts / (1.0 + parts.sum(axis=0, keepdims=True)))


@_njit(parallel=True, cache=True)
def _peaks(conc: Any, inv_k: Any, out: Any) -> None:  # pragma: no cover - compiled
    n_a, n_s, n_t = conc.shape
    n_g = inv_k.shape[1]
    for i in _prange(n_s):
        for j in range(n_g):
            best = 0.0
            for k in range(n_t):
                s = 0.0
                for a in range(n_a):
                    s += conc[a, i, k] * inv_k[a, j]
                if s > best:
                    best = s
            out[j, i] = best / (1.0 + best)


def peak_occupancy(conc_um: np.ndarray, inv_k: np.ndarray) -> np.ndarray:
    """Peak occupancy per target and subject, shape (targets, subjects), from
    ``conc_um`` (analytes, subjects, times) — compiled, without storing time courses."""
    c = np.ascontiguousarray(conc_um, dtype=float)
    ik = np.ascontiguousarray(inv_k, dtype=float)
    out = np.empty((ik.shape[1], c.shape[1]))
    _peaks(c, ik, out)
    return out


__all__ = ["occupancy", "peak_occupancy", "shares"]
