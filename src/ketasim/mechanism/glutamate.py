"""Steps 2-3: disinhibition and the prefrontal glutamate surge, with the inverted U of dose.

The surge drive is a parabola in interneuron NMDA occupancy O:

    u(O) = 4 (O/O₀)(1 − O/O₀),

largest at O₀/2, zero at O₀ and negative above (Moghaddam 1997 [V]: outflow up at 10-30 mg/kg,
unchanged at 50, down at 200 mg/kg). The surge is transient: in humans glutamate cycling
rises during the infusion but not at 2-3 h although a third of the peak ketamine is still
there (Abdallah 2018; Spurny 2021 [V]). So the surge G = R − Q is a fast response R to u
(dR/dt = k (u − R), half-life minutes) minus a slower adaptation Q (dQ/dt = kq (u − Q)):
it follows changes in block and fades under steady block. For reports G is expressed as % rise
of glutamate-glutamine cycling, 13 % at the reference regimen's peak (Abdallah 2018 [V]).

>>> import numpy as np
>>> surge_drive(np.array([0.0, 0.4, 0.8, 0.9]), 0.8).round(3).tolist()
[0.0, 1.0, 0.0, -0.562]
"""

from __future__ import annotations

import numpy as np

from ketasim.mechanism.kinetics import relax


def surge_drive(occupancy: np.ndarray, o_zero: float) -> np.ndarray:
    """Inverted-U drive of the glutamate surge from interneuron NMDA occupancy."""
    x = np.asarray(occupancy, dtype=float) / o_zero
    return 4.0 * x * (1.0 - x)


def glutamate_surge(t: np.ndarray, occupancy: np.ndarray, o_zero: float,
                    t_half_h: float, t_half_adapt_h: float) -> np.ndarray:
    """The transient surge over time (response minus adaptation)."""
    u = surge_drive(occupancy, o_zero)
    return relax(t, u, t_half_h) - relax(t, u, t_half_adapt_h)


__all__ = ["glutamate_surge", "surge_drive"]
