"""The one entry point: ``simulate(model, doses, ...)`` with the engine as a strategy object.

>>> from ketasim.model import Model, Compartment, Flow, Output, Parameter
>>> from ketasim.dosing import Route
>>> m = Model("iv1", {"cl": Parameter(10.0, "L/h"), "v": Parameter(100.0, "L")},
...           [Compartment("central")], flows=[Flow("central", None, "cl / v")],
...           outputs={"cp": Output("central / v", "mg/L")},
...           routes={Route.IV_BOLUS: "central"})
>>> r = simulate(m, "100 mg IV bolus", times=[0, 10])
>>> [round(float(x), 6) for x in r["cp"]]
[1.0, 0.367879]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ketasim.dosing.events import EventTable
from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import Regimen
from ketasim.dosing.schedule import CovariateRule
from ketasim.engine.core import Engine
from ketasim.engine.prepare import (
    Doses,
    Prepared,
    dataset_events,
    expand_regimen,
    prepare,
    resolve_compartments,
    subject_problem,
)
from ketasim.engine.result import Result
from ketasim.errors import DoseError
from ketasim.model.model import Model

#: From this many subjects on, the default engine for a model with linear compartments is the
#: population engine (when numba is installed): below it the per-subject engines are as quick
#: and need no compiled kernel.
POPULATION_MIN_SUBJECTS = 64


def default_engine(model: Model, n_subjects: int = 1) -> Engine:
    """The engine :func:`simulate` uses when none is given.

    The population engine (states kept) for ``n_subjects`` >= :data:`POPULATION_MIN_SUBJECTS`
    when the model's compartments are linear and numba is installed; otherwise the analytic
    engine for linear models and the ODE engine for the others.
    """
    # imported on use: scipy.linalg / scipy.integrate take a while to import
    if n_subjects >= POPULATION_MIN_SUBJECTS and model.has_linear_compartments:
        from ketasim.engine.population import HAVE_NUMBA, PopulationEngine
        if HAVE_NUMBA:
            return PopulationEngine(keep_states=True)
    if model.is_linear:
        from ketasim.engine.analytic import AnalyticEngine
        return AnalyticEngine()
    from ketasim.engine.ode import OdeEngine
    return OdeEngine()


def simulate(
    model: Model,
    doses: Doses | Any,
    *,
    engine: Engine | None = None,
    covariates: Mapping[str, Any] | Any | None = None,
    parameters: Mapping[str, Any] | Any | None = None,
    times: Sequence[float] | np.ndarray | None = None,
    covariate_rule: CovariateRule = "nocb",
    observations_only: bool | None = None,
    throw: bool = False,
) -> Result:
    """Simulate ``model`` under ``doses`` and return a :class:`Result`.

    ``doses`` is regimen text, a :class:`Regimen`, an NM-TRAN :class:`EventTable` (one or
    many subjects, by its ID column) or a dataset with such a table (``NonmemDataset`` from
    :mod:`ketasim.io`). ``covariates`` and ``parameters`` (ETAs included) hold scalars for
    every subject, or per-subject values keyed by ID — ``{id: {name: value}}`` or a pandas
    DataFrame indexed by ID — which a regimen may also take as one array per name, in subject
    order (IDs 1..n; ``weight`` resolves mg/kg doses). A missing or unknown ID is a
    :class:`~ketasim.errors.CovariateError` naming it. ``times`` adds output times; with them,
    rows are the observation records and those times unless ``observations_only=False``;
    rows keep the dataset's subject and record order whatever the engine. ``engine`` is a
    strategy (:class:`AnalyticEngine`, :class:`OdeEngine`, :class:`PopulationEngine`); by
    default :func:`default_engine`. ``covariate_rule`` is ``"nocb"`` (NONMEM's default) or
    ``"locf"``. Solver failures set ``status``; ``throw=True`` raises
    :class:`~ketasim.errors.SolverError`.
    """
    job = prepare(model, doses, covariates=covariates, parameters=parameters, times=times,
                  covariate_rule=covariate_rule, observations_only=observations_only,
                  throw=throw)
    engine = engine or default_engine(model, job.n_subjects)
    engine.check(model)
    return engine.run_prepared(job)


def to_event_table(doses: Doses | Any, *, covariates: Mapping[str, Any] | None = None,
                   n_subjects: int = 1,
                   times: Sequence[float] | np.ndarray | None = None) -> EventTable:
    """Regimen text, a Regimen (for each of ``n_subjects``, IDs 1..n, mg/kg from ``weight``:
    one value or one per subject) or a dataset as one event table, with observation records
    at ``times``."""
    doses = dataset_events(doses)
    if isinstance(doses, str):
        doses = parse_regimen(doses)
    if isinstance(doses, EventTable):
        table = doses
    elif isinstance(doses, Regimen):
        w = (covariates or {}).get("weight")
        weights = None if w is None else \
            np.broadcast_to(np.asarray(w, dtype=float), (n_subjects,))
        table = expand_regimen(doses, np.arange(1, n_subjects + 1), weights)
    else:
        raise DoseError("doses", f"{type(doses).__name__} is not a regimen",
                        "pass regimen text, a Regimen, an EventTable or a NonmemDataset")
    if times is not None:
        table = table.with_observations(np.asarray(times, dtype=float))
    return table


__all__ = ["POPULATION_MIN_SUBJECTS", "Prepared", "default_engine", "resolve_compartments",
           "simulate", "subject_problem", "to_event_table"]
