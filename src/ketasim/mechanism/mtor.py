"""Step 6: BDNF → TrkB → Akt/ERK → mTORC1, a window of ~0.5-2 h (Li 2010 [V abstract, M
timings]). ``blocked`` simulates rapamycin: mTORC1 stays at baseline.

>>> import numpy as np
>>> t = np.array([0.0, 1.0]); b = np.ones(2)
>>> mtorc1(t, b, 0.333, blocked=True).tolist()
[0.0, 0.0]
"""

from __future__ import annotations

import numpy as np

from ketasim.mechanism.kinetics import relax


def mtorc1(t: np.ndarray, bdnf: np.ndarray, t_half_h: float, *,
           blocked: bool = False) -> np.ndarray:
    """mTORC1 activation (0 when blocked)."""
    if blocked:
        return np.zeros_like(np.asarray(bdnf, dtype=float))
    return relax(t, bdnf, t_half_h)


__all__ = ["mtorc1"]
