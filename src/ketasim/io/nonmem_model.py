"""Import a NONMEM control stream as a ketasim :class:`~ketasim.model.Model` and re-run it.

:func:`import_nonmem` reads a PREDPP control stream: ``$INPUT``/``$DATA`` (with
:func:`~ketasim.io.read_nonmem_control`), ``$SUBROUTINES`` (ADVAN1–4, 11, 12 with TRANS1, 2 or
4; ADVAN5/7 with ``$MODEL`` and rate constants ``Kmn``/``KmTn``; ADVAN6/13 with ``$DES``),
``$PK``, ``$DES``, ``$ERROR`` and ``$THETA``/``$OMEGA``/``$SIGMA``. pharmpy parses the code
records into sympy expressions, which are printed into ketasim expressions:

* ``THETA(n)`` → parameter ``theta_n`` (the final estimate of the ``.ext`` beside the control
  stream, else the initial estimate), ``ETA(n)`` → parameter ``eta_n`` (0; a subject's value
  from the ``.phi``), ``EPS(n)``/``ERR(n)`` → 0 (predictions), ``OMEGA(i,j)``/``SIGMA(i,j)`` →
  parameters ``omega_i_j``/``sigma_i_j``;
* data items used in the code → covariates (lower-case names), read per record;
* ``IF/THEN/ELSE`` → ``where(...)``; a variable assigned twice gets a new name per assignment;
* ``F`` in ``$ERROR`` → the scaled amount of the record's prediction compartment (the
  observation's CMT, else PCMT or the default observation compartment), ``A(n)`` → amounts;
* every ``$PK`` and ``$ERROR`` variable becomes an output under its NONMEM name (``"IPRED"``,
  ``"CL"``); ``"F"`` is NONMEM's F.

A statement that needs a value remembered from an earlier record (``IF (AMT.GT.0)
BTIME=TIME``) cannot be a ketasim expression: if the prediction F depends on it the import is
refused with a :class:`~ketasim.errors.ModelError` naming the control-stream line; otherwise
the variable is left out and listed in :attr:`ImportedRun.skipped`.

>>> run = import_nonmem("tests/data/nonmem_public/pharmpy/pheno_real.mod")
>>> run.advan, [c.name for c in run.model.compartments], round(float(run.theta[0]), 8)
(1, ['central'], 0.00469555)
>>> sorted(run.skipped)
['BTIME', 'TAD']
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ketasim.errors import DataError, KetasimError, ModelError
from ketasim.io.nonmem import NonmemControl, NonmemDataset, read_nonmem_control
from ketasim.io.nonmem_output import final_estimates, read_phi, read_tables
from ketasim.model.model import Compartment, Covariate, Flow, Flux, Model, Output, Parameter

#: Compartment names of PREDPP's library models.
ADVAN_COMPARTMENTS: Mapping[int, tuple[str, ...]] = {
    1: ("central",), 2: ("depot", "central"), 3: ("central", "peripheral"),
    4: ("depot", "central", "peripheral"), 11: ("central", "peripheral1", "peripheral2"),
    12: ("depot", "central", "peripheral1", "peripheral2"),
}
# (advan, trans) -> {rate constant: ketasim expression over NONMEM names}; K is elimination
_RATES: dict[tuple[int, int], dict[str, str]] = {
    (1, 1): {"K": "K"}, (1, 2): {"K": "CL / V"},
    (2, 1): {"K": "K", "KA": "KA"}, (2, 2): {"K": "CL / V", "KA": "KA"},
    (3, 1): {"K": "K", "K12": "K12", "K21": "K21"},
    (3, 4): {"K": "CL / V1", "K12": "Q / V1", "K21": "Q / V2"},
    (4, 1): {"K": "K", "K23": "K23", "K32": "K32", "KA": "KA"},
    (4, 4): {"K": "CL / V2", "K23": "Q / V2", "K32": "Q / V3", "KA": "KA"},
    (11, 1): {"K": "K", "K12": "K12", "K21": "K21", "K13": "K13", "K31": "K31"},
    (11, 4): {"K": "CL / V1", "K12": "Q2 / V1", "K21": "Q2 / V2", "K13": "Q3 / V1",
              "K31": "Q3 / V3"},
    (12, 1): {"K": "K", "K23": "K23", "K32": "K32", "K24": "K24", "K42": "K42", "KA": "KA"},
    (12, 4): {"K": "CL / V2", "K23": "Q3 / V2", "K32": "Q3 / V3", "K24": "Q4 / V2",
              "K42": "Q4 / V4", "KA": "KA"},
}
# rate constant -> (from, to) compartment numbers (0: out of the system)
_RATE_FLOWS: dict[int, dict[str, tuple[int, int]]] = {
    1: {"K": (1, 0)}, 2: {"KA": (1, 2), "K": (2, 0)},
    3: {"K": (1, 0), "K12": (1, 2), "K21": (2, 1)},
    4: {"KA": (1, 2), "K": (2, 0), "K23": (2, 3), "K32": (3, 2)},
    11: {"K": (1, 0), "K12": (1, 2), "K21": (2, 1), "K13": (1, 3), "K31": (3, 1)},
    12: {"KA": (1, 2), "K": (2, 0), "K23": (2, 3), "K32": (3, 2), "K24": (2, 4),
         "K42": (4, 2)},
}
_SUPPORTED_ADVANS = (1, 2, 3, 4, 5, 6, 7, 11, 12, 13)
_ODE_ADVANS = (6, 8, 9, 13, 14, 15, 16, 17, 18)
_RESERVED = {"t", "math", "np", "y", "p", "r", "dy", "where", "exp", "log", "log10", "sqrt",
             "abs", "min", "max", "f"}
_INDEXED = re.compile(r"^(THETA|ETA|EPS|ERR|A|DADT|A_0)\((\d+)\)$")
_MATRIX = re.compile(r"^(OMEGA|SIGMA)\((\d+),(\d+)\)$")
_GENERAL_K = re.compile(r"^K(\d)(\d)$|^K(\d+)T(\d+)$")


@dataclass(frozen=True)
class _Stmt:
    record: str  # PK, DES, ERROR
    symbol: str
    expr: Any  # sympy
    line: int


@dataclass(frozen=True, eq=False)
class ImportedRun:
    """A control stream translated to ketasim: the model, its data and its estimates.

    ``theta``/``omega``/``sigma`` are the ``.ext`` final estimates when ``estimates`` names a
    file, else the control stream's initial estimates. ``outputs`` maps NONMEM variable names
    to model outputs (same name); ``skipped`` maps the variables left out to the reason;
    ``covariates`` maps model covariates to data items; ``tables`` lists each ``$TABLE``'s
    file name, items and whether it is FIRSTONLY.
    """

    path: Path
    control: NonmemControl
    model: Model
    advan: int
    trans: int
    theta: np.ndarray
    omega: np.ndarray
    sigma: np.ndarray
    estimates: str
    covariates: Mapping[str, str]
    skipped: Mapping[str, str]
    tables: tuple[tuple[str, tuple[str, ...], bool], ...]
    prediction_compartments: tuple[int, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_eta(self) -> int:
        """Number of ETAs (the size of OMEGA)."""
        return int(self.omega.shape[0])

    @property
    def eta_names(self) -> tuple[str, ...]:
        """The model parameters that hold ETA(1..n)."""
        return tuple(f"eta_{k}" for k in range(1, self.n_eta + 1))

    @property
    def is_ode(self) -> bool:
        """True for ``$DES`` models (ODE engine only)."""
        return not self.model.is_linear

    def random_effects(self) -> Any:
        """OMEGA as :class:`~ketasim.pk.library_model.RandomEffects` over ``eta_n`` (or None)."""
        if self.n_eta == 0:
            return None
        from ketasim.pk.library_model import RandomEffects
        return RandomEffects(self.eta_names, self.omega, source=self.estimates)

    def dataset(self, data_dir: str | Path | None = None) -> NonmemDataset:
        """The ``$DATA`` file read as NM-TRAN does, with the covariates the model uses.

        When the ``$DATA`` path does not exist, a file of the same name beside the control
        stream (or in ``data_dir``) is used, as finished runs are often copied.
        """
        control = self.control
        if data_dir is not None:
            control = read_nonmem_control(self.path, data_dir=data_dir)
        ds = control.read_data(covariates=dict(self.covariates))
        if len(self.prediction_compartments) > 1:
            ds = _with_prediction_cmt(ds, control.default_obs_cmt or 1)
        return ds

    def subject_etas(self, dataset: NonmemDataset,
                     phi: str | Path | pd.DataFrame | None = None) -> pd.DataFrame:
        """Each subject's ETAs as a frame indexed by ID, columns ``eta_1..n``.

        ``phi`` is a ``.phi`` file (default: the one beside the control stream) or a frame
        indexed by ID with ``ETA(n)``, ``PHI(n)`` or ``ETAn`` columns. A subject missing from
        it is a :class:`~ketasim.errors.DataError`.
        """
        ids = dataset.events.subject_ids
        if self.n_eta == 0:
            return pd.DataFrame(index=pd.Index(ids, name="ID"))
        if phi is None:
            phi = self.path.with_suffix(".phi")
        if isinstance(phi, pd.DataFrame):
            frame = phi
        else:
            if not Path(phi).exists():
                raise DataError("phi", f"{Path(phi).name} was not found",
                                "give the run's .phi (the individual ETAs)")
            frame = read_phi(phi)[-1].etas
        missing = [int(i) for i in ids if i not in frame.index]
        if missing:
            raise DataError("phi", f"has no ETAs for ID {missing[0]:g}",
                            "give the .phi of the same run and dataset")
        out = pd.DataFrame(index=pd.Index(ids, name="ID"))
        cols = list(frame.columns)
        for k in range(1, self.n_eta + 1):
            name = next((c for c in cols if str(c).upper() in
                         (f"ETA({k})", f"PHI({k})", f"ETA{k}")), None)
            if name is None:
                raise DataError("phi", f"has no ETA({k}) column (columns {cols})",
                                "give the .phi of this control stream")
            out[f"eta_{k}"] = frame.loc[ids, name].to_numpy(dtype=float)
        return out

    def simulate(self, dataset: NonmemDataset | None = None, *,
                 etas: pd.DataFrame | None = None, engine: Any = None) -> Any:
        """Simulate every record of ``dataset`` (default: :meth:`dataset`) with the
        estimates and ``etas`` (a frame indexed by ID, as :meth:`subject_etas` returns;
        default 0, the population prediction)."""
        from ketasim.engine import AnalyticEngine, OdeEngine, simulate
        ds = self.dataset() if dataset is None else dataset
        if engine is None:
            engine = OdeEngine() if self.is_ode else AnalyticEngine()
        params = etas if etas is not None and len(etas.columns) else None
        return simulate(self.model, ds.events, engine=engine, parameters=params, throw=True)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description: compartments, parameters, covariates, outputs, notes."""
        return {
            "control_stream": str(self.path), "advan": self.advan, "trans": self.trans,
            "compartments": [c.name for c in self.model.compartments],
            "parameters": {k: p.value for k, p in self.model.parameters.items()},
            "estimates": self.estimates,
            "covariates": dict(self.covariates),
            "outputs": list(self.model.outputs),
            "skipped": dict(self.skipped),
            "engine": "ode" if self.is_ode else "analytic",
            "notes": list(self.notes),
        }


def _with_prediction_cmt(ds: NonmemDataset, default_obs: int) -> NonmemDataset:
    """Add covariate ``nm_pcmt``: the compartment whose F each record reports."""
    ev = ds.events
    pc = np.where(ev.evid == 0, ev.cmt, default_obs).astype(float)
    if "PCMT" in ds.data:
        p = ds.data["PCMT"].to_numpy(dtype=float)
        pc = np.where((ev.evid != 0) & (p > 0), p, pc)
    return replace(ds, events=ev.with_covariates(nm_pcmt=pc))


# ----------------------------------------------------------------------------- parsing
def _parse_control(text: str, where: str) -> Any:
    try:
        from pharmpy.model.external.nonmem.nmtran_parser import NMTranParser
    except ImportError:  # pragma: no cover - dependency
        raise ModelError("pharmpy", "pharmpy-core is not installed",
                         "pip install 'ketasim[nonmem]'") from None
    try:
        return NMTranParser().parse(text)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(where, f"cannot parse the control stream: {first}",
                         "check the record named; NM-TRAN syntax is expected") from None


def _record_lines(cs: Any, text: str) -> dict[int, int]:
    """1-based line where each record (by index) starts."""
    starts: dict[int, int] = {}
    pos = 0
    joined = "".join(str(r) for r in cs.records)
    offset = text.find(joined[:40]) if joined and joined != text else 0
    line = text[:max(offset, 0)].count("\n") + 1
    for k, r in enumerate(cs.records):
        starts[k] = line
        s = str(r)
        line += s.count("\n")
        pos += len(s)
    return starts


def _statements(cs: Any, text: str, name: str) -> list[_Stmt]:
    from pharmpy.model import Assignment
    starts = _record_lines(cs, text)
    out: list[_Stmt] = []
    for k, rec in enumerate(cs.records):
        if rec.name != name:
            continue
        body = str(rec).splitlines()
        cursor = 0
        for st in rec.statements:
            if not isinstance(st, Assignment):
                raise ModelError(f"${name} line {starts[k]}",
                                 f"has a statement ketasim cannot translate: {st}",
                                 "write it as assignments (X = ...), IF/THEN/ELSE")
            sym = str(st.symbol)
            pat = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(sym) + r"\s*=(?!=)",
                             re.IGNORECASE)
            line = starts[k] + cursor
            for j in range(cursor, len(body)):
                if pat.search(body[j].split(";", 1)[0]):
                    cursor, line = j, starts[k] + j
                    break
            out.append(_Stmt(name, sym, st.expression._sympy_(), line))
    return out


def _advan_trans(cs: Any) -> tuple[int, int, str]:
    subs = cs.get_records("SUBROUTINES")
    if not subs:
        if cs.get_records("PRED"):
            raise ModelError("$PRED", "the control stream is a $PRED model",
                             "ketasim imports PREDPP models ($SUBROUTINES ADVANn with $PK "
                             "and $ERROR)")
        raise ModelError("$SUBROUTINES", "record is missing",
                         "give $SUBROUTINES ADVANn TRANSn")
    text = str(subs[0])
    am = re.search(r"\bADVAN\s*(\d+)", text, re.IGNORECASE)
    if am is None:
        raise ModelError("$SUBROUTINES", "names no ADVAN", "give ADVANn")
    tm = re.search(r"\bTRANS\s*(\d+)", text, re.IGNORECASE)
    return int(am.group(1)), int(tm.group(1)) if tm else 1, text.strip()


def _thetas(cs: Any) -> np.ndarray:
    vals: list[float] = []
    for rec in cs.get_records("THETA"):
        vals.extend(float(v) for v in rec.inits)
    return np.array(vals, dtype=float)


def _random_matrix(cs: Any, name: str) -> np.ndarray:
    blocks: list[np.ndarray] = []
    for rec in cs.get_records(name):
        for _names, inits, _fix, same in rec.parse():
            if same:
                if not blocks:
                    raise ModelError(f"${name}", "SAME with no block before it",
                                     "give the block first")
                blocks.append(blocks[-1].copy())
                continue
            n = round((math.sqrt(8 * len(inits) + 1) - 1) / 2)
            m = np.zeros((n, n))
            m[np.tril_indices(n)] = [float(v) for v in inits]
            blocks.append(m + np.tril(m, -1).T)
    size = sum(b.shape[0] for b in blocks)
    out = np.zeros((size, size))
    i = 0
    for b in blocks:
        k = b.shape[0]
        out[i:i + k, i:i + k] = b
        i += k
    return out


def _tables(cs: Any) -> tuple[tuple[str, tuple[str, ...], bool], ...]:
    out = []
    options = {"NOPRINT", "PRINT", "ONEHEADER", "NOHEADER", "NOAPPEND", "APPEND", "FIRSTONLY",
               "NOTITLE", "NOLABEL", "FIRSTRECORDONLY", "FIRSTLASTONLY", "ONEHEADERALL",
               "NOFORWARD", "FORWARD", "UNCONDITIONAL", "CONDITIONAL", "OMITTED",
               "WRESCHOL", "NOSUB", "FIXEDETAS"}
    for rec in cs.get_records("TABLE"):
        text = " ".join(line.split(";", 1)[0] for line in str(rec).splitlines())
        text = re.sub(r"^\s*\$TAB\w*", "", text, flags=re.IGNORECASE)
        fm = re.search(r"\bFILE\s*=\s*(\S+)", text, re.IGNORECASE)
        fname = fm.group(1).strip("'\"") if fm else ""
        first = bool(re.search(r"\bFIRSTONLY\b|\bFIRSTRECORDONLY\b", text, re.IGNORECASE))
        text = re.sub(r"\b\w+\s*=\s*\S+", " ", text)
        items = tuple(t for t in re.split(r"[\s,]+", text) if t and t.upper() not in options)
        out.append((fname, items, first))
    return tuple(out)


# ----------------------------------------------------------------------------- translation
class _Printer:
    """sympy expression -> ketasim expression text, names mapped by ``resolve``."""

    def __init__(self, resolve: Callable[[str], str], where: str) -> None:
        self.resolve = resolve
        self.where = where

    def bad(self, what: str) -> ModelError:
        return ModelError(self.where, f"uses {what}, which ketasim expressions do not have",
                          "use + - * / **, EXP, LOG, LOG10, SQRT, ABS, MIN, MAX, comparisons "
                          "and IF/THEN/ELSE")

    def num(self, e: Any) -> str:
        v = float(e)
        if not math.isfinite(v):
            raise self.bad(f"the non-finite number {e}")
        return repr(v)

    def __call__(self, e: Any) -> str:
        import sympy as sp
        if e is sp.true or e is sp.false:
            return "1.0" if e is sp.true else "0.0"
        if e.is_Number or isinstance(e, sp.NumberSymbol):
            return self.num(e)
        if e.is_Symbol:
            return self.resolve(e.name)
        if isinstance(e, sp.Add):
            return "(" + " + ".join(self(a) for a in e.args) + ")"
        if isinstance(e, sp.Mul):
            num, den = [], []
            for a in e.args:
                if isinstance(a, sp.Pow) and a.exp.is_number and a.exp.is_negative:
                    den.append(a.base if a.exp == -1 else sp.Pow(a.base, -a.exp,
                                                                 evaluate=False))
                else:
                    num.append(a)
            top = " * ".join(self(a) for a in num) if num else "1.0"
            if not den:
                return "(" + top + ")"
            return f"({top} / (" + " * ".join(self(a) for a in den) + "))"
        if isinstance(e, sp.Pow):
            if e.exp == sp.Rational(1, 2):
                return f"sqrt({self(e.base)})"
            if e.exp == -1:
                return f"(1.0 / {self(e.base)})"
            return f"({self(e.base)} ** {self(e.exp)})"
        if isinstance(e, sp.exp):
            return f"exp({self(e.args[0])})"
        if isinstance(e, sp.log):
            if len(e.args) != 1:
                raise self.bad("a logarithm with a base")
            return f"log({self(e.args[0])})"
        if isinstance(e, sp.Abs):
            return f"abs({self(e.args[0])})"
        if isinstance(e, sp.Min | sp.Max):
            fn = "min" if isinstance(e, sp.Min) else "max"
            out = self(e.args[0])
            for a in e.args[1:]:
                out = f"{fn}({out}, {self(a)})"
            return out
        if isinstance(e, sp.Piecewise):
            default: str | None = None
            pieces = list(e.args)
            if pieces and pieces[-1][1] is sp.true:
                default = self(pieces[-1][0])
                pieces = pieces[:-1]
            if default is None:
                raise _Remembered("an IF without ELSE for a variable not set before it (NONMEM "
                                 "keeps its value from an earlier record)")
            out = default
            for value, cond in reversed(pieces):
                out = f"where({self.condition(cond)}, {self(value)}, {out})"
            return out
        if isinstance(e, sp.core.relational.Relational | sp.And | sp.Or | sp.Not):
            return f"where({self.condition(e)}, 1.0, 0.0)"
        fname = getattr(getattr(e, "func", None), "__name__", type(e).__name__)
        if str(fname).lower() == "forward":
            raise _Remembered("a value set on an earlier record")
        raise self.bad(f"the function {fname}")

    def indicator(self, c: Any) -> str:
        import sympy as sp
        if isinstance(c, sp.And):
            return "(" + " * ".join(self.indicator(a) for a in c.args) + ")"
        if isinstance(c, sp.Or):
            out = self.indicator(c.args[0])
            for a in c.args[1:]:
                out = f"max({out}, {self.indicator(a)})"
            return out
        if isinstance(c, sp.Not):
            return f"(1.0 - {self.indicator(c.args[0])})"
        return f"where({self.condition(c)}, 1.0, 0.0)"

    def condition(self, c: Any) -> str:
        import sympy as sp
        ops = {sp.Eq: "==", sp.Ne: "!=", sp.Lt: "<", sp.Le: "<=", sp.Gt: ">", sp.Ge: ">="}
        for cls, op in ops.items():
            if isinstance(c, cls):
                return f"({self(c.lhs)} {op} {self(c.rhs)})"
        if isinstance(c, sp.And | sp.Or | sp.Not):
            return f"({self.indicator(c)} > 0.5)"
        if c is sp.true or c is sp.false:
            return "(1.0 > 0.5)" if c is sp.true else "(0.0 > 0.5)"
        raise self.bad(f"the condition {c}")


class _Remembered(Exception):
    pass


def _safe(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^0-9a-zA-Z_]", "_", name.lower()).strip("_") or "v"
    if base[0].isdigit() or keyword.iskeyword(base) or base in _RESERVED or base in taken:
        base = f"{base}_nm"
    k = 2
    cand = base
    while cand in taken:
        cand = f"{base}{k}"
        k += 1
    return cand


def import_nonmem(path: str | Path, *, estimates: str | Path | None = None,
                  initial: bool = False, data_dir: str | Path | None = None) -> ImportedRun:
    """Translate the control stream at ``path`` into an :class:`ImportedRun`.

    THETA/OMEGA/SIGMA come from ``estimates`` (an ``.ext``), else the ``.ext`` beside the
    control stream, else (or with ``initial=True``) the control stream's initial estimates.
    Anything that cannot be translated raises a :class:`~ketasim.errors.KetasimError` naming
    the record or line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError("control stream", f"cannot read {path}: {exc.strerror or exc}",
                        "give the path of the .mod/.ctl file") from None
    control = read_nonmem_control(path, data_dir=data_dir)
    beside = path.parent / control.data_file.name
    if data_dir is None and not control.data_file.exists() and beside.exists():
        control = replace(control, data_file=beside)  # $DATA's folder missing: the file beside
    cs = _parse_control(text, str(path))
    advan, trans, sub_text = _advan_trans(cs)
    if advan not in _SUPPORTED_ADVANS:
        raise ModelError("$SUBROUTINES", f"ADVAN{advan} is not supported",
                         "ketasim imports ADVAN1-7, 11, 12 and 13 (with $DES)")
    if advan in ADVAN_COMPARTMENTS and (advan, trans) not in _RATES:
        raise ModelError("$SUBROUTINES", f"ADVAN{advan} TRANS{trans} is not supported",
                         "use TRANS1, TRANS2 (ADVAN1/2) or TRANS4 (ADVAN3/4/11/12)")
    for rec in ("PRED", "MIX", "AES", "INFN", "TTDF"):
        if cs.get_records(rec):
            raise ModelError(f"${rec}", "record is not supported", f"remove ${rec}")
    notes: list[str] = []

    # compartments
    if advan in ADVAN_COMPARTMENTS:
        cmt_names = list(ADVAN_COMPARTMENTS[advan])
    else:
        mrec = cs.get_records("MODEL")
        if not mrec:
            raise ModelError("$MODEL", f"ADVAN{advan} needs a $MODEL record",
                             "give $MODEL COMP=(NAME) ...")
        comps = re.findall(r"\bCOMP\w*\s*=?\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)",
                           str(mrec[0]), re.IGNORECASE)
        ncm = re.search(r"\bNCOMP\w*\s*=\s*(\d+)", str(mrec[0]), re.IGNORECASE)
        n = len(comps) or (int(ncm.group(1)) if ncm else 0)
        if n == 0:
            raise ModelError("$MODEL", "defines no compartments", "give COMP=(NAME) ...")
        cmt_names = [c.lower() for c in comps] or [f"a{k}" for k in range(1, n + 1)]
    n_cmt = len(cmt_names)
    taken: set[str] = set()
    cmt_names = [_safe(c, taken) or c for c in cmt_names]
    taken.update(cmt_names)

    theta = _thetas(cs)
    omega = _random_matrix(cs, "OMEGA")
    sigma = _random_matrix(cs, "SIGMA")
    est_from = f"{path.name}: initial estimates"
    ext = Path(estimates) if estimates is not None else path.with_suffix(".ext")
    if not initial and ext.exists():
        est = final_estimates(ext)
        if est.theta.size != theta.size:
            raise DataError("ext", f"{ext.name} has {est.theta.size} THETAs, the control "
                            f"stream {theta.size}", "give the .ext of this control stream")
        theta = est.theta
        if est.omega.size:
            omega = est.omega
        if est.sigma.size:
            sigma = est.sigma
        est_from = f"{ext.name}: final estimates"
    elif estimates is not None:
        raise DataError("ext", f"cannot read {ext}", "give the path of the run's .ext")

    items: dict[str, str] = {}
    for it in control.input:
        if not it.dropped:
            for nm in it.names:
                items[nm] = nm
    covariates: dict[str, str] = {}
    defs: dict[str, str] = {}
    params: dict[str, Parameter] = {}
    src = f"NONMEM run {path.name} ({est_from})"
    for k, v in enumerate(theta, 1):
        params[f"theta_{k}"] = Parameter(float(v), "", f"THETA({k})", source=src,
                                         evidence="calibrated")
    for k in range(1, omega.shape[0] + 1):
        params[f"eta_{k}"] = Parameter(0.0, "", f"ETA({k}); a subject's value from the .phi",
                                       source=src, evidence="calibrated")
    taken.update(params)
    current: dict[str, str] = {}  # NONMEM variable -> ketasim name of its latest value
    tainted: dict[str, str] = {}  # ketasim name -> reason
    origin: dict[str, _Stmt] = {}
    amount_names = {str(k): cmt_names[k - 1] for k in range(1, n_cmt + 1)}

    def resolver(stmt: _Stmt, deps: set[str]) -> Callable[[str], str]:
        def resolve(name: str) -> str:
            up = name.upper()
            if up in current:
                deps.add(current[up])
                return current[up]
            m = _INDEXED.match(up)
            if m:
                kind, idx = m.group(1), int(m.group(2))
                if kind == "THETA":
                    if idx > theta.size:
                        raise ModelError(f"${stmt.record} line {stmt.line}",
                                         f"uses THETA({idx}); $THETA has {theta.size}",
                                         "add the THETA or fix the index")
                    return f"theta_{idx}"
                if kind == "ETA":
                    if idx > omega.shape[0]:
                        raise ModelError(f"${stmt.record} line {stmt.line}",
                                         f"uses ETA({idx}); $OMEGA has {omega.shape[0]}",
                                         "add the OMEGA or fix the index")
                    return f"eta_{idx}"
                if kind in ("EPS", "ERR"):
                    return "0.0"
                if kind == "A":
                    if stmt.record == "PK":
                        raise _Remembered(f"the amount A({idx}) in $PK")
                    if str(idx) not in amount_names:
                        raise ModelError(f"${stmt.record} line {stmt.line}",
                                         f"uses A({idx}); the model has {n_cmt} compartments",
                                         f"use A(1)..A({n_cmt})")
                    return amount_names[str(idx)]
            m2 = _MATRIX.match(up)
            if m2:
                kind, i, j = m2.group(1), int(m2.group(2)), int(m2.group(3))
                mat = omega if kind == "OMEGA" else sigma
                pname = f"{kind.lower()}_{i}_{j}"
                if pname not in params:
                    if max(i, j) > mat.shape[0]:
                        raise ModelError(f"${stmt.record} line {stmt.line}",
                                         f"uses {up}; ${kind} has {mat.shape[0]}",
                                         "fix the index")
                    params[pname] = Parameter(float(mat[i - 1, j - 1]), "", up, source=src,
                                              evidence="calibrated")
                return pname
            if up == "T" and stmt.record == "DES":
                return "t"
            if up == "F" and stmt.record == "ERROR":
                return "f"
            if up in items:
                cname = next((c for c, lab in covariates.items() if lab == up), None)
                if cname is None:
                    cname = _safe(up, taken)
                    taken.add(cname)
                    covariates[cname] = up
                return cname
            raise _Remembered(f"{name}, which is not set before this statement (NONMEM "
                              "keeps its value from an earlier record)")
        return resolve

    def translate(stmts: Sequence[_Stmt]) -> None:
        for st in stmts:
            sym = st.symbol.upper()
            m = _INDEXED.match(sym)
            if m and m.group(1) == "A_0":
                if st.expr != 0:
                    raise ModelError(f"${st.record} line {st.line}",
                                     f"sets an initial amount {st.symbol} = {st.expr}",
                                     "ketasim compartments start empty: dose the amount at "
                                     "time 0 instead")
                continue
            if m and m.group(1) == "DADT":
                if st.record != "DES":
                    raise ModelError(f"${st.record} line {st.line}", "sets DADT outside $DES",
                                     "move it to $DES")
            deps: set[str] = set()
            name = _safe(sym if not (m and m.group(1) == "DADT") else f"dadt_{m.group(2)}",
                         taken)
            where = f"${st.record} line {st.line} ({st.symbol} = ...)"
            try:
                text_ = _Printer(resolver(st, deps), where)(st.expr)
                bad = [d for d in deps if d in tainted]
                if bad:
                    raise _Remembered(tainted[bad[0]])
            except _Remembered as exc:
                reason = str(exc)
                if not reason.startswith("$"):
                    reason = f"{where} uses {reason}"
                taken.add(name)
                tainted[name] = reason
                current[sym] = name
                origin[name] = st
                continue
            taken.add(name)
            defs[name] = text_
            current[sym] = name
            origin[name] = st

    pk = _statements(cs, text, "PK")
    if not pk and advan not in (6, 13):
        raise ModelError("$PK", "record is missing", "give $PK with the ADVAN's parameters")
    translate(pk)
    pk_vars = dict(current)

    def need(nonmem: str, what: str) -> str:
        if nonmem not in current:
            raise ModelError("$PK", f"does not set {nonmem}, which {what} needs",
                             f"set {nonmem} in $PK")
        name = current[nonmem]
        if name in tainted:
            raise ModelError(f"$PK line {origin[name].line}", f"{nonmem}, which {what} needs, "
                             f"cannot be translated: {tainted[name]}",
                             "compute it from THETA, ETA and data items of the same record")
        return name

    def rate_expr(text_: str, what: str) -> str:
        return re.sub(r"[A-Z][A-Z0-9_]*", lambda mm: need(mm.group(0), what), text_)

    flows: list[Flow] = []
    fluxes: list[Flux] = []
    sub = f"ADVAN{advan} TRANS{trans}"
    if advan in ADVAN_COMPARTMENTS:
        for kname, expr in _RATES[(advan, trans)].items():
            a, b = _RATE_FLOWS[advan][kname]
            flows.append(Flow(cmt_names[a - 1], None if b == 0 else cmt_names[b - 1],
                              rate_expr(expr, sub)))
    elif advan in (5, 7):
        for nonmem in list(pk_vars):
            km = _GENERAL_K.match(nonmem)
            if not km:
                continue
            a = int(km.group(1) or km.group(3))
            b = int(km.group(2) or km.group(4))
            if a == b or not 1 <= a <= n_cmt or b > n_cmt + 1:
                raise ModelError(f"$PK line {origin[current[nonmem]].line}",
                                 f"{nonmem} is not a rate constant between compartments "
                                 f"1..{n_cmt}", "use Kmn (or KmTn) with m, n compartments, "
                                 "n = 0 for elimination")
            flows.append(Flow(cmt_names[a - 1], None if b in (0, n_cmt + 1)
                              else cmt_names[b - 1], need(nonmem, f"ADVAN{advan}")))
        if not flows:
            raise ModelError("$PK", f"ADVAN{advan} sets no rate constants Kmn",
                             "set K10, K12, ... in $PK")
    else:
        des = _statements(cs, text, "DES")
        if not des:
            raise ModelError("$DES", f"ADVAN{advan} needs a $DES record",
                             "give DADT(n) = ... for every compartment")
        translate(des)
        for k in range(1, n_cmt + 1):
            key = f"DADT({k})"
            if key not in current:
                raise ModelError("$DES", f"does not set {key}", f"give DADT({k}) = ...")
            name = current[key]
            if name in tainted:
                raise ModelError(f"$DES line {origin[name].line}", f"{key} cannot be "
                                 f"translated: {tainted[name]}",
                                 "compute it from amounts, T and $PK variables")
            fluxes.append(Flux(cmt_names[k - 1], None, f"-({defs.pop(name)})"))
            taken.discard(name)
        unknown = [k for k in current if _INDEXED.match(k) and k.startswith("DADT(")
                   and int(k[5:-1]) > n_cmt]
        if unknown:
            raise ModelError("$DES", f"sets {unknown[0]}; $MODEL has {n_cmt} compartments",
                             "give one COMP per compartment")

    # dose properties and scaling
    comps = []
    for k, cname in enumerate(cmt_names, 1):
        kw: dict[str, Any] = {}
        for nonmem, attr in ((f"F{k}", "f"), (f"ALAG{k}", "lag"), (f"R{k}", "rate"),
                             (f"D{k}", "duration")):
            if nonmem in pk_vars:
                kw[attr] = need(nonmem, f"compartment {k}'s {attr}")
        comps.append(Compartment(cname, **kw))

    # ERROR
    obs_default = control.default_obs_cmt or 1
    pred_cmts: set[int] = {obs_default}
    try:
        ds_probe = control.read_data() if control.data_file.exists() else None
    except KetasimError:
        ds_probe = None
    if ds_probe is not None:
        ev = ds_probe.events
        pred_cmts |= {int(c) for c in ev.cmt[ev.evid == 0] if c > 0}
    if any(c > n_cmt for c in pred_cmts):
        raise ModelError("CMT", f"observations of compartment {max(pred_cmts)}; the model has "
                         f"{n_cmt}", f"use CMT 1..{n_cmt}")

    def scaled(k: int) -> str:
        s = f"S{k}"
        if s not in pk_vars and advan in ADVAN_COMPARTMENTS and "SC" in pk_vars \
                and cmt_names[k - 1] == "central":
            s = "SC"  # the scale of the central compartment
        if s in pk_vars:
            return f"({cmt_names[k - 1]} / {need(s, f'F of compartment {k}')})"
        return cmt_names[k - 1]

    cm = sorted(pred_cmts)
    if len(cm) == 1:
        f_expr = scaled(cm[0])
    else:
        f_expr = scaled(cm[-1])
        for k in reversed(cm[:-1]):
            f_expr = f"where(nm_pcmt == {float(k)!r}, {scaled(k)}, {f_expr})"
        covariates["nm_pcmt"] = "PCMT"
    defs["f"] = f_expr
    taken.add("f")
    translate(_statements(cs, text, "ERROR"))

    outputs: dict[str, Output] = {"F": Output("f", "", "NONMEM F: the scaled amount of the "
                                              "record's prediction compartment")}
    skipped: dict[str, str] = {}
    for nonmem, name in current.items():
        if _INDEXED.match(nonmem):
            continue
        if name in tainted:
            skipped[nonmem] = tainted[name]
            continue
        outputs[nonmem] = Output(name, "", f"NONMEM {nonmem}")
    if skipped:
        notes.append("not computed: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()))
    model_covs = {c: Covariate(0.0, "", f"data item {lab}") for c, lab in covariates.items()}
    try:
        model = Model(name=re.sub(r"\W", "_", path.stem), parameters=params,
                      compartments=comps, flows=flows, fluxes=fluxes, definitions=defs,
                      outputs=outputs, covariates=model_covs,
                      description=f"imported from {path.name} ({sub_text})")
    except KetasimError as exc:
        raise ModelError(exc.field, f"the translated model is refused: {exc.problem}",
                         exc.fix) from None
    return ImportedRun(path=path, control=control, model=model, advan=advan, trans=trans,
                       theta=np.asarray(theta, float), omega=np.asarray(omega, float),
                       sigma=np.asarray(sigma, float), estimates=est_from,
                       covariates={k: v for k, v in covariates.items() if k != "nm_pcmt"},
                       skipped=skipped, tables=_tables(cs),
                       prediction_compartments=tuple(cm), notes=tuple(notes))


# ----------------------------------------------------------------------------- check
@dataclass(frozen=True)
class CheckReport:
    """How ketasim's re-run of a finished NONMEM run agrees with its ``$TABLE`` files.

    ``max_rel_diff[col]`` is the largest ``|ketasim - NONMEM| / max(|NONMEM|, 1e-9)`` over the
    table's rows; NONMEM's default table format prints 5 significant digits (relative
    rounding up to 5e-5).
    """

    records: int
    columns: tuple[str, ...]
    max_rel_diff: Mapping[str, float]
    tables: tuple[str, ...]
    not_compared: Mapping[str, str]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{"records": N, "columns": [...], "max_rel_diff": {...}}``."""
        return {"records": self.records, "columns": list(self.columns),
                "max_rel_diff": {k: float(v) for k, v in self.max_rel_diff.items()}}


def _etas_from_tables(files: Sequence[tuple[Path, bool]], n_eta: int, n_records: int,
                      first_rows: np.ndarray, ids: np.ndarray) -> pd.DataFrame | None:
    """Each subject's ETAs from a per-record table with ETA1..ETAn (``ETAS(1:LAST)``)."""
    for fpath, _first in files:
        try:
            tabs = read_tables(fpath)
        except KetasimError:
            continue
        for tab in tabs:
            cols = [f"ETA{k}" for k in range(1, n_eta + 1)]
            if len(tab.frame) == n_records and all(c in tab.frame.columns for c in cols):
                frame = tab.frame.iloc[first_rows][cols]
                frame.index = pd.Index(ids, name="ID")
                return frame
    return None


_DATA_LIKE = {"ID", "TIME", "DV", "AMT", "EVID", "MDV", "CMT", "RATE", "II", "ADDL", "SS",
              "NUM", "RES", "WRES", "CWRES", "NPDE", "CIWRES", "IWRES_", "EWRES", "ECWRES", "NPD",
              "CPRED", "CRES", "EPRED", "ERES", "OBJI", "MDV2"}


def check_run(path: str | Path, *, engine: Any = None, tables: Sequence[str | Path] = (),
              data_dir: str | Path | None = None) -> CheckReport:
    """Re-run the finished NONMEM run at ``path`` and compare with its ``$TABLE`` files.

    Reads the control stream, its ``$DATA``, the ``.ext`` and ``.phi`` beside it and the
    ``$TABLE`` files (or ``tables``; a missing ``$TABLE`` file falls back to ``<run>.tab``).
    Every record is simulated with the final estimates: with each subject's ETAs (the
    ``.phi``, else a per-record table with ETA1..ETAn) for the model's variables (IPRED, CL,
    ...), with ETA = 0 for PRED. Data items, residuals and ETAs are not compared.
    """
    run = import_nonmem(path, data_dir=data_dir)
    path = Path(path)
    if run.estimates.endswith("initial estimates"):
        raise DataError("ext", f"no {path.with_suffix('.ext').name} beside the control stream",
                        "give the finished run's folder (the .ext holds the final estimates)")
    ds = run.dataset(data_dir)
    notes: list[str] = list(run.notes)
    files: list[tuple[Path, bool]] = []
    if tables:
        files = [(Path(t), False) for t in tables]
    else:
        for fname, _items, first in run.tables:
            if fname and (path.parent / fname).exists():
                files.append((path.parent / fname, first))
        if not files and path.with_suffix(".tab").exists():
            files.append((path.with_suffix(".tab"), False))
            notes.append(f"no $TABLE file found; read {path.with_suffix('.tab').name}")
    if not files:
        raise DataError("$TABLE", f"no table file of {path.name} was found",
                        "run from the run's folder or pass the table files")
    need_ind = run.n_eta > 0
    first_rows = np.flatnonzero(np.r_[True, ds.events.id[1:] != ds.events.id[:-1]])
    phi: Any = None
    if need_ind and not path.with_suffix(".phi").exists():
        phi = _etas_from_tables(files, run.n_eta, ds.n_records, first_rows,
                                ds.events.subject_ids)
        if phi is None:
            raise DataError("phi", f"no {path.with_suffix('.phi').name} beside the control "
                            "stream and no table with ETA1..ETAn",
                            "give the finished run's folder (the .phi holds each subject's "
                            "ETAs)")
        notes.append("ETAs read from a $TABLE (no .phi)")
    etas = run.subject_etas(ds, phi) if need_ind else None
    ind = run.simulate(ds, etas=etas, engine=engine)
    pop = run.simulate(ds, engine=engine) if need_ind else ind
    pred = np.asarray(pop["F"], dtype=float)
    computed: dict[str, np.ndarray] = {"PRED": pred}
    items = {n for it in run.control.input for n in it.names}
    for name in run.model.outputs:
        if name != "F":
            computed.setdefault(name, np.asarray(ind[name], dtype=float))
    diffs: dict[str, float] = {}
    not_compared: dict[str, str] = {}
    used: list[str] = []
    for fpath, first in files:
        try:
            tabs = read_tables(fpath)
        except KetasimError as exc:
            raise DataError("$TABLE", f"cannot read {fpath.name}: {exc.problem}", exc.fix
                            ) from None
        for tab in tabs:
            frame = tab.frame
            if len(frame) == ds.n_records:
                rows = np.arange(ds.n_records)
            elif len(frame) == ds.n_subjects and (first or len(frame) != ds.n_records):
                rows = first_rows
            else:
                notes.append(f"{fpath.name}: {len(frame)} rows for {ds.n_records} records, "
                             "not compared")
                continue
            used.append(fpath.name)
            for col in frame.columns:
                up = str(col).upper()
                if up in _DATA_LIKE or up in items or re.match(r"^(ETA|PHI|ET)\(?\d+\)?$", up):
                    continue
                if up in run.skipped:
                    not_compared[up] = run.skipped[up]
                    continue
                if up not in computed:
                    not_compared.setdefault(up, "not a model variable ketasim computes")
                    continue
                ours = computed[up][rows]
                theirs = frame[col].to_numpy(dtype=float)
                rel = np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-9)
                worst = float(np.nanmax(rel)) if rel.size else 0.0
                if not np.all(np.isfinite(ours)):
                    worst = math.inf
                diffs[up] = max(diffs.get(up, 0.0), worst)
    return CheckReport(records=ds.n_records, columns=tuple(diffs), max_rel_diff=diffs,
                       tables=tuple(dict.fromkeys(used)), not_compared=not_compared,
                       notes=tuple(notes))


__all__ = ["ADVAN_COMPARTMENTS", "CheckReport", "ImportedRun", "check_run", "import_nonmem"]
