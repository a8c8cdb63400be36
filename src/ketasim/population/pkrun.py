"""Simulate a regimen with a library model for one patient or a virtual population.

>>> run = run_pk("0.5 mg/kg IV over 40 min", covariates={"weight": 70.0},
...              times=[0.0, 0.5, 2 / 3, 1.0])
>>> run.model.name, round(float(run.concentration("ketamine")[0, 2]) * 1000)
('racemic_enantiomers', 159)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ketasim.dosing.events import EventTable
from ketasim.dosing.language import parse_regimen
from ketasim.dosing.regimen import Regimen
from ketasim.engine.population import PopulationEngine
from ketasim.engine.simulate import default_engine, simulate
from ketasim.errors import DoseError, EventError, KetasimError
from ketasim.pk.library_model import LibraryModel
from ketasim.pk.registry import default_model_name, get_model
from ketasim.population import metrics
from ketasim.population.virtual import VirtualPopulation, sample_population

if TYPE_CHECKING:  # pandas is imported when a frame is made
    import pandas as pd

DISCLAIMER = ("ketasim supports decisions and research; it does not replace a clinician. "
              "Concentrations are model predictions, not measurements.")


@dataclass(frozen=True, eq=False)
class PKRun:
    """Concentrations (mg/L) per analyte, shape (subjects, times), with their provenance."""

    model: LibraryModel
    regimen: Regimen
    times: np.ndarray
    concentrations: dict[str, np.ndarray]
    population: VirtualPopulation
    seed: int | None
    engine: str
    warnings: tuple[str, ...] = ()

    @property
    def n_subjects(self) -> int:
        """Number of simulated subjects."""
        return self.population.n

    def concentration(self, analyte: str, unit: str = "mg/L") -> np.ndarray:
        """(subjects, times) in ``mg/L``, ``ng/mL`` or ``umol/L``."""
        if analyte not in self.concentrations:
            raise KetasimError("analyte", f"{analyte!r} is not predicted by {self.model.name}",
                               f"use one of {', '.join(self.concentrations)}")
        c = self.concentrations[analyte]
        if unit == "mg/L":
            return c
        if unit == "ng/mL":
            return c * 1000.0
        if unit in ("umol/L", "µmol/L", "uM", "µM"):
            return c / self.model.analyte(analyte).molar_mass * 1000.0
        raise KetasimError("unit", f"{unit!r} is not offered", "use mg/L, ng/mL or umol/L")

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows: ``subject,time_h,analyte,conc_ng_per_ml,conc_umol_per_l``."""
        import pandas as pd
        parts = []
        n, nt = self.n_subjects, len(self.times)
        for a in self.concentrations:
            parts.append(pd.DataFrame({
                "subject": np.repeat(np.arange(1, n + 1), nt),
                "time_h": np.tile(self.times, n),
                "analyte": a,
                "conc_ng_per_ml": self.concentration(a, "ng/mL").reshape(-1),
                "conc_umol_per_l": self.concentration(a, "umol/L").reshape(-1)}))
        return pd.concat(parts, ignore_index=True)

    def metrics(self, start: float | None = None, end: float | None = None
                ) -> dict[str, dict[str, np.ndarray]]:
        """Per analyte: per-subject ``cmax_ng_per_ml``, ``tmax_h``, ``auc_ng_h_per_ml``."""
        out = {}
        for a in self.concentrations:
            c = self.concentration(a, "ng/mL")
            out[a] = {"cmax_ng_per_ml": metrics.cmax(self.times, c, start, end),
                      "tmax_h": metrics.tmax(self.times, c, start, end),
                      "auc_ng_h_per_ml": metrics.auc(self.times, c, start, end)}
        return out

    def summary(self, start: float | None = None, end: float | None = None) -> dict[str, Any]:
        """A JSON-ready summary (population values as ``{"p5", "p50", "p95"}``)."""
        per = self.metrics(start, end)
        analytes: dict[str, Any] = {}
        for a, vals in per.items():
            analytes[a] = {k: (float(v[0]) if self.n_subjects == 1 else metrics.percentiles(v))
                           for k, v in vals.items()}
        return {
            "model": self.model.name, "citation": self.model.citation,
            "regimen": self.regimen.to_text(), "subjects": self.n_subjects, "seed": self.seed,
            "window_h": [float(self.times[0] if start is None else start),
                         float(self.times[-1] if end is None else end)],
            "analytes": analytes, "warnings": list(self.warnings),
            "disclaimer": DISCLAIMER,
        }


def resolve_model(model: str | LibraryModel | None, regimen: Regimen) -> LibraryModel:
    """The named model, or the default for the regimen's compound and first route."""
    if isinstance(model, LibraryModel):
        return model
    if model:
        return get_model(model)
    compound = regimen.compound or "racemic"
    route = regimen.doses[0].route
    return get_model(default_model_name(compound, route))


def run_pk(regimen: str | Regimen, *, model: str | LibraryModel | None = None,
           subjects: int = 1, seed: int | None = None,
           covariates: Mapping[str, Any] | None = None,
           times: Sequence[float] | np.ndarray | None = None,
           allow_extrapolation: bool = False, residual_error: bool = False,
           chunk_size: int = 2000,
           progress: Callable[[int], None] | None = None,
           etas: Mapping[str, float] | None = None) -> PKRun:
    """Simulate ``regimen`` with a library model for one typical patient (``subjects=1``) or
    a virtual population sampled with ``numpy.random.default_rng(seed)``.

    ``covariates`` fixes covariates (one value, or one per subject). Covariates outside the
    model's studied population raise unless ``allow_extrapolation``; then they are warned
    about in ``warnings``. ``times`` default: every 5 min until 24 h after the last dose.
    ``progress`` is called with the number of subjects finished. ``etas`` gives one subject
    (``subjects=1``) its own random effects (by name; the others 0), e.g. a MAP estimate.
    For populations too large to hold, iterate :func:`iter_pk` instead.
    """
    chunks = list(iter_pk(regimen, model=model, subjects=subjects, seed=seed,
                          covariates=covariates, times=times,
                          allow_extrapolation=allow_extrapolation,
                          residual_error=residual_error, chunk_size=chunk_size,
                          progress=progress, etas=etas))
    if len(chunks) == 1:
        return chunks[0]
    first = chunks[0]
    pops = [c.population for c in chunks]
    pop = VirtualPopulation(
        sum(p.n for p in pops),
        {k: np.concatenate([p.covariates[k] for p in pops]) for k in first.population.covariates},
        {k: np.concatenate([p.parameters[k] for p in pops]) for k in first.population.parameters})
    return PKRun(first.model, first.regimen, first.times,
                 {a: np.vstack([c.concentrations[a] for c in chunks])
                  for a in first.concentrations}, pop, seed, first.engine, first.warnings)


def iter_pk(regimen: str | Regimen, *, model: str | LibraryModel | None = None,
            subjects: int = 1, seed: int | None = None,
            covariates: Mapping[str, Any] | None = None,
            times: Sequence[float] | np.ndarray | None = None,
            allow_extrapolation: bool = False, residual_error: bool = False,
            chunk_size: int = 2000,
            progress: Callable[[int], None] | None = None,
            etas: Mapping[str, float] | None = None) -> Iterator[PKRun]:
    """Like :func:`run_pk`, but yields one :class:`PKRun` per chunk of ``chunk_size``
    subjects, so memory stays bounded by a few chunks' output (the one handed over and the
    next, solved in the background meanwhile), whatever the number of subjects. The
    population is sampled once from ``seed`` (so results do not depend on ``chunk_size``)."""
    reg = parse_regimen(regimen) if isinstance(regimen, str) else regimen
    if not reg.doses:
        raise DoseError("regimen", "has no doses", "give at least one dose")
    lm = resolve_model(model, reg)
    compound = reg.compound
    if compound is not None and compound != lm.compound:
        raise DoseError("compound", f"the regimen gives {compound} but {lm.name} models "
                        f"{lm.compound}", "pick a model for this compound (ketasim models)")
    for d in reg.doses:
        lm.check_route(d.route)
    if subjects < 1:
        raise KetasimError("subjects", f"is {subjects}", "simulate at least one subject")
    if chunk_size < 1:
        raise KetasimError("chunk_size", f"is {chunk_size}", "use a positive chunk size")
    if times is None:
        times = np.arange(0.0, reg.last_time + 24.0 + 1e-9, 5.0 / 60.0)
    t = np.unique(np.asarray(times, dtype=float))
    if t.size == 0 or np.any(t < 0) or not np.all(np.isfinite(t)):
        raise EventError("times", "output times must be finite and >= 0",
                         "give --until and --every in time units, e.g. 24h and 5min")
    rng = np.random.default_rng(seed)
    if subjects == 1:
        missing = [k for k, c in lm.model.covariates.items()
                   if c.default is None and k not in (covariates or {})]
        if missing:
            from ketasim.errors import CovariateError
            raise CovariateError(missing[0], f"is needed by {lm.name}",
                                 f"give --{missing[0]} (e.g. --weight 70)")
        fixed = {k: c.default for k, c in lm.model.covariates.items() if c.default is not None}
        fixed.update(covariates or {})
        pop = sample_population(lm, 1, rng, covariates=fixed, variability=False)
        if etas:
            names = lm.iiv.names if lm.iiv is not None else ()
            unknown = sorted(set(etas) - set(names))
            if unknown:
                raise KetasimError("etas", f"{unknown[0]} is not a random effect of {lm.name}",
                                   f"use {', '.join(names) or 'none: the model has none'}")
            pop = VirtualPopulation(1, pop.covariates,
                                    {k: np.array([float(etas.get(k, 0.0))]) for k in names})
    elif etas:
        raise KetasimError("etas", "are given for a population",
                           "give random effects for one subject (subjects=1)")
    else:
        pop = sample_population(lm, subjects, rng, covariates=covariates)
    warnings = tuple(lm.extrapolation(pop.covariates, allow=allow_extrapolation))
    doses: Regimen | EventTable = reg
    use_iov = lm.iov is not None and subjects > 1
    if lm.expand_doses is not None or use_iov:
        if any(d.per_kg for d in reg.doses) and lm.expand_doses is not None:
            raise DoseError("amount", f"{lm.name} doses are given in mg, not mg/kg",
                            "give the dose in mg")
        if any(d.per_kg for d in reg.doses) and len(np.unique(pop.covariates.get(
                "weight", np.zeros(1)))) > 1:
            raise DoseError("amount", "mg/kg doses with inter-occasion variability",
                            "give the dose in mg")
        w = float(pop.covariates["weight"][0]) if "weight" in pop.covariates else None
        table = reg.to_events(weight_kg=w if any(d.per_kg for d in reg.doses) else None)
        if use_iov:
            table = table.expand_addl()
            dose = np.isin(table.evid, (1, 4))
            table = table.with_covariates(_occasion=np.cumsum(dose) - 1)
        doses = lm.expand_doses(table) if lm.expand_doses is not None else table
    record_covs: dict[str, np.ndarray] = {}
    if use_iov:
        assert isinstance(doses, EventTable) and lm.iov is not None
        dose_rows = np.isin(doses.evid, (1, 3, 4))
        occasion = doses.covariates["_occasion"][dose_rows].astype(int)
        draws = lm.iov.sample(pop.n * (int(occasion.max()) + 1), rng)
        record_covs = {k: v.reshape(pop.n, -1)[:, occasion] for k, v in draws.items()}
    outputs = [a.output for a in lm.analytes]
    residual_rng = np.random.default_rng(rng.integers(2**63)) if residual_error else None

    def finish(conc: dict[str, np.ndarray], part: VirtualPopulation, engine: str) -> PKRun:
        if residual_rng is not None:
            for a in lm.analytes:
                err = lm.residual.get(a.id)
                if err is not None:
                    conc[a.id] = np.maximum(err.apply(conc[a.id], residual_rng), 0.0)
        return PKRun(lm, reg, t, conc, part, seed, engine, warnings)

    if subjects == 1 or not lm.model.has_linear_compartments:
        # one subject at a time through the one entry point and its default engine
        engine_name = default_engine(lm.model).name
        for start in range(0, pop.n, chunk_size):
            idx = np.arange(start, min(pop.n, start + chunk_size))
            rows: dict[str, list[np.ndarray]] = {a.id: [] for a in lm.analytes}
            for i in idx:
                covs, etas = pop.subject(int(i))
                subject_doses = doses
                if record_covs:
                    assert isinstance(doses, EventTable)
                    full = {k: np.zeros(doses.n_records) for k in record_covs}
                    rows_ = np.flatnonzero(np.isin(doses.evid, (1, 3, 4)))
                    for k, v in record_covs.items():
                        full[k][rows_] = v[i]
                    subject_doses = doses.with_covariates(**full)
                r = simulate(lm.model, subject_doses, covariates=covs, parameters=etas,
                             times=t, throw=True)
                for a in lm.analytes:
                    rows[a.id].append(r[a.output])
                if progress is not None:
                    progress(int(i) + 1)
            yield finish({a: np.vstack(v) for a, v in rows.items()}, _take(pop, idx),
                         engine_name)
        return
    eng = PopulationEngine(chunk_size=chunk_size)
    done = 0
    for chunk in eng.iter_chunks(lm.model, doses, covariates=pop.covariates,
                                 parameters=pop.parameters, times=t, n_subjects=pop.n,
                                 outputs=outputs, throw=True, record_covariates=record_covs):
        idx = chunk.subject - 1
        done += len(idx)
        if progress is not None:
            progress(done)
        yield finish({a.id: chunk.outputs[a.output] for a in lm.analytes}, _take(pop, idx),
                     "population")


def _take(pop: VirtualPopulation, idx: np.ndarray) -> VirtualPopulation:
    return VirtualPopulation(len(idx), {k: v[idx] for k, v in pop.covariates.items()},
                             {k: v[idx] for k, v in pop.parameters.items()})


__all__ = ["DISCLAIMER", "PKRun", "iter_pk", "resolve_model", "run_pk"]
