"""Population engine: many subjects at once, linear PK exact, nonlinear states adaptive.

For models whose compartments are linear (no fluxes), possibly driving nonlinear states
(effect, indirect response, mechanism). Per subject the linear system is diagonalised once,
K = V diag(λ) V⁻¹, and carried in modal coordinates z = V⁻¹A, where an interval of length h
with constant input r is exact: z ← e^{λh} z + h φ₁(λh) V⁻¹ r, φ₁(x) = (eˣ − 1)/x. The
nonlinear states are integrated with the Dormand–Prince 5(4) pair under error control
(``rtol``, ``atol``), reading the amounts they need at each stage exactly from the modal
solution; steps are powers of two (or end at a breakpoint), so exponentials are reused.
Every dose, infusion start and stop is a breakpoint: no step crosses it, and the step
restarts there with a size chosen afresh. The error is controlled at the end of each step
and, through the defect of the dense output, inside it, where output times read. A compiled
kernel (numba) solves blocks of :func:`block_lanes` subjects with one step sequence, every
loop running across the block's subjects (SIMD), blocks in parallel; it is generated per model
structure and outputs and cached on disk, so it is compiled once, ever
(:mod:`ketasim.engine.kernels`). Blocks are aligned on subject numbers, so results do not
depend on the chunk size or the number of threads. Subjects are processed in chunks, into
reused arrays, so memory is bounded by the requested output.

Subjects whose eigenvector matrix is ill-conditioned (near-repeated eigenvalues) are solved
with the ODE engine instead, and counted in ``Result.messages``. Steady-state (SS) records
and time-varying covariates are not supported here (use the analytic or ODE engine).

>>> PopulationEngine().rtol
1e-08
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
import sys
import threading
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ketasim.dosing.events import EventTable
from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import WEIGHT_RANGE_KG, Regimen, check_weight
from ketasim.dosing.schedule import Schedule, TimingDiffersError, build_schedule
from ketasim.engine.core import Engine, SubjectEngine
from ketasim.engine.prepare import Prepared, SubjectProblem, resolve_compartments, row_order
from ketasim.engine.result import Result, Status
from ketasim.errors import DoseError, EventError, ModelError, SolverError
from ketasim.model.expr import Expression
from ketasim.model.model import Model

# numba is a dependency; without it the kernel runs as plain Python and warns once
# (ketasim.engine.kernels). Checked without importing numba, which takes ~0.2 s.
HAVE_NUMBA = importlib.util.find_spec("numba") is not None

ADVANCE, RESET, BOLUS, RATES, OBS = 0, 1, 2, 3, 4
# subjects per block: the lanes of the kernel's loops. Narrower blocks leave the vector
# loops short (loop overhead per lane), wider ones take more steps (the worst lane decides)
# and their per-block exponential caches (17 step sizes x 8 stages x modes x lanes, twice)
# outgrow the L2 cache. Measured (docs/engines.md): 64 lanes is fastest for the reference
# model's 5 modes (kernel 62 -> 55 us/subject, 1 thread), 32 for the racemic model's 32.
LANES = 32
WIDE_LANES = 64
WIDE_MAX_MODES = 8


def block_lanes(model: Model) -> int:
    """Subjects per kernel block for ``model``: :data:`WIDE_LANES` when the model has at
    most :data:`WIDE_MAX_MODES` compartments (modes), else :data:`LANES`. A function of the
    model only, so a subject's block, hence its result, never depends on the chunk size."""
    return WIDE_LANES if model.n_cmt <= WIDE_MAX_MODES else LANES


_KERNEL_LOCK = threading.Lock()  # one kernel at a time in this process (see _call)


def _new_kernel_lock() -> None:  # a forked child does not inherit a lock held by a thread
    global _KERNEL_LOCK
    _KERNEL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_kernel_lock)

_NONE = np.empty((0, 0, 0))  # the kernel's output array that a run does not use

# Dormand–Prince 5(4) tableau (Dormand & Prince 1980, J Comput Appl Math 6:19-26, Table 2)
# stage fractions; the eighth (½) is where the kernel checks its dense output's defect
_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0, 0.5])
_A = np.array([
    [0, 0, 0, 0, 0, 0],
    [1 / 5, 0, 0, 0, 0, 0],
    [3 / 40, 9 / 40, 0, 0, 0, 0],
    [44 / 45, -56 / 15, 32 / 9, 0, 0, 0],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
])
_B = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0])
_BHAT = np.array([5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40])
_E = _B - _BHAT
# Continuous extension for dense output (Shampine 1986, Math Comp 46:135-150), as used by
# scipy's RK45: y(t0 + θh) = y0 + h Σ_k K_k Σ_j P[k, j] θ^(j+1)
_P = np.array([
    [1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 131558114200 / 32700410799, -68118460800 / 10900136933,
     87487479700 / 32700410799],
    [0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
    [0.0, 127303824393 / 49829197408, -318862633887 / 49829197408,
     701980252875 / 199316789632],
    [0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
    [0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423],
])


@dataclass
class PopulationEngine(Engine):
    """Batched solver for populations sharing a regimen (see module docstring).

    ``rtol``/``atol`` (at most 1e-4) bound the nonlinear states' error per step, at the step's
    end (Dormand–Prince 5(4) estimate) and inside it (defect of the dense output that output
    times read); every dose, infusion start and stop is a breakpoint where the step restarts
    with a fresh size. On the reference problem every output then stays within ``rtol``
    relative to a tight solution (docs/engines.md). Linear compartments are exact.
    ``chunk_size`` subjects are solved per kernel call, in blocks of :func:`block_lanes`
    subjects that share a step sequence (SIMD across subjects). ``threads``: how many threads
    the kernel uses (default: numba's, all cores; at most ``NUMBA_NUM_THREADS``).
    ``keep_states``: whether :meth:`run` (and so :func:`~ketasim.engine.simulate`) also
    returns every state at every output time; off by default, only the outputs are computed
    and stored.
    """

    rtol: float = 1e-8
    atol: float = 1e-10
    chunk_size: int = 2000
    max_condition: float = 1e6
    max_step: float = 8.0
    threads: int | None = None
    keep_states: bool = False
    name: str = "population"
    # output buffers of earlier chunks, reused once their chunks are dropped (also from one
    # iter_chunks call to the next: a fresh 80-MB buffer costs ~6 ms of page faults)
    _pool: _BufferPool = field(default_factory=lambda: _BufferPool(), init=False, repr=False,
                               compare=False)

    def __post_init__(self) -> None:
        if not (0 < self.rtol <= 1e-4 and 0 < self.atol <= 1e-4):
            raise ModelError("tolerances", f"rtol={self.rtol}, atol={self.atol}",
                             "use tolerances between 0 and 1e-4 (defaults 1e-8 and 1e-10)")
        if self.chunk_size < 1:
            raise ModelError("chunk_size", f"is {self.chunk_size}", "use a positive chunk size")
        if self.threads is not None and self.threads < 1:
            raise ModelError("threads", f"is {self.threads}",
                             "use a positive number of threads, or None for all cores")

    def check(self, model: Model) -> None:
        """Raise :class:`ModelError` unless ``model``'s compartments are linear."""
        if not model.has_linear_compartments:
            raise ModelError("engine", f"model {model.name} has nonlinear fluxes between "
                             "compartments; the population engine needs linear compartments",
                             "use engine=OdeEngine()")

    def kernel(self, model: Model, outputs: Sequence[str]) -> Any:
        """The compiled kernel for ``model`` and ``outputs``: loaded from the on-disk kernel
        cache (:mod:`ketasim.engine.kernels`), compiled there on first use ever."""
        from ketasim.engine.kernels import load_kernel
        return load_kernel(model, outputs)

    # ------------------------------------------------------------------ the Engine protocol
    def run_prepared(self, job: Prepared) -> Result:
        """Solve a prepared request (any dataset): see :meth:`run_dataset`.

        One regimen for every subject with output times only goes straight to :meth:`run`.
        """
        model = job.model
        if job.shared is not None and job.times.size and job.observations_only:
            r = self.run(model, job.shared, covariates=job.covariates,
                         parameters=job.parameters, times=job.times,
                         n_subjects=job.n_subjects, throw=job.throw)
            if not np.array_equal(job.ids, np.arange(1, job.n_subjects + 1)):
                r = replace(r, id=np.repeat(job.ids, len(job.times)))
            return r
        return self.run_dataset(job)

    def run_dataset(self, job: Prepared) -> Result:
        """Every subject of a dataset, whatever its records, rows in the dataset's order.

        Subjects with the same event structure (dose records' times, EVID, CMT, RATE, DUR,
        II, ADDL, SS and route, and the times of their output rows) form a group that the
        kernel solves at once; amounts, covariates and parameters differ freely within it.
        Subjects the kernel cannot take — steady-state records, a model covariate that
        changes between a subject's records, an output row followed by a dose or reset at
        the same time, no dose records — are solved by the analytic (linear model) or ODE
        engine, and counted in ``Result.messages``.
        """
        model = job.model
        self.check(model)
        table = job.table
        subjects = [sub for _, sub in table.subjects()]
        # each subject's records (EventTable keeps a subject's records together)
        bounds = np.cumsum([0] + [sub.n_records for sub in subjects])
        rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # mask, order, row times
        groups: dict[bytes, list[int]] = {}
        fallback: list[int] = []
        for k, sub in enumerate(subjects):
            mask, order = row_order(sub.time, sub.evid, job.times, job.observations_only)
            t_rows = np.concatenate([sub.time[mask], job.times])[order]
            rows.append((mask, order, t_rows))
            if not len(t_rows):
                continue
            if not _batchable(model, sub, mask):
                fallback.append(k)
                continue
            groups.setdefault(_structure_key(sub, t_rows), []).append(k)
        offsets = np.concatenate([[0], np.cumsum([len(r[2]) for r in rows])]).astype(np.int64)
        n_rows = int(offsets[-1])
        keep = list(model.outputs)
        outputs = {name: np.full(n_rows, np.nan) for name in keep}
        states = np.full((n_rows, model.n_states) if self.keep_states else (n_rows, 0), np.nan)
        messages: list[str] = []
        failed = False
        for members in groups.values():
            msgs, ok = self._solve_group(job, [subjects[k] for k in members], members,
                                         rows, offsets, outputs, states)
            messages.extend(msgs)
            failed = failed or not ok
        if fallback:
            engine = _subject_engine(model)
            recs = np.concatenate([np.arange(bounds[k], bounds[k + 1]) for k in fallback])
            idx = np.array(fallback)
            sub_job = replace(job, ids=job.ids[idx], records=table.take(recs), shared=None,
                              covariates={n: v[idx] for n, v in job.covariates.items()},
                              parameters={n: v[idx] for n, v in job.parameters.items()})
            r = engine.run_prepared(sub_job)
            start = 0
            for k in fallback:
                n_k = len(rows[k][2])
                dst = slice(offsets[k], offsets[k] + n_k)
                for name in keep:
                    outputs[name][dst] = r.outputs[name][start:start + n_k]
                if self.keep_states:
                    states[dst] = r.states[start:start + n_k]
                start += n_k
            messages.append(f"{len(fallback)} subject(s) solved with the {engine.name} engine "
                            "(steady-state records, covariates changing within a subject, an "
                            "output before a dose at the same time, or no doses)")
            messages.extend(r.messages)
            failed = failed or not r.ok
        ids = np.repeat(job.ids, np.diff(offsets))
        time = np.concatenate([r[2] for r in rows]) if rows else np.zeros(0)
        evid = np.concatenate([
            np.concatenate([sub.evid[mask], np.zeros(len(job.times), dtype=np.int64)])[order]
            for sub, (mask, order, _) in zip(subjects, rows, strict=True)])
        state_units = {c.name: "mg" for c in model.compartments}
        state_units.update({k: st.unit for k, st in model.states.items()})
        return Result(model.name, self.name, ids, time, evid,
                      model.state_names if self.keep_states else [], states, outputs,
                      {k: model.outputs[k].unit for k in keep},
                      status=Status.FAILED if failed else Status.OK, state_units=state_units,
                      molar_masses=_molar_masses(model, keep), messages=tuple(messages))

    def _solve_group(self, job: Prepared, subs: list[EventTable], members: list[int],
                     rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                     offsets: np.ndarray, outputs: dict[str, np.ndarray],
                     states: np.ndarray) -> tuple[list[str], bool]:
        """Solve subjects sharing one event structure, into their rows of the result."""
        model = job.model
        first = subs[0]
        dose = np.flatnonzero(np.isin(first.evid, (1, 3, 4)))
        template = EventTable(id=first.id[dose], time=first.time[dose],
                              evid=first.evid[dose], amt=first.amt[dose],
                              cmt=first.cmt[dose], rate=first.rate[dose],
                              dur=first.dur[dose], ii=first.ii[dose], addl=first.addl[dose],
                              ss=first.ss[dose], route=first.route[dose])
        amounts = np.stack([sub.amt[np.isin(sub.evid, (1, 3, 4))] for sub in subs])
        idx = np.array(members)
        covs = {n: v[idx] for n, v in job.covariates.items() if n in model.covariates}
        for c in first.covariates:
            if c in model.covariates:  # constant within each subject (checked)
                covs[c] = np.array([sub.covariates[c][0] for sub in subs])
        pars = {n: v[idx] for n, v in job.parameters.items()}
        times = np.unique(rows[members[0]][2])
        setup = self._setup(model, template, covs, pars, times, len(subs), None, None,
                            amounts=amounts)
        n, n_t = len(subs), len(times)
        out = np.empty((len(setup.keep), n, n_t))
        st = np.empty((n, n_t, model.n_states) if self.keep_states else (0, 0, 0))
        messages: list[str] = []
        ok = True
        for start in range(0, n, self.chunk_size):
            stop = min(n, start + self.chunk_size)
            msgs, ok_c = self._solve(setup, start, stop, 0, out, st, job.throw)
            messages.extend(msgs)
            ok = ok and ok_c
        pos = np.searchsorted(times, rows[members[0]][2])
        for j, k in enumerate(members):
            dst = slice(offsets[k], offsets[k + 1])
            for q, name in enumerate(setup.keep):
                outputs[name][dst] = out[q, j, pos]
            if self.keep_states:
                states[dst] = st[j, pos]
        return messages, ok

    # ------------------------------------------------------------------ public API
    def run(self, model: Model, doses: EventTable | Regimen | str, *,
            covariates: Mapping[str, Any] | None = None,
            parameters: Mapping[str, Any] | None = None,
            times: Sequence[float] | np.ndarray, n_subjects: int | None = None,
            throw: bool = False, outputs: Sequence[str] | None = None,
            keep_states: bool | None = None,
            record_covariates: Mapping[str, np.ndarray] | None = None) -> Result:
        """Solve all subjects into one :class:`Result` (rows: subject × time).

        The kernel writes every chunk straight into the result's arrays (nothing is
        concatenated). ``keep_states`` defaults to the engine's (off: outputs only).
        """
        keep_states = self.keep_states if keep_states is None else keep_states
        setup = self._setup(model, doses, covariates, parameters, times, n_subjects, outputs,
                            record_covariates)
        n, n_t = setup.n, len(setup.times)
        out = np.empty((len(setup.keep), n, n_t))
        states = np.empty((n, n_t, model.n_states) if keep_states else (0, 0, 0))
        messages: list[str] = []
        failed = False
        for start in range(0, n, self.chunk_size):
            stop = min(n, start + self.chunk_size)
            msgs, ok = self._solve(setup, start, stop, 0, out, states, throw)
            messages.extend(msgs)
            failed = failed or not ok
        subjects = np.arange(1, n + 1)
        state_units = {c.name: "mg" for c in model.compartments}
        state_units.update({k: st.unit for k, st in model.states.items()})
        return Result(
            model.name, self.name, np.repeat(subjects, n_t), np.tile(setup.times, n),
            np.zeros(n * n_t, dtype=np.int64), model.state_names if keep_states else [],
            states.reshape(n * n_t, -1) if keep_states else np.empty((n * n_t, 0)),
            {k: out[j].reshape(-1) for j, k in enumerate(setup.keep)},
            {k: model.outputs[k].unit for k in setup.keep},
            status=Status.FAILED if failed else Status.OK, state_units=state_units,
            molar_masses=_molar_masses(model, setup.keep), messages=tuple(messages))

    def iter_chunks(self, model: Model, doses: EventTable | Regimen | str, *,
                    covariates: Mapping[str, Any] | None = None,
                    parameters: Mapping[str, Any] | None = None,
                    times: Sequence[float] | np.ndarray,
                    n_subjects: int | None = None, throw: bool = False,
                    outputs: Sequence[str] | None = None,
                    keep_states: bool = False,
                    record_covariates: Mapping[str, np.ndarray] | None = None
                    ) -> Generator[PopulationChunk, None, None]:
        """Yield one :class:`PopulationChunk` per ``chunk_size`` subjects.

        Only the named ``outputs`` (default: all) are computed and kept, and the states only
        with ``keep_states``, so memory per chunk is what the caller asked for. A chunk's
        arrays are reused for a later chunk once nothing refers to them any more (the
        previous chunk dropped), so streaming allocates three chunks' worth, not one per
        chunk: the next chunk is solved in a background thread while the caller works on
        this one.
        A chunk's output arrays are (subjects, times) views of a time-major buffer (Fortran
        order: a time's subjects are adjacent), which the kernel writes with streaming
        stores; ``np.ascontiguousarray`` gives a row-major copy where one is needed.
        ``record_covariates`` gives covariates per subject and dose record, shape
        (subjects, dose records) in the order of the regimen's doses (e.g. random effects of
        an occasion); they may change a dose's F, lag or duration only.
        """
        setup = self._setup(model, doses, covariates, parameters, times, n_subjects, outputs,
                            record_covariates)
        n_t = len(setup.times)
        rows = min(self.chunk_size, setup.n)
        shape = (len(setup.keep), n_t, rows)  # time-major (see above)
        sshape = (rows, n_t, model.n_states) if keep_states else (0, 0, 0)
        state_units = {c.name: "mg" for c in model.compartments}
        state_units.update({k: st.unit for k, st in model.states.items()})

        def submit(start: int) -> tuple[int, np.ndarray, np.ndarray, Any]:
            with self._pool.lock:
                buf, states = self._pool.take(shape, sshape)
            stop = min(setup.n, start + self.chunk_size)
            return stop, buf, states, ahead.submit(self._solve, setup, start, stop, start,
                                                   buf, states, throw, True)

        from concurrent.futures import ThreadPoolExecutor
        starts = range(0, setup.n, self.chunk_size)
        # one chunk ahead: the next chunk is solved in a thread (the kernel releases the GIL)
        # while the caller works on this one
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ketasim-chunk") as ahead:
            pending = submit(starts[0]) if len(starts) else None
            for k, start in enumerate(starts):
                assert pending is not None
                stop, buf, states, future = pending
                messages, ok = future.result()
                pending = submit(starts[k + 1]) if k + 1 < len(starts) else None
                nc = stop - start
                out = buf.transpose(0, 2, 1)
                del buf, future
                yield PopulationChunk(
                    model_name=model.name, subject=np.arange(start, stop) + 1,
                    times=setup.times,
                    outputs={key: out[j, :nc] for j, key in enumerate(setup.keep)},
                    output_units={key: model.outputs[key].unit for key in setup.keep},
                    state_names=model.state_names if keep_states else [],
                    states=states[:nc] if keep_states else None, state_units=state_units,
                    status=Status.OK if ok else Status.FAILED, messages=tuple(messages))
                del out, states

    # ------------------------------------------------------------------ internals
    def _setup(self, model: Model, doses: EventTable | Regimen | str,
               covariates: Mapping[str, Any] | None, parameters: Mapping[str, Any] | None,
               times: Sequence[float] | np.ndarray, n_subjects: int | None,
               outputs: Sequence[str] | None,
               record_covariates: Mapping[str, np.ndarray] | None,
               amounts: np.ndarray | None = None) -> _Setup:
        self.check(model)
        times = np.unique(np.asarray(times, dtype=float))
        if times.size == 0 or np.any(times < 0) or not np.all(np.isfinite(times)):
            raise EventError("times", "output times must be finite, >= 0 and not empty",
                             "give output times in hours")
        n = n_subjects or _count(covariates, parameters)
        template, per_kg, source = _template(model, doses)
        weights = None
        if per_kg.any():
            w = (covariates or {}).get("weight")
            if w is None:
                raise DoseError("weight", "a mg/kg dose needs the body weight",
                                "give covariates={'weight': ...} in kg")
            weights = np.broadcast_to(np.asarray(w, dtype=float), (n,))
            lo, hi = WEIGHT_RANGE_KG
            wrong = np.flatnonzero(~((weights >= lo) & (weights <= hi)))  # nan too
            if wrong.size:
                check_weight(float(weights[wrong[0]]))  # raises, naming the value
        keep = list(outputs) if outputs is not None else list(model.outputs)
        for name in keep:
            if name not in model.outputs:
                raise ModelError("outputs", f"{name!r} is not an output of {model.name}",
                                 f"use some of {', '.join(model.outputs)}")
        for k in record_covariates or {}:
            if k not in model.covariates:
                raise ModelError("record_covariates", f"{k!r} is not a covariate of "
                                 f"{model.name}", "name covariates the model declares")
        from ketasim.engine.kernels import lane_code
        return _Setup(model=model, kernel=self.kernel(model, keep), code=lane_code(model, keep),
                      template=template,
                      per_kg=per_kg, source=source, weights=weights, n=n,
                      covariates=covariates, parameters=parameters,
                      record_covariates=record_covariates, times=times, keep=keep,
                      amounts=amounts)

    def _solve(self, setup: _Setup, start: int, stop: int, row0: int, out: np.ndarray,
               states: np.ndarray, throw: bool, time_major: bool = False
               ) -> tuple[list[str], bool]:
        """Solve subjects [start, stop) into rows [start - row0, stop - row0) of ``out``
        (output, row, time), or of a ``time_major`` ``out`` (output, time, row), and of
        ``states``. The kernel solves whole aligned blocks of :func:`block_lanes`
        subjects (those around the chunk's ends too), so that a subject's block, hence its
        result, is the same whatever the chunk size."""
        model = setup.model
        lanes = block_lanes(model)
        lo = start - start % lanes
        hi = min(setup.n, -(-stop // lanes) * lanes)
        ext = np.arange(lo, hi)
        ne = len(ext)
        covs = _take(setup.covariates, ext, model.covariates)
        pars = _take(setup.parameters, ext)  # an unknown name: model.individual raises
        template = setup.template
        n_rec = template.n_records
        rec_covs = {k: v for k, v in template.covariates.items() if k in model.covariates}
        for k, v in (setup.record_covariates or {}).items():
            rec_covs[k] = np.asarray(v, dtype=float)[ext][:, setup.source]
        ind = model.individual(covs, pars)
        ind = {k: np.broadcast_to(v, (ne,)).copy() for k, v in ind.items()}
        cmt_idx = np.clip(template.cmt - 1, 0, model.n_cmt - 1)
        if rec_covs:
            # dose-record covariates (e.g. the device number of a nasal spray) may change a
            # dose's F, lag or duration, but not the system: checked here
            both = {k: np.asarray(v, dtype=float)[:, None] if np.ndim(v) else v
                    for k, v in covs.items()}
            both.update({k: np.broadcast_to(v, (ne, n_rec)) for k, v in rec_covs.items()})
            ind_rec = model.individual(both, {k: np.asarray(v)[:, None] if np.ndim(v) else v
                                              for k, v in pars.items()})
            ind_rec = {k: np.broadcast_to(v, (ne, n_rec)) for k, v in ind_rec.items()}
            ind = {k: v[:, 0].copy() for k, v in ind_rec.items()}
            k_rec = model.system_matrix(ind_rec)
            varies = not np.allclose(k_rec, k_rec[:, :1])
            if model.states:
                pv = model.parameter_vector(ind_rec)
                varies = varies or not np.allclose(pv, pv[:, :1])
            if varies:
                raise EventError("covariates", "a covariate that changes between records "
                                 "changes the model's rates in a population run",
                                 "use the analytic or ODE engine for time-varying covariates")
            props_rec = model.dose_properties(ind_rec)
            cols = np.arange(n_rec)
            f = props_rec["f"][:, cols, cmt_idx]
            lag = props_rec["lag"][:, cols, cmt_idx]
            mrate = props_rec["rate"][:, cols, cmt_idx]
            mdur = props_rec["duration"][:, cols, cmt_idx]
        else:
            props = model.dose_properties(ind)
            f = props["f"][:, cmt_idx]
            lag = props["lag"][:, cmt_idx]
            mrate = props["rate"][:, cmt_idx]
            mdur = props["duration"][:, cmt_idx]
        kmat = model.system_matrix(ind)
        pvec = np.ascontiguousarray(model.parameter_vector(ind))
        s0 = np.ascontiguousarray(model.initial_state(ind)[:, model.n_cmt:])
        if setup.amounts is not None:  # per subject (a dataset's own AMT), by dose record
            amounts = np.asarray(setup.amounts, dtype=float)[ext][:, setup.source]
        else:
            amounts = np.broadcast_to(template.amt, (ne, n_rec)).copy()
        if setup.weights is not None:
            amounts[:, setup.per_kg] *= setup.weights[ext][:, None]

        def schedule(sel: np.ndarray) -> Schedule:
            return build_schedule(template, n_cmt=model.n_cmt, f=f[sel],
                                  lag=lag[sel[0]] if len(sel) == 1 else lag[sel],
                                  amounts=amounts[sel], model_rate=mrate[sel],
                                  model_duration=mdur[sel])

        # blocks of ``lanes`` subjects, aligned on the population's subject numbers; a block's op
        # list is the shared schedule's when all subjects' event times agree, else the union
        # of its subjects' schedules (each lane then acts at its own events)
        nb = -(-ne // lanes)
        lane = np.arange(lanes)
        first = np.arange(nb) * lanes
        width = np.minimum(lanes, ne - first)
        used = lane[None, :] < width[:, None]
        lane_src = np.where(used, first[:, None] + lane[None, :], first[:, None])
        block_group = np.zeros(nb, dtype=np.int64)
        try:
            groups = [_flatten([(np.arange(ne), schedule(np.arange(ne)))], ne, setup.times,
                                model.n_cmt)]
        except TimingDiffersError:
            groups = []
            for kb in range(nb):
                sel = np.arange(first[kb], first[kb] + width[kb])
                try:
                    parts = [(np.arange(len(sel)), schedule(sel))]
                except TimingDiffersError:
                    parts = [(np.array([i]), schedule(sel[i:i + 1])) for i in range(len(sel))]
                groups.append(_flatten(parts, len(sel), setup.times, model.n_cmt))
                block_group[kb] = kb
        ops = _op_arrays(groups, block_group, lane_src, used)
        lam, vmat, vinv, bad = _diagonalise(kmat, self.max_condition,
                                            _reachable(kmat, np.unique(cmt_idx)),
                                            threads=self._threads())
        rows = ext[lane_src] - row0
        in_chunk = used & (ext[lane_src] >= start) & (ext[lane_src] < stop)
        active = used & ~bad[lane_src]
        out_map = np.where(in_chunk & active, rows, -1).astype(np.int64)

        # the kernel's p: the individual values, then the hoisted per-subject values
        pk = pvec
        if setup.code.hoisted:
            from ketasim.engine.kernels import hoisted_values
            pk = np.concatenate([pvec, hoisted_values(setup.code, ind, ne)], axis=1)

        def blocked(x: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(np.moveaxis(x[lane_src], 1, -1))

        kernel_args = (
            blocked(lam), blocked(vmat), blocked(vinv), blocked(pk), blocked(s0),
            _needed_compartments(model), np.ascontiguousarray(active), block_group,
            ops["kind"], ops["arg"], ops["time"], ops["stop"], ops["len"], ops["lanecol"],
            ops["rates"], _output_compartments(model, setup.keep), out_map,
            _NONE if time_major else out, out if time_major else _NONE, states,
            self.rtol, self.atol, _C, _A_FULL, _B, _E, _P, self.max_step)
        failed_bl = self._call(setup.kernel, kernel_args)
        failed = np.zeros(ne, dtype=bool)
        failed[lane_src[used]] = failed_bl[used] > 0
        messages = []
        chunk = (ext >= start) & (ext < stop)
        fallback = np.flatnonzero(bad & chunk)
        if fallback.size:
            # the matrix exponential (analytic engine) is exact for repeated eigenvalues; a
            # nonlinear model uses Radau, as SciPy's LSODA never frees its work arrays and
            # memory would grow with every fallback subject of a long stream
            from ketasim.engine.analytic import AnalyticEngine
            from ketasim.engine.ode import OdeEngine
            ode = AnalyticEngine() if model.is_linear else OdeEngine(method="Radau")
            messages.append(f"{fallback.size} subject(s) with near-repeated eigenvalues solved "
                            f"with the {ode.name} engine")
            for i in fallback:
                y = _ode_subject(model, ode, template, amounts[i], pvec[i], s0[i], f[i],
                                 lag[i], mrate[i], mdur[i], setup.times)
                vals = model.evaluate_outputs(setup.times, y, {k: v[i] for k, v in ind.items()})
                row = ext[i] - row0
                for j, k in enumerate(setup.keep):
                    if time_major:
                        out[j, :, row] = vals[k]
                    else:
                        out[j, row] = vals[k]
                if states.shape[1]:
                    states[row] = y
        n_failed = int(np.sum(failed & chunk & ~bad))
        if n_failed:
            messages.append(f"{n_failed} subject(s) reached the step-size limit")
            if throw:
                raise SolverError("engine", messages[-1], "loosen rtol/atol")
        return messages, not n_failed

    def _threads(self) -> int:
        """The threads a run uses: ``threads``, else numba's (all cores by default)."""
        if self.threads is not None:
            return self.threads
        if not HAVE_NUMBA:
            return 1
        import numba
        return int(numba.get_num_threads())

    def _call(self, kernel: Any, args: tuple[Any, ...]) -> np.ndarray:
        """Run the kernel with ``threads`` threads (when set), one kernel at a time in this
        process (each uses every core it is given; and numba's workqueue threading layer,
        where neither OpenMP nor TBB is installed, must not be entered from two threads)."""
        with _KERNEL_LOCK:
            if self.threads is None or not HAVE_NUMBA:
                return np.asarray(kernel(*args))
            import numba
            before = numba.get_num_threads()
            numba.set_num_threads(min(self.threads,
                                      getattr(numba.config, "NUMBA_NUM_THREADS", 1)))
            try:
                return np.asarray(kernel(*args))
            finally:
                numba.set_num_threads(before)


@dataclass
class _Setup:
    """What every chunk of one population run shares."""

    model: Model
    kernel: Any
    code: Any  # kernels.LaneCode: what the kernel's p holds beyond the individual values
    template: EventTable
    per_kg: np.ndarray
    source: np.ndarray
    weights: np.ndarray | None
    n: int
    covariates: Mapping[str, Any] | None
    parameters: Mapping[str, Any] | None
    record_covariates: Mapping[str, np.ndarray] | None
    times: np.ndarray
    keep: list[str]
    amounts: np.ndarray | None = None  # (subjects, template dose records) overriding AMT


def _aligned_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float array whose first element is 64-byte aligned (a cache line),
    as the kernel's whole-line streaming stores need (a view of a slightly larger array)."""
    size = math.prod(shape)
    raw = np.empty(size + 8)
    skip = (-raw.ctypes.data % 64) // 8
    return raw[skip:skip + size].reshape(shape)


class _BufferPool:
    """Output and state arrays of earlier chunks, for reuse once nothing else refers to them
    (their chunk was dropped). Holds at most three pairs (the chunk the caller holds, the one
    about to be handed over, the one being solved); ``take`` under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def take(self, shape: tuple[int, ...], sshape: tuple[int, ...]
             ) -> tuple[np.ndarray, np.ndarray]:
        """A free pooled pair of these shapes, else new arrays (pooled in place of a free
        pair of other shapes, or while the pool holds fewer than two)."""
        free_other = None
        for k in range(len(self.pairs)):
            out, states = self.pairs[k]
            # references: the pool's tuple and the two names here, plus getrefcount's
            # argument; a chunk's views of ``out`` refer to the memory's owner, out.base
            # (itself referred to by out, the name ``owner`` and getrefcount's argument)
            owner = out.base
            free = (sys.getrefcount(out) <= 3 and sys.getrefcount(states) <= 3
                    and (owner is None or sys.getrefcount(owner) <= 3))
            if free and out.shape == shape and states.shape == sshape:
                return out, states
            if free and free_other is None:
                free_other = k
            del out, states, owner
        pair = (_aligned_empty(shape), np.empty(sshape))
        if len(self.pairs) < 3:
            self.pairs.append(pair)
        elif free_other is not None:
            self.pairs[free_other] = pair
        return pair


@dataclass(frozen=True, eq=False)
class PopulationChunk:
    """One chunk of a population run: outputs as (subjects, times) arrays."""

    model_name: str
    subject: np.ndarray
    times: np.ndarray
    outputs: dict[str, np.ndarray]
    output_units: dict[str, str]
    state_names: list[str]
    states: np.ndarray | None
    state_units: dict[str, str]
    status: Status = Status.OK
    messages: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every subject solved."""
        return self.status is Status.OK


def concatenate_chunks(chunks: Sequence[PopulationChunk], engine: str) -> Result:
    """Join chunks into one long-format :class:`Result` (rows: subject × time)."""
    first = chunks[0]
    n_t = len(first.times)
    subjects = np.concatenate([c.subject for c in chunks])
    rows = len(subjects) * n_t
    parts = [c.states.reshape(-1, c.states.shape[-1]) for c in chunks if c.states is not None]
    states = np.concatenate(parts) if first.states is not None else np.empty((rows, 0))
    return Result(
        first.model_name, engine, np.repeat(subjects, n_t), np.tile(first.times, len(subjects)),
        np.zeros(rows, dtype=np.int64), first.state_names, states,
        {k: np.concatenate([c.outputs[k].reshape(-1) for c in chunks]) for k in first.outputs},
        first.output_units, status=Status.OK if all(c.ok for c in chunks) else Status.FAILED,
        state_units=first.state_units, messages=tuple(m for c in chunks for m in c.messages))


def _molar_masses(model: Model, keep: Sequence[str]) -> dict[str, float]:
    return {k: mm for k in keep if (mm := model.outputs[k].molar_mass) is not None}


def _subject_engine(model: Model) -> SubjectEngine:
    """The per-subject engine for subjects the kernel does not take."""
    if model.is_linear:
        from ketasim.engine.analytic import AnalyticEngine
        return AnalyticEngine()
    from ketasim.engine.ode import OdeEngine
    return OdeEngine()


def _batchable(model: Model, sub: EventTable, mask: np.ndarray) -> bool:
    """Whether the kernel solves this subject exactly as the per-subject engines do."""
    dose = np.isin(sub.evid, (1, 3, 4))
    if not dose.any() or np.any(sub.ss > 0):
        return False
    for c, v in sub.covariates.items():
        if c in model.covariates and np.ptp(v) > 0:
            return False
    # the kernel's outputs come after every event at their time; a record's row comes after
    # its own events only: a row record followed by a dose or reset at its time differs
    later = np.flatnonzero(dose)
    for i in np.flatnonzero(mask):
        j = later[later > i]
        if j.size and sub.time[j[0]] == sub.time[i]:
            return False
    return True


def _structure_key(sub: EventTable, t_rows: np.ndarray) -> bytes:
    """Subjects with equal keys share dose records but for their amounts, and row times."""
    dose = np.isin(sub.evid, (1, 3, 4))
    cols = np.stack([sub.time[dose], sub.evid[dose], sub.cmt[dose], sub.rate[dose],
                     sub.dur[dose], sub.ii[dose], sub.addl[dose], sub.ss[dose],
                     (sub.amt[dose] > 0).astype(float)]).astype(float)
    routes = "\x1f".join(str(r) for r in sub.route[dose]).encode()
    return b"|".join([np.array(cols.shape, dtype=np.int64).tobytes(), cols.tobytes(), routes,
                      np.asarray(t_rows, dtype=float).tobytes()])


_A_FULL = np.zeros((7, 7))
_A_FULL[:, :6] = _A


def _count(*groups: Mapping[str, Any] | None) -> int:
    n = 1
    for g in groups:
        for v in (g or {}).values():
            if np.ndim(v) == 1:
                n = max(n, len(v))
    return n


def _take(values: Mapping[str, Any] | None, idx: np.ndarray,
          allowed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values of subjects ``idx``; only the names in ``allowed`` (default: all)."""
    out: dict[str, Any] = {}
    for k, v in (values or {}).items():
        if allowed is not None and k not in allowed:
            continue
        arr = np.asarray(v, dtype=float)
        out[k] = arr if arr.ndim == 0 else arr[idx]
    return out


def _template(model: Model, doses: EventTable | Regimen | str
              ) -> tuple[EventTable, np.ndarray, np.ndarray]:
    """Dose records of one subject (CMT resolved), which amounts are per kg, and for each
    resolved record the index of the dose record it came from."""
    if isinstance(doses, str):
        doses = parse_regimen(doses)
    if isinstance(doses, Regimen):
        ordered = sorted(doses.doses, key=lambda d: d.time)
        table = doses.to_events(weight_kg=1.0 if any(d.per_kg for d in ordered) else None)
        per_kg = np.array([d.per_kg for d in ordered])
    else:
        table = doses
        if len(table.subject_ids) > 1:
            raise EventError("ID", "the population engine takes one subject's dosing records",
                             "give the shared regimen once; vary subjects by covariates")
        dose_rows = np.isin(table.evid, (1, 3, 4))
        table = table.take(np.flatnonzero(dose_rows))
        per_kg = np.zeros(table.n_records, dtype=bool)
    if np.any(table.ss > 0):
        raise EventError("SS", "steady-state records in a population run",
                         "use the analytic or ODE engine for SS dosing")
    flagged = resolve_compartments(model, table.with_covariates(
        _per_kg=per_kg.astype(float), _source=np.arange(table.n_records, dtype=float)))
    covs = dict(flagged.covariates)
    per_kg = covs.pop("_per_kg") > 0.5
    source = covs.pop("_source").astype(np.int64)
    resolved = EventTable(id=flagged.id, time=flagged.time, evid=flagged.evid, amt=flagged.amt,
                          cmt=flagged.cmt, rate=flagged.rate, dur=flagged.dur, ii=flagged.ii,
                          addl=flagged.addl, ss=flagged.ss, route=flagged.route, covariates=covs)
    return resolved, per_kg, source


@dataclass
class _OpList:
    """One op list (see the kernel) and the per-member values its ops index: ``columns``
    (bolus amounts, reset flags) and ``rate_sets`` (input rates after each change), both
    over the members it was built for."""

    rows: np.ndarray  # (ops, 3): kind, arg, time
    columns: list[np.ndarray]
    rate_sets: list[np.ndarray]


def _flatten(parts: list[tuple[np.ndarray, Schedule]], n_members: int, times: np.ndarray,
             n_cmt: int) -> _OpList:
    """The op list of ``parts`` (member positions, their schedule) and ``times``: every event
    node of every part is a hard stop; at a time, each part's actions (reset, bolus) act on
    its members only, and one rate change sets every part's rates after that time. Output
    times equal to an event time come after its actions."""
    columns: list[np.ndarray] = []
    current = np.zeros((n_members, n_cmt))
    rate_sets = [current.copy()]
    events = sorted((node.time, pi, ni) for pi, (_, sched) in enumerate(parts)
                    for ni, node in enumerate(sched.nodes))
    last: list[np.ndarray | None] = [None] * len(parts)  # a part's rates after its last node
    segments: list[np.ndarray] = []

    def observe(k0: int, k1: int) -> None:
        # output times k0..k1-1: a soft ADVANCE to each, then its OBS
        if k1 > k0:
            seg = np.zeros((2 * (k1 - k0), 3))
            seg[0::2, 0] = ADVANCE
            seg[0::2, 2] = times[k0:k1]
            seg[1::2, 0] = OBS
            seg[1::2, 1] = np.arange(k0, k1)
            segments.append(seg)

    t0 = min(events[0][0] if events else times[0], times[0])
    segments.append(np.array([[ADVANCE, 1, t0]], dtype=float))
    k_obs = 0
    e = 0
    while e < len(events):
        when = events[e][0]
        k1 = int(np.searchsorted(times, when, side="left"))
        observe(k_obs, k1)
        k_obs = max(k_obs, k1)
        ops: list[tuple[float, float, float]] = [(ADVANCE, 1, when)]
        changed = False
        while e < len(events) and events[e][0] == when:
            _, pi, ni = events[e]
            members, sched = parts[pi]
            node = sched.nodes[ni]
            for act in node.actions:
                if act.kind == "reset":
                    col = np.zeros(n_members)
                    col[members] = 1.0
                    columns.append(col)
                    ops.append((RESET, len(columns) - 1, 0.0))
                elif act.kind == "bolus":
                    assert act.amount is not None
                    col = np.zeros(n_members)
                    col[members] = act.amount
                    columns.append(col)
                    ops.append((BOLUS, (len(columns) - 1) * 1024 + act.cmt, 0.0))
            assert node.rates is not None
            previous = last[pi]
            if previous is None or not np.array_equal(node.rates, previous):
                current[members] = node.rates
                last[pi] = node.rates
                changed = True
            e += 1
        if changed:
            rate_sets.append(current.copy())
            ops.append((RATES, len(rate_sets) - 1, 0.0))
        segments.append(np.array(ops, dtype=float))
    observe(k_obs, len(times))
    return _OpList(np.concatenate(segments), columns, rate_sets)


def _op_arrays(groups: list[_OpList], block_group: np.ndarray, lane_src: np.ndarray,
               used: np.ndarray) -> dict[str, np.ndarray]:
    """The kernel's op arrays (one row per op list) and its per-block, per-lane values.

    With one op list its members are the subjects (``lane_src`` maps lanes to them); with
    one per block, each block's lanes."""
    n_g = len(groups)
    length = max(len(g.rows) for g in groups)
    kind = np.zeros((n_g, length), dtype=np.int64)
    arg = np.zeros((n_g, length), dtype=np.int64)
    tim = np.zeros((n_g, length))
    stop = np.zeros((n_g, length))
    for gi, g in enumerate(groups):
        arr = g.rows
        nr = len(arr)
        kind[gi, :nr] = arr[:, 0]
        arg[gi, :nr] = arr[:, 1]
        tim[gi, :nr] = arr[:, 2]
        adv = kind[gi, :nr] == ADVANCE
        tim[gi, :nr][~adv] = np.nan
        # time of the next event node (hard stop) at or after each op; the last time if none
        hard = adv & (arg[gi, :nr] == 1)
        nxt = np.full(nr, arr[adv, 2][-1])
        idx = np.flatnonzero(hard)
        pos = np.searchsorted(idx, np.arange(nr))
        has = pos < len(idx)
        nxt[has] = tim[gi, :nr][idx[pos[has]]]
        stop[gi, :nr] = nxt
    nb, lanes = lane_src.shape
    n_cols = max(1, max(len(g.columns) for g in groups))
    n_sets = max(len(g.rate_sets) for g in groups)
    n_cmt = groups[0].rate_sets[0].shape[1]
    lanecol = np.zeros((nb, n_cols, lanes))
    rates = np.zeros((nb, n_sets, n_cmt, lanes))
    if n_g == 1:
        g = groups[0]
        if g.columns:
            lanecol[:, :len(g.columns)] = np.moveaxis(np.stack(g.columns, axis=1)[lane_src], 1, -1)
        sets = np.stack(g.rate_sets, axis=1)  # (members, sets, n_cmt)
        rates[:] = np.moveaxis(sets[lane_src], 1, -1)
    else:
        local = np.where(used, np.arange(lanes)[None, :], 0)
        for k in range(nb):
            g = groups[block_group[k]]
            if g.columns:
                lanecol[k, :len(g.columns)] = np.stack(g.columns)[:, local[k]]
            sets = np.stack(g.rate_sets, axis=1)
            rates[k, :len(g.rate_sets)] = np.moveaxis(sets[local[k]], 0, -1)
    return {"kind": kind, "arg": arg, "time": tim, "stop": stop,
            "len": np.array([len(g.rows) for g in groups], dtype=np.int64),
            "lanecol": np.ascontiguousarray(lanecol), "rates": np.ascontiguousarray(rates)}


def _reachable(kmat: np.ndarray, dosed: np.ndarray) -> np.ndarray:
    """Mask of the compartments that the dosed ones reach through the system's flows and
    links (in any subject); the others hold nothing, ever."""
    adj = np.any(kmat != 0, axis=0)  # adj[target, source]
    live = np.zeros(kmat.shape[-1], dtype=bool)
    live[dosed] = True
    while True:
        grown = live | adj[:, live].any(axis=1)
        if np.array_equal(grown, live):
            return live
        live = grown


_DECOMPOSE_MIN = 256  # subjects per part, at least, when the decomposition is split
_eig_pool: tuple[int, Any] | None = None  # (the process that made it, the pool)


def _decompose_pool() -> Any:
    """This process's thread pool for the decompositions (a forked child makes its own: the
    parent's threads do not exist in it)."""
    global _eig_pool
    if _eig_pool is None or _eig_pool[0] != os.getpid():
        from concurrent.futures import ThreadPoolExecutor
        _eig_pool = (os.getpid(), ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                                     thread_name_prefix="ketasim-eig"))
    return _eig_pool[1]


def _decompose(kmat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues, eigenvectors V, V⁻¹ and the bound ‖V‖_F ‖V⁻¹‖_F on V's condition number
    of each matrix (nan where V is singular)."""
    lam, vmat = np.linalg.eig(kmat)
    with np.errstate(all="ignore"):
        try:
            vinv = np.linalg.inv(vmat)
        except np.linalg.LinAlgError:  # an exactly singular V somewhere: one by one
            vinv = np.full_like(vmat, np.nan)
            for i in range(len(vmat)):
                try:
                    vinv[i] = np.linalg.inv(vmat[i])
                except np.linalg.LinAlgError:
                    pass
        cond = (np.sqrt(np.sum(np.abs(vmat) ** 2, axis=(1, 2)))
                * np.sqrt(np.sum(np.abs(vinv) ** 2, axis=(1, 2))))
    return lam, vmat, vinv, cond


def _diagonalise(kmat: np.ndarray, max_condition: float, live: np.ndarray | None = None,
                 threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-decomposition per subject; flags subjects that are not safely diagonalisable.

    Only the compartments in ``live`` (default: all) are decomposed: where no flow leads from
    them to the others (what :func:`_reachable` returns), their block of the system is exact
    for every state a dose can produce, and the other compartments are given modes of their
    own (rate 0, unit vectors) that no input ever excites. For the racemic model's IV regimen
    this decomposes 14 of its 32 compartments (the route depots stay empty), ~10× less work.

    The condition number of the eigenvector matrix V is bounded from above by
    ‖V‖_F ‖V⁻¹‖_F (cheaper than the 2-norm's SVD, and never smaller)."""
    n = kmat.shape[-1]
    if live is not None and not live.all():
        idx = np.flatnonzero(live)
        lam_l, vmat_l, vinv_l, bad = _diagonalise(kmat[:, idx[:, None], idx], max_condition,
                                                  threads=threads)
        lam = np.zeros((len(kmat), n), dtype=lam_l.dtype)
        lam[:, idx] = lam_l
        vmat = np.broadcast_to(np.eye(n, dtype=vmat_l.dtype), kmat.shape).copy()
        vmat[:, idx[:, None], idx] = vmat_l
        vinv = np.broadcast_to(np.eye(n, dtype=vinv_l.dtype), kmat.shape).copy()
        vinv[:, idx[:, None], idx] = vinv_l
        return lam, vmat, vinv, bad
    parts = max(1, min(threads, len(kmat) // _DECOMPOSE_MIN))
    if parts > 1:
        # numpy's LAPACK calls release the GIL: the parts run on as many cores, and each
        # subject's decomposition is the same whatever part it falls in
        edges = np.linspace(0, len(kmat), parts + 1).astype(int).tolist()
        got = list(_decompose_pool().map(_decompose, [kmat[a:b] for a, b in
                                                      itertools.pairwise(edges)]))
        lam, vmat, vinv, cond = (np.concatenate([g[i] for g in got]) for i in range(4))
    else:
        lam, vmat, vinv, cond = _decompose(kmat)
    bad = ~np.isfinite(cond) | (cond > max_condition)
    if bad.any():
        vmat = np.where(bad[:, None, None], np.eye(kmat.shape[-1]), vmat)
        lam = np.where(bad[:, None], 0.0, lam)
        vinv = np.linalg.inv(vmat)
    scale = np.maximum(np.abs(lam).max(axis=1), 1e-300)
    if np.all(np.abs(lam.imag) <= 1e-13 * scale[:, None]):
        lam, vmat, vinv = lam.real, vmat.real, vinv.real
    return (np.ascontiguousarray(lam), np.ascontiguousarray(vmat), np.ascontiguousarray(vinv),
            bad)


def _compartments_read(model: Model, exprs: Sequence[Expression]) -> np.ndarray:
    """Mask of the compartments ``exprs`` read, directly or through state definitions."""
    c = model.compiled
    names: set[str] = set()
    for e in exprs:
        names |= e.names
    changed = True
    while changed:
        changed = False
        for k in c.state_defs:
            if k in names and not c.defs[k].names <= names:
                names |= c.defs[k].names
                changed = True
    return np.array([nm in names for nm in c.cmt_names], dtype=np.bool_)


def _needed_compartments(model: Model) -> np.ndarray:
    """Indices of the compartments whose amounts the nonlinear right-hand side reads."""
    mask = _compartments_read(model, list(model.compiled.state_rhs.values()))
    return np.flatnonzero(mask).astype(np.int64)


def _output_compartments(model: Model, keep: Sequence[str]) -> np.ndarray:
    """Boolean mask of the compartments the kept outputs read."""
    return _compartments_read(model, [model.compiled.outputs[k] for k in keep])


def _ode_subject(model: Model, ode: Any, template: EventTable, amounts: np.ndarray,
                 pvec: np.ndarray, s0: np.ndarray, f: np.ndarray, lag: np.ndarray,
                 mrate: np.ndarray, mdur: np.ndarray, times: np.ndarray) -> np.ndarray:
    """One subject with the ODE engine (fallback for non-diagonalisable systems)."""
    n_rec = template.n_records
    sched = build_schedule(template, n_cmt=model.n_cmt, f=f[None, :], lag=lag,
                           amounts=amounts[None, :], model_rate=mrate[None, :],
                           model_duration=mdur[None, :])
    y0 = np.concatenate([np.zeros(model.n_cmt), s0])
    prob = SubjectProblem(model, sched, np.broadcast_to(pvec, (n_rec, len(pvec))),
                          np.broadcast_to(y0, (n_rec, len(y0))))
    _, y = ode.solve(prob, times)
    return np.asarray(y)


__all__ = ["HAVE_NUMBA", "PopulationChunk", "PopulationEngine", "concatenate_chunks"]
