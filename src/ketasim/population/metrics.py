"""Exposure metrics per subject and their population summaries.

All functions take times ``t`` (h, shape (T,)) and concentrations ``c`` with subjects on the
first axis (shape (n, T)) and work on the simulated grid (AUC by the trapezoidal rule).

>>> import numpy as np
>>> t = np.array([0.0, 1.0, 2.0, 3.0]); c = np.array([[0.0, 4.0, 2.0, 1.0]])
>>> cmax(t, c), tmax(t, c), auc(t, c)
(array([4.]), array([1.]), array([6.5]))
>>> time_above(t, c, 1.5)
array([2.125])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ketasim.errors import KetasimError


def _window(t: np.ndarray, c: np.ndarray, start: float | None, end: float | None
            ) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=float)
    c = np.atleast_2d(np.asarray(c, dtype=float))
    lo = t[0] if start is None else start
    hi = t[-1] if end is None else end
    if hi < lo:
        raise KetasimError("window", f"ends ({hi:g} h) before it starts ({lo:g} h)",
                           "give start < end")
    inside = (t >= lo - 1e-12) & (t <= hi + 1e-12)
    if inside.sum() < 1:
        raise KetasimError("window", f"{lo:g}-{hi:g} h holds no simulated time",
                           "simulate the window or widen it")
    return t[inside], c[:, inside]


def cmax(t: np.ndarray, c: np.ndarray, start: float | None = None,
         end: float | None = None) -> np.ndarray:
    """Peak concentration per subject in the window."""
    _, cw = _window(t, c, start, end)
    return np.asarray(np.nanmax(cw, axis=1))


def tmax(t: np.ndarray, c: np.ndarray, start: float | None = None,
         end: float | None = None) -> np.ndarray:
    """Time of the peak per subject (first time it is reached)."""
    tw, cw = _window(t, c, start, end)
    return np.asarray(tw[np.nanargmax(cw, axis=1)])


def auc(t: np.ndarray, c: np.ndarray, start: float | None = None,
        end: float | None = None) -> np.ndarray:
    """Area under the curve over the window (trapezoidal)."""
    tw, cw = _window(t, c, start, end)
    if len(tw) < 2:
        return np.zeros(cw.shape[0])
    return np.asarray(np.trapezoid(cw, tw, axis=1))


def time_above(t: np.ndarray, c: np.ndarray, threshold: float, start: float | None = None,
               end: float | None = None) -> np.ndarray:
    """Hours above ``threshold`` per subject (linear interpolation of crossings), 4 decimals."""
    tw, cw = _window(t, c, start, end)
    dt = np.diff(tw)
    a, b = cw[:, :-1] - threshold, cw[:, 1:] - threshold
    both = (a >= 0) & (b >= 0)
    up = (a < 0) & (b >= 0)
    down = (a >= 0) & (b < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac_up = np.where(up, b / (b - a), 0.0)
        frac_down = np.where(down, a / (a - b), 0.0)
    total = (both * dt + up * frac_up * dt + down * frac_down * dt).sum(axis=1)
    return np.round(total, 4)


def value_at(t: np.ndarray, c: np.ndarray, at: float) -> np.ndarray:
    """Concentration at time ``at`` (linear interpolation), e.g. a trough before a dose."""
    t = np.asarray(t, dtype=float)
    if not t[0] <= at <= t[-1]:
        raise KetasimError("time", f"{at:g} h is outside the simulated {t[0]:g}-{t[-1]:g} h",
                           "simulate up to that time")
    c = np.atleast_2d(c)
    return np.array([np.interp(at, t, row) for row in c])


def percentiles(values: np.ndarray, q: Sequence[float] = (5, 50, 95)) -> dict[str, float]:
    """``{"p5": …, "p50": …, "p95": …}`` over subjects."""
    arr = np.asarray(values, dtype=float)
    return {f"p{x:g}": float(np.nanpercentile(arr, x)) for x in q}


def prediction_interval(c: np.ndarray, q: Sequence[float] = (5, 50, 95)) -> np.ndarray:
    """Percentiles over subjects at each time, shape (len(q), T)."""
    return np.asarray(np.nanpercentile(np.atleast_2d(c), list(q), axis=0))


__all__ = ["auc", "cmax", "percentiles", "prediction_interval", "time_above", "tmax",
           "value_at"]
