"""Source template of the population kernel (read as text, not imported by ketasim).

:mod:`ketasim.engine.kernels` copies this file verbatim into one generated module per model
structure and requested outputs, replacing the placeholder block between the ``model
functions`` markers by the model's right-hand side and output functions, and writes that
module to the kernel cache directory under a name that hashes its whole text. Every function
is compiled with ``cache=True``, so numba stores the machine code next to the generated file
and a new process loads it instead of compiling again.

Without numba the same code runs as plain Python (correct, about 100× slower).
"""

# --- kernel module ---
import math
from typing import Any

import numpy as np

try:
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only without numba
    def njit(*args: Any, **kwargs: Any) -> Any:  # type: ignore[no-redef]
        if args and callable(args[0]):
            return args[0]
        return lambda f: f

    prange = range  # type: ignore[misc]


@njit(cache=True)
def _where(cond, a, b):  # pragma: no cover - compiled
    return a if cond else b


# --- model functions (generated) ---
def nl_rhs(t, a, s, p, ds):  # pragma: no cover - placeholder, replaced per model
    return 0


def outputs(t, y, p, o):  # pragma: no cover - placeholder, replaced per model
    return 0
# --- end model functions ---


@njit(cache=True)
def _phi1(x):  # pragma: no cover - compiled
    """φ₁(x) = (eˣ − 1)/x, with its series near 0."""
    if abs(x) < 1e-3:
        return 1.0 + x * (0.5 + x * (1.0 / 6 + x * (1.0 / 24 + x * (1.0 / 120 + x / 720))))
    return (np.exp(x) - 1.0) / x


@njit(cache=True)
def _exps(lam_i, c, h, slot, cache_h, cache_e, cache_f):  # pragma: no cover - compiled
    """Exponentials of the modal solution at the stage fractions c of a step h."""
    cache_h[slot] = h
    for k in range(c.shape[0]):
        for q in range(lam_i.shape[0]):
            x = lam_i[q] * c[k] * h
            cache_e[slot, k, q] = np.exp(x)
            cache_f[slot, k, q] = c[k] * h * _phi1(x)


@njit(cache=True)
def _lookup(lam_i, c, h, cache_h, cache_e, cache_f, cursor):  # pragma: no cover - compiled
    """Slot of the exponential cache holding step h (computed when missing)."""
    for q in range(cache_h.shape[0]):
        if cache_h[q] == h:
            return q
    slot = cursor[0]
    cursor[0] = (slot + 1) % cache_h.shape[0]
    _exps(lam_i, c, h, slot, cache_h, cache_e, cache_f)
    return slot


@njit(cache=True)
def _amounts_at(vmat_i, lam_i, needed, za, u, dt, amounts):  # pragma: no cover - compiled
    """Compartment amounts (the rows in ``needed``) a time dt after the modal state za."""
    for jj in range(needed.shape[0]):
        row = needed[jj]
        acc = 0.0 * za[0]
        for q in range(lam_i.shape[0]):
            x = lam_i[q] * dt
            acc += vmat_i[row, q] * (np.exp(x) * za[q] + dt * _phi1(x) * u[q])
        amounts[row] = acc.real


@njit(cache=True)
def _initial_step(vmat_i, lam_i, needed, za, u, sa, ta, p, span, rtol, atol, amounts,
                  f0, f1, y1):  # pragma: no cover - compiled
    """First step after a breakpoint (Hairer, Nørsett & Wanner, Solving ODE I, II.4):
    from the size of the nonlinear states, of their derivative and of its change over a
    trial Euler step, for an error estimator of order 4. Bounded by ``span``."""
    m = sa.shape[0]
    _amounts_at(vmat_i, lam_i, needed, za, u, 0.0, amounts)
    nl_rhs(ta, amounts, sa, p, f0)
    d0 = 0.0
    d1 = 0.0
    for r in range(m):
        sc = atol + rtol * abs(sa[r])
        d0 += (sa[r] / sc) ** 2
        d1 += (f0[r] / sc) ** 2
    d0 = math.sqrt(d0 / m)
    d1 = math.sqrt(d1 / m)
    if d0 < 1e-5 or d1 < 1e-5:
        h0 = 1e-6
    else:
        h0 = 0.01 * d0 / d1
    h0 = min(h0, span)
    for r in range(m):
        y1[r] = sa[r] + h0 * f0[r]
    _amounts_at(vmat_i, lam_i, needed, za, u, h0, amounts)
    nl_rhs(ta + h0, amounts, y1, p, f1)
    d2 = 0.0
    for r in range(m):
        sc = atol + rtol * abs(sa[r])
        d2 += ((f1[r] - f0[r]) / sc) ** 2
    d2 = math.sqrt(d2 / m) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** 0.2
    return min(100.0 * h0, h1)


@njit(parallel=True, cache=True)
def kernel(lam, vmat, vinv, pvec, s0, needed, group, op_kind, op_arg, op_time, op_stop,
           op_len, bolus, rates, out_rows, out, states, rtol, atol, c, a, b, e, pd,
           max_step):  # pragma: no cover - compiled
    """Solve every subject's op list; returns a failure flag per subject.

    Linear compartments are carried exactly in modal coordinates; nonlinear states by
    Dormand–Prince 5(4) with error control. Every event node (``ADVANCE`` with arg 1:
    dose, infusion start or stop, reset) is a breakpoint: no step crosses it, the step is
    restarted there and its size chosen afresh (:func:`_initial_step`), because the
    modal input changes there and the previous step size says nothing about what follows.
    """
    n_sub = lam.shape[0]
    n = lam.shape[1]
    m = s0.shape[1]
    mm = max(m, 1)
    failed = np.zeros(n_sub, dtype=np.int64)
    n_c = c.shape[0]
    # the dense output at θ = c[7] = ½ and its derivative, as weights of the stages
    mid_v = np.zeros(7)
    mid_w = np.zeros(7)
    for kk in range(7):
        for jp in range(pd.shape[1]):
            mid_v[kk] += pd[kk, jp] * c[7] ** (jp + 1)
            mid_w[kk] += (jp + 1) * pd[kk, jp] * c[7] ** jp
    for i in prange(n_sub):
        g = group[i]
        lam_i = lam[i]
        vmat_i = vmat[i]
        p = pvec[i]
        z = np.zeros(n, dtype=lam.dtype)       # exact linear state (modal) at time t
        u = np.zeros(n, dtype=lam.dtype)       # modal input rate
        s = s0[i].copy()                       # nonlinear states at time t
        za = np.zeros(n, dtype=lam.dtype)      # step start (modal)
        sa = s0[i].copy()
        ks = np.zeros((7, mm))
        stmp = np.zeros(mm)
        snew = np.zeros(mm)
        dstage = np.zeros(mm)
        f1 = np.zeros(mm)
        amounts = np.zeros(n)
        yfull = np.zeros(n + m)
        ovals = np.zeros(out.shape[0])
        keep_states = states.shape[1] > 0
        # exponential caches per step size: the stage fractions c (c[6] = 1: the step's end;
        # c[7] = ½: the defect check)
        cache_h = np.full(16, -1.0)
        cache_e = np.zeros((16, n_c, n), dtype=lam.dtype)
        cache_f = np.zeros((16, n_c, n), dtype=lam.dtype)
        cur = np.zeros(1, dtype=np.int64)
        last_dt = -1.0
        e_out = np.zeros(n, dtype=lam.dtype)
        f_out = np.zeros(n, dtype=lam.dtype)
        t = op_time[g, 0]
        ta = t
        tb = t
        h = 0.0
        h_next = 0.25
        slot = 0
        have_step = False
        fsal = False
        restart = True
        for j in range(op_len[g]):
            kind = op_kind[g, j]
            if kind == 0:
                target = op_time[g, j]
                hard = op_arg[g, j] == 1
                if target <= t:
                    if m > 0 and hard:
                        for q in range(n):
                            za[q] = z[q]
                        for r in range(m):
                            sa[r] = s[r]
                        ta = t
                        have_step = False
                        restart = True
                    continue
                if m > 0:
                    # the next hard stop (an event node) bounds every step
                    stop = max(op_stop[g, j], target)
                    while True:
                        if not have_step:
                            if restart:
                                h0 = _initial_step(vmat_i, lam_i, needed, za, u, sa, ta, p,
                                                   stop - ta, rtol, atol, amounts, dstage,
                                                   f1, stmp)
                                h_next = 2.0 ** math.floor(math.log2(max(h0, 1e-10)))
                                restart = False
                                fsal = False
                            h = min(h_next, max_step, stop - ta)
                            if stop - ta - h < 1e-12 * max(1.0, stop):
                                h = stop - ta
                            slot = _lookup(lam_i, c, h, cache_h, cache_e, cache_f, cur)
                            for k in range(7):
                                if k == 0 and fsal:
                                    for r in range(m):
                                        ks[0, r] = ks[6, r]
                                    continue
                                for jj in range(needed.shape[0]):
                                    row = needed[jj]
                                    acc = 0.0 * z[0]
                                    for q in range(n):
                                        acc += vmat_i[row, q] * (cache_e[slot, k, q] * za[q]
                                                                 + cache_f[slot, k, q] * u[q])
                                    amounts[row] = acc.real
                                for r in range(m):
                                    acc2 = sa[r]
                                    for kk in range(k):
                                        acc2 += h * a[k, kk] * ks[kk, r]
                                    stmp[r] = acc2
                                nl_rhs(ta + c[k] * h, amounts, stmp, p, dstage)
                                for r in range(m):
                                    ks[k, r] = dstage[r]
                            err = 0.0
                            for r in range(m):
                                acc3 = sa[r]
                                est = 0.0
                                for kk in range(7):
                                    acc3 += h * b[kk] * ks[kk, r]
                                    est += h * e[kk] * ks[kk, r]
                                snew[r] = acc3
                                sc = atol + rtol * max(abs(sa[r]), abs(acc3))
                                err = max(err, abs(est) / sc)
                            if err <= 1.0:
                                # defect of the dense output at the step's midpoint
                                # (Enright 1989): h·|f(y(½)) − y'(½)| estimates the error of
                                # the interpolant between the step's ends, which outputs
                                # inside the step read and the embedded estimate misses
                                for jj in range(needed.shape[0]):
                                    row = needed[jj]
                                    acc = 0.0 * z[0]
                                    for q in range(n):
                                        acc += vmat_i[row, q] * (cache_e[slot, 7, q] * za[q]
                                                                 + cache_f[slot, 7, q] * u[q])
                                    amounts[row] = acc.real
                                for r in range(m):
                                    acc7 = sa[r]
                                    for kk in range(7):
                                        acc7 += h * mid_v[kk] * ks[kk, r]
                                    stmp[r] = acc7
                                nl_rhs(ta + c[7] * h, amounts, stmp, p, dstage)
                                for r in range(m):
                                    slope = 0.0
                                    for kk in range(7):
                                        slope += mid_w[kk] * ks[kk, r]
                                    sc = atol + rtol * max(abs(sa[r]), abs(snew[r]))
                                    err = max(err, h * abs(dstage[r] - slope) / sc)
                            if not np.isfinite(err):
                                failed[i] = 1
                                err = 0.0
                            if err > 1.0 and h > 1e-10:
                                h_next = h * max(0.1, 0.9 * err ** -0.2)
                                h_next = 2.0 ** math.floor(math.log2(h_next))
                                fsal = False
                                continue
                            grow = 0.9 * err ** -0.2 if err > 0 else 5.0
                            h_next = 2.0 ** math.floor(math.log2(h * min(5.0, grow)))
                            have_step = True
                        tb = ta + h
                        if target <= tb * (1.0 + 1e-15) or tb >= stop:
                            break
                        # move the step start to tb and take another step
                        for q in range(n):
                            za[q] = cache_e[slot, 6, q] * za[q] + cache_f[slot, 6, q] * u[q]
                        for r in range(m):
                            sa[r] = snew[r]
                        ta = tb
                        have_step = False
                        fsal = True
                    # nonlinear states at target: end of step, or dense output inside it
                    if abs(target - tb) <= 1e-12 * max(1.0, tb):
                        for r in range(m):
                            s[r] = snew[r]
                    else:
                        theta = (target - ta) / h
                        for r in range(m):
                            acc6 = sa[r]
                            for kk in range(7):
                                poly = 0.0
                                tp = theta
                                for jp in range(pd.shape[1]):
                                    poly += pd[kk, jp] * tp
                                    tp *= theta
                                acc6 += h * ks[kk, r] * poly
                            s[r] = acc6
                # exact linear state at target
                dt = target - t
                if dt != last_dt:
                    last_dt = dt
                    for q in range(n):
                        x = lam_i[q] * dt
                        e_out[q] = np.exp(x)
                        f_out[q] = dt * _phi1(x)
                for q in range(n):
                    z[q] = e_out[q] * z[q] + f_out[q] * u[q]
                t = target
                if m > 0 and hard:
                    # a breakpoint: resynchronise the step start with the exact state at
                    # the event and choose the next step size afresh
                    for q in range(n):
                        za[q] = z[q]
                    for r in range(m):
                        sa[r] = s[r]
                    ta = t
                    have_step = False
                    fsal = False
                    restart = True
            elif kind == 1:
                for q in range(n):
                    z[q] = 0.0
                    za[q] = 0.0
                for r in range(m):
                    s[r] = s0[i, r]
                    sa[r] = s0[i, r]
                restart = True
            elif kind == 2:
                col = op_arg[g, j] // 1024
                cmt = op_arg[g, j] % 1024
                amt = bolus[i, col]
                for q in range(n):
                    z[q] += amt * vinv[i, q, cmt]
                    za[q] = z[q]
                restart = True
            elif kind == 3:
                rs = op_arg[g, j]
                for q in range(n):
                    acc4 = 0.0 * z[0]
                    for w in range(n):
                        acc4 += vinv[i, q, w] * rates[i, rs, w]
                    u[q] = acc4
                restart = True
            else:
                k_out = op_arg[g, j]
                for w in range(n):
                    if not (keep_states or out_rows[w]):
                        continue
                    acc5 = 0.0 * z[0]
                    for q in range(n):
                        acc5 += vmat_i[w, q] * z[q]
                    yfull[w] = acc5.real
                for r in range(m):
                    yfull[n + r] = s[r]
                outputs(t, yfull, p, ovals)
                for w in range(ovals.shape[0]):
                    out[w, i, k_out] = ovals[w]
                if keep_states:
                    for w in range(n + m):
                        states[i, k_out, w] = yfull[w]
    return failed
