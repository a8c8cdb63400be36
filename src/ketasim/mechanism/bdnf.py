"""Step 5: eEF2 de-phosphorylation and BDNF translation, gated (branch ``opioid``) by opioid
receptors.

dB/dt = k_B (g·A⁺ − B) with A⁺ the positive part of the AMPA drive and g the opioid gate
(1 − naltrexone block when the opioid-permissive branch is on, else 1). Williams 2018 [V]:
naltrexone abolished the antidepressant effect (not dissociation); Yoon 2025 [V] found no
such block — hence a switch, not a default.

>>> import numpy as np
>>> t = np.array([0.0, 0.25, 10.0]); a = np.ones(3)
>>> bdnf_translation(t, a, 0.25).round(3).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

import numpy as np

from ketasim.mechanism.kinetics import relax


def bdnf_translation(t: np.ndarray, ampa: np.ndarray, t_half_h: float,
                     gate: np.ndarray | float = 1.0) -> np.ndarray:
    """BDNF translation signal (same units as the AMPA drive)."""
    g = np.asarray(gate, dtype=float)
    drive = np.maximum(np.asarray(ampa, dtype=float), 0.0) * (g[:, None] if g.ndim else g)
    return relax(t, drive, t_half_h)


__all__ = ["bdnf_translation"]
