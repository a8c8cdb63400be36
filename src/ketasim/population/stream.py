"""Population PK runs of any size, streamed to Parquet one block at a time.

A run of N virtual patients is cut into blocks of :data:`BLOCK_SUBJECTS` (10,000). Block k
holds subjects ``k·10,000 + 1 …`` and samples its patients with
:func:`ketasim.distributed.block_seed` ``(seed, k)``: block 0 with ``seed`` itself, so a run
of up to 10,000 patients is exactly ``run_pk(..., seed=seed)``; later blocks with their own
child of ``SeedSequence(seed)``. Blocks are computed here or on a Dask cluster and written in
order, one row group per block (metrics) or per engine chunk (profiles), so memory holds one
block's results and the file is the same whatever the chunk size or number of workers.

Two layouts (``profiles``):

- **metrics** (one row per subject): ``subject``, the covariates and random effects
  (``eta_*``) the subject was given, and per analyte ``{a}_cmax_ng_per_ml``, ``{a}_tmax_h``,
  ``{a}_auc_ng_h_per_ml`` (trapezoidal over the simulated grid) and, with a ``threshold``
  (ng/mL), ``{a}_time_above_h``;
- **profiles** (one row per subject and output time): ``subject``, ``time_h`` and
  ``{a}_ng_per_ml`` per analyte.

Units are in the column names and in each field's metadata; the file's metadata records the
model, regimen, seed, block size and grid so the run can be repeated.

>>> import tempfile, pathlib
>>> import pyarrow.parquet as pq
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> job = plan_stream("0.5 mg/kg IV over 40 min", subjects=3, seed=1, times=[0, 0.5, 1, 2],
...                   path=folder / "pk.parquet", analytes=["ketamine"], threshold=100.0)
>>> res = write_stream(job)
>>> t = pq.read_table(res.path)
>>> t.num_rows, t.column_names[-4:]
(3, ['ketamine_cmax_ng_per_ml', 'ketamine_tmax_h', 'ketamine_auc_ng_h_per_ml', \
'ketamine_time_above_h'])
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ketasim.distributed import (
    ScaleError,
    block_seed,
    fresh_seed,
    map_blocks,
    n_blocks,
    require,
)
from ketasim.dosing.language import parse_regimen
from ketasim.errors import KetasimError
from ketasim.population import metrics
from ketasim.population.pkrun import DISCLAIMER, PKRun, iter_pk, resolve_model, run_pk

if TYPE_CHECKING:
    import pyarrow as pa

BLOCK_SUBJECTS = 10_000
FORMAT_VERSION = "1"
_MARGIN_BYTES = 64 * 2**20  # kept free beyond the estimate (file metadata, other writers)


class DiskSpaceError(ScaleError):
    """The target's file system has less free space than the file needs."""


@dataclass(frozen=True, eq=False)
class StreamSpec:
    """Everything a block needs (plain values, so it travels to Dask workers)."""

    regimen: str
    model: str
    subjects: int
    seed: int
    times: np.ndarray
    profiles: bool
    analytes: tuple[str, ...]
    threshold: float | None
    covariates: dict[str, float] = field(default_factory=dict)
    allow_extrapolation: bool = False
    residual_error: bool = False
    block_subjects: int = BLOCK_SUBJECTS
    chunk_size: int = 2000

    @property
    def n_blocks(self) -> int:
        """Blocks of ``block_subjects`` (the last one may be shorter)."""
        return n_blocks(self.subjects, self.block_subjects)

    def block_range(self, k: int) -> tuple[int, int]:
        """0-based [start, stop) subject indices of block ``k``."""
        start = k * self.block_subjects
        return start, min(self.subjects, start + self.block_subjects)

    @property
    def row_group_rows(self) -> int:
        """Rows per Parquet row group: a block of subjects, or an engine chunk of profiles."""
        return (self.chunk_size * len(self.times) if self.profiles
                else self.block_subjects)


@dataclass(frozen=True, eq=False)
class StreamJob:
    """A checked run: its spec, target file, columns and size estimate."""

    spec: StreamSpec
    path: Path
    columns: tuple[str, ...]
    units: dict[str, str]
    rows: int
    estimated_bytes: int
    free_bytes: int
    citation: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StreamResult:
    """What was written."""

    path: Path
    kind: str
    subjects: int
    rows: int
    bytes: int
    estimated_bytes: int
    seconds: float
    blocks: int
    seed: int
    model: str
    warnings: tuple[str, ...] = ()

    @property
    def subjects_per_second(self) -> float:
        """Throughput of the whole run (simulation and writing)."""
        return self.subjects / self.seconds if self.seconds > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record of the run."""
        return {"path": str(self.path), "kind": self.kind, "subjects": self.subjects,
                "rows": self.rows, "bytes": self.bytes,
                "estimated_bytes": self.estimated_bytes, "seconds": round(self.seconds, 3),
                "subjects_per_second": round(self.subjects_per_second, 1),
                "blocks": self.blocks, "seed": str(self.seed), "model": self.model,
                "warnings": list(self.warnings), "disclaimer": DISCLAIMER}


def human_bytes(n: float) -> str:
    """``1.5 GB`` style (decimal units, as disk sizes are sold)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000.0
    return f"{n:.3g} TB"  # pragma: no cover


def _metric_names(analyte: str, threshold: float | None) -> list[tuple[str, str]]:
    out = [(f"{analyte}_cmax_ng_per_ml", "ng/mL"), (f"{analyte}_tmax_h", "h"),
           (f"{analyte}_auc_ng_h_per_ml", "ng·h/mL")]
    if threshold is not None:
        out.append((f"{analyte}_time_above_h", "h"))
    return out


def _encodings(columns: Sequence[str], profiles: bool) -> tuple[list[str], dict[str, str]]:
    """Parquet encodings: few distinct values (times, Tmax, the subject of a profile) in a
    dictionary; subject numbers of metrics as deltas; measured values byte-stream split
    (with zstd about 10-15 % smaller than plain; a dictionary that overflows costs ~20 %)."""
    small = [c for c in columns
             if c == "time_h" or c.endswith("_tmax_h") or (profiles and c == "subject")]
    enc = {c: "BYTE_STREAM_SPLIT" for c in columns if c not in small and c != "subject"}
    if not profiles:
        enc["subject"] = "DELTA_BINARY_PACKED"
    return small, enc


def estimate_bytes(columns: Sequence[str], rows: int, *, profiles: bool,
                   row_groups: int) -> int:
    """Size of the file, not below it: 8 bytes per measured value (floats barely compress),
    2 per dictionary-encoded value (times, Tmax; subjects of profiles), 1 per subject number
    of metrics (deltas), plus per-row-group metadata. benchmarks/parquet_stream.py prints
    the estimate beside the file's size."""
    small, _ = _encodings(columns, profiles)
    per_row = sum(2 if c in small else 1 if c == "subject" else 8 for c in columns)
    return int(rows * per_row + row_groups * len(columns) * 512 + 64 * 1024)


def check_disk(path: Path, needed: int) -> int:
    """Free bytes where ``path`` will be written; :class:`DiskSpaceError` when ``needed``
    (plus a 64 MiB margin) does not fit."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ScaleError("parquet", f"folder {folder} does not exist", "create it first")
    free = int(shutil.disk_usage(folder).free)
    if needed + _MARGIN_BYTES > free:
        raise DiskSpaceError(
            "parquet", f"{path} needs about {human_bytes(needed)} but only "
            f"{human_bytes(free)} is free on {folder}",
            "write elsewhere, or make it smaller: fewer --subjects, a longer --every, "
            "--metrics-only or fewer --analyte")
    return free


def plan_stream(regimen: str, *, path: str | Path, subjects: int, seed: int | None = None,
                model: str | None = None, covariates: Mapping[str, float] | None = None,
                times: Sequence[float] | np.ndarray | None = None, profiles: bool = False,
                analytes: Sequence[str] | None = None, threshold: float | None = None,
                allow_extrapolation: bool = False, residual_error: bool = False,
                block_subjects: int = BLOCK_SUBJECTS, chunk_size: int = 2000) -> StreamJob:
    """Check a streamed run before anything is simulated or written: the regimen, model and
    covariates (a two-patient probe run), the columns, the file's size (:func:`estimate_bytes`)
    against the free space at ``path`` (:class:`DiskSpaceError` when it will not fit).
    ``times`` default: every 5 min until 24 h after the last dose."""
    reg = parse_regimen(regimen)
    lm = resolve_model(model, reg)
    if subjects < 1:
        raise KetasimError("subjects", f"is {subjects}", "simulate at least one subject")
    if block_subjects < 1 or chunk_size < 1:
        raise KetasimError("block_subjects", "blocks and chunks must hold a subject",
                           "use positive sizes")
    if threshold is not None and not (np.isfinite(threshold) and threshold >= 0):
        raise KetasimError("threshold", f"is {threshold}", "give a concentration ≥ 0 ng/mL")
    if times is None:
        times = np.arange(0.0, reg.last_time + 24.0 + 1e-9, 5.0 / 60.0)
    t = np.unique(np.asarray(times, dtype=float))
    known = [a.id for a in lm.analytes]
    chosen = tuple(analytes) if analytes else tuple(known)
    for a in chosen:
        if a not in known:
            raise KetasimError("analyte", f"{a!r} is not predicted by {lm.name}",
                               f"use one of {', '.join(known)}")
    if len(set(chosen)) != len(chosen):
        raise KetasimError("analyte", "an analyte is named twice", "name each once")
    seed_ = fresh_seed() if seed is None else int(seed)
    spec = StreamSpec(regimen, lm.name, int(subjects), seed_, t, bool(profiles), chosen,
                      None if threshold is None else float(threshold), dict(covariates or {}),
                      allow_extrapolation, residual_error, int(block_subjects),
                      int(chunk_size))
    probe = run_pk(regimen, model=lm.name, subjects=min(subjects, 2), seed=seed_,
                   covariates=spec.covariates or None, times=t,
                   allow_extrapolation=allow_extrapolation)
    units = _units(spec, probe)
    columns = tuple(units)
    rows = subjects * (len(t) if profiles else 1)
    n_groups = (n_blocks(subjects, block_subjects) * n_blocks(block_subjects, chunk_size)
                if profiles else n_blocks(subjects, block_subjects))
    est = estimate_bytes(columns, rows, profiles=profiles, row_groups=n_groups)
    p = Path(path)
    free = check_disk(p, est)
    return StreamJob(spec, p, columns, units, rows, est, free, lm.citation,
                     tuple(probe.warnings))


def _units(spec: StreamSpec, probe: PKRun) -> dict[str, str]:
    out = {"subject": "1-based subject number"}
    if spec.profiles:
        out["time_h"] = "h"
        out.update({f"{a}_ng_per_ml": "ng/mL" for a in spec.analytes})
        return out
    covs = probe.model.model.covariates
    out.update({k: covs[k].unit if k in covs else "" for k in probe.population.covariates})
    out.update({k: "random effect" for k in probe.population.parameters})
    for a in spec.analytes:
        out.update(dict(_metric_names(a, spec.threshold)))
    return out


def _chunk_table(spec: StreamSpec, chunk: PKRun, first_subject: int) -> pa.Table:
    import pyarrow as pa
    n = chunk.n_subjects
    ids = np.arange(first_subject, first_subject + n, dtype=np.int64)
    t = chunk.times
    cols: dict[str, np.ndarray] = {}
    if spec.profiles:
        cols["subject"] = np.repeat(ids, len(t))
        cols["time_h"] = np.tile(t, n)
        for a in spec.analytes:
            cols[f"{a}_ng_per_ml"] = np.ascontiguousarray(
                chunk.concentration(a, "ng/mL")).reshape(-1)
    else:
        cols["subject"] = ids
        cols.update({k: np.asarray(v, dtype=float) for k, v in
                     chunk.population.covariates.items()})
        cols.update({k: np.asarray(v, dtype=float) for k, v in
                     chunk.population.parameters.items()})
        for a in spec.analytes:
            c = chunk.concentration(a, "ng/mL")
            # a lone row is summed pairwise by numpy, several rows in time order: pad it so
            # every subject's numbers are the same whatever chunk it falls in
            c2 = c if n > 1 else np.vstack([c, c])
            cols[f"{a}_cmax_ng_per_ml"] = metrics.cmax(t, c)
            cols[f"{a}_tmax_h"] = metrics.tmax(t, c)
            cols[f"{a}_auc_ng_h_per_ml"] = _auc(t, c)
            if spec.threshold is not None:
                cols[f"{a}_time_above_h"] = metrics.time_above(t, c2, spec.threshold)[:n]
    return pa.table(cols)


def _auc(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Trapezoidal AUC per row, the terms of :func:`ketasim.population.metrics.auc` added in
    time order (as numpy adds them for several rows), so a subject's value does not depend
    on the rows beside it."""
    if len(t) < 2:
        return np.zeros(c.shape[0])
    d = np.diff(t)[:, None]
    ct = np.ascontiguousarray(c.T)
    # a running sum is added in order for any shape (a sum over a length-1 axis is not)
    return np.asarray(np.cumsum(d * (ct[1:] + ct[:-1]) / 2.0, axis=0)[-1])


def iter_block(spec: StreamSpec, k: int) -> Iterator[tuple[pa.Table, tuple[str, ...]]]:
    """Tables of block ``k``, one per engine chunk, with the run's warnings."""
    start, stop = spec.block_range(k)
    m = stop - start
    # one subject left over in a population: run two (the typical patient is for N = 1)
    n_run = 2 if (m == 1 and spec.subjects > 1) else m
    first = start + 1
    for chunk in iter_pk(spec.regimen, model=spec.model, subjects=n_run,
                         seed=block_seed(spec.seed, k), covariates=spec.covariates or None,
                         times=spec.times, allow_extrapolation=spec.allow_extrapolation,
                         residual_error=spec.residual_error, chunk_size=spec.chunk_size):
        table = _chunk_table(spec, chunk, first)
        left = stop + 1 - first
        if chunk.n_subjects > left:
            table = table.slice(0, left * (len(spec.times) if spec.profiles else 1))
        first += chunk.n_subjects
        yield table, chunk.warnings
        if first > stop:
            break


def compute_block(spec: StreamSpec, k: int) -> tuple[pa.Table, tuple[str, ...]]:
    """Block ``k`` as one table (what a Dask worker returns)."""
    import pyarrow as pa
    parts = list(iter_block(spec, k))
    return pa.concat_tables([p for p, _ in parts]), tuple(
        dict.fromkeys(w for _, ws in parts for w in ws))


def _schema(job: StreamJob, first: pa.Table) -> pa.Schema:
    import pyarrow as pa
    fields = [pa.field(name, first.schema.field(name).type,
                       metadata={"unit": job.units.get(name, "")})
              for name in first.column_names]
    spec = job.spec
    meta = {"ketasim.format": FORMAT_VERSION,
            "ketasim.kind": "profiles" if spec.profiles else "metrics",
            "ketasim.model": spec.model, "ketasim.citation": job.citation,
            "ketasim.regimen": parse_regimen(spec.regimen).to_text(),
            "ketasim.subjects": str(spec.subjects), "ketasim.seed": str(spec.seed),
            "ketasim.block_subjects": str(spec.block_subjects),
            "ketasim.seeding": "block k: numpy SeedSequence(seed).spawn key (k,); block 0: "
                               "seed (ketasim.distributed.block_seed)",
            "ketasim.times_h": json.dumps([float(x) for x in spec.times]),
            "ketasim.threshold_ng_per_ml": "" if spec.threshold is None
            else repr(spec.threshold),
            "ketasim.covariates": json.dumps(spec.covariates),
            "ketasim.residual_error": str(spec.residual_error),
            "ketasim.disclaimer": DISCLAIMER}
    return pa.schema(fields, metadata=meta)


def write_stream(job: StreamJob, *, client: Any = None,
                 progress: Callable[[int], None] | None = None) -> StreamResult:
    """Simulate and write ``job`` (here, or on a Dask ``client``); ``progress`` gets the
    number of subjects written. The file appears at ``job.path`` only when complete (it is
    written beside it as ``….partial`` first)."""
    pq = require("pyarrow.parquet", "writing Parquet")
    spec = job.spec
    partial = job.path.with_name(job.path.name + ".partial")
    t0 = time.perf_counter()
    writer = None
    warnings: dict[str, None] = dict.fromkeys(job.warnings)
    done = 0

    def write(table: pa.Table) -> None:
        nonlocal writer
        if writer is None:
            schema = _schema(job, table)
            small, enc = _encodings(schema.names, spec.profiles)
            writer = pq.ParquetWriter(str(partial), schema, compression="zstd",
                                      use_dictionary=small, column_encoding=enc)
        writer.write_table(table.cast(writer.schema), row_group_size=spec.row_group_rows)

    try:
        if client is None:
            for k in range(spec.n_blocks):
                parts = []
                for table, ws in iter_block(spec, k):
                    warnings.update(dict.fromkeys(ws))
                    if spec.profiles:
                        write(table)  # one chunk in memory at a time
                    else:
                        parts.append(table)
                    done += table.num_rows // (len(spec.times) if spec.profiles else 1)
                    if progress is not None:
                        progress(done)
                if parts:
                    import pyarrow as pa
                    write(pa.concat_tables(parts))
        else:
            for table, ws in map_blocks(compute_block,
                                        ((spec, k) for k in range(spec.n_blocks)),
                                        client=client):
                warnings.update(dict.fromkeys(ws))
                write(table)
                done += table.num_rows // (len(spec.times) if spec.profiles else 1)
                if progress is not None:
                    progress(done)
        if writer is not None:
            writer.close()
            writer = None
        os.replace(partial, job.path)
    except BaseException:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    return StreamResult(job.path, "profiles" if spec.profiles else "metrics", spec.subjects,
                        job.rows, job.path.stat().st_size, job.estimated_bytes,
                        time.perf_counter() - t0, spec.n_blocks, spec.seed, spec.model,
                        tuple(warnings))


def stream_pk(regimen: str, *, path: str | Path, subjects: int, client: Any = None,
              progress: Callable[[int], None] | None = None, **options: Any) -> StreamResult:
    """:func:`plan_stream` then :func:`write_stream` (options as for :func:`plan_stream`)."""
    return write_stream(plan_stream(regimen, path=path, subjects=subjects, **options),
                        client=client, progress=progress)


__all__ = ["BLOCK_SUBJECTS", "DiskSpaceError", "StreamJob", "StreamResult", "StreamSpec",
           "check_disk", "compute_block", "estimate_bytes", "human_bytes", "iter_block",
           "plan_stream", "stream_pk", "write_stream"]
