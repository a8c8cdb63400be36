"""The two kinetic building blocks of the cascade, exact for inputs linear between times.

``relax``: dX/dt = k (u − X), the turnover (indirect-response) form every stage uses, with
k = ln 2 / t½; solved exactly for a piecewise-linear input (the effect-site formula of
:mod:`ketasim.pd.effect_site`). ``hold_decay``: X(t) = max(u(t), X(t−h)·e^{−k h}), a trapped
quantity that follows its input up and is released at rate k.

Accuracy: each stage's output is passed on as piecewise linear, so the cascade's error is that
of linear interpolation on the time grid; ``tests/test_mechanism.py`` checks the whole cascade
against ``scipy.integrate.solve_ivp`` (LSODA, rtol 1e-10, atol 1e-12) on the grid
:func:`ketasim.mechanism.cascade.course_grid` builds (2-min steps for 8 h after each dose,
hourly elsewhere): peak-normalised error below 2e-3.

>>> import numpy as np
>>> t = np.linspace(0, 10, 11); x = relax(t, np.ones(11), 1.0)
>>> round(float(x[1]), 4), round(float(x[-1]), 4)
(0.5, 0.999)
"""

from __future__ import annotations

import math

import numpy as np

from ketasim.pd.effect_site import effect_site


def relax(t: np.ndarray, u: np.ndarray, t_half_h: float, x0: float = 0.0) -> np.ndarray:
    """First-order turnover of input ``u`` (…, times) with half-life ``t_half_h``."""
    return effect_site(t, u, math.log(2.0) / t_half_h, x0)


def hold_decay(t: np.ndarray, u: np.ndarray, t_half_h: float) -> np.ndarray:
    """Follows ``u`` up at once, decays with half-life ``t_half_h`` when ``u`` falls."""
    u = np.asarray(u, dtype=float)
    out = np.empty_like(u)
    out[..., 0] = u[..., 0]
    k = math.log(2.0) / t_half_h
    for i in range(1, u.shape[-1]):
        out[..., i] = np.maximum(u[..., i], out[..., i - 1] * math.exp(-k * (t[i] - t[i - 1])))
    return out


__all__ = ["hold_decay", "relax"]
