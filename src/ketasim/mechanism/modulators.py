"""Steps 12-13, 16 and neurogenesis: modulators that are switchable branches.

- Inflammation/kynurenine (``inflammation``): a slow filter of NMDA occupancy, days
  (Kadriu [V]: IDO down at 230 min to day 3).
- Monoamines (``monoamine``): effect-site SERT occupancy during the infusion, transient
  (Yamanaka 2014 [V]; absent at 24 h).
- Neurogenesis (``neurogenesis``): a very slow filter of BDNF (assumed 2-week half-life).

>>> import numpy as np
>>> t = np.array([0.0, 36.0]); x = np.array([1.0, 1.0])
>>> slow_modulator(t, x, 36.0).round(3).tolist()
[0.0, 0.5]
"""

from __future__ import annotations

import numpy as np

from ketasim.mechanism.kinetics import relax


def slow_modulator(t: np.ndarray, driver: np.ndarray, t_half_h: float) -> np.ndarray:
    """A modulator following its driver with a slow half-life."""
    return relax(t, driver, t_half_h)


__all__ = ["slow_modulator"]
