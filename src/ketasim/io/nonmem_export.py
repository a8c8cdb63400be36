"""Write a library model and a regimen as a NONMEM control stream and a CSV dataset.

A linear model becomes ``ADVAN5`` (the general linear model: ``$MODEL`` with one ``COMP`` per
compartment and rate constants ``KmTn`` in ``$PK``); a model with nonlinear fluxes, states or
links becomes ``ADVAN13`` with ``$DES``. Every model parameter is a ``$THETA ... FIX`` (its
value in ketasim's canonical units: mg, L, h), random effects ``eta_*`` are ``ETA(n)`` with the
library's OMEGA, covariates are data items, bioavailability, lag, modelled rate and duration are
``Fn``, ``ALAGn``, ``Rn``, ``Dn``; an infusion given by duration (ketasim's ``DUR``) is a
``RATE=-2`` record whose ``Dn`` is the ``DUR`` data item, so F scales the rate as in ketasim.
Every model output is a ``$ERROR`` variable of the same (upper-case) name, listed in ``$TABLE``;
the run is a ``$SIMULATION ONLYSIMULATION`` of the typical subject's predictions (IPRED is the
first analyte's output). Amounts are mg, times h, concentrations mg/L.

>>> import tempfile
>>> out = export_nonmem("clements_1981", "0.5 mg/kg IV over 40 min", tempfile.mkdtemp(),
...                     covariates={"weight": 70}, times=[1, 2])
>>> out.control.name, out.advan
('clements_1981.mod', 5)
"""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ketasim.dosing.events import EventTable
from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import Regimen
from ketasim.errors import CovariateError, DataError, ModelError
from ketasim.model.model import Model

_NM_RESERVED = re.compile(
    r"^(THETA|ETA|EPS|ERR|A|T|F|Y|G|H|DADT|MTIME|MNEXT|MPAST|MNOW|NEWIND|ICALL|IREP|IPRED|"
    r"K\d+|K\d+T\d+|S\d+|SC|SO|F\d+|FO|R\d+|D\d+|ALAG\d+|A_0|XSCALE|TSCALE|"
    r"ID|TIME|EVID|AMT|CMT|RATE|DUR|II|ADDL|SS|MDV|DV|PCMT|CALL|L1|L2|"
    r"IF|THEN|ELSE|ENDIF|EXP|LOG|LOG10|SQRT|ABS|MIN|MAX|INT|MOD|PHI|EXIT|TMP\d+)$")
_OPS = {ast.Lt: ".LT.", ast.LtE: ".LE.", ast.Gt: ".GT.", ast.GtE: ".GE.", ast.Eq: ".EQ.",
        ast.NotEq: ".NE."}
_BIN = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_FUNCS = {"exp": "EXP", "log": "LOG", "log10": "LOG10", "sqrt": "SQRT", "abs": "ABS"}


@dataclass(frozen=True)
class ExportedRun:
    """What :func:`export_nonmem` wrote: the control stream, the dataset and the ADVAN."""

    control: Path
    data: Path
    advan: int
    outputs: tuple[str, ...]
    events: EventTable


def _ascii(text: str) -> str:
    for a, b in (("→", "->"), ("µ", "u"), ("μ", "u"), ("·", "*"), ("–", "-"), ("—", "-"),
                 ("×", "x"), ("²", "2"), ("³", "3"), ("≤", "<="), ("≥", ">=")):
        text = text.replace(a, b)
    return text.encode("ascii", "replace").decode("ascii")


def _number(v: float) -> str:
    return repr(float(v)).upper()


class _Fortran:
    """ketasim expression text -> NM-TRAN abbreviated code (with IF blocks for where())."""

    def __init__(self, names: Mapping[str, str], counter: list[int]) -> None:
        self.names = names
        self.counter = counter
        self.pre: list[str] = []

    def __call__(self, text: str | float, where: str) -> str:
        if isinstance(text, int | float):
            return _number(text)
        return self.emit(ast.parse(str(text).strip(), mode="eval").body, where)

    def emit(self, n: ast.AST, where: str) -> str:
        if isinstance(n, ast.Constant) and isinstance(n.value, int | float):
            return _number(n.value)
        if isinstance(n, ast.Name):
            if n.id not in self.names:
                raise ModelError(where, f"uses {n.id!r}, which has no NONMEM name here",
                                 "report this model: the export does not cover it")
            return self.names[n.id]
        if isinstance(n, ast.BinOp) and type(n.op) in _BIN:
            return f"({self.emit(n.left, where)}{_BIN[type(n.op)]}{self.emit(n.right, where)})"
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub | ast.UAdd):
            sign = "-" if isinstance(n.op, ast.USub) else ""
            return f"({sign}{self.emit(n.operand, where)})"
        if isinstance(n, ast.Compare) and len(n.ops) == 1:
            return (f"({self.emit(n.left, where)}{_OPS[type(n.ops[0])]}"
                    f"{self.emit(n.comparators[0], where)})")
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            fn = n.func.id
            if fn == "where":
                c, a, b = (self.emit(x, where) for x in n.args)
                self.counter[0] += 1
                tmp = f"TMP{self.counter[0]}"
                self.pre += [f"IF {c} THEN", f"  {tmp} = {a}", "ELSE", f"  {tmp} = {b}",
                             "ENDIF"]
                return tmp
            if fn in ("min", "max"):  # as IF blocks: every NM-TRAN version and pharmpy
                x, y = (self.emit(v, where) for v in n.args)
                self.counter[0] += 1
                tmp = f"TMP{self.counter[0]}"
                op = ".LT." if fn == "min" else ".GT."
                self.pre += [f"IF ({x}{op}{y}) THEN", f"  {tmp} = {x}", "ELSE",
                             f"  {tmp} = {y}", "ENDIF"]
                return tmp
            if fn in _FUNCS:
                return f"{_FUNCS[fn]}(" + ",".join(self.emit(x, where) for x in n.args) + ")"
        raise ModelError(where, f"has {ast.dump(n)[:40]}, which the export cannot write",
                         "use + - * / **, exp, log, log10, sqrt, abs, min, max, where")


def _nm_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", name).upper()
    if _NM_RESERVED.match(base) or keyword.iskeyword(name) or base in taken:
        base = f"{base}_K"
    k = 2
    cand = base
    while cand in taken:
        cand = f"{base}{k}"
        k += 1
    taken.add(cand)
    return cand


def _events(model: Model, regimen: Regimen, times: Sequence[float] | None,
            weight: float | None) -> EventTable:
    from ketasim.engine.simulate import resolve_compartments
    if times is None:
        end = float(regimen.last_time) + 24.0
        times = np.round(np.arange(0.0, end + 1e-9, 0.5), 6).tolist()
    table = regimen.to_events(weight_kg=weight, observe=times)
    return resolve_compartments(model, table)


def export_nonmem(model: Any, regimen: str | Regimen, out_dir: str | Path, *,
                  covariates: Mapping[str, float] | None = None,
                  times: Sequence[float] | None = None, name: str | None = None
                  ) -> ExportedRun:
    """Write ``<name>.mod`` and ``<name>.csv`` for ``model`` (a library model name, a
    :class:`~ketasim.pk.library_model.LibraryModel` or a :class:`~ketasim.model.Model`) under
    ``regimen`` into ``out_dir``.

    ``covariates`` gives the subject's covariate values (defaults: the model's); ``weight``
    also resolves mg/kg doses. ``times`` are the observation times (h); by default every
    0.5 h up to 24 h after the last dose.
    """
    lib = None
    if isinstance(model, str):
        from ketasim.pk.registry import get_model
        lib = get_model(model)
        m = lib.model
    elif isinstance(model, Model):
        m = model
    else:
        lib = model
        m = model.model
    if isinstance(regimen, str):
        regimen = parse_regimen(regimen)
    covs: dict[str, float] = {}
    for cname, cov in m.covariates.items():
        given = (covariates or {}).get(cname, cov.default)
        if given is None:
            raise CovariateError(cname, "has no default and was not given",
                                 f"give --covariate {cname}=VALUE")
        covs[cname] = float(given)
    for cname in covariates or {}:
        if cname not in m.covariates:
            raise CovariateError(cname, f"is not a covariate of {m.name}",
                                 f"use one of {', '.join(m.covariates) or 'none'}")
    events = _events(m, regimen, times, covs.get("weight"))
    name = name or m.name
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError("out", f"cannot create {out}: {exc.strerror or exc}",
                        "give a writable folder") from None

    c = m.compiled
    linear = m.is_linear and not m.links
    advan = 5 if linear else 13
    n_cmt = m.n_cmt
    taken: set[str] = set()
    nm: dict[str, str] = {}
    state_index = {k: i + 1 for i, k in enumerate(m.state_names)}
    for sname in m.state_names:
        nm[sname] = f"A({state_index[sname]})"
    iiv = getattr(lib, "iiv", None)
    eta_of = {e: i + 1 for i, e in enumerate(iiv.names)} if iiv is not None else {}
    theta_lines: list[str] = []
    pk: list[str] = []
    k_theta = 0
    for pname, par in m.parameters.items():
        nm[pname] = _nm_name(pname, taken)
        if pname in eta_of:
            pk.append(f"{nm[pname]} = ETA({eta_of[pname]})")
            continue
        k_theta += 1
        theta_lines.append(f"$THETA {_number(par.value)} FIX ; {nm[pname]} {par.unit} "
                           f"{par.description[:60]}".rstrip())
        pk.append(f"{nm[pname]} = THETA({k_theta})")
    data_items: dict[str, str] = {}
    for cname in m.covariates:
        nm[cname] = _nm_name(cname, taken)
        data_items[cname] = nm[cname]
    counter = [0]
    for d in c.individual_defs:
        nm[d] = _nm_name(d, taken)
    for d in c.state_defs:
        nm[d] = _nm_name(d, taken)

    def code(target: str, expr: str | float, where: str, names: Mapping[str, str],
             lines: list[str]) -> None:
        f = _Fortran(names, counter)
        rhs = f(expr, where)
        lines.extend(f.pre)
        lines.append(f"{target} = {rhs}")

    for d in c.individual_defs:
        code(nm[d], m.definitions[d], f"definitions.{d}", nm, pk)
    # dose properties
    dur_cmts = sorted({int(x) for x in events.cmt[(events.dur > 0) & (events.evid == 1)]})
    for k, comp in enumerate(m.compartments, 1):
        if comp.f not in (1.0, 1, "1", "1.0"):
            code(f"F{k}", comp.f, f"{comp.name}.f", nm, pk)
        if comp.lag not in (0.0, 0, "0", "0.0"):
            code(f"ALAG{k}", comp.lag, f"{comp.name}.lag", nm, pk)
        if comp.rate is not None:
            code(f"R{k}", comp.rate, f"{comp.name}.rate", nm, pk)
        if comp.duration is not None:
            expr = f"where(nm_dur > 0, nm_dur, {comp.duration})" if k in dur_cmts \
                else comp.duration
            code(f"D{k}", expr, f"{comp.name}.duration", {**nm, "nm_dur": "DUR"}, pk)
        elif k in dur_cmts:
            pk.append(f"D{k} = DUR")
    des: list[str] = []
    if linear:
        rates: dict[tuple[int, int], list[str]] = {}
        for src, tgt, e in c.flows:
            rates.setdefault((src + 1, tgt + 1 if tgt >= 0 else 0), []).append(e.text)
        for (a, b), exprs in rates.items():
            kname = f"K{a}{b}" if a <= 9 and b <= 9 else f"K{a}T{b}"
            code(kname, " + ".join(f"({x})" for x in exprs), f"flow {a}->{b}", nm, pk)
    else:
        des_names = dict(nm)
        des_names["t"] = "T"
        for d in c.state_defs:
            code(nm[d], m.definitions[d], f"definitions.{d}", des_names, des)
        terms: dict[int, list[str]] = {k: [] for k in range(1, m.n_states + 1)}
        for src, tgt, e in c.flows:
            terms[src + 1].append(f"-({e.text}) * {c.cmt_names[src]}")
            if tgt >= 0:
                terms[tgt + 1].append(f"({e.text}) * {c.cmt_names[src]}")
        for src, tgt, e in c.links:
            terms[tgt + 1].append(f"({e.text}) * {c.cmt_names[src]}")
        for src, tgt, e in c.fluxes:
            terms[src + 1].append(f"-({e.text})")
            if tgt >= 0:
                terms[tgt + 1].append(f"({e.text})")
        for j, sname in enumerate(m.states):
            terms[n_cmt + j + 1].append(f"({m.states[sname].rhs})")
            init = m.states[sname].initial
            if init not in (0, 0.0, "0", "0.0"):
                code(f"A_0({n_cmt + j + 1})", init, f"states.{sname}.initial", nm, pk)
        for k, ts in terms.items():
            code(f"DADT({k})", " + ".join(ts) if ts else "0.0", f"DADT({k})", des_names, des)
    # $ERROR: state definitions again, outputs
    err: list[str] = []
    err_names = dict(nm)
    err_names["t"] = "TIME"
    for d in c.state_defs:
        code(nm[d], m.definitions[d], f"definitions.{d}", err_names, err)
    outputs: list[str] = []
    for oname, o in m.outputs.items():
        on = _nm_name(oname, taken)
        outputs.append(on)
        code(on, o.expression, f"outputs.{oname}", err_names, err)
    first = outputs[0]
    if lib is not None and lib.analytes:
        first_out = lib.analytes[0].output
        first = next((on for on, k in zip(outputs, m.outputs, strict=True) if k == first_out),
                     first)
    err += [f"IPRED = {first}", "Y = IPRED * (1 + EPS(1))"]

    # control stream
    cov_cols = [data_items[cn] for cn in m.covariates]
    cols = ["ID", "TIME", "EVID", "AMT", "CMT", "RATE", "DUR", "II", "ADDL", "SS", "MDV",
            "DV", *cov_cols]
    comps = " ".join(f"COMP=(CMT{k}{' DEFDOSE' if k == 1 else ''})" for k in
                     range(1, m.n_states + 1))
    lines = [f"$PROBLEM {name}: {getattr(lib, 'title', m.description)[:60]}".rstrip(),
             "; written by ketasim export-nonmem; amounts mg, times h, concentrations mg/L",
             f"; regimen: {regimen.to_text()}",
             f"$INPUT {' '.join(cols)}",
             f"$DATA {name}.csv IGNORE=@",
             f"$SUBROUTINES ADVAN{advan}" + (" TOL=12" if advan == 13 else ""),
             f"$MODEL {comps}",
             "; compartments: " + ", ".join(f"{k} {n}" for k, n in
                                            enumerate(m.state_names, 1)),
             "$PK", *pk]
    if des:
        lines += ["$DES", *des]
    lines += ["$ERROR", *err, *theta_lines]
    if iiv is not None:
        om = np.asarray(iiv.omega, dtype=float)
        if np.allclose(om, np.diag(np.diag(om))):
            for i, e in enumerate(iiv.names):
                v = om[i, i]
                lines.append(f"$OMEGA {_number(v)}{' FIX' if v == 0 else ''} ; {e}")
        else:
            tri = " ".join(_number(om[i, j]) for i in range(len(om)) for j in range(i + 1))
            lines.append(f"$OMEGA BLOCK({len(om)}) {tri} ; {' '.join(iiv.names)}")
    lines += ["$SIGMA 0 FIX ; predictions only: add the residual error you need",
              "$SIMULATION (20240101) ONLYSIMULATION",
              f"$TABLE ID TIME {' '.join(outputs)} IPRED NOPRINT ONEHEADER NOAPPEND "
              f"FILE={name}.tab"]
    ctl = out / f"{name}.mod"
    ctl.write_text(_ascii("\n".join(lines) + "\n"))

    frame = events.to_frame()
    dose = np.isin(events.evid, (1, 4))
    data = pd.DataFrame({
        "ID": events.id, "TIME": events.time, "EVID": events.evid, "AMT": events.amt,
        "CMT": np.where(dose, events.cmt, 1), "RATE": np.where(dose & (events.dur > 0), -2.0,
                                                               events.rate),
        "DUR": events.dur, "II": events.ii, "ADDL": events.addl, "SS": events.ss,
        "MDV": (events.evid != 0).astype(int), "DV": 0.0})
    for cn in m.covariates:
        data[data_items[cn]] = frame[cn] if cn in frame else covs[cn]
    csv = out / f"{name}.csv"
    data.to_csv(csv, index=False, float_format="%.17g")
    ev = events.with_covariates(**{cn: data[data_items[cn]].to_numpy(float)
                                   for cn in m.covariates})
    return ExportedRun(control=ctl, data=csv, advan=advan, outputs=tuple(outputs), events=ev)


__all__ = ["ExportedRun", "export_nonmem"]
