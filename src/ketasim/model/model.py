"""Define pharmacokinetic / pharmacodynamic models in Python, as mrgsolve and rxode2 users do.

A :class:`Model` has

* **compartments** (linear amount states, numbered 1..n in the order given; this is the
  NM-TRAN ``CMT`` number), each with optional bioavailability ``f``, lag time ``lag``,
  modelled infusion ``rate`` (RATE = -1) and ``duration`` (RATE = -2) expressions;
* **flows** (first-order mass transfer ``source -> target`` at a rate constant, 1/h;
  ``target=None`` is elimination) and **links** (first-order input into ``target`` driven by
  ``source`` without removing mass from it, e.g. an effect compartment);
* **states**: nonlinear ODE states with a right-hand side and an initial value;
* **fluxes**: nonlinear amount flows between compartments (e.g. Michaelis–Menten); a model with
  fluxes is no longer linear and runs on the ODE engine only;
* **definitions** and **outputs**: algebraic expressions of parameters, covariates, amounts,
  states and time ``t``;
* **routes**: which compartment a dose by each :class:`~ketasim.dosing.Route` goes into, or
  several (a tuple): the dose record is then given to each, as NM-TRAN users write one record
  per compartment (e.g. the absorbed and the swallowed part of a nasal spray);
* **parameters** with value, unit, description, source and evidence tag, and **covariates**.

Units: parameters are given with a unit and stored in ketasim's canonical units (mg, L, h).

>>> m = Model(
...     name="one_cmt_iv",
...     parameters={"cl": Parameter(5.0, "L/h", "clearance", source="example", evidence="assumed"),
...                 "v": Parameter(50000.0, "mL", "volume", source="example", evidence="assumed")},
...     compartments=[Compartment("central")],
...     flows=[Flow("central", None, "cl / v")],
...     outputs={"cp": Output("central / v", "mg/L")},
...     routes={Route.IV_BOLUS: "central", Route.IV_INFUSION: "central"},
... )
>>> m.parameters["v"].value, m.is_linear
(50.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ketasim.dosing.route import Route
from ketasim.errors import CovariateError, ModelError, UnitError
from ketasim.model.expr import Expression, topological_order
from ketasim.model.variability import Eta, RandomEffects, as_random_effects
from ketasim.units import ureg

Evidence = Literal["literature", "calibrated", "assumed"]

# canonical units, tried in order: the first one a parameter's unit converts to is used
_CANONICAL = ("dimensionless", "mg", "L", "h", "L/h", "1/h", "mg/L", "mg/h", "mg/L/h", "kg", "year",
              "m", "m**2", "L/h/kg", "L/kg", "mmHg", "1/(mg/L)", "mL/min")


def canonical(value: float, unit: str, *, field: str) -> tuple[float, str]:
    """Convert ``value unit`` to ketasim's canonical unit for that dimension."""
    u = unit.strip() or "dimensionless"
    if u in ("1", "-", "fraction"):
        u = "dimensionless"
    try:
        q = ureg.Quantity(float(value), u)
    except Exception as exc:
        raise UnitError(field, f"unknown unit {unit!r}", "use units such as L/h, L, 1/h, mg/L, h"
                        ) from exc
    for target in _CANONICAL:
        try:
            return float(q.to(target).magnitude), target
        except Exception:
            continue
    return float(q.magnitude), u


@dataclass(frozen=True)
class Parameter:
    """A named model parameter: value, unit, meaning and where the number comes from.

    ``evidence`` is ``literature`` (``source`` cites paper with table or figure),
    ``calibrated`` (``source`` names the calibration run) or ``assumed`` (``source`` gives the
    reason). ``grade`` says how the number was checked: ``V`` checked against the primary
    text, ``S`` secondary source, ``M`` recalled, ``U`` uncertain or disputed.
    """

    value: float
    unit: str = "dimensionless"
    description: str = ""
    source: str = ""
    evidence: Evidence = "assumed"
    grade: str = ""

    def canonical(self, name: str) -> Parameter:
        """This parameter in canonical units."""
        if not isinstance(self.value, int | float) or not math.isfinite(self.value):
            raise ModelError(name, f"parameter value {self.value!r} is not a finite number",
                             "give a finite number")
        if self.evidence not in ("literature", "calibrated", "assumed"):
            raise ModelError(name, f"evidence {self.evidence!r} is not known",
                             "use 'literature', 'calibrated' or 'assumed'")
        if self.grade not in ("", "V", "S", "M", "U"):
            raise ModelError(name, f"grade {self.grade!r} is not known",
                             "use V, S, M or U (or leave empty)")
        v, u = canonical(self.value, self.unit, field=name)
        return Parameter(v, u, self.description, self.source, self.evidence, self.grade)


@dataclass(frozen=True)
class Covariate:
    """A subject characteristic the model uses; ``default`` None means it must be given."""

    default: float | None
    unit: str = "dimensionless"
    description: str = ""
    low: float = -math.inf
    high: float = math.inf


@dataclass(frozen=True)
class Compartment:
    """A linear amount state. Dose properties are expressions (or numbers).

    With ``zero_order=True`` a dose by a route (CMT 0) into this compartment that has no RATE
    or DUR of its own is given over the modelled ``duration`` (as RATE = -2), e.g. a zero-order
    absorption depot; records that name their CMT keep NM-TRAN semantics.
    """

    name: str
    f: str | float = 1.0
    lag: str | float = 0.0
    rate: str | float | None = None
    duration: str | float | None = None
    description: str = ""
    zero_order: bool = False


@dataclass(frozen=True)
class Flow:
    """First-order mass transfer ``source -> target`` (``None``: out of the system), 1/h."""

    source: str
    target: str | None
    rate_constant: str | float


@dataclass(frozen=True)
class Link:
    """``d target/dt += rate_constant * source``, without removing mass from ``source``."""

    source: str
    target: str
    rate_constant: str | float


@dataclass(frozen=True)
class Flux:
    """A nonlinear amount flow (mg/h) ``source -> target`` (``None``: out of the system)."""

    source: str
    target: str | None
    amount_per_h: str


@dataclass(frozen=True)
class State:
    """A nonlinear ODE state: ``d state/dt = rhs``, ``state(0) = initial``."""

    rhs: str
    initial: str | float = 0.0
    unit: str = "dimensionless"
    description: str = ""


@dataclass(frozen=True)
class Output:
    """An algebraic output and its unit; ``molar_mass`` (g/mol) allows reporting in µM."""

    expression: str
    unit: str = "dimensionless"
    description: str = ""
    molar_mass: float | None = None


@dataclass(frozen=True)
class EffectCompartment:
    """An effect compartment holding Ce (mg/L): dCe/dt = ke0 (A_source / volume - Ce).

    Declared in one line, it becomes a compartment ``name``, a :class:`Link` from ``source``
    (which loses no mass) and a first-order loss at ``ke0``; expressions read Ce as ``name``.
    """

    name: str
    source: str
    ke0: str | float
    volume: str | float


@dataclass(frozen=True)
class Metabolite:
    """A metabolite formed from a ``fraction`` of ``parent``'s elimination.

    Declared in one line, the parent's one elimination flow ``Flow(parent, None, k)`` becomes
    ``fraction * k`` into a new compartment ``name`` and ``(1 - fraction) * k`` out of the
    system; the metabolite is eliminated at the rate constant ``elimination`` (1/h). Amounts
    are in parent-drug mass: scale by the molar-mass ratio where a paper reports the
    metabolite's own mass.
    """

    name: str
    parent: str
    fraction: str | float
    elimination: str | float


def _expand(compartments: tuple[Compartment, ...], flows: tuple[Flow, ...],
            links: tuple[Link, ...], effects: Sequence[EffectCompartment],
            metabolites: Sequence[Metabolite]
            ) -> tuple[tuple[Compartment, ...], tuple[Flow, ...], tuple[Link, ...]]:
    """Effect compartments and metabolites as ordinary compartments, flows and links."""
    cmts, fl, lk = list(compartments), list(flows), list(links)
    for m in metabolites:
        out = [f for f in fl if f.source == m.parent and f.target is None]
        if len(out) != 1:
            raise ModelError(f"metabolites.{m.name}", f"parent {m.parent!r} has {len(out)} "
                             "elimination flows", "give the parent exactly one Flow(parent, "
                             "None, k) to split")
        k, fm = f"({out[0].rate_constant})", f"({m.fraction})"
        fl.remove(out[0])
        fl += [Flow(m.parent, m.name, f"{fm} * {k}"), Flow(m.parent, None, f"(1 - {fm}) * {k}"),
               Flow(m.name, None, m.elimination)]
        cmts.append(Compartment(m.name, description=f"metabolite of {m.parent}"))
    for e in effects:
        ke = f"({e.ke0})"
        cmts.append(Compartment(e.name, description=f"effect site of {e.source} (holds mg/L)"))
        lk.append(Link(e.source, e.name, f"{ke} / ({e.volume})"))
        fl.append(Flow(e.name, None, ke))
    return tuple(cmts), tuple(fl), tuple(lk)


_RESERVED = {"t", "math", "np", "y", "p", "r", "dy"}


@dataclass(frozen=True, eq=False)
class Model:
    """A compartment model with optional nonlinear states; see the module docstring."""

    name: str
    parameters: Mapping[str, Parameter]
    compartments: Sequence[Compartment]
    flows: Sequence[Flow] = ()
    links: Sequence[Link] = ()
    fluxes: Sequence[Flux] = ()
    states: Mapping[str, State] = field(default_factory=dict)
    definitions: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, Output] = field(default_factory=dict)
    routes: Mapping[Route, str | tuple[str, ...]] = field(default_factory=dict)
    covariates: Mapping[str, Covariate] = field(default_factory=dict)
    description: str = ""
    citation: str = ""
    etas: Mapping[str, Eta] = field(default_factory=dict)
    omega: Any = None
    effect_compartments: Sequence[EffectCompartment] = ()
    metabolites: Sequence[Metabolite] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters",
                           {k: p.canonical(k) for k, p in dict(self.parameters).items()})
        # effect compartments and metabolites become compartments, flows and links (and the
        # declarations are then empty, so that dataclasses.replace does not add them twice)
        cmts, flows, links = _expand(tuple(self.compartments), tuple(self.flows),
                                     tuple(self.links), tuple(self.effect_compartments),
                                     tuple(self.metabolites))
        object.__setattr__(self, "compartments", cmts)
        object.__setattr__(self, "flows", flows)
        object.__setattr__(self, "links", links)
        object.__setattr__(self, "effect_compartments", ())
        object.__setattr__(self, "metabolites", ())
        object.__setattr__(self, "fluxes", tuple(self.fluxes))
        object.__setattr__(self, "states", dict(self.states))
        object.__setattr__(self, "definitions", dict(self.definitions))
        object.__setattr__(self, "outputs", dict(self.outputs))
        object.__setattr__(self, "covariates", dict(self.covariates))
        object.__setattr__(self, "etas", dict(self.etas))
        if self.etas:
            object.__setattr__(self, "omega", as_random_effects(self.omega, tuple(self.etas)))
        elif self.omega is not None:
            raise ModelError("omega", "is given but the model declares no etas",
                             "declare etas={name: Eta(on=...)} or leave omega out")
        routes: dict[Route, tuple[str, ...]] = {}
        for r, c in dict(self.routes).items():
            routes[Route.parse(r) if isinstance(r, str) else r] = (c,) if isinstance(c, str) \
                else tuple(c)
        object.__setattr__(self, "routes", routes)
        self._compile()

    # ----------------------------------------------------------------- compilation
    def _compile(self) -> None:
        cmt_names = [c.name for c in self.compartments]
        if not cmt_names:
            raise ModelError("compartments", "the model has none", "define at least one")
        all_names = [*self.parameters, *self.covariates, *cmt_names, *self.states,
                     *self.definitions, *self.etas]
        seen: set[str] = set()
        for nm in all_names:
            if not nm.isidentifier() or nm in _RESERVED or nm.startswith("_"):
                raise ModelError(nm, "is not a usable name",
                                 "use a Python identifier that is not t, y, p, r or dy")
            if nm in seen:
                raise ModelError(nm, "is defined twice", "give each quantity one name")
            seen.add(nm)
        index = {c: i for i, c in enumerate(cmt_names)}

        def cmt(name: str | None, where: str) -> int:
            if name is None:
                return -1
            if name not in index:
                raise ModelError(where, f"refers to compartment {name!r}, which does not exist",
                                 f"use one of {', '.join(cmt_names)}")
            return index[name]

        defs = {k: Expression.parse(v, field=f"definitions.{k}")
                for k, v in self.definitions.items()}
        base_ind = set(self.parameters) | set(self.covariates)
        dynamic = set(cmt_names) | set(self.states) | {"t"}
        # a definition is individual-level when it (transitively) uses no amount, state or t
        order = topological_order(defs, base_ind | dynamic)
        individual_defs: list[str] = []
        state_defs: list[str] = []
        dyn = set(dynamic)
        for name in order:
            if defs[name].names & dyn:
                dyn.add(name)
                state_defs.append(name)
            else:
                individual_defs.append(name)
        ind_names = set(base_ind) | set(individual_defs)
        eta_on: dict[str, list[tuple[str, Eta]]] = {}
        for nm, eta in self.etas.items():
            if not isinstance(eta, Eta):
                raise ModelError(f"etas.{nm}", f"is a {type(eta).__name__}, not an Eta",
                                 "declare it as Eta(on=...)")
            if eta.kind not in ("exponential", "proportional", "additive"):
                raise ModelError(f"etas.{nm}", f"kind {eta.kind!r} is not known",
                                 "use 'exponential', 'proportional' or 'additive'")
            if eta.on not in ind_names or eta.on in self.covariates:
                raise ModelError(f"etas.{nm}", f"acts on {eta.on!r}, which is not a parameter or "
                                 "an individual definition", "name a parameter or a definition "
                                 "built from parameters and covariates (not from amounts or t)")
            eta_on.setdefault(eta.on, []).append((nm, eta))

        def ind_expr(value: str | float, where: str) -> Expression:
            e = Expression.parse(value, field=where)
            unknown = e.names - (ind_names | dyn)
            if unknown:
                raise ModelError(where, f"uses {sorted(unknown)}, which are not defined",
                                 "define them as parameters, covariates or definitions")
            extra = e.names - ind_names
            if extra:
                raise ModelError(where, f"uses {sorted(extra)}, which change over time",
                                 "use only parameters, covariates and definitions built from "
                                 "them here")
            return e

        def any_expr(value: str | float, where: str) -> Expression:
            e = Expression.parse(value, field=where)
            extra = e.names - (ind_names | dyn)
            if extra:
                raise ModelError(where, f"uses {sorted(extra)}, which are not defined",
                                 "define them as parameters, covariates, compartments, states "
                                 "or definitions")
            return e

        flows = [(cmt(f.source, "flows"), cmt(f.target, "flows"),
                  ind_expr(f.rate_constant, f"flow {f.source}->{f.target}")) for f in self.flows]
        links = [(cmt(k.source, "links"), cmt(k.target, "links"),
                  ind_expr(k.rate_constant, f"link {k.source}->{k.target}")) for k in self.links]
        fluxes = [(cmt(x.source, "fluxes"), cmt(x.target, "fluxes"),
                   any_expr(x.amount_per_h, f"flux {x.source}->{x.target}")) for x in self.fluxes]
        dose_f = [ind_expr(c.f, f"{c.name}.f") for c in self.compartments]
        dose_lag = [ind_expr(c.lag, f"{c.name}.lag") for c in self.compartments]
        dose_rate = [None if c.rate is None else ind_expr(c.rate, f"{c.name}.rate")
                     for c in self.compartments]
        dose_dur = [None if c.duration is None else ind_expr(c.duration, f"{c.name}.duration")
                    for c in self.compartments]
        state_rhs = {k: any_expr(s.rhs, f"states.{k}.rhs") for k, s in self.states.items()}
        state_init = {k: ind_expr(s.initial, f"states.{k}.initial") for k, s in self.states.items()}
        outputs = {k: any_expr(o.expression, f"outputs.{k}") for k, o in self.outputs.items()}
        for r, targets in self.routes.items():
            if not targets:
                raise ModelError(f"routes.{r.value}", "names no compartment",
                                 "give the compartment(s) doses by this route go into")
            for c in targets:
                cmt(c, f"routes.{r.value}")
        for comp in self.compartments:
            if comp.zero_order and comp.duration is None:
                raise ModelError(f"{comp.name}.zero_order", "needs a duration expression",
                                 "give Compartment(duration=...) for zero-order input")
        object.__setattr__(self, "_c", _Compiled(
            cmt_names=cmt_names, defs=defs, individual_defs=individual_defs,
            state_defs=state_defs, eta_on=eta_on, ind_order=[*self.parameters, *self.covariates,
                                              *individual_defs],
            flows=flows, links=links, fluxes=fluxes, dose_f=dose_f, dose_lag=dose_lag,
            dose_rate=dose_rate, dose_dur=dose_dur, state_rhs=state_rhs, state_init=state_init,
            outputs=outputs))

    # ----------------------------------------------------------------- properties
    @property
    def compiled(self) -> _Compiled:
        """The checked, ordered form of the model used by engines."""
        return self._c  # type: ignore[attr-defined]

    @property
    def fingerprint(self) -> str:
        """A digest of the model's structure and equations (keys for compiled-code caches)."""
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            import hashlib
            text = self.rhs_source() + self.output_source(list(self.outputs)) + repr(
                [(c.name, c.f, c.lag, c.rate, c.duration) for c in self.compartments])
            fp = hashlib.sha256(text.encode()).hexdigest()[:16]
            object.__setattr__(self, "_fingerprint", fp)
        return fp

    @property
    def n_cmt(self) -> int:
        """Number of linear compartments."""
        return len(self.compartments)

    @property
    def n_states(self) -> int:
        """Compartments plus nonlinear states."""
        return len(self.compartments) + len(self.states)

    @property
    def state_names(self) -> list[str]:
        """Compartment names then nonlinear state names (the state vector order)."""
        return [c.name for c in self.compartments] + list(self.states)

    @property
    def is_linear(self) -> bool:
        """True when the model is a linear compartment system (no states, no fluxes)."""
        return not self.states and not self.fluxes

    @property
    def has_linear_compartments(self) -> bool:
        """True when compartments are linear (nonlinear states may be driven by them)."""
        return not self.fluxes

    def compartment_number(self, name: str) -> int:
        """1-based NM-TRAN CMT number of a compartment."""
        try:
            return self.compiled.cmt_names.index(name) + 1
        except ValueError:
            raise ModelError("compartment", f"{name!r} is not in model {self.name}",
                             f"use one of {', '.join(self.compiled.cmt_names)}") from None

    def route_compartment(self, route: Route | str) -> int:
        """1-based number of the (first) compartment that doses by ``route`` go into."""
        return self.route_compartments(route)[0]

    def route_compartments(self, route: Route | str) -> tuple[int, ...]:
        """1-based numbers of every compartment a dose by ``route`` goes into."""
        r = Route.parse(route) if isinstance(route, str) else route
        if r not in self.routes:
            raise ModelError("route", f"model {self.name} does not support {r.word} doses",
                             "use one of: " + ", ".join(x.word for x in self.routes)
                             if self.routes else "add the route to the model's routes")
        return tuple(self.compartment_number(c) for c in self.routes[r])

    @property
    def random_effects(self) -> RandomEffects | None:
        """The declared etas' covariance (``$OMEGA``), or None when the model declares none."""
        return self.omega if self.etas else None

    def sample_etas(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` draws of the declared etas ~ N(0, Ω), to pass as ``parameters=``."""
        re = self.random_effects
        return re.sample(n, rng) if re is not None else {}

    def with_parameters(self, **values: float) -> Model:
        """A copy with parameter values replaced (in the parameters' canonical units)."""
        params = dict(self.parameters)
        for k, v in values.items():
            if k not in params:
                raise ModelError(k, f"is not a parameter of {self.name}",
                                 f"use one of {', '.join(params)}")
            params[k] = replace(params[k], value=float(v))
        return replace(self, parameters=params)

    # ----------------------------------------------------------------- evaluation
    def individual(self, covariates: Mapping[str, Any] | None = None,
                   parameters: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Individual-level values (parameters, covariates, definitions), broadcast together.

        ``covariates`` and ``parameters`` may hold scalars or arrays (per record, per subject).
        ``parameters`` may also give the declared etas (0 when not given), which act on their
        values after the covariate formulas.
        """
        c = self.compiled
        values: dict[str, Any] = {k: p.value for k, p in self.parameters.items()}
        eta_values: dict[str, Any] = {}
        if parameters:
            for k, v in parameters.items():
                if k in self.etas:
                    eta_values[k] = np.asarray(v, dtype=float)
                    continue
                if k not in self.parameters:
                    raise ModelError(k, f"is not a parameter of {self.name}",
                                     f"use one of {', '.join([*self.parameters, *self.etas])}")
                values[k] = np.asarray(v, dtype=float)

        def with_etas(name: str) -> None:
            for eta_name, eta in c.eta_on.get(name, ()):
                if eta_name in eta_values:
                    values[name] = eta.apply(values[name], eta_values[eta_name])

        if eta_values:
            for k in self.parameters:
                with_etas(k)
        covs = dict(covariates or {})
        for k, cov in self.covariates.items():
            if k in covs and covs[k] is not None:
                arr = np.asarray(covs[k], dtype=float)
                if not np.all(np.isfinite(arr)):
                    raise CovariateError(k, "is not a finite number", f"give {k} as a number")
                if np.any((arr < cov.low) | (arr > cov.high)):
                    raise CovariateError(k, f"{arr.min():g}–{arr.max():g} {cov.unit} is outside "
                                         f"{cov.low:g}–{cov.high:g}",
                                         f"give {k} in {cov.unit} within the model's range")
                values[k] = arr
            elif cov.default is not None:
                values[k] = float(cov.default)
            else:
                raise CovariateError(k, f"is needed by model {self.name}",
                                     f"give {k} ({cov.unit})")
        for k in c.individual_defs:
            values[k] = c.defs[k].evaluate(values)
            if eta_values:
                with_etas(k)
        shape = np.broadcast_shapes(*(np.shape(v) for v in values.values()))
        return {k: np.broadcast_to(np.asarray(values[k], dtype=float), shape)
                for k in c.ind_order}

    def system_matrix(self, ind: Mapping[str, np.ndarray]) -> np.ndarray:
        """The linear system matrix K (shape ``batch + (n_cmt, n_cmt)``): dA/dt = K A + input."""
        c = self.compiled
        shape = np.shape(next(iter(ind.values()))) if ind else ()
        k = np.zeros((*shape, self.n_cmt, self.n_cmt))
        for src, tgt, e in c.flows:
            rate = np.broadcast_to(e.evaluate(ind), shape)
            k[..., src, src] -= rate
            if tgt >= 0:
                k[..., tgt, src] += rate
        for src, tgt, e in c.links:
            k[..., tgt, src] += np.broadcast_to(e.evaluate(ind), shape)
        if not np.all(np.isfinite(k)):
            raise ModelError("parameters", "the system matrix has a non-finite rate constant",
                             "check for zero volumes or missing covariates")
        return k

    def dose_properties(self, ind: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-compartment ``f``, ``lag``, ``rate``, ``duration`` (shape ``batch + (n_cmt,)``).

        ``rate``/``duration`` are NaN where the compartment defines none.
        """
        c = self.compiled
        shape = np.shape(next(iter(ind.values()))) if ind else ()

        def stack(exprs: list[Expression | None]) -> np.ndarray:
            cols = [np.full(shape, np.nan) if e is None else
                    np.broadcast_to(np.asarray(e.evaluate(ind), dtype=float), shape)
                    for e in exprs]
            return np.stack(cols, axis=-1)

        return {"f": stack(list(c.dose_f)), "lag": stack(list(c.dose_lag)),
                "rate": stack(list(c.dose_rate)), "duration": stack(list(c.dose_dur))}

    def initial_state(self, ind: Mapping[str, np.ndarray]) -> np.ndarray:
        """Initial state vector (compartments at 0, states at their initial values)."""
        c = self.compiled
        shape = np.shape(next(iter(ind.values()))) if ind else ()
        y0 = np.zeros((*shape, self.n_states))
        for j, k in enumerate(self.states):
            y0[..., self.n_cmt + j] = c.state_init[k].evaluate(ind)
        return y0

    def evaluate_outputs(self, t: np.ndarray, y: np.ndarray,
                         ind: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs at times ``t`` for states ``y`` (time on the last-but-one axis)."""
        c = self.compiled
        env: dict[str, Any] = dict(ind)
        env["t"] = t
        for i, nm in enumerate(self.state_names):
            env[nm] = y[..., i]
        for k in c.state_defs:
            env[k] = c.defs[k].evaluate(env)
        return {k: np.broadcast_to(np.asarray(e.evaluate(env), dtype=float), np.shape(t))
                .astype(float) for k, e in c.outputs.items()}

    # ----------------------------------------------------------------- code generation
    def rhs_source(self, name: str = "rhs", *, nonlinear_only: bool = False) -> str:
        """Python source of the scalar right-hand side ``name(t, y, p, r, dy)``.

        ``p`` holds the individual values in :attr:`_Compiled.ind_order`, ``r`` the input rates
        per compartment. With ``nonlinear_only`` the function is ``name(t, a, s, p, ds)``: it
        reads compartment amounts ``a`` and writes only the nonlinear states' derivatives.
        """
        c = self.compiled
        n = self.n_cmt
        lines = []
        if nonlinear_only:
            lines.append(f"def {name}(t, a, s, p, ds):")
        else:
            lines.append(f"def {name}(t, y, p, r, dy):")
        for i, k in enumerate(c.ind_order):
            lines.append(f"    {k} = p[{i}]")
        for i, k in enumerate(c.cmt_names):
            lines.append(f"    {k} = {'a' if nonlinear_only else 'y'}[{i}]")
        for j, k in enumerate(self.states):
            ref = f"s[{j}]" if nonlinear_only else f"y[{n + j}]"
            lines.append(f"    {k} = {ref}")
        for k in c.state_defs:
            lines.append(f"    {k} = {c.defs[k].source}")
        if not nonlinear_only:
            for i in range(n):
                lines.append(f"    dy[{i}] = r[{i}]")
            for src, tgt, e in c.flows:
                lines.append(f"    _q = ({e.source}) * y[{src}]")
                lines.append(f"    dy[{src}] -= _q")
                if tgt >= 0:
                    lines.append(f"    dy[{tgt}] += _q")
            for src, tgt, e in c.links:
                lines.append(f"    dy[{tgt}] += ({e.source}) * y[{src}]")
            for src, tgt, e in c.fluxes:
                lines.append(f"    _q = {e.source}")
                lines.append(f"    dy[{src}] -= _q")
                if tgt >= 0:
                    lines.append(f"    dy[{tgt}] += _q")
        for j, k in enumerate(self.states):
            target = f"ds[{j}]" if nonlinear_only else f"dy[{n + j}]"
            lines.append(f"    {target} = {c.state_rhs[k].source}")
        lines.append("    return 0")
        return "\n".join(lines) + "\n"

    def output_source(self, names: Sequence[str], name: str = "outputs") -> str:
        """Python source of ``name(t, y, p, o)`` writing the outputs ``names`` into ``o``."""
        c = self.compiled
        lines = [f"def {name}(t, y, p, o):"]
        for i, k in enumerate(c.ind_order):
            lines.append(f"    {k} = p[{i}]")
        for i, k in enumerate(self.state_names):
            lines.append(f"    {k} = y[{i}]")
        for k in c.state_defs:
            lines.append(f"    {k} = {c.defs[k].source}")
        for j, k in enumerate(names):
            lines.append(f"    o[{j}] = {c.outputs[k].source}")
        lines.append("    return 0")
        return "\n".join(lines) + "\n"

    def parameter_vector(self, ind: Mapping[str, np.ndarray]) -> np.ndarray:
        """Individual values stacked in ``ind_order`` on the last axis."""
        return np.stack([np.asarray(ind[k], dtype=float) for k in self.compiled.ind_order],
                        axis=-1)


@dataclass(frozen=True)
class _Compiled:
    cmt_names: list[str]
    defs: dict[str, Expression]
    individual_defs: list[str]
    state_defs: list[str]
    eta_on: dict[str, list[tuple[str, Eta]]]
    ind_order: list[str]
    flows: list[tuple[int, int, Expression]]
    links: list[tuple[int, int, Expression]]
    fluxes: list[tuple[int, int, Expression]]
    dose_f: list[Expression]
    dose_lag: list[Expression]
    dose_rate: list[Expression | None]
    dose_dur: list[Expression | None]
    state_rhs: dict[str, Expression]
    state_init: dict[str, Expression]
    outputs: dict[str, Expression]


def compile_function(source: str, name: str) -> Any:
    """Execute generated source (from :meth:`Model.rhs_source`) and return the function."""
    import math as _math

    from ketasim.model.expr import _where
    namespace: dict[str, Any] = {"math": _math, "_where": _where}
    exec(compile(source, f"<ketasim:{name}>", "exec"), namespace)
    return namespace[name]


__all__ = ["Compartment", "Covariate", "EffectCompartment", "Eta", "Flow", "Flux", "Link",
           "Metabolite", "Model", "Output", "Parameter", "RandomEffects", "State", "canonical",
           "compile_function"]
