"""Export a model (and a fixed subject and regimen) to SBML Level 3 Version 2.

The document reproduces ketasim's own simulation in any SBML tool (libRoadRunner, COPASI,
tellurium): ``tests/test_sbml.py`` checks every library model in libRoadRunner against
ketasim's engines to 1e-6 relative. What each model element becomes:

================================  ============================================================
ketasim                           SBML
================================  ============================================================
compartment (amount, mg)          species with ``hasOnlySubstanceUnits`` in one compartment
                                  ``_body`` (1 L, a container only: amounts stay amounts)
parameter                         constant parameter with its canonical unit (mg, L, h)
covariate                         constant parameter fixed to the given (or default) value
definition, output                parameter set by an assignment rule
flow ``a -> b`` / ``a -> None``   reaction ``a -> b`` / ``a ->``, kinetic law ``k * a``
link ``a -> b``                   reaction ``-> b`` with modifier ``a``, law ``k * a``
flux                              reaction with the flux expression as its kinetic law
nonlinear state                   parameter with a rate rule and an initial assignment
bolus dose                        event at ``t + lag`` adding ``amt * f`` to the species
infusion                          events switching ``_rate_<cmt>`` (mg/h, feeding reaction
                                  ``_input_<cmt>``) on at ``t + lag`` and off at the end
================================  ============================================================

Bioavailability ``f``, lag ``lag``, modelled rates (RATE = -1) and durations (RATE = -2,
``zero_order`` compartments) are written as SBML math of the model's parameters, so changing a
parameter in the SBML tool moves the doses as it would in ketasim. Additional doses (ADDL/II)
become one event each. What SBML events cannot express as ketasim does is refused with a typed
error naming it: steady-state doses (SS), resets (EVID 3/4), covariates that change over time,
several subjects, and names that are SBML symbols (``time``).

Events use ``useValuesFromTriggerTime="false"`` and only add to or subtract from a value, so
simultaneous doses (the same time, or a repeat coinciding with an infusion's end) add up in
any execution order.

Needs python-libsbml (the ``sbml`` extra).

>>> from ketasim.model import Model, Compartment, Flow, Output, Parameter
>>> from ketasim.dosing import Route
>>> m = Model("iv1", {"cl": Parameter(10.0, "L/h"), "v": Parameter(100.0, "L")},
...           [Compartment("central")], flows=[Flow("central", None, "cl / v")],
...           outputs={"cp": Output("central / v", "mg/L")},
...           routes={Route.IV_BOLUS: "central"})
>>> xml = to_sbml(m, regimen="100 mg IV bolus")
>>> import libsbml
>>> doc = libsbml.readSBMLFromString(xml)
>>> doc.getModel().getNumEvents(), doc.getModel().getEvent(0).getEventAssignment(0).getVariable()
(1, 'central')
"""

from __future__ import annotations

import ast
import html
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, cast

import numpy as np

from ketasim.dosing.events import EventTable
from ketasim.dosing.regimen import Regimen
from ketasim.errors import CovariateError, DataError, ModelError, RegimenError
from ketasim.model.expr import Expression
from ketasim.model.model import Model
from ketasim.units import ureg

EXTRA = "pip install 'ketasim[sbml]'"
LEVEL, VERSION = 3, 2
BODY = "_body"  # the one SBML compartment; leading underscores cannot clash with ketasim names
# SBML csymbols that a model quantity may not be called (the exported math would change meaning)
RESERVED = frozenset({"time", "avogadro", "delay", "rateOf"})


def _libsbml() -> ModuleType:
    try:
        import libsbml
    except ImportError:
        raise ModelError("libsbml", "is not installed (SBML export needs it)", EXTRA) from None
    return libsbml


# ---------------------------------------------------------------------------- math
class _Math:
    """Build libsbml ASTs from ketasim expressions (no formula parser: no name ambiguity)."""

    def __init__(self, sb: ModuleType) -> None:
        self.sb = sb

    def node(self, kind: int, *children: Any) -> Any:
        n = self.sb.ASTNode(kind)
        for c in children:
            n.addChild(c)
        return n

    def name(self, nm: str) -> Any:
        if nm == "t":
            n = self.sb.ASTNode(self.sb.AST_NAME_TIME)
            n.setName("time")
            return n
        n = self.sb.ASTNode(self.sb.AST_NAME)
        n.setName(nm)
        return n

    def num(self, x: float) -> Any:
        n = self.sb.ASTNode(self.sb.AST_REAL)
        n.setValue(float(x))
        return n

    def plus(self, *xs: Any) -> Any:
        return self.node(self.sb.AST_PLUS, *xs)

    def minus(self, a: Any, b: Any) -> Any:
        return self.node(self.sb.AST_MINUS, a, b)

    def times(self, *xs: Any) -> Any:
        return self.node(self.sb.AST_TIMES, *xs)

    def divide(self, a: Any, b: Any) -> Any:
        return self.node(self.sb.AST_DIVIDE, a, b)

    def geq(self, a: Any, b: Any) -> Any:
        return self.node(self.sb.AST_RELATIONAL_GEQ, a, b)

    def expr(self, value: str | float | Expression, field: str) -> Any:
        """The AST of a ketasim expression (text, number or parsed :class:`Expression`)."""
        e = value if isinstance(value, Expression) else Expression.parse(value, field=field)
        tree = ast.parse(e.text, mode="eval")  # already checked by Expression.parse
        return self._num(tree.body)

    # numeric context: booleans become 1/0 as numpy treats them
    def _num(self, n: ast.AST) -> Any:
        sb = self.sb
        if isinstance(n, ast.Constant):
            return self.num(float(cast(float, n.value)))
        if isinstance(n, ast.Name):
            return self.name(n.id)
        if isinstance(n, ast.BinOp):
            kind = {ast.Add: sb.AST_PLUS, ast.Sub: sb.AST_MINUS, ast.Mult: sb.AST_TIMES,
                    ast.Div: sb.AST_DIVIDE, ast.Pow: sb.AST_FUNCTION_POWER}[type(n.op)]
            return self.node(kind, self._num(n.left), self._num(n.right))
        if isinstance(n, ast.UnaryOp):
            inner = self._num(n.operand)
            return self.node(sb.AST_MINUS, inner) if isinstance(n.op, ast.USub) else inner
        if isinstance(n, ast.Compare):
            return self.node(sb.AST_FUNCTION_PIECEWISE, self.num(1.0), self._bool(n),
                             self.num(0.0))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            f, args = n.func.id, n.args
            if f == "exp":
                return self.node(sb.AST_FUNCTION_EXP, self._num(args[0]))
            if f == "log":
                return self.node(sb.AST_FUNCTION_LN, self._num(args[0]))
            if f == "log10":
                return self.node(sb.AST_FUNCTION_LOG, self._integer(10), self._num(args[0]))
            if f == "sqrt":
                return self.node(sb.AST_FUNCTION_ROOT, self._integer(2), self._num(args[0]))
            if f == "abs":
                return self.node(sb.AST_FUNCTION_ABS, self._num(args[0]))
            if f in ("min", "max"):
                # piecewise rather than L3V2 <min/>/<max/>: read by every Level 3 tool
                a, b = self._num(args[0]), self._num(args[1])
                rel = sb.AST_RELATIONAL_LEQ if f == "min" else sb.AST_RELATIONAL_GEQ
                return self.node(sb.AST_FUNCTION_PIECEWISE, a,
                                 self.node(rel, a.deepCopy(), b.deepCopy()), b)
            if f == "where":
                return self.node(sb.AST_FUNCTION_PIECEWISE, self._num(args[1]),
                                 self._bool(args[0]), self._num(args[2]))
        raise ModelError("expression", f"{ast.unparse(n)!r} cannot be written as SBML math",
                         "use + - * / **, comparisons and exp/log/log10/sqrt/abs/min/max/where")

    def _integer(self, k: int) -> Any:
        n = self.sb.ASTNode(self.sb.AST_INTEGER)
        n.setValue(int(k))
        return n

    # boolean context (a where() condition)
    def _bool(self, n: ast.AST) -> Any:
        sb = self.sb
        if isinstance(n, ast.Compare):
            kind = {ast.Lt: sb.AST_RELATIONAL_LT, ast.LtE: sb.AST_RELATIONAL_LEQ,
                    ast.Gt: sb.AST_RELATIONAL_GT, ast.GtE: sb.AST_RELATIONAL_GEQ,
                    ast.Eq: sb.AST_RELATIONAL_EQ, ast.NotEq: sb.AST_RELATIONAL_NEQ
                    }[type(n.ops[0])]
            return self.node(kind, self._num(n.left), self._num(n.comparators[0]))
        return self.node(sb.AST_RELATIONAL_NEQ, self._num(n), self.num(0.0))


# ---------------------------------------------------------------------------- units
_SBML_KIND = {"gram": "UNIT_KIND_GRAM", "kilogram": "UNIT_KIND_KILOGRAM",
              "meter": "UNIT_KIND_METRE", "litre": "UNIT_KIND_LITRE",
              "second": "UNIT_KIND_SECOND", "mole": "UNIT_KIND_MOLE",
              "ampere": "UNIT_KIND_AMPERE", "kelvin": "UNIT_KIND_KELVIN",
              "candela": "UNIT_KIND_CANDELA"}


def _unit_id(unit: str) -> str:
    text = unit.strip()
    text = text.replace("**", "^").replace("µ", "u").replace("μ", "u")
    text = re.sub(r"\s*/\s*", "_per_", text)
    text = re.sub(r"\s*\*\s*", "_", text)
    text = text.replace("^", "_pow_")
    text = re.sub(r"[^A-Za-z0-9_]", "", text)
    return "u_" + (text or "dimensionless")


@dataclass
class _Units:
    sb: ModuleType
    model: Any
    made: dict[str, str | None] = field(default_factory=dict)

    def get(self, unit: str) -> str | None:
        """The id of a UnitDefinition for ``unit`` (made on first use); None if not a unit."""
        u = unit.strip()
        if u in ("", "1", "-", "fraction", "dimensionless"):
            return "dimensionless"
        if u in self.made:
            return self.made[u]
        try:
            parts = [(str(name), float(cast(float, e)),
                      ureg.Quantity(1.0, str(name)).to_root_units())
                     for name, e in ureg.parse_units(u)._units.items()]
        except Exception:
            self.made[u] = None
            return None
        # one SBML unit per root dimension of each part: mg -> gram 10^-3, h -> 3600 second
        entries: list[tuple[str, float, float]] = []  # (kind, exponent, multiplier)
        for _, e, q in parts:
            items = {str(k): float(cast(float, r)) for k, r in q.unit_items()}
            mag = float(cast(float, q.magnitude))
            if "meter" in items and items["meter"] % 3 == 0:  # volumes in litres
                litres = items.pop("meter") / 3
                items["litre"] = litres
                mag *= 1000.0 ** litres
            if any(k not in _SBML_KIND for k in items) or not math.isfinite(mag) or mag <= 0:
                self.made[u] = None
                return None
            if not items:
                entries.append(("dimensionless", e, mag))
            for j, (kind, r) in enumerate(items.items()):
                # (multiplier * kind)^(r e): the part's factor mag^e sits on its first unit
                entries.append((kind, r * e, mag ** (1.0 / r) if j == 0 else 1.0))
        uid = _unit_id(u)
        base, k = uid, 2
        while self.model.getUnitDefinition(uid) is not None:
            uid, k = f"{base}_{k}", k + 1
        ud = self.model.createUnitDefinition()
        ud.setId(uid)
        ud.setName(u)
        for kind, exp, mult in entries:
            x = ud.createUnit()
            x.setKind(self.sb.UNIT_KIND_DIMENSIONLESS if kind == "dimensionless"
                      else getattr(self.sb, _SBML_KIND[kind]))
            x.setExponent(exp)
            scale = math.log10(mult)
            if abs(scale - round(scale)) < 1e-12:
                x.setScale(round(scale))
                x.setMultiplier(1.0)
            else:
                x.setScale(0)
                x.setMultiplier(mult)
        self.made[u] = uid
        return uid


def _notes(*lines: str) -> str:
    body = "".join(f"<p>{html.escape(x)}</p>" for x in lines if x)
    return f'<body xmlns="http://www.w3.org/1999/xhtml">{body}</body>'


# ---------------------------------------------------------------------------- doses
@dataclass(frozen=True)
class _Admin:
    """One administration: a bolus, or an infusion with its rate and duration as SBML math."""

    time: float
    cmt: int  # 0-based
    amount: float
    kind: str  # "bolus" | "rate" (RATE > 0) | "dur" (DUR > 0) | "model_rate" | "model_dur"
    value: float = 0.0  # RATE or DUR column
    record: int = 0


def _administrations(model: Model, table: EventTable) -> list[_Admin]:
    if len(table.subject_ids) > 1:
        raise RegimenError("regimen", f"{len(table.subject_ids)} subjects in the event table",
                           "export one subject at a time")
    for name, values in table.covariates.items():
        v = np.asarray(values, dtype=float)
        if name in model.covariates and v.size and not np.all(v == v[0]):
            raise CovariateError(name, "changes over time in the event table; SBML export "
                                 "fixes covariates", f"give one value of {name} (covariates=)")
    c = model.compiled
    out: list[_Admin] = []
    for i in range(table.n_records):
        evid = int(table.evid[i])
        if evid in (3, 4):
            raise RegimenError("EVID", f"record {i + 1} resets the system (EVID {evid}); "
                               "SBML export has no resets", "export the doses after the reset "
                               "as a separate regimen")
        if evid != 1:
            continue
        if int(table.ss[i]):
            raise RegimenError("SS", f"record {i + 1} is a steady-state dose "
                               f"(SS={int(table.ss[i])}); SBML events cannot start at steady "
                               "state",
                               "give the doses leading to steady state explicitly (ADDL/II)")
        cmt = int(table.cmt[i]) - 1
        amt, rate, dur = float(table.amt[i]), float(table.rate[i]), float(table.dur[i])
        if rate > 0:
            kind, value = "rate", rate
        elif rate == -1.0:
            if c.dose_rate[cmt] is None:
                raise RegimenError("RATE", f"record {i + 1} has RATE=-1 but compartment "
                                   f"{c.cmt_names[cmt]} defines no rate",
                                   "give RATE > 0 or define the compartment's rate")
            kind, value = "model_rate", 0.0
        elif rate == -2.0:
            if c.dose_dur[cmt] is None:
                raise RegimenError("RATE", f"record {i + 1} has RATE=-2 but compartment "
                                   f"{c.cmt_names[cmt]} defines no duration",
                                   "give RATE > 0 or define the compartment's duration")
            kind, value = "model_dur", 0.0
        elif dur > 0:
            kind, value = "dur", dur
        else:
            kind, value = "bolus", 0.0
        if amt == 0 and kind != "rate":
            continue
        ii = float(table.ii[i])
        for k in range(int(table.addl[i]) + 1):
            out.append(_Admin(float(table.time[i]) + k * ii, cmt, amt, kind, value, i))
    return out


# ---------------------------------------------------------------------------- export
def to_sbml(model: Any, *, covariates: Mapping[str, float] | None = None,
            parameters: Mapping[str, float] | None = None,
            regimen: Regimen | EventTable | str | None = None) -> str:
    """SBML Level 3 Version 2 text of ``model`` for one subject under ``regimen``.

    ``model`` is a :class:`~ketasim.model.Model` or a library model (or its name).
    ``covariates`` fix the subject's covariates (defaults where not given); ``parameters``
    replace parameter values (canonical units, as in :func:`ketasim.engine.simulate`).
    ``regimen`` is regimen text, a :class:`~ketasim.dosing.Regimen` or a one-subject
    :class:`~ketasim.dosing.EventTable`; ``None`` exports the model without doses. Raises a
    :class:`~ketasim.errors.KetasimError` naming anything that cannot be exported.
    """
    m = _as_model(model)
    sb = _libsbml()
    covs = {k: v for k, v in dict(covariates or {}).items()}
    for k, v in covs.items():
        if k not in m.covariates:
            raise CovariateError(k, f"is not a covariate of {m.name}",
                                 f"use one of {', '.join(m.covariates) or 'none'}")
        if np.ndim(v) != 0:
            raise CovariateError(k, "has several values", "give one value (one subject)")
    for k, v in dict(parameters or {}).items():
        if np.ndim(v) != 0:
            raise ModelError(k, "has several values", "give one value (one subject)")
    ind = m.individual(covs, parameters)  # checks names, ranges, required covariates
    out_ids = output_ids(m)

    table: EventTable | None = None
    if regimen is not None:
        from ketasim.engine.simulate import resolve_compartments, subject_problem, to_event_table
        table = resolve_compartments(m, to_event_table(
            regimen, covariates=covs or None, n_subjects=1, times=None))
        admins = _administrations(m, table)
        # ketasim's own interpretation checks F, lag, rates and durations (typed errors)
        subject_problem(m, table, covariates=covs, parameters=parameters)
    else:
        admins = []

    doc = sb.SBMLDocument(LEVEL, VERSION)
    smodel = doc.createModel()
    smodel.setId(_sid(m.name))
    smodel.setName(m.name)
    smodel.setNotes(_notes(m.description, m.citation,
                           "Exported by ketasim: amounts in mg, volumes in L, time in h."))
    units = _Units(sb, smodel)
    mg, litre, hour = units.get("mg"), units.get("L"), units.get("h")
    smodel.setTimeUnits(hour)
    smodel.setSubstanceUnits(mg)
    smodel.setExtentUnits(mg)
    smodel.setVolumeUnits(litre)
    mk = _Math(sb)

    comp = smodel.createCompartment()
    comp.setId(BODY)
    comp.setName("body (a container: amounts are in mg, concentrations are model outputs)")
    comp.setSize(1.0)
    comp.setConstant(True)
    comp.setSpatialDimensions(3)
    comp.setUnits(litre)

    c = m.compiled
    for cm in m.compartments:
        s = smodel.createSpecies()
        s.setId(cm.name)
        s.setName(cm.description or cm.name)
        s.setCompartment(BODY)
        s.setInitialAmount(0.0)
        s.setHasOnlySubstanceUnits(True)
        s.setBoundaryCondition(False)
        s.setConstant(False)
        s.setSubstanceUnits(mg)

    def parameter(pid: str, value: float, unit: str | None, name: str, constant: bool,
                  notes: tuple[str, ...] = ()) -> Any:
        p = smodel.createParameter()
        p.setId(pid)
        p.setName(name or pid)
        p.setValue(float(value))
        p.setConstant(constant)
        uid = None if unit is None else units.get(unit)
        if uid is not None:
            p.setUnits(uid)
        if any(notes):
            p.setNotes(_notes(*notes))
        return p

    for k, prm in m.parameters.items():
        parameter(k, float(ind[k]), prm.unit, prm.description, True,
                  (f"source: {prm.source}" if prm.source else "",
                   f"evidence: {prm.evidence}" + (f", grade {prm.grade}" if prm.grade else "")))
    for k, cov in m.covariates.items():
        parameter(k, float(ind[k]), cov.unit, cov.description, True,
                  ("covariate, fixed for this export",))
    y0 = m.initial_state(ind)
    for j, (k, st) in enumerate(m.states.items()):
        parameter(k, float(y0[m.n_cmt + j]), st.unit, st.description, False)
        ia = smodel.createInitialAssignment()
        ia.setSymbol(k)
        ia.setMath(mk.expr(c.state_init[k], f"states.{k}.initial"))
    for k in (*c.individual_defs, *c.state_defs):
        value = float(ind[k]) if k in ind else 0.0
        parameter(k, value, None, f"definition: {m.definitions[k]}", False)
        rule = smodel.createAssignmentRule()
        rule.setVariable(k)
        rule.setMath(mk.expr(c.defs[k], f"definitions.{k}"))
    for k, out in m.outputs.items():
        oid = out_ids[k]
        parameter(oid, 0.0, out.unit, out.description or k, False,
                  (f"output {k}" + (f", molar mass {out.molar_mass} g/mol" if out.molar_mass
                                    else ""),))
        rule = smodel.createAssignmentRule()
        rule.setVariable(oid)
        rule.setMath(mk.expr(c.outputs[k], f"outputs.{k}"))
    for k in m.states:
        rr = smodel.createRateRule()
        rr.setVariable(k)
        rr.setMath(mk.expr(c.state_rhs[k], f"states.{k}.rhs"))

    def reaction(rid: str, name: str, source: str | None, target: str | None,
                 law: Any, modifier: str | None = None) -> None:
        r = smodel.createReaction()
        r.setId(rid)
        r.setName(name)
        r.setReversible(False)
        if source is not None:
            x = r.createReactant()
            x.setSpecies(source)
            x.setStoichiometry(1.0)
            x.setConstant(True)
        if target is not None:
            x = r.createProduct()
            x.setSpecies(target)
            x.setStoichiometry(1.0)
            x.setConstant(True)
        if modifier is not None:
            r.createModifier().setSpecies(modifier)
        kl = r.createKineticLaw()
        kl.setMath(law)

    names = c.cmt_names
    for i, (src, tgt, e) in enumerate(c.flows):
        tn = names[tgt] if tgt >= 0 else None
        reaction(f"_flow{i + 1}", f"{names[src]} -> {tn or 'out'}", names[src], tn,
                 mk.times(mk.expr(e, "flows"), mk.name(names[src])))
    for i, (src, tgt, e) in enumerate(c.links):
        reaction(f"_link{i + 1}", f"{names[src]} drives {names[tgt]}", None, names[tgt],
                 mk.times(mk.expr(e, "links"), mk.name(names[src])), modifier=names[src])
    for i, (src, tgt, e) in enumerate(c.fluxes):
        tn = names[tgt] if tgt >= 0 else None
        reaction(f"_flux{i + 1}", f"{names[src]} -> {tn or 'out'} (nonlinear)", names[src], tn,
                 mk.expr(e, "fluxes"))

    # infusion inputs: one switchable rate per compartment that receives an infusion
    infused = sorted({a.cmt for a in admins if a.kind != "bolus"})
    for ci in infused:
        rid = f"_rate_{names[ci]}"
        parameter(rid, 0.0, "mg/h", f"infusion rate into {names[ci]}", False)
        reaction(f"_input_{names[ci]}", f"infusion into {names[ci]}", None, names[ci],
                 mk.name(rid))
    _events(smodel, mk, m, admins)

    errors = doc.checkInternalConsistency()
    if errors and doc.getNumErrors(sb.LIBSBML_SEV_ERROR):
        raise ModelError("sbml", doc.getErrorLog().toString().strip().splitlines()[0],
                         "report this model: its SBML export is inconsistent")
    return str(sb.writeSBMLToString(doc))


def _events(smodel: Any, mk: _Math, m: Model, admins: list[_Admin]) -> None:
    c = m.compiled
    names = c.cmt_names
    for n, a in enumerate(admins, start=1):
        cname = names[a.cmt]
        f_txt, lag_txt = c.dose_f[a.cmt].text, c.dose_lag[a.cmt].text

        def f_times(x: float, f_txt: str = f_txt, ci: int = a.cmt) -> Any:
            amount = mk.num(x)
            if _is_number(f_txt, 1.0):
                return amount
            return mk.times(amount, mk.expr(c.dose_f[ci], f"{names[ci]}.f"))

        start = mk.num(a.time)
        if not _is_number(lag_txt, 0.0):
            start = mk.plus(start, mk.expr(c.dose_lag[a.cmt], f"{cname}.lag"))
        if a.kind == "bolus":
            _event(smodel, mk, f"_dose{n}", f"{a.amount:g} mg into {cname} at {a.time:g} h",
                   start, cname, f_times(a.amount))
            continue
        rid = f"_rate_{cname}"
        if a.kind == "rate":
            rate = mk.num(a.value)
            dur = mk.divide(f_times(a.amount), mk.num(a.value)) if a.amount > 0 else None
        elif a.kind == "dur":
            rate = mk.divide(f_times(a.amount), mk.num(a.value))
            dur = mk.num(a.value)
        elif a.kind == "model_rate":
            model_rate = c.dose_rate[a.cmt]
            assert model_rate is not None
            rate = mk.expr(model_rate, f"{cname}.rate")
            dur = mk.divide(f_times(a.amount), rate.deepCopy())
        else:
            model_dur = c.dose_dur[a.cmt]
            assert model_dur is not None
            dur = mk.expr(model_dur, f"{cname}.duration")
            rate = mk.divide(f_times(a.amount), dur.deepCopy())
        label = f"{a.amount:g} mg infused into {cname} from {a.time:g} h"
        _event(smodel, mk, f"_dose{n}", label + ": start", start.deepCopy(), rid, rate.deepCopy())
        if dur is not None:
            _event(smodel, mk, f"_dose{n}_end", label + ": end", mk.plus(start, dur), rid,
                   rate, subtract=True)


def _event(smodel: Any, mk: _Math, eid: str, name: str, at: Any, variable: str,
           amount: Any, *, subtract: bool = False) -> None:
    ev = smodel.createEvent()
    ev.setId(eid)
    ev.setName(name)
    # evaluated when executed: simultaneous events each see the others' additions
    ev.setUseValuesFromTriggerTime(False)
    tr = ev.createTrigger()
    tr.setInitialValue(False)  # a dose at t = 0 fires at the start
    tr.setPersistent(True)
    tr.setMath(mk.geq(mk.name("t"), at))
    ea = ev.createEventAssignment()
    ea.setVariable(variable)
    ea.setMath(mk.minus(mk.name(variable), amount) if subtract
               else mk.plus(mk.name(variable), amount))


def _is_number(text: str, value: float) -> bool:
    try:
        return float(text) == value
    except ValueError:
        return False


def _sid(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if s and not s[0].isdigit() else "_" + s


def output_ids(model: Any) -> dict[str, str]:
    """The SBML id of each output: its name, or ``<name>_output`` where the name is also a
    compartment, state, parameter, covariate or definition (ketasim keeps outputs in their own
    namespace; SBML has one).

    >>> from ketasim.pk import get_model
    >>> output_ids(get_model("racemic_enantiomers"))["s_hnk"]
    's_hnk_output'
    """
    m = _as_model(model)
    c = m.compiled
    used: set[str] = set()
    for kind, names in (("parameter", m.parameters), ("covariate", m.covariates),
                        ("compartment", c.cmt_names), ("state", m.states),
                        ("definition", m.definitions), ("output", m.outputs)):
        for nm in names:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", nm):
                raise ModelError(nm, f"{kind} name is not an SBML identifier",
                                 "use ASCII letters, digits and _ only")
            if nm in RESERVED:
                raise ModelError(nm, f"{kind} name is an SBML symbol and cannot be exported",
                                 f"rename the {kind} (e.g. {nm}_1)")
            if kind != "output":
                used.add(nm)
    out: dict[str, str] = {}
    for nm in m.outputs:
        oid = nm
        while oid in used:
            oid += "_output"
        used.add(oid)
        out[nm] = oid
    return out


def _as_model(model: Any) -> Model:
    if isinstance(model, str):
        from ketasim.pk.registry import get_model
        model = get_model(model)
    inner = getattr(model, "model", None)
    if isinstance(inner, Model):
        return inner
    if isinstance(model, Model):
        return model
    raise ModelError("model", f"{type(model).__name__} is not a Model",
                     "pass a ketasim Model, a library model or its name")


def write_sbml(path: Any, model: Any, **kwargs: Any) -> None:
    """Write :func:`to_sbml` of ``model`` to ``path`` (keyword arguments as for it)."""
    from pathlib import Path
    text = to_sbml(model, **kwargs)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DataError("out", f"cannot write {path}: {exc.strerror}",
                           "give a writable file path") from None


__all__ = ["EXTRA", "output_ids", "to_sbml", "write_sbml"]
