"""Textbook closed-form solutions for 1-, 2- and 3-compartment models (test oracle).

Independent of ketasim's engines: macro-constants from the characteristic polynomial of the
micro-constants (Gibaldi & Perrier, Pharmacokinetics 2nd ed., ch. 2-3 and appendix C), then
sums of exponentials for IV bolus, zero-order infusion and first-order absorption, with
multiple dosing by the accumulation factor (1 - e^{-nαt})/(1 - e^{-ατ}) and steady state as
n → ∞.
"""

from __future__ import annotations

import numpy as np


def macro_constants(k10: float, k12: float = 0.0, k21: float = 0.0, k13: float = 0.0,
                    k31: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Disposition rate constants α_i and unit-dose coefficients A_i·V (bolus into central).

    C(t) = (Dose/V) Σ a_i e^{-α_i t},  a_i = Π_j (k_j1 − α_i) / Π_{j≠i} (α_j − α_i).
    """
    if k12 == 0 and k13 == 0:
        return np.array([k10]), np.array([1.0])
    if k13 == 0:
        s = k10 + k12 + k21
        p = k10 * k21
        disc = np.sqrt(s * s - 4 * p)
        alpha = np.array([(s + disc) / 2, (s - disc) / 2])
        returns = [k21]
    else:
        a2 = k10 + k12 + k13 + k21 + k31
        a1 = k10 * k21 + k10 * k31 + k12 * k31 + k13 * k21 + k21 * k31
        a0 = k10 * k21 * k31
        alpha = np.sort(np.roots([1.0, a2, a1, a0]).real * -1)[::-1]
        returns = [k21, k31]
    coef = []
    for i, ai in enumerate(alpha):
        num = np.prod([kr - ai for kr in returns])
        den = np.prod([alpha[j] - ai for j in range(len(alpha)) if j != i])
        coef.append(num / den)
    return alpha, np.array(coef)


def _accumulate(alpha: np.ndarray, t_since: np.ndarray, n: int | None, tau: float
                ) -> np.ndarray:
    """Σ over doses of e^{-α t}: n doses (None: steady state) given every τ."""
    if n is None:
        return np.exp(-alpha * t_since) / (1 - np.exp(-alpha * tau))
    return np.exp(-alpha * t_since) * (1 - np.exp(-n * alpha * tau)) / (1 - np.exp(-alpha * tau))


def concentration(t: np.ndarray, *, route: str, dose: float, v: float, k10: float,
                  k12: float = 0.0, k21: float = 0.0, k13: float = 0.0, k31: float = 0.0,
                  ka: float = 0.0, f: float = 1.0, tinf: float = 0.0, n_doses: int = 1,
                  tau: float = 0.0, steady_state: bool = False) -> np.ndarray:
    """Central concentration at times ``t`` (h) after the first dose (or within a cycle at
    steady state, t in [0, τ)).

    For multiple doses, ``t`` must lie after the last dose (t >= (n_doses-1)·τ) so the
    accumulation-factor formula applies; for infusions also after the end of the last
    infusion (or within it for single doses).
    """
    t = np.asarray(t, dtype=float)
    alpha, a = macro_constants(k10, k12, k21, k13, k31)
    n = None if steady_state else n_doses
    if steady_state:
        t_since = t
    else:
        t_since = t - (n_doses - 1) * tau
    out = np.zeros_like(t)
    for ai, ci in zip(alpha, a, strict=True):
        if route == "bolus":
            acc = _accumulate(ai, t_since, n, tau) if (n != 1) else np.exp(-ai * t_since)
            out += dose / v * ci * acc
        elif route == "infusion":
            rate = dose / tinf
            # single infusion contribution at time s after its start
            def single(s: np.ndarray, ai: float = ai, ci: float = ci,
                       rate: float = rate) -> np.ndarray:
                return np.where(s < tinf, rate / v * ci / ai * (1 - np.exp(-ai * s)),
                                rate / v * ci / ai * (1 - np.exp(-ai * tinf))
                                * np.exp(-ai * (s - tinf)))
            if n == 1:
                out += single(t_since)
            else:
                # previous infusions are finished (tinf <= tau): geometric sum of their tails
                prev_n = None if n is None else n - 1
                tail = rate / v * ci / ai * (1 - np.exp(-ai * tinf))
                s_prev = t_since + tau - tinf  # time since the end of the previous infusion
                if prev_n is None:
                    out += tail * _accumulate(ai, s_prev, None, tau)
                elif prev_n > 0:
                    out += tail * _accumulate(ai, s_prev, prev_n, tau)
                out += single(t_since)
        elif route == "oral":
            coef = f * dose * ka / v * ci / (ka - ai)
            if n == 1:
                out += coef * (np.exp(-ai * t_since) - np.exp(-ka * t_since))
            else:
                out += coef * (_accumulate(ai, t_since, n, tau) - _accumulate(ka, t_since, n, tau))
        else:
            raise ValueError(route)
    return out
