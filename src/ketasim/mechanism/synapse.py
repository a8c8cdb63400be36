"""Steps 7-8, 8b, 11: synaptic protein synthesis, new spines, and the fast mTOR-independent
potentiation.

- Proteins: dP/dt = k_P (M − P) (rise from 2 h, persist ~72 h; Li 2010 [M]).
- Spines: dS/dt = k_S (P − S), k_S from the spine persistence half-life (calibrated on the
  single-dose durability, §D1/§H "71 % → 35 %, day 1 → day 7"); new spines from ~12-24 h and
  lasting days (Moda-Sava 2019 [V]).
- Fast potentiation: dH/dt = k_H (B − H) from BDNF translation, independent of mTORC1
  (homeostatic upscaling, Kavalali & Monteggia 2022 [V]): behaviour improves before spines,
  and ablating new spines removes the sustained, not the initial, effect (Moda-Sava 2019 [V]).

>>> import numpy as np
>>> t = np.linspace(0, 48, 49); m = np.where(t < 2, 1.0, 0.0)
>>> s = spines(t, synaptic_proteins(t, m, 24.0), 72.0)
>>> int(np.argmax(s)) > 12
True
"""

from __future__ import annotations

import numpy as np

from ketasim.mechanism.kinetics import relax


def synaptic_proteins(t: np.ndarray, mtor: np.ndarray, t_half_h: float) -> np.ndarray:
    """Synaptic protein level (relative)."""
    return relax(t, mtor, t_half_h)


def spines(t: np.ndarray, proteins: np.ndarray, t_half_h: float) -> np.ndarray:
    """New spine density (relative)."""
    return relax(t, proteins, t_half_h)


def fast_potentiation(t: np.ndarray, bdnf: np.ndarray, t_half_h: float) -> np.ndarray:
    """mTOR-independent synaptic potentiation (relative)."""
    return relax(t, bdnf, t_half_h)


__all__ = ["fast_potentiation", "spines", "synaptic_proteins"]
