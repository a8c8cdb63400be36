"""Step 4: AMPA receptor drive — from the glutamate surge, plus (branch ``hnk``) a direct
(2R,6R)-HNK contribution.

AMPA drive is taken proportional to the surge (NBQX blocks the effect of ketamine and of HNK:
Maeng 2008, Zanos 2016 [M]). Under the HNK hypothesis a share ``w`` of the drive comes from
unbound effect-site (2R,6R)-HNK normalised to its peak after the reference regimen.

>>> import numpy as np
>>> ampa_drive(np.array([1.0]), np.array([2.0]), 0.25).tolist()
[1.25]
"""

from __future__ import annotations

import numpy as np


def ampa_drive(glutamate: np.ndarray, hnk_norm: np.ndarray | None = None,
               share: float = 0.0) -> np.ndarray:
    """(1 − share)·surge + share·HNK (both normalised to the reference regimen)."""
    a = np.asarray(glutamate, dtype=float)
    if hnk_norm is None or share == 0.0:
        return a
    return (1.0 - share) * a + share * np.asarray(hnk_norm, dtype=float)


__all__ = ["ampa_drive"]
