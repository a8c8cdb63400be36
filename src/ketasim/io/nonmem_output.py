"""Read NONMEM's output files: ``.ext`` (estimates), ``.phi`` (individual ETAs), ``$TABLE``.

Every file is a sequence of tables, each starting with a ``TABLE NO.  n`` line and a line of
column labels; items are separated by blanks, tabs or commas. An ``.ext`` file has one table per
``$ESTIMATION`` step: the iterations, then the rows NONMEM codes with negative ITERATION values
(-1000000000 the final estimates, -1000000001 their standard errors, -1000000006 which
parameters are fixed, ...). A ``$TABLE`` file repeats its ``TABLE NO.`` and label lines every 900
records unless it was written with ONEHEADER; those pages are joined again.

>>> import io
>>> ext = io.StringIO(
...     "TABLE NO.     1: First Order Conditional Estimation: Goal Function=MINIMUM VALUE OF "
...     "OBJECTIVE FUNCTION: Problem=1 Subproblem=0\\n"
...     " ITERATION    THETA1       OMEGA(1,1)   SIGMA(1,1)   OBJ\\n"
...     "            0  1.0E+00  1.0E-01  1.0E-02  100.0\\n"
...     "  -1000000000  2.5E+00  2.0E-01  1.5E-02  90.5\\n")
>>> est = read_ext(ext)[-1].estimates()
>>> est.theta.tolist(), est.omega.tolist(), est.ofv
([2.5], [[0.2]], 90.5)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from ketasim.errors import DataError

_SEP = re.compile(r" *[,\t] *| +")
_LABEL_SEP = re.compile(r" *(?:,(?![^(]*\))|\t) *| +")  # commas inside OMEGA(1,1) stay
_TITLE = re.compile(r"^\s*TABLE NO\.\s*(\d+)\s*:?\s*(.*)$")
_PARAM = re.compile(r"^(THETA)(\d+)$|^(OMEGA|SIGMA)\((\d+),(\d+)\)$")

#: What NONMEM writes in the ``.ext`` rows with these ITERATION codes.
EXT_ROWS = {
    -1000000000: "final estimates",
    -1000000001: "standard errors",
    -1000000002: "eigenvalues of the correlation matrix",
    -1000000003: "condition number, lowest and highest eigenvalue",
    -1000000004: "OMEGA and SIGMA as standard deviations and correlations",
    -1000000005: "standard errors of the -1000000004 row",
    -1000000006: "fixed parameters (1 fixed, 0 estimated)",
    -1000000007: "termination status and counts",
    -1000000008: "partial derivatives of the objective function",
}


@dataclass(frozen=True)
class NonmemTable:
    """One table of a NONMEM output file: its number, title line and rows."""

    number: int
    title: str
    frame: pd.DataFrame
    line: int = 0  # 1-based line of its TABLE NO. line (0 without one)


def _lines(source: str | Path | IO[str]) -> tuple[list[str], str]:
    if hasattr(source, "read"):
        text = source.read()
        return str(text).splitlines(), str(getattr(source, "name", "<stream>"))
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines(), str(path)
    except OSError as exc:
        raise DataError("file", f"cannot read {path}: {exc.strerror or exc}",
                        "give the path of a NONMEM output file") from None


def _float(text: str) -> float | None:
    t = text.strip()
    try:
        return float(t.replace("D", "E").replace("d", "e"))
    except ValueError:
        m = re.fullmatch(r"([+-]?[0-9.]+)([+-][0-9]+)", t)  # 1.0-100: exponent without E
        if m:
            return float(f"{m.group(1)}E{m.group(2)}")
        return None


def read_tables(source: str | Path | IO[str], *, columns: Sequence[str] | None = None
                ) -> list[NonmemTable]:
    """Every table of a NONMEM output file, in file order.

    Continuation pages (same number and labels, as NONMEM writes every 900 records) are joined;
    a file written with NOTITLE/NOLABEL needs ``columns``.

    >>> import io
    >>> text = "TABLE NO.  7\\n ID  CL\\n 1.0E+00 4.3E+01\\nTABLE NO.  8\\n ID  V\\n 1.0 2.0\\n"
    >>> [(t.number, list(t.frame.columns)) for t in read_tables(io.StringIO(text))]
    [(7, ['ID', 'CL']), (8, ['ID', 'V'])]
    """
    lines, name = _lines(source)
    tables: list[NonmemTable] = []
    number, title, start = 0, "", 0
    labels: list[str] | None = list(columns) if columns is not None else None
    rows: list[list[float]] = []

    def flush() -> None:
        if labels is None:
            return
        frame = pd.DataFrame(np.array(rows, dtype=float).reshape(len(rows), len(labels)),
                             columns=_unique(labels))
        prev = tables[-1] if tables else None
        if prev is not None and prev.number == number and list(prev.frame.columns) == \
                list(frame.columns) and title == prev.title:
            tables[-1] = NonmemTable(number, title, pd.concat([prev.frame, frame],
                                                              ignore_index=True), prev.line)
        else:
            tables.append(NonmemTable(number, title, frame, start))

    for k, line in enumerate(lines, 1):
        if not line.strip():
            continue
        m = _TITLE.match(line)
        if m:
            flush()
            number, title, start = int(m.group(1)), m.group(2).strip(), k
            labels, rows = None, []
            continue
        fields = [f for f in _SEP.split(line.strip()) if f != ""]
        values = [_float(f) for f in fields]
        if any(v is None for v in values):
            fields = [f for f in _LABEL_SEP.split(line.strip()) if f != ""]
            if fields == labels:
                continue  # a repeated label line (NOTITLE pages)
            if labels is not None:  # a new table without a TABLE NO. line (NOTITLE)
                flush()
                start = k
            labels, rows = fields, []
            continue
        if labels is None:
            raise DataError("table", f"{name} line {k}: numbers before any column labels",
                            "pass columns=[...] for a table written with NOLABEL")
        if len(values) != len(labels):
            raise DataError("table", f"{name} line {k} has {len(values)} items for "
                            f"{len(labels)} labels", "give an unedited NONMEM table file")
        rows.append([float(v or 0.0) for v in values])
    flush()
    if not tables:
        raise DataError("table", f"{name} holds no table", "give a NONMEM $TABLE/.ext/.phi file")
    return tables


def _unique(labels: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        n = seen.get(lab, 0)
        out.append(lab if n == 0 else f"{lab}.{n}")
        seen[lab] = n + 1
    return out


def read_table(source: str | Path | IO[str], *, table: int | None = None,
               columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A ``$TABLE`` file as one DataFrame (``table`` picks one of several by its number).

    >>> import io
    >>> read_table(io.StringIO("TABLE NO.  1\\n ID TIME DV\\n 1 0 0\\n 1 2 17.3\\n")).shape
    (2, 3)
    """
    tables = read_tables(source, columns=columns)
    if table is not None:
        chosen = [t for t in tables if t.number == table]
        if not chosen:
            raise DataError("table", f"has no TABLE NO. {table} (it has "
                            f"{', '.join(str(t.number) for t in tables)})",
                            "pick one of the table numbers in the file")
        tables = chosen
    if len(tables) > 1:
        raise DataError("table", f"the file holds {len(tables)} tables (numbers "
                        f"{', '.join(str(t.number) for t in tables)})",
                        "pick one with table=, or read them all with read_tables")
    return tables[0].frame


# ----------------------------------------------------------------------------- .ext
@dataclass(frozen=True)
class Estimates:
    """THETA, OMEGA, SIGMA and the objective function of one ``.ext`` row, as arrays.

    ``values`` keeps NONMEM's names (``THETA1``, ``OMEGA(2,1)``, ``SIGMA(1,1)``); ``omega`` and
    ``sigma`` are full symmetric matrices.
    """

    theta: np.ndarray
    omega: np.ndarray
    sigma: np.ndarray
    ofv: float
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ExtTable:
    """One ``$ESTIMATION`` step's table of an ``.ext`` file."""

    number: int
    method: str
    goal: str
    problem: int
    subproblem: int
    rows: pd.DataFrame  # indexed by ITERATION

    @property
    def iterations(self) -> pd.DataFrame:
        """The iteration rows (ITERATION above -1000000000; negative for Bayesian burn-in)."""
        return self.rows[self.rows.index > -1000000000]

    def row(self, code: int) -> pd.Series | None:
        """The row with ITERATION ``code`` (see EXT_ROWS), or None if NONMEM did not write it."""
        if code not in self.rows.index:
            return None
        r = self.rows.loc[code]
        return r.iloc[-1] if isinstance(r, pd.DataFrame) else r

    @property
    def final(self) -> pd.Series:
        """The final estimates (ITERATION -1000000000), or the last iteration if missing."""
        r = self.row(-1000000000)
        if r is None:
            its = self.iterations
            if its.empty:
                raise DataError("ext", f"table {self.number} has no rows",
                                "give the .ext of a finished run")
            return its.iloc[-1]
        return r

    def estimates(self) -> Estimates:
        """The final THETA/OMEGA/SIGMA and OFV as arrays (see :class:`Estimates`)."""
        return _estimates(self.final)

    @property
    def standard_errors(self) -> dict[str, float] | None:
        """Standard errors by parameter name (NaN where NONMEM writes 1E+10: not estimated)."""
        r = self.row(-1000000001)
        if r is None:
            return None
        return {str(k): (float("nan") if v == 1e10 else float(v)) for k, v in r.items()
                if k != "OBJ"}

    @property
    def fixed(self) -> dict[str, bool] | None:
        """Which parameters were fixed (row -1000000006), or None if NONMEM did not write it."""
        r = self.row(-1000000006)
        if r is None:
            return None
        return {str(k): bool(v == 1) for k, v in r.items() if k != "OBJ"}


def _estimates(row: pd.Series) -> Estimates:
    thetas: dict[int, float] = {}
    mats: dict[str, dict[tuple[int, int], float]] = {"OMEGA": {}, "SIGMA": {}}
    values: dict[str, float] = {}
    for name, v in row.items():
        m = _PARAM.match(str(name))
        if m is None:
            continue
        values[str(name)] = float(v)
        if m.group(1):
            thetas[int(m.group(2))] = float(v)
        else:
            mats[m.group(3)][(int(m.group(4)), int(m.group(5)))] = float(v)
    theta = np.array([thetas[k] for k in sorted(thetas)])

    def matrix(entries: dict[tuple[int, int], float]) -> np.ndarray:
        n = max((max(i, j) for i, j in entries), default=0)
        out = np.zeros((n, n))
        for (i, j), v in entries.items():
            out[i - 1, j - 1] = out[j - 1, i - 1] = v
        return out

    ofv = float(row["OBJ"]) if "OBJ" in row.index else float("nan")
    return Estimates(theta, matrix(mats["OMEGA"]), matrix(mats["SIGMA"]), ofv, values)


def read_ext(source: str | Path | IO[str]) -> list[ExtTable]:
    """Every ``$ESTIMATION`` table of an ``.ext`` file (the last one is the run's result).

    >>> import io
    >>> t = read_ext(io.StringIO("TABLE NO.     1: Importance Sampling: Goal Function=FINAL "
    ...     "VALUE: Problem=1 Subproblem=0\\n ITERATION THETA1 OBJ\\n -1000000000 3.0 12.5\\n"))
    >>> t[0].method, t[0].problem, float(t[0].final["THETA1"])
    ('Importance Sampling', 1, 3.0)
    """
    out = []
    for t in read_tables(source):
        if "ITERATION" not in t.frame.columns:
            raise DataError("ext", f"table {t.number} has no ITERATION column",
                            "give a NONMEM .ext file")
        parts = [p.strip() for p in t.title.split(":")]
        method = parts[0] if parts else ""
        goal = next((p.split("=", 1)[1].strip() for p in parts if p.startswith("Goal Function")),
                    "")
        prob = re.search(r"Problem=(\d+)", t.title)
        sub = re.search(r"Subproblem=(\d+)", t.title)
        rows = t.frame.copy()
        rows.index = pd.Index(rows.pop("ITERATION").round().astype(np.int64), name="ITERATION")
        out.append(ExtTable(t.number, method, goal, int(prob.group(1)) if prob else 1,
                            int(sub.group(1)) if sub else 0, rows))
    return out


def final_estimates(source: str | Path | IO[str]) -> Estimates:
    """The run's final estimates: the last ``$ESTIMATION`` table of an ``.ext`` file.

    >>> import io
    >>> final_estimates(io.StringIO("TABLE NO. 1: FO\\n ITERATION THETA1 SIGMA(1,1) OBJ\\n"
    ...                             " -1000000000 1.5 0.2 7\\n")).sigma.tolist()
    [[0.2]]
    """
    return read_ext(source)[-1].estimates()


# ----------------------------------------------------------------------------- .phi
@dataclass(frozen=True)
class PhiTable:
    """One ``$ESTIMATION`` step's table of a ``.phi`` file: individual ETAs (or PHIs)."""

    number: int
    method: str
    frame: pd.DataFrame

    @property
    def etas(self) -> pd.DataFrame:
        """ETA(1), ETA(2), ... (PHI(i) for methods that write PHIs) indexed by ID."""
        cols = [c for c in self.frame.columns if str(c).startswith("ETA(")] or \
            [c for c in self.frame.columns if str(c).startswith("PHI(")]
        out = self.frame[cols].copy()
        out.index = pd.Index(self.frame["ID"].round().astype(np.int64), name="ID")
        return out

    @property
    def obj(self) -> pd.Series:
        """Each individual's objective function contribution, indexed by ID."""
        return pd.Series(self.frame["OBJ"].to_numpy(),
                         index=pd.Index(self.frame["ID"].round().astype(np.int64), name="ID"),
                         name="OBJ")

    def eta_of(self, subject: int) -> np.ndarray:
        """The ETA vector of one individual."""
        e = self.etas
        if subject not in e.index:
            raise DataError("ID", f"{subject} is not in the .phi table",
                            f"use one of its {len(e)} IDs")
        return e.loc[subject].to_numpy(dtype=float)


def read_phi(source: str | Path | IO[str]) -> list[PhiTable]:
    """Every ``$ESTIMATION`` table of a ``.phi`` file (the last one is the run's result).

    >>> import io
    >>> p = read_phi(io.StringIO("TABLE NO.     1: FOCE: Problem=1\\n"
    ...     " SUBJECT_NO   ID   ETA(1)   ETA(2)   OBJ\\n  1  11  -0.04  0.005  5.9\\n"))
    >>> p[-1].eta_of(11).tolist()
    [-0.04, 0.005]
    """
    out = []
    for t in read_tables(source):
        if "ID" not in t.frame.columns:
            raise DataError("phi", f"table {t.number} has no ID column", "give a NONMEM .phi file")
        out.append(PhiTable(t.number, t.title.split(":")[0].strip(), t.frame))
    return out


__all__ = ["EXT_ROWS", "Estimates", "ExtTable", "NonmemTable", "PhiTable", "final_estimates",
           "read_ext", "read_phi", "read_table", "read_tables"]
