"""Step 1: NMDA receptor block on interneurons, and (branch ``lhb``) trapping in the lateral
habenula.

Interneuron block is the effect-site NMDA occupancy from :mod:`ketasim.pd` (all analytes
competing, unbound, t½ke0 8.3 min). Trapping: ketamine is trapped in open channels and
released with activity; in the LHb the block outlasts plasma by up to 24 h (Ma 2023 [V]).

>>> import numpy as np
>>> t = np.array([0.0, 1.0, 5.0]); occ = np.array([0.4, 0.0, 0.0])
>>> trapped_block(t, occ, 4.0).round(3).tolist()
[0.4, 0.336, 0.168]
"""

from __future__ import annotations

import numpy as np

from ketasim.mechanism.kinetics import hold_decay


def trapped_block(t: np.ndarray, occupancy: np.ndarray, t_half_untrap_h: float) -> np.ndarray:
    """Fraction of LHb NMDA receptors blocked, including trapped block after washout."""
    return hold_decay(t, occupancy, t_half_untrap_h)


__all__ = ["trapped_block"]
