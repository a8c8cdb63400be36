"""Hand-written numba kernel for the reference population problem: the comparison baseline.

What a competent numba user writes for this one model in ~150 lines (issue #16;
shared/benchmarks/reference-model.md): the linear part (3 compartments, norketamine and the
effect site Ce, which is linear in C1) exact, through its propagator over one step; the
nonlinear indirect-response state S by classic RK4 at 1-minute steps, reading Ce exactly at
each step's start, midpoint and end; ``parallel=True`` over subjects with ``prange``; the
five outputs (C1, Cm, Ce, E, S) written at every 15th step. Every dose and infusion edge of
the reference regimen falls on the minute grid, so no step crosses one. The propagator over
``h`` (and ``h/2``) is the exponential of the augmented matrix [[K h, e1 h], [0, 0]] (Van
Loan), by Taylor series with scaling and squaring, once per subject; its entries are kept in
scalars. Its error against LSODA (rtol 1e-10) is ~1e-9 (the issue measured 2e-9).

Two versions of the same scheme (identical results to ~1e-12):

- :func:`solve` / :func:`kernel`: one subject per iteration of ``prange``, the subject's step
  loop inside: the kernel the issue describes.
- :func:`solve_lanes` / :func:`kernel_lanes`: what an expert writes next: subjects in blocks of
  :data:`LANES` laid out across SIMD lanes, the lanes' numbers in one flat work array with a
  compile-time row stride (so that LLVM can prove that its rows do not overlap and vectorises
  the step across lanes; with separate arrays it does not), the infusion's on/off switch
  precomputed per step. About 3× :func:`solve` per core on an AVX-512 machine.

Used by ``reference_population.py``; ``python -c "import handwritten_baseline"`` from this
directory compiles it (cached in ``__pycache__``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

STEP_MIN = 1.0  # RK4 step, minutes
DOSE_TIMES_H = np.array([0.0, 84.0, 168.0, 252.0, 336.0, 420.0])
DOSE_MG_PER_KG = 0.5
INFUSION_MIN = 40.0
TYPICAL = {"cl": 80.0, "v1": 15.0, "q2": 100.0, "v2": 60.0, "q3": 30.0, "v3": 180.0,
           "fm": 0.8, "clm": 40.0, "vm": 100.0, "ke0": 2.0, "emax": 60.0, "ec50": 0.3,
           "hill": 1.5, "kout": 0.01, "s0": 1.0, "smax": 3.0, "sc50": 0.2}


@njit(cache=True)
def _expm_augmented(k, h):  # pragma: no cover - compiled
    """exp([[K h, e1 h], [0, 0]]): the propagator over h and the response to a unit rate
    into compartment 1, by Taylor series with scaling and squaring."""
    n = k.shape[0] + 1
    m = np.zeros((n, n))
    m[:n - 1, :n - 1] = k * h
    m[0, n - 1] = h
    norm = 0.0
    for i in range(n):
        norm = max(norm, np.sum(np.abs(m[i])))
    squarings = 0
    while norm > 0.25:
        norm *= 0.5
        squarings += 1
    m /= 2.0 ** squarings
    result = np.eye(n)
    term = np.eye(n)
    for j in range(1, 20):
        term = term @ m / j
        result += term
    for _ in range(squarings):
        result = result @ result
    return result


@njit(cache=True)
def _rate_matrix(cl, v1, q2, v2, q3, v3, fm, clm, vm, ke0):  # pragma: no cover - compiled
    """K of the linear part, states A1, A2, A3 (ketamine), Am (norketamine), Ce (mg/L)."""
    k = np.zeros((5, 5))
    k[0, 0] = -(cl + q2 + q3) / v1
    k[0, 1] = q2 / v2
    k[0, 2] = q3 / v3
    k[1, 0] = q2 / v1
    k[1, 1] = -q2 / v2
    k[2, 0] = q3 / v1
    k[2, 2] = -q3 / v3
    k[3, 0] = fm * cl / v1
    k[3, 3] = -clm / vm
    k[4, 0] = ke0 / v1
    k[4, 4] = -ke0
    return k


@njit(cache=True, fastmath=True, inline="always")
def _rk4_step(s, prod_a, prod_m, prod_b, ko, h):  # pragma: no cover - compiled
    """One classic RK4 step of dS/dt = production(t) - kout S, the production given at the
    step's start, midpoint and end (it depends on Ce only, which is exact)."""
    k1 = prod_a - ko * s
    k2 = prod_m - ko * (s + 0.5 * h * k1)
    k3 = prod_m - ko * (s + 0.5 * h * k2)
    k4 = prod_b - ko * (s + h * k3)
    return s + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


@njit(parallel=True, cache=True, fastmath=True)
def kernel(cl, v1, q2, v2, q3, v3, fm, clm, vm, ke0, kout, amount, emax, ec50, hill, s0,
           smax, sc50, dose_step, infusion_steps, every, out):  # pragma: no cover - compiled
    """Solve every subject; ``out`` (5, subjects, outputs): C1, Cm, Ce, E, S."""
    n_out = out.shape[2]
    h = STEP_MIN / 60.0
    for i in prange(cl.shape[0]):
        k = _rate_matrix(cl[i], v1[i], q2[i], v2[i], q3[i], v3[i], fm, clm[i], vm[i], ke0[i])
        full = _expm_augmented(k, h)
        half = _expm_augmented(k, 0.5 * h)
        # the propagator's entries as scalars, so that they stay in registers (the zeros of
        # its block structure left out: A1-A3 do not see Am or Ce, Ce does not see Am)
        p00, p01, p02 = full[0, 0], full[0, 1], full[0, 2]
        p10, p11, p12 = full[1, 0], full[1, 1], full[1, 2]
        p20, p21, p22 = full[2, 0], full[2, 1], full[2, 2]
        p30, p31, p32, p33 = full[3, 0], full[3, 1], full[3, 2], full[3, 3]
        p40, p41, p42, p44 = full[4, 0], full[4, 1], full[4, 2], full[4, 4]
        g0, g1, g2, g3, g4 = full[0, 5], full[1, 5], full[2, 5], full[3, 5], full[4, 5]
        m0, m1, m2, m4, mg = half[4, 0], half[4, 1], half[4, 2], half[4, 4], half[4, 5]
        rv1 = 1.0 / v1[i]
        rvm = 1.0 / vm[i]
        ko = kout[i]
        kin = ko * s0
        ec50h = ec50 ** hill
        rate = amount[i] / (infusion_steps * h)
        a0 = a1 = a2 = a3 = a4 = 0.0
        s = s0
        dose = 0
        n = 0
        prod_b = kin  # the production term at the step's start (Ce = 0)
        for j in range(n_out):
            out[0, i, j] = a0 * rv1
            out[1, i, j] = a3 * rvm
            out[2, i, j] = a4
            ceh = a4 ** hill
            out[3, i, j] = emax * ceh / (ec50h + ceh)
            out[4, i, j] = s
            if j == n_out - 1:
                break
            for _ in range(every):
                while dose + 1 < dose_step.shape[0] and n >= dose_step[dose + 1]:
                    dose += 1
                r = rate if dose_step[dose] <= n < dose_step[dose] + infusion_steps else 0.0
                n += 1
                # Ce exactly at t, t + h/2 and t + h
                cem = m0 * a0 + m1 * a1 + m2 * a2 + m4 * a4 + mg * r
                b0 = p00 * a0 + p01 * a1 + p02 * a2 + g0 * r
                b1 = p10 * a0 + p11 * a1 + p12 * a2 + g1 * r
                b2 = p20 * a0 + p21 * a1 + p22 * a2 + g2 * r
                b3 = p30 * a0 + p31 * a1 + p32 * a2 + p33 * a3 + g3 * r
                b4 = p40 * a0 + p41 * a1 + p42 * a2 + p44 * a4 + g4 * r
                a0, a1, a2, a3, a4 = b0, b1, b2, b3, b4
                prod_a = prod_b
                prod_m = kin * (1.0 + smax * cem / (sc50 + cem))
                prod_b = kin * (1.0 + smax * a4 / (sc50 + a4))
                s = _rk4_step(s, prod_a, prod_m, prod_b, ko, h)


def individual(weight: np.ndarray, iiv: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Individual values: allometry on weight (70 kg), then the given IIV values."""
    n = len(weight)
    fw = weight / 70.0
    value = {k: np.broadcast_to(np.asarray(iiv.get(k, TYPICAL[k]), dtype=float), (n,))
             for k in ("cl", "v1", "q2", "ke0", "kout")}
    return {"cl": value["cl"] * fw ** 0.75, "v1": value["v1"] * fw,
            "q2": value["q2"] * fw ** 0.75, "v2": TYPICAL["v2"] * fw,
            "q3": TYPICAL["q3"] * fw ** 0.75, "v3": TYPICAL["v3"] * fw,
            "clm": TYPICAL["clm"] * fw ** 0.75, "vm": TYPICAL["vm"] * fw,
            "ke0": value["ke0"], "kout": value["kout"], "amount": DOSE_MG_PER_KG * weight}


def _prepare(weight: np.ndarray, iiv: dict[str, np.ndarray], times: np.ndarray,
             out: np.ndarray | None) -> tuple[int, dict[str, np.ndarray], np.ndarray]:
    """Steps per output interval, the individual values (contiguous) and the output array
    (``out`` when its shape fits, else a new one)."""
    if not np.allclose(times, np.arange(len(times)) * 0.25):
        raise ValueError("the baseline writes outputs every 15 min from t = 0")
    ind = individual(np.asarray(weight, dtype=float), iiv)
    if out is None or out.shape != (5, len(weight), len(times)):
        out = np.empty((5, len(weight), len(times)))
    return (round(0.25 * 60 / STEP_MIN),
            {k: np.ascontiguousarray(v, dtype=float) for k, v in ind.items()}, out)


def solve(weight: np.ndarray, iiv: dict[str, np.ndarray], times: np.ndarray,
          out: np.ndarray | None = None) -> np.ndarray:
    """Outputs (C1, Cm, Ce, E, S) × subjects × ``times`` (every 15 min from 0) into ``out``
    (allocated when not given, else reused)."""
    every, c, out = _prepare(weight, iiv, times, out)
    dose_step = np.round(DOSE_TIMES_H * 60 / STEP_MIN).astype(np.int64)
    kernel(c["cl"], c["v1"], c["q2"], c["v2"], c["q3"], c["v3"], TYPICAL["fm"], c["clm"],
           c["vm"], c["ke0"], c["kout"], c["amount"], TYPICAL["emax"], TYPICAL["ec50"],
           TYPICAL["hill"], TYPICAL["s0"], TYPICAL["smax"], TYPICAL["sc50"], dose_step,
           round(INFUSION_MIN / STEP_MIN), every, out)
    return out


# --- the same scheme across SIMD lanes -------------------------------------------------------
LANES = 8  # subjects per block (8 doubles: one AVX-512 register)
# rows of a block's flat work array w; row r holds the LANES values w[r*LANES:(r+1)*LANES]
_A0, _A1, _A2, _A3, _A4, _S, _PB = range(7)  # states; production term at the step's start
_P = 7  # 27 rows: the propagator over h (the 22 entries used) and Ce's row over h/2 (5)
_RV1, _RVM, _KOUT, _RATE, _KIN = _P + 27, _P + 28, _P + 29, _P + 30, _P + 31
_ROWS = _P + 32


@njit(parallel=True, cache=True)
def propagators(cl, v1, q2, v2, q3, v3, fm, clm, vm, ke0, h, c):  # pragma: no cover
    """The 27 propagator entries each lane needs, (27, subjects)."""
    for i in prange(cl.shape[0]):
        k = _rate_matrix(cl[i], v1[i], q2[i], v2[i], q3[i], v3[i], fm, clm[i], vm[i], ke0[i])
        f = _expm_augmented(k, h)
        g = _expm_augmented(k, 0.5 * h)
        vals = (f[0, 0], f[0, 1], f[0, 2], f[1, 0], f[1, 1], f[1, 2], f[2, 0], f[2, 1],
                f[2, 2], f[3, 0], f[3, 1], f[3, 2], f[3, 3], f[4, 0], f[4, 1], f[4, 2],
                f[4, 4], f[0, 5], f[1, 5], f[2, 5], f[3, 5], f[4, 5],
                g[4, 0], g[4, 1], g[4, 2], g[4, 4], g[4, 5])
        for q in range(27):
            c[q, i] = vals[q]


@njit(cache=True, fastmath=True, error_model="numpy")
def _lanes_block(w, lo, emax, ec50h, hill, smax, sc50, on, every, out):  # pragma: no cover
    """Every step of one block; lanes past the last subject compute but are not written."""
    L = LANES
    h = STEP_MIN / 60.0
    n, n_out = out.shape[1], out.shape[2]
    step = 0
    for j in range(n_out):
        for ln in range(L):
            i = lo + ln
            if i < n:
                ce = w[_A4 * L + ln]
                ceh = ce ** hill
                out[0, i, j] = w[_A0 * L + ln] * w[_RV1 * L + ln]
                out[1, i, j] = w[_A3 * L + ln] * w[_RVM * L + ln]
                out[2, i, j] = ce
                out[3, i, j] = emax * ceh / (ec50h + ceh)
                out[4, i, j] = w[_S * L + ln]
        if j == n_out - 1:
            break
        for _ in range(every):
            o = on[step]
            step += 1
            for ln in range(L):
                x0, x1, x2 = w[_A0 * L + ln], w[_A1 * L + ln], w[_A2 * L + ln]
                x3, x4, s = w[_A3 * L + ln], w[_A4 * L + ln], w[_S * L + ln]
                r = o * w[_RATE * L + ln]
                kin, ko = w[_KIN * L + ln], w[_KOUT * L + ln]
                # Ce exactly at t + h/2 and t + h
                cem = (w[(_P + 22) * L + ln] * x0 + w[(_P + 23) * L + ln] * x1
                       + w[(_P + 24) * L + ln] * x2 + w[(_P + 25) * L + ln] * x4
                       + w[(_P + 26) * L + ln] * r)
                b4 = (w[(_P + 13) * L + ln] * x0 + w[(_P + 14) * L + ln] * x1
                      + w[(_P + 15) * L + ln] * x2 + w[(_P + 16) * L + ln] * x4
                      + w[(_P + 21) * L + ln] * r)
                w[_A0 * L + ln] = (w[_P * L + ln] * x0 + w[(_P + 1) * L + ln] * x1
                                   + w[(_P + 2) * L + ln] * x2 + w[(_P + 17) * L + ln] * r)
                w[_A1 * L + ln] = (w[(_P + 3) * L + ln] * x0 + w[(_P + 4) * L + ln] * x1
                                   + w[(_P + 5) * L + ln] * x2 + w[(_P + 18) * L + ln] * r)
                w[_A2 * L + ln] = (w[(_P + 6) * L + ln] * x0 + w[(_P + 7) * L + ln] * x1
                                   + w[(_P + 8) * L + ln] * x2 + w[(_P + 19) * L + ln] * r)
                w[_A3 * L + ln] = (w[(_P + 9) * L + ln] * x0 + w[(_P + 10) * L + ln] * x1
                                   + w[(_P + 11) * L + ln] * x2 + w[(_P + 12) * L + ln] * x3
                                   + w[(_P + 20) * L + ln] * r)
                w[_A4 * L + ln] = b4
                prod_a = w[_PB * L + ln]
                prod_m = kin * (1.0 + smax * cem / (sc50 + cem))
                prod_b = kin * (1.0 + smax * b4 / (sc50 + b4))
                w[_S * L + ln] = _rk4_step(s, prod_a, prod_m, prod_b, ko, h)
                w[_PB * L + ln] = prod_b


@njit(parallel=True, cache=True)
def kernel_lanes(c, rv1, rvm, kout, rate, emax, ec50, hill, s0, smax, sc50, on, every,
                 out):  # pragma: no cover - compiled
    """Solve every block of LANES subjects; ``out`` (5, subjects, outputs)."""
    n = c.shape[1]
    L = LANES
    ec50h = ec50 ** hill
    for b in prange((n + L - 1) // L):
        lo = b * L
        w = np.zeros(_ROWS * L)
        for ln in range(L):
            i = min(lo + ln, n - 1)  # padding lanes repeat the last subject
            for q in range(27):
                w[(_P + q) * L + ln] = c[q, i]
            w[_RV1 * L + ln] = rv1[i]
            w[_RVM * L + ln] = rvm[i]
            w[_KOUT * L + ln] = kout[i]
            w[_RATE * L + ln] = rate[i]
            w[_KIN * L + ln] = kout[i] * s0
            w[_S * L + ln] = s0
            w[_PB * L + ln] = kout[i] * s0
        _lanes_block(w, lo, emax, ec50h, hill, smax, sc50, on, every, out)


def solve_lanes(weight: np.ndarray, iiv: dict[str, np.ndarray], times: np.ndarray,
                out: np.ndarray | None = None) -> np.ndarray:
    """As :func:`solve`, by :func:`kernel_lanes`."""
    every, d, out = _prepare(weight, iiv, times, out)
    h = STEP_MIN / 60.0
    c = np.empty((27, len(weight)))
    propagators(d["cl"], d["v1"], d["q2"], d["v2"], d["q3"], d["v3"], TYPICAL["fm"], d["clm"],
                d["vm"], d["ke0"], h, c)
    infusion_steps = round(INFUSION_MIN / STEP_MIN)
    step = np.arange((len(times) - 1) * every)
    on = np.zeros(len(step))
    for t in DOSE_TIMES_H:
        first = round(t * 60 / STEP_MIN)
        on[(step >= first) & (step < first + infusion_steps)] = 1.0
    kernel_lanes(c, 1.0 / d["v1"], 1.0 / d["vm"], d["kout"],
                 d["amount"] / (infusion_steps * h), TYPICAL["emax"], TYPICAL["ec50"],
                 TYPICAL["hill"], TYPICAL["s0"], TYPICAL["smax"], TYPICAL["sc50"], on, every,
                 out)
    return out
