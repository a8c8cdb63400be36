# mypy: ignore-errors
# (numba-compiled code, read as text by ketasim.engine.kernels; not imported)
"""Source template of the population kernel (read as text, not imported by ketasim).

:mod:`ketasim.engine.kernels` copies this file verbatim into one generated module per model
structure and requested outputs, replacing the placeholder block between the ``model
functions`` markers by the model's right-hand side and output functions, and writes that
module to the kernel cache directory under a name that hashes its whole text. Every function
is compiled with ``cache=True``, so numba stores the machine code next to the generated file
and a new process loads it instead of compiling again.

Layout: subjects are solved in *blocks* (``ketasim.engine.population.block_lanes``) that
share one op list (the union of their dosing events) and one step sequence; every per-subject
quantity is an array whose last axis is the lane, and the inner loops run over the lanes, so
they compile to SIMD instructions. Within a block the step is the smallest any active lane
needs (the largest error of the active lanes decides), so every lane meets the tolerance. The
exponentials of the modal solution depend on the step and on each lane's eigenvalues; they are
computed once per distinct step size (steps are powers of two) and per distinct output
interval, and reused. ``exp``, ``log`` and ``**`` in model equations call branch-free versions
(:func:`_exp`, :func:`_log`, :func:`_pow`) that vectorise across lanes; they agree with the C
library to about an ulp (``_pow``: an ulp times ``|y log x|``). Products followed by a sum may
be fused multiply-adds (``fastmath={"contract"}``, nothing else of fast-math). Sums over the
modes are unrolled inside the loops over lanes (``_NQ``, a constant of the generated module),
and a block's outputs go to time-major chunk buffers in whole 64-byte lines by streaming
stores.

Without numba the same code runs as plain Python (correct, about 100× slower).
"""

# --- kernel module ---
import math
from typing import Any

import numpy as np

try:
    from numba import njit, prange, types
    from numba.extending import intrinsic, overload
    _JIT = True
except ImportError:  # pragma: no cover - exercised only without numba
    _JIT = False

    def njit(*args: Any, **kwargs: Any) -> Any:
        if args and callable(args[0]):
            return args[0]
        return lambda f: f

    prange = range

_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * _LN2_HI is exact (FDLIBM)
_LN2_LO = 1.90821492927058770002e-10
_INV_LN10 = 0.43429448190325182765
# up to this many modes, sums over the modes are unrolled inside the loops over lanes (so that
# they vectorise and accumulate in registers); beyond it, each mode is one loop over lanes
_UNROLL_MODES = 8
# a * b + c may be one fused multiply-add (one rounding instead of two); nothing else of
# fast-math (no reassociation, no assumptions about nan or inf)
_FM = {"contract"}
# log(1 + f) = f - f²/2 + s·(f²/2 + R(s²)), s = f / (2 + f) (FDLIBM e_log.c)
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01

if _JIT:
    @intrinsic
    def _i2f(typingctx, i):  # pragma: no cover - compiled
        """The float64 whose bits are the int64 ``i``."""
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], context.get_value_type(types.float64))
        return types.float64(types.int64), codegen

    def _item_pointer(context, builder, aryty, ary, inds):  # pragma: no cover - compiled
        """The LLVM pointer to ary[inds] (no wraparound, no bounds check)."""
        from numba.core import cgutils
        arr = context.make_array(aryty)(context, builder, ary)
        return cgutils.get_item_pointer(context, builder, aryty, arr, list(inds))

    def _store_nontemporal(builder, val, ptr, align=None):  # pragma: no cover - compiled
        from llvmlite import ir
        st = builder.store(val, ptr, align=align)
        st.set_metadata("nontemporal", builder.module.add_metadata([ir.IntType(32)(1)]))

    @intrinsic
    def _nt_store(typingctx, arr, i, j, k, val):  # pragma: no cover - compiled
        """arr[i, j, k] = val as a non-temporal store: written around the caches, so the
        line is not read first. For the lanes of a block before its first and after its last
        whole cache line (:func:`_nt_store8` writes those); needs :func:`_fence`."""
        def codegen(context, builder, sig, args):
            _store_nontemporal(builder, args[4],
                               _item_pointer(context, builder, sig.args[0], args[0], args[1:4]))
            return context.get_dummy_value()
        return types.none(arr, i, j, k, val), codegen

    @intrinsic
    def _nt_store8(typingctx, dst, i, j, k, src, r, col):  # pragma: no cover - compiled
        """dst[i, j, k:k + 8] = src[r, col:col + 8] as one 64-byte non-temporal store. The
        destination must be 64-byte aligned (see :func:`_addr`) and both rows contiguous;
        needs :func:`_fence`."""
        from llvmlite import ir

        def codegen(context, builder, sig, args):
            vec = ir.VectorType(ir.DoubleType(), 8).as_pointer()
            pd = _item_pointer(context, builder, sig.args[0], args[0], args[1:4])
            ps = _item_pointer(context, builder, sig.args[4], args[4], args[5:7])
            v = builder.load(builder.bitcast(ps, vec), align=8)
            _store_nontemporal(builder, v, builder.bitcast(pd, vec), align=64)
            return context.get_dummy_value()
        return types.none(dst, i, j, k, src, r, col), codegen

    @intrinsic
    def _addr(typingctx, arr, i, j, k):  # pragma: no cover - compiled
        """The address of arr[i, j, k], as an integer."""
        def codegen(context, builder, sig, args):
            ptr = _item_pointer(context, builder, sig.args[0], args[0], args[1:4])
            return builder.ptrtoint(ptr, context.get_value_type(types.int64))
        return types.int64(arr, i, j, k), codegen

    @intrinsic
    def _fence(typingctx):  # pragma: no cover - compiled
        """A full memory fence: earlier non-temporal stores are visible to other threads."""
        def codegen(context, builder, sig, args):
            builder.fence("seq_cst")
            return context.get_dummy_value()
        return types.none(), codegen

    @intrinsic
    def _f2i(typingctx, x):  # pragma: no cover - compiled
        """The int64 whose bits are the float64 ``x``."""
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], context.get_value_type(types.int64))
        return types.int64(types.float64), codegen


@njit(cache=True, error_model="numpy", fastmath=_FM, inline="always")
def _exp(x):  # pragma: no cover - compiled
    """eˣ without branches: x = k ln 2 + r, |r| ≤ ln 2 / 2, e^r by its Taylor polynomial
    (degree 13: truncation < 1e-17), times 2^k built from its bits (in two factors, so that
    subnormal results and the edges of the range come out right). ≤ 1 ulp off libm."""
    xc = min(max(x, -746.0), 710.0)
    kf = np.floor(xc * _INV_LN2 + 0.5)
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    k = np.int64(kf)
    k1 = k >> 1
    k2 = k - k1
    res = p * _i2f((k1 + 1023) << 52) * _i2f((k2 + 1023) << 52)
    return res if x == x else x


@njit(cache=True, error_model="numpy", fastmath=_FM, inline="always")
def _log(x):  # pragma: no cover - compiled
    """ln x without branches (FDLIBM's reduction and polynomial; subnormals scaled first);
    -inf at 0, nan below 0 and for nan. ≤ 1 ulp off libm."""
    tiny = x < 2.2250738585072014e-308
    xs = x * 18014398509481984.0 if tiny else x
    bits = _f2i(xs)
    ex = (bits >> 52) - (1077 if tiny else 1023)
    f = _i2f((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = f > 1.4142135623730951
    f = f * 0.5 if big else f
    ex = ex + 1 if big else ex
    f = f - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    rr = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7))) + w * (_LG2 + w * (_LG4 + w * _LG6))
    hfsq = 0.5 * f * f
    dk = float(ex)
    res = dk * _LN2_HI - ((hfsq - (s * (hfsq + rr) + dk * _LN2_LO)) - f)
    res = res if x < np.inf else x
    return res if x > 0.0 else (-np.inf if x == 0.0 else np.nan)


@njit(cache=True, error_model="numpy", fastmath=_FM, inline="always")
def _pow(x, y):  # pragma: no cover - compiled
    """x**y as exp(y ln |x|), with the signs and special values of C's pow (negative x with
    an integer y, y = 0, x = 1, zeros and infinities)."""
    ax = abs(x)
    r = _exp(y * _log(ax))
    yi = np.floor(y)
    odd = yi == y and np.floor(0.5 * y) != 0.5 * y
    neg = -r if odd else r
    neg = neg if (yi == y or ax == np.inf) else np.nan
    r = neg if x < 0.0 else r
    return 1.0 if (y == 0.0 or x == 1.0) else r


@njit(cache=True, error_model="numpy", fastmath=_FM, inline="always")
def _log10(x):  # pragma: no cover - compiled
    return _log(x) * _INV_LN10


@njit(cache=True, inline="always", fastmath=_FM)
def _where(cond, a, b):  # pragma: no cover - compiled
    return a if cond else b


if not _JIT:  # pragma: no cover - exercised only without numba
    def _nt_store(arr, i, j, k, val):
        arr[i, j, k] = val

    def _nt_store8(dst, i, j, k, src, r, col):
        dst[i, j, k:k + 8] = src[r, col:col + 8]

    def _addr(arr, i, j, k):
        return 0

    def _fence():
        return None

    def _exp(x):
        return float(np.exp(x))

    def _log(x):
        with np.errstate(all="ignore"):
            return float(np.log(x))

    def _pow(x, y):
        with np.errstate(all="ignore"):
            return float(np.power(x, y))

    def _log10(x):
        return _log(x) * _INV_LN10


def _expz(x):  # pragma: no cover - compiled
    """eˣ of a modal exponent: :func:`_exp` for a real one, numpy's for a complex one."""
    return np.exp(x)


if _JIT:
    @overload(_expz)
    def _expz_impl(x):  # pragma: no cover - compiled
        if isinstance(x, types.Complex):
            return lambda x: np.exp(x)
        return lambda x: _exp(x)


# --- model functions (generated) ---
_NQ = 1  # the model's linear compartments (modes): a compile-time constant per kernel


def nl_rhs(t, a, s, p, ds, nl):  # pragma: no cover - placeholder, replaced per model
    return 0


def outputs(t, y, p, o, nl):  # pragma: no cover - placeholder, replaced per model
    return 0
# --- end model functions ---


@njit(cache=True, error_model="numpy", fastmath=_FM)
def _phi1(x, ex):  # pragma: no cover - compiled
    """φ₁(x) = (eˣ − 1)/x given ex = eˣ, with its series near 0."""
    if abs(x) < 1e-3:
        return 1.0 + x * (0.5 + x * (1.0 / 6 + x * (1.0 / 24 + x * (1.0 / 120 + x / 720))))
    return (ex - 1.0) / x


@njit(cache=True, error_model="numpy", fastmath=_FM)
def _exps_at(lam_b, dt, ek, fk, slot, k):  # pragma: no cover - compiled
    """ek[slot, k] = e^{λ dt}, fk[slot, k] = dt φ₁(λ dt), per mode and lane."""
    nl = lam_b.shape[1]
    for q in range(lam_b.shape[0]):
        for ln in range(nl):
            x = lam_b[q, ln] * dt
            ex = _expz(x)
            ek[slot, k, q, ln] = ex
            fk[slot, k, q, ln] = dt * _phi1(x, ex)


@njit(cache=True, error_model="numpy", fastmath=_FM, inline="always")
def _propagate(ek, fk, slot, k, x, u, u_on):  # pragma: no cover - compiled
    """The modal state x over one interval, in place: x ← ek x + fk u per mode and lane
    (without the input term while ``u_on`` says that u is 0 in every lane)."""
    nl = x.shape[1]
    for q in range(x.shape[0]):
        if u_on:
            for ln in range(nl):
                x[q, ln] = ek[slot, k, q, ln] * x[q, ln] + fk[slot, k, q, ln] * u[q, ln]
        else:
            for ln in range(nl):
                x[q, ln] = ek[slot, k, q, ln] * x[q, ln]


@njit(cache=True, error_model="numpy", fastmath=_FM, inline="always")
def _amounts(vm_b, needed, ek, fk, slot, k, za, u, u_on, amounts):  # pragma: no cover
    """Compartment amounts (rows ``needed``) from the modal state za through ek, fk (and the
    modal input u, unless ``u_on`` says that it is 0 in every lane)."""
    nl = za.shape[1]
    for jj in range(needed.shape[0]):
        row = needed[jj]
        if _NQ <= _UNROLL_MODES and not u_on:
            for ln in range(nl):
                acc = 0.0
                for q in range(_NQ):
                    acc += (vm_b[row, q, ln] * (ek[slot, k, q, ln] * za[q, ln])).real
                amounts[row, ln] = acc
        elif _NQ <= _UNROLL_MODES:
            # the sum over the modes (unrolled) inside the loop over lanes
            for ln in range(nl):
                acc = 0.0
                for q in range(_NQ):
                    acc += (vm_b[row, q, ln] * (ek[slot, k, q, ln] * za[q, ln]
                                                + fk[slot, k, q, ln] * u[q, ln])).real
                amounts[row, ln] = acc
        else:
            for ln in range(nl):
                amounts[row, ln] = 0.0
            for q in range(_NQ):
                for ln in range(nl):
                    amounts[row, ln] += (vm_b[row, q, ln] * (ek[slot, k, q, ln] * za[q, ln]
                                                             + fk[slot, k, q, ln] * u[q, ln])).real


@njit(cache=True, error_model="numpy", fastmath=_FM)
def _initial_step(vm_b, lam_b, needed, za, u, sa, ta, p, span, rtol, atol, amounts, f0, f1,
                  y1, ek, fk, act):  # pragma: no cover - compiled
    """First step after a breakpoint (Hairer, Nørsett & Wanner, Solving ODE I, II.4):
    from the size of the nonlinear states, of their derivative and of its change over a
    trial Euler step, for an error estimator of order 4; the smallest over the active lanes.
    Bounded by ``span``."""
    m = sa.shape[0]
    nl = sa.shape[1]
    _exps_at(lam_b, 0.0, ek, fk, 0, 0)
    _amounts(vm_b, needed, ek, fk, 0, 0, za, u, True, amounts)
    nl_rhs(ta, amounts, sa, p, f0, nl)
    h0 = span
    for ln in range(nl):
        if not act[ln]:
            continue
        d0 = 0.0
        d1 = 0.0
        for r in range(m):
            sc = atol + rtol * abs(sa[r, ln])
            d0 += (sa[r, ln] / sc) ** 2
            d1 += (f0[r, ln] / sc) ** 2
        d0 = math.sqrt(d0 / m)
        d1 = math.sqrt(d1 / m)
        h0 = min(h0, 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1)
    for r in range(m):
        for ln in range(nl):
            y1[r, ln] = sa[r, ln] + h0 * f0[r, ln]
    _exps_at(lam_b, h0, ek, fk, 0, 0)
    _amounts(vm_b, needed, ek, fk, 0, 0, za, u, True, amounts)
    nl_rhs(ta + h0, amounts, y1, p, f1, nl)
    best = 100.0 * h0
    for ln in range(nl):
        if not act[ln]:
            continue
        d1 = 0.0
        d2 = 0.0
        for r in range(m):
            sc = atol + rtol * abs(sa[r, ln])
            d1 += (f0[r, ln] / sc) ** 2
            d2 += ((f1[r, ln] - f0[r, ln]) / sc) ** 2
        d1 = math.sqrt(d1 / m)
        d2 = math.sqrt(d2 / m) / h0
        if d1 <= 1e-15 and d2 <= 1e-15:
            h1 = max(1e-6, h0 * 1e-3)
        else:
            h1 = (0.01 / max(d1, d2)) ** 0.2
        best = min(best, h1)
    return best


@njit(cache=True, error_model="numpy", fastmath=_FM)
def _block(bi, lam, vmat, vinv, pvec, s0, needed, active, group, op_kind, op_arg, op_time,
           op_stop, op_len, lanecol, rates, out_rows, out, out_tm, states, out_map, rtol, atol,
           c, a,
           b, e, pd, max_step, mid_v, mid_w, failed):  # pragma: no cover - compiled
    """Solve block ``bi`` (see :func:`kernel`). Every per-subject array is (..., lane) and
    every inner loop runs over the lanes: the loops that compile to SIMD code."""
    n = lam.shape[1]
    nl = lam.shape[2]
    m = s0.shape[1]
    mm = max(m, 1)
    n_c = c.shape[0]
    n_slots = 16
    n_out = max(out.shape[0], out_tm.shape[0])  # one of them is empty
    keep_states = states.shape[1] > 0
    g = group[bi]
    lam_b = lam[bi]
    vm_b = vmat[bi]
    p = pvec[bi]
    act = active[bi]
    om = out_map[bi]
    zero = 0.0 * lam[0, 0, 0]
    z = np.zeros((n, nl), dtype=lam.dtype)       # exact linear state (modal) at t
    u = np.zeros((n, nl), dtype=lam.dtype)       # modal input rate
    u_on = False                                 # u != 0 in some lane
    za = np.zeros((n, nl), dtype=lam.dtype)      # step start (modal)
    s = np.zeros((mm, nl))                       # nonlinear states at t
    sa = np.zeros((mm, nl))                      # ... at the step start
    for r in range(m):
        for ln in range(nl):
            s[r, ln] = s0[bi, r, ln]
            sa[r, ln] = s0[bi, r, ln]
    ks = np.zeros((7, mm, nl))
    stmp = np.zeros((mm, nl))
    snew = np.zeros((mm, nl))
    dstage = np.zeros((mm, nl))
    f1 = np.zeros((mm, nl))
    errl = np.zeros(nl)
    amounts = np.zeros((n, nl))
    yfull = np.zeros((n + m, nl))
    ovals = np.zeros((n_out, nl))
    # exponential caches per step size: the stage fractions c (c[6] = 1: the step's end;
    # c[7] = ½: the defect check); slot n_slots holds the output interval's
    cache_h = np.full(n_slots, -1.0)
    cache_e = np.zeros((n_slots + 1, n_c, n, nl), dtype=lam.dtype)
    cache_f = np.zeros((n_slots + 1, n_c, n, nl), dtype=lam.dtype)
    cursor = 0
    last_dt = -1.0
    # outputs go to out[output, row, time], or, when given, to the time-major out_tm[output,
    # time, row]; there, where the lanes written (out_map >= 0) are consecutive rows
    # l0..l1 - 1, one output's values at one time fill whole cache lines: they are written
    # with non-temporal (streaming) stores, which do not read the lines first
    tm = out_tm.shape[0] > 0
    l0 = 0
    while l0 < nl and om[l0] < 0:
        l0 += 1
    l1 = nl
    while l1 > l0 and om[l1 - 1] < 0:
        l1 -= 1
    shift = om[l0] - l0 if l0 < nl else 0
    stream = tm and l1 > l0
    for ln in range(l0, l1):
        if om[ln] != shift + ln:
            stream = False
    wts = np.zeros(7)
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
                        for ln in range(nl):
                            za[q, ln] = z[q, ln]
                    for r in range(m):
                        for ln in range(nl):
                            sa[r, ln] = s[r, ln]
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
                            h0 = _initial_step(vm_b, lam_b, needed, za, u, sa, ta, p,
                                               stop - ta, rtol, atol, amounts, dstage,
                                               f1, stmp, cache_e, cache_f, act)
                            cache_h[0] = -1.0
                            h_next = 2.0 ** math.floor(math.log2(max(h0, 1e-10)))
                            restart = False
                            fsal = False
                        h = min(h_next, max_step, stop - ta)
                        if stop - ta - h < 1e-12 * max(1.0, stop):
                            h = stop - ta
                        slot = -1
                        for q in range(n_slots):
                            if cache_h[q] == h:
                                slot = q
                                break
                        if slot < 0:
                            slot = cursor
                            cursor = (cursor + 1) % n_slots
                            cache_h[slot] = h
                            for k in range(n_c):
                                _exps_at(lam_b, c[k] * h, cache_e, cache_f, slot, k)
                        for k in range(7):
                            if k == 0 and fsal:
                                for r in range(m):
                                    for ln in range(nl):
                                        ks[0, r, ln] = ks[6, r, ln]
                                continue
                            _amounts(vm_b, needed, cache_e, cache_f, slot, k, za, u,
                                     u_on, amounts)
                            for r in range(m):
                                for ln in range(nl):
                                    stmp[r, ln] = sa[r, ln]
                                for kk in range(k):
                                    wk = h * a[k, kk]
                                    for ln in range(nl):
                                        stmp[r, ln] += wk * ks[kk, r, ln]
                            nl_rhs(ta + c[k] * h, amounts, stmp, p, dstage, nl)
                            for r in range(m):
                                for ln in range(nl):
                                    ks[k, r, ln] = dstage[r, ln]
                        for ln in range(nl):
                            errl[ln] = 0.0
                        for r in range(m):
                            for ln in range(nl):
                                acc = sa[r, ln]
                                est = 0.0
                                for kk in range(7):
                                    acc += h * b[kk] * ks[kk, r, ln]
                                    est += h * e[kk] * ks[kk, r, ln]
                                snew[r, ln] = acc
                                sc = atol + rtol * max(abs(sa[r, ln]), abs(acc))
                                errl[ln] = max(errl[ln], abs(est) / sc)
                        err = 0.0
                        for ln in range(nl):
                            if act[ln]:
                                err = max(err, errl[ln])
                        if err <= 1.0:
                            # defect of the dense output at the step's midpoint
                            # (Enright 1989): h·|f(y(½)) − y'(½)| estimates the error of
                            # the interpolant between the step's ends, which outputs
                            # inside the step read and the embedded estimate misses
                            _amounts(vm_b, needed, cache_e, cache_f, slot, 7, za, u,
                                     u_on, amounts)
                            for r in range(m):
                                for ln in range(nl):
                                    acc = sa[r, ln]
                                    for kk in range(7):
                                        acc += h * mid_v[kk] * ks[kk, r, ln]
                                    stmp[r, ln] = acc
                            nl_rhs(ta + c[7] * h, amounts, stmp, p, dstage, nl)
                            for r in range(m):
                                for ln in range(nl):
                                    slope = 0.0
                                    for kk in range(7):
                                        slope += mid_w[kk] * ks[kk, r, ln]
                                    sc = atol + rtol * max(abs(sa[r, ln]), abs(snew[r, ln]))
                                    errl[ln] = max(errl[ln],
                                                   h * abs(dstage[r, ln] - slope) / sc)
                        err = 0.0
                        for ln in range(nl):
                            if not act[ln]:
                                continue
                            if not np.isfinite(errl[ln]):
                                failed[bi, ln] = 1
                                act[ln] = False
                                continue
                            err = max(err, errl[ln])
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
                    _propagate(cache_e, cache_f, slot, 6, za, u, u_on)
                    for r in range(m):
                        for ln in range(nl):
                            sa[r, ln] = snew[r, ln]
                    ta = tb
                    have_step = False
                    fsal = True
                # nonlinear states at target: end of step, or dense output inside it
                if abs(target - tb) <= 1e-12 * max(1.0, tb):
                    for r in range(m):
                        for ln in range(nl):
                            s[r, ln] = snew[r, ln]
                else:
                    theta = (target - ta) / h
                    for kk in range(7):
                        poly = 0.0
                        tp = theta
                        for jp in range(pd.shape[1]):
                            poly += pd[kk, jp] * tp
                            tp *= theta
                        wts[kk] = h * poly
                    for r in range(m):
                        for ln in range(nl):
                            acc = sa[r, ln]
                            for kk in range(7):
                                acc += wts[kk] * ks[kk, r, ln]
                            s[r, ln] = acc
            # exact linear state at target
            dt = target - t
            if dt != last_dt:
                last_dt = dt
                _exps_at(lam_b, dt, cache_e, cache_f, n_slots, 0)
            _propagate(cache_e, cache_f, n_slots, 0, z, u, u_on)
            t = target
            if m > 0 and hard:
                # a breakpoint: resynchronise the step start with the exact state at
                # the event and choose the next step size afresh
                for q in range(n):
                    for ln in range(nl):
                        za[q, ln] = z[q, ln]
                for r in range(m):
                    for ln in range(nl):
                        sa[r, ln] = s[r, ln]
                ta = t
                have_step = False
                fsal = False
                restart = True
        elif kind == 1:
            col = op_arg[g, j]
            for ln in range(nl):
                if lanecol[bi, col, ln] > 0.5:
                    for q in range(n):
                        z[q, ln] = zero
                        za[q, ln] = zero
                    for r in range(m):
                        s[r, ln] = s0[bi, r, ln]
                        sa[r, ln] = s0[bi, r, ln]
            restart = True
        elif kind == 2:
            col = op_arg[g, j] // 1024
            cmt = op_arg[g, j] % 1024
            for q in range(n):
                for ln in range(nl):
                    z[q, ln] += lanecol[bi, col, ln] * vinv[bi, q, cmt, ln]
                    za[q, ln] = z[q, ln]
            restart = True
        elif kind == 3:
            rs = op_arg[g, j]
            for q in range(n):
                for ln in range(nl):
                    u[q, ln] = zero
                for w in range(n):
                    for ln in range(nl):
                        u[q, ln] += vinv[bi, q, w, ln] * rates[bi, rs, w, ln]
            u_on = False
            for q in range(n):
                for ln in range(nl):
                    if u[q, ln] != zero:
                        u_on = True
            restart = True
        else:
            k_out = op_arg[g, j]
            for w in range(n):
                if not (keep_states or out_rows[w]):
                    continue
                if _NQ <= _UNROLL_MODES:
                    for ln in range(nl):
                        acc = 0.0
                        for q in range(_NQ):
                            acc += (vm_b[w, q, ln] * z[q, ln]).real
                        yfull[w, ln] = acc
                else:
                    for ln in range(nl):
                        yfull[w, ln] = 0.0
                    for q in range(_NQ):
                        for ln in range(nl):
                            yfull[w, ln] += (vm_b[w, q, ln] * z[q, ln]).real
            for r in range(m):
                for ln in range(nl):
                    yfull[n + r, ln] = s[r, ln]
            outputs(t, yfull, p, ovals, nl)
            if stream:
                for w in range(n_out):
                    # lanes up to the first 64-byte boundary one by one, then whole lines
                    head = min(((-_addr(out_tm, w, k_out, shift + l0)) & 63) >> 3, l1 - l0)
                    for ln in range(l0, l0 + head):
                        _nt_store(out_tm, w, k_out, shift + ln, ovals[w, ln])
                    ln = l0 + head
                    while ln + 8 <= l1:
                        _nt_store8(out_tm, w, k_out, shift + ln, ovals, w, ln)
                        ln += 8
                    for lt in range(ln, l1):
                        _nt_store(out_tm, w, k_out, shift + lt, ovals[w, lt])
                if not keep_states:
                    continue
            for ln in range(nl):
                row = om[ln]
                if row < 0:
                    continue
                if not stream:
                    for w in range(n_out):
                        if tm:
                            out_tm[w, k_out, row] = ovals[w, ln]
                        else:
                            out[w, row, k_out] = ovals[w, ln]
                if keep_states:
                    for w in range(n + m):
                        states[row, k_out, w] = yfull[w, ln]
    if stream:
        _fence()


@njit(parallel=True, cache=True, nogil=True, error_model="numpy", fastmath=_FM)
def kernel(lam, vmat, vinv, pvec, s0, needed, active, group, op_kind, op_arg,
           op_time, op_stop, op_len, lanecol, rates, out_rows, out_map, out, out_tm, states, rtol,
           atol, c, a, b, e, pd, max_step):  # pragma: no cover - compiled
    """Solve every block's op list; returns a failure flag per block and lane.

    Arrays are (block, ..., lane). Linear compartments are carried exactly in modal
    coordinates; nonlinear states by Dormand–Prince 5(4) with error control, the step
    shared by the block's lanes (the largest error of its active lanes decides). Every event
    node (``ADVANCE`` with arg 1: dose, infusion start or stop, reset) is a breakpoint: no
    step crosses it, the step is restarted there and its size chosen afresh
    (:func:`_initial_step`), because the modal input changes there and the previous step
    size says nothing about what follows. ``lanecol[block, column, lane]`` holds the lanes'
    bolus amounts (``BOLUS``) and reset flags (``RESET``, 1 where the lane resets).
    """
    n_blocks = lam.shape[0]
    failed = np.zeros((n_blocks, lam.shape[2]), dtype=np.int64)
    # the dense output at θ = c[7] = ½ and its derivative, as weights of the stages
    mid_v = np.zeros(7)
    mid_w = np.zeros(7)
    for kk in range(7):
        for jp in range(pd.shape[1]):
            mid_v[kk] += pd[kk, jp] * c[7] ** (jp + 1)
            mid_w[kk] += (jp + 1) * pd[kk, jp] * c[7] ** jp
    for bi in prange(n_blocks):
        _block(bi, lam, vmat, vinv, pvec, s0, needed, active, group, op_kind, op_arg, op_time,
               op_stop, op_len, lanecol, rates, out_rows, out, out_tm, states, out_map, rtol,
               atol, c,
               a, b, e, pd, max_step, mid_v, mid_w, failed)
    return failed
