"""Which assumptions drive a forecast: Sobol' indices of a virtual-trial forecast over the
symptom model's and the cascade's calibrated and assumed parameters (or, for an acute forecast,
the acute-session parameters), each within its stated uncertainty.

A sensitivity design is a trial design (docs/outcomes.md) with a ``[sensitivity]`` table::

    [sensitivity]
    arm = "ketamine"        # whose endpoint is the forecast (default: the first drug arm)
    versus = "midazolam"    # optional: the forecast is arm minus versus
    patients = 100          # virtual patients per draw (the same patients in every draw)
    draws = 4096            # model evaluations, N·(D+2) with N a power of two
    parameters = ["emax_trd", "d50"]   # default: every calibrated and assumed parameter
                                       # that moves this forecast (screened, see below)
    acute = "dissociation"  # optional: forecast an acute effect of the arm's first session
                            # (ACUTE_MEASURES) over the acute parameters, named acute.<name>
    [sensitivity.ranges]
    emax_trd = [0.4, 0.9]   # replaces the derived range

**Ranges** (:func:`parameter_ranges`), uniform on the scale named:

- *calibrated* with a standard error in the stored calibration
  (``ketasim/data/outcomes_fit.json``): the Wald 95 % interval, value ± 1.96 SE, clipped to
  the bounds the calibration searched (linear scale);
- *calibrated* without one (a grid fit, an SE of 0): ×/÷ 2 around the value, within those
  bounds (log scale), tagged assumed;
- *assumed*: ×/÷ 2 (log scale; fractions stop at 1); a structural parameter that is 0 when its
  hypothesis is off (``ad_interaction``, ``large_trial_expectancy``) spans 0 to the value fitted
  under that hypothesis;
- *literature* (only with ``evidence = [..., "literature"]``): ×/÷ 1.5 (log), tagged assumed.

The forecast is the trial's endpoint estimate for the arm, with the trial's seeds (so with
``patients = n_per_arm`` the nominal forecast is what ``ketasim trial`` prints) and common
random numbers across draws. Parameters whose two range ends both leave the forecast exactly
unchanged are screened out (and listed). First-order (S1) and total (ST) indices with 95 %
bootstrap intervals come from SALib (Saltelli sampling on a scrambled Sobol' sequence, Jansen
/ Saltelli 2010 estimators). Sobol' indices assume independent inputs: the calibration's
parameters are correlated, so the draws also visit combinations the data rule out; read the
indices as "what the forecast is sensitive to within these ranges", not as a posterior
variance decomposition. The cascade's constants
(:data:`ketasim.mechanism.parameters.CASCADE`) reach the model as overrides of
``simulate_course``; each new value re-normalises the cascade on the reference regimen with
one cached PK run (:func:`ketasim.mechanism.cascade.reference_inputs`, ~1.5 ms). An acute
forecast (``acute = ...``) varies :mod:`ketasim.pd.acute`'s parameters through
``simulate_session(params=...)``; its calibration stores no standard errors, so calibrated
acute parameters get the ×/÷ 2 rule above.

>>> f = lambda x: 4.0 * x[:, 0] + x[:, 1]       # exact: S_a = 16/17 = 0.94, S_b = 0.06
>>> r = sobol(f, [Uncertainty("a", 0.5, 0.0, 1.0), Uncertainty("b", 0.5, 0.0, 1.0)],
...           draws=2048, seed=1)
>>> round(r.st["a"], 2), round(r.st["b"], 2), r.draws
(0.94, 0.06, 2048)
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ketasim.distributed import fresh_seed, map_blocks, n_workers, require
from ketasim.errors import KetasimError
from ketasim.model.model import Parameter
from ketasim.outcomes.trial import DesignError, TrialDesign, parse_design, read_design_toml

Z95 = 1.959963984540054
Scale = Literal["linear", "log"]
Evidence = Literal["calibrated", "assumed", "literature"]
DEFAULT_EVIDENCE: tuple[Evidence, ...] = ("calibrated", "assumed")
AcuteMeasure = Literal["cadss_peak", "dissociation", "sedation", "ready_2h", "sbp_rise"]
# an acute forecast: what is summarised over the arm's first session, and its unit
ACUTE_MEASURES: dict[str, tuple[str, str]] = {
    "cadss_peak": ("mean peak drug-attributable CADSS", "CADSS points"),
    "dissociation": ("share with a peak drug-attributable CADSS above 4", "fraction"),
    "sedation": ("share reaching MOAA/S ≤ 4", "fraction"),
    "ready_2h": ("share ready to leave by 2 h", "fraction"),
    "sbp_rise": ("mean peak expected SBP rise", "mmHg"),
}
ACUTE_PREFIX = "acute."
# parameters that take no part in a forecast: a report scale, and the acute driver's ke0
# (the driver is computed once per arm; literature values in any case)
_NOT_VARIED = frozenset({"glutamate_surge_ref_pct", ACUTE_PREFIX + "t_half_ke0"})


@dataclass(frozen=True)
class Uncertainty:
    """A parameter's sampling range: uniform on ``scale`` between ``low`` and ``high``."""

    name: str
    value: float
    low: float
    high: float
    scale: Scale = "linear"
    evidence: str = "assumed"
    basis: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise DesignError(f"sensitivity.ranges.{self.name}",
                              f"[{self.low:g}, {self.high:g}] is not a range",
                              "give [low, high] with low < high")
        if self.scale == "log" and self.low <= 0:
            raise DesignError(f"sensitivity.ranges.{self.name}", "a log range must be > 0",
                              "give positive bounds")

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Map uniform [0, 1] draws onto the range."""
        if self.scale == "log":
            lo, hi = math.log(self.low), math.log(self.high)
            return np.asarray(np.exp(lo + (hi - lo) * u))
        return np.asarray(self.low + (self.high - self.low) * u)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {"name": self.name, "value": self.value, "low": self.low, "high": self.high,
                "scale": self.scale, "evidence": self.evidence, "basis": self.basis}


class SensitivitySettings(BaseModel):
    """The ``[sensitivity]`` table of a design."""

    model_config = ConfigDict(extra="forbid")
    arm: str | None = None
    versus: str | None = None
    patients: int = Field(default=100, ge=5, le=10_000)
    draws: int = Field(default=4096, ge=8, le=100_000_000)
    seed: int | None = Field(default=None, ge=0)
    parameters: list[str] | None = None
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)
    evidence: list[Evidence] = Field(default_factory=lambda: list(DEFAULT_EVIDENCE))
    acute: AcuteMeasure | None = None


def load_sensitivity_design(path: Path) -> tuple[TrialDesign, SensitivitySettings]:
    """Read a TOML design with its ``[sensitivity]`` table (typed errors name the field)."""
    return parse_sensitivity_design(read_design_toml(path))


def parse_sensitivity_design(raw: dict[str, Any]) -> tuple[TrialDesign, SensitivitySettings]:
    """Validate a design mapping with an optional ``sensitivity`` table."""
    raw = dict(raw)
    sens = raw.pop("sensitivity", {})
    design = parse_design(raw)
    for key, val in (sens.get("ranges") or {}).items() if isinstance(sens, dict) else ():
        if isinstance(val, dict):  # acute.NAME = [...] unquoted: TOML makes a table of it
            dotted = f"{key}.{next(iter(val), 'NAME')}"
            raise DesignError(f"sensitivity.ranges.{key}", f"{dotted} is read as a table",
                              f'put the dotted name in quotes: "{dotted}"')
    try:
        settings = SensitivitySettings.model_validate(sens)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in ("sensitivity", *err["loc"]))
        raise DesignError(where, err["msg"], "see docs/scale.md, the sensitivity table") \
            from None
    names = [a.name for a in design.arms]
    for key, name in (("arm", settings.arm), ("versus", settings.versus)):
        if name is not None and name not in names:
            raise DesignError(f"sensitivity.{key}", f"no arm is called {name!r}",
                              f"use one of {', '.join(names)}")
    if settings.versus is not None and settings.versus == _arm_name(design, settings):
        raise DesignError("sensitivity.versus", "is the forecast's own arm",
                          "name another arm, or leave versus out")
    if settings.acute is not None:
        if settings.versus is not None:
            raise DesignError("sensitivity.versus", "an acute forecast is one arm's first "
                              "session", "leave versus out")
        spec = next(a for a in design.arms if a.name == _arm_name(design, settings))
        if spec.regimen is None:
            raise DesignError("sensitivity.arm", f"arm {spec.name!r} gives no drug, so it has "
                              "no acute effect", "name an arm with a regimen")
    return design, settings


def _arm_name(design: TrialDesign, settings: SensitivitySettings) -> str:
    if settings.arm is not None:
        return settings.arm
    return next((a.name for a in design.arms if a.regimen), design.arms[0].name)


# --------------------------------------------------------------------------- ranges
def _fit_bounds(name: str) -> tuple[float, float] | None:
    """The bounds the calibration searched for ``name`` (ketasim.validation.outcomes)."""
    from ketasim.validation import outcomes as cal
    for table in (cal.STAGE1, cal.IDEATION_BOUNDS, *cal.HYPOTHESES.values()):
        if name in table:
            return table[name]
    if name == "psychotherapy_persistence":
        return 1.0, 100.0  # stage 2's log grid
    # stage 3 (calibrate(): every other indication's emax, w_fast and placebo)
    if name.startswith("emax_"):
        return 0.005, 0.99
    if name.startswith("w_fast_"):
        return 0.02, 0.95
    if name.startswith("placebo_"):
        return 0.005, 0.6
    return None


def _standard_errors() -> dict[str, float]:
    from ketasim.outcomes.parameters import fitted_values
    out: dict[str, float] = {}
    for key, stage in fitted_values()["diagnostics"].items():
        if key.startswith(("stage1", "stage3")) and isinstance(stage, dict):
            for k, v in (stage.get("se") or {}).items():
                out.setdefault(k, float(v))
    return out


def _hypothesis_fits() -> dict[str, tuple[str, float]]:
    from ketasim.outcomes.parameters import fitted_values
    mb = fitted_values()["diagnostics"].get("mbma") or {}
    out = {}
    for h, rec in (mb.get("hypotheses") or {}).items():
        for k, v in (rec.get("params") or {}).items():
            out[k] = (h, float(v))
    return out


def model_parameters(acute: bool = False) -> dict[str, Parameter]:
    """What a forecast can vary: the symptom model's parameters and the cascade's constants
    (:data:`ketasim.mechanism.parameters.CASCADE`; their names do not overlap), or, for an
    acute forecast, the acute-session parameters (:mod:`ketasim.pd.acute`) named
    ``acute.<name>``."""
    if acute:
        from ketasim.pd.acute import acute_parameters
        out = {ACUTE_PREFIX + k: p for k, p in acute_parameters().items()}
    else:
        from ketasim.mechanism.parameters import CASCADE
        from ketasim.outcomes.parameters import outcome_parameters
        out = {**CASCADE, **outcome_parameters()}
    return {k: p for k, p in out.items() if k not in _NOT_VARIED}


def parameter_ranges(evidence: Sequence[str] = ("calibrated", "assumed"),
                     overrides: dict[str, tuple[float, float]] | None = None, *,
                     acute: bool = False) -> dict[str, Uncertainty]:
    """Every parameter of the given evidence (:func:`model_parameters`) with its derived range
    (module docstring), plus the ``overrides`` (name → (low, high)), which win."""
    params = model_parameters(acute)
    se = _standard_errors()
    hyp = _hypothesis_fits()
    out: dict[str, Uncertainty] = {}
    for name, p in params.items():
        v = float(p.value)
        if p.evidence not in evidence:
            continue
        bounds = _fit_bounds(name)
        fraction = p.unit.startswith(("fraction", "probability")) or (
            bounds is not None and bounds[1] <= 1.0)
        if p.evidence == "calibrated" and se.get(name, 0.0) > 0 and bounds is not None:
            half = Z95 * se[name]
            lo, hi = max(v - half, bounds[0]), min(v + half, bounds[1])
            out[name] = Uncertainty(name, v, lo, hi, "linear", "calibrated",
                                    f"calibration 95 % CI (±{half:.3g}) within the fit's "
                                    f"bounds {bounds[0]:g}–{bounds[1]:g}")
        elif v == 0.0 and name in hyp:
            h, fitted = hyp[name]
            out[name] = Uncertainty(name, v, 0.0, fitted, "linear", p.evidence,
                                    f"0 (hypothesis {h} off) to its fit under {h}")
        elif v > 0:
            factor = 1.5 if p.evidence == "literature" else 2.0
            lo, hi = v / factor, v * factor
            if fraction and p.evidence != "calibrated":
                hi = min(hi, 1.0)
            why = "no CI stored: " if p.evidence == "calibrated" else ""
            if bounds is not None and p.evidence == "calibrated":
                lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
            if hi <= lo:
                continue
            out[name] = Uncertainty(name, v, lo, hi, "log", p.evidence,
                                    f"{why}×/÷ {factor:g} (assumed)")
    for name, (lo, hi) in (overrides or {}).items():
        if name not in params:
            raise _unknown(name, list(params), acute)
        out[name] = Uncertainty(name, float(params[name].value), float(lo), float(hi),
                                "linear", params[name].evidence, "given in the design")
    return out


def _unknown(name: str, known: list[str], acute: bool = False) -> DesignError:
    if not acute and name.startswith(ACUTE_PREFIX):
        return DesignError("sensitivity.parameters", f"{name!r} is an acute-session "
                           "parameter, not an input of the symptom forecast",
                           "set acute = \"cadss_peak\" (or another acute measure) under "
                           "[sensitivity] to forecast an acute effect (docs/scale.md)")
    if acute and not name.startswith(ACUTE_PREFIX):
        return DesignError("sensitivity.parameters", f"{name!r} is not an acute-session "
                           "parameter (an acute forecast varies acute.<name> only)",
                           "name acute parameters, or leave acute out to forecast the "
                           "endpoint")
    if name in _NOT_VARIED:
        return DesignError("sensitivity.parameters", f"{name!r} takes no part in the "
                           "forecast (a reporting scale, or computed once per arm)",
                           "leave it out")
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "see docs/scale.md for the names"
    what = "an acute-session" if acute else "a symptom-model or cascade"
    return DesignError("sensitivity.parameters", f"{name!r} is not {what} parameter", hint)


# --------------------------------------------------------------------------- the forecast
@dataclass(eq=False)
class Forecast:
    """The design's forecast as a function of parameter rows: ``forecast(X)`` with ``X`` of
    shape (draws, len(names)) gives one value per draw. Plain data, so it travels to Dask
    workers; each process caches its arms and PK."""

    design: TrialDesign
    arm: str
    versus: str | None
    patients: int
    names: tuple[str, ...]
    _arms: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arms": {}}

    @property
    def label(self) -> str:
        """What is forecast, in words."""
        e = self.design.endpoint
        who = self.arm + (f" − {self.versus}" if self.versus else "")
        return f"{e.measure} on {e.instrument} at {e.time}, {who}"

    @property
    def unit(self) -> str:
        """The forecast's unit."""
        m = self.design.endpoint.measure
        return {"response": "fraction", "remission": "fraction",
                "mean_change": f"{self.design.endpoint.instrument} points",
                "median_time_to_relapse": "days"}[m]

    def _setup(self, name: str) -> tuple[Any, int, float]:
        if name not in self._arms:
            from ketasim.outcomes.course import hours
            from ketasim.outcomes.trial import _arm
            k = [a.name for a in self.design.arms].index(name)
            arm = _arm(self.design.arms[k], self.design)
            t = hours(self.design.endpoint.time)
            horizon = max(t, max(arm.session_times()) + 24.0) + 1.0
            # the seeds of run_trial: arm k gets seed + 7919·k
            self._arms[name] = (arm, self.design.seed + 7919 * k, horizon)
        return self._arms[name]

    def arm_value(self, name: str, overrides: dict[str, float]) -> float:
        """The endpoint of arm ``name`` with ``overrides``."""
        from ketasim.errors import ModelError
        from ketasim.mechanism.parameters import Branches
        from ketasim.outcomes import endpoints as ep
        from ketasim.outcomes.course import hours, simulate_course
        arm, seed, horizon = self._setup(name)
        d = self.design
        try:
            course = simulate_course(arm, d.indication, n=self.patients, seed=seed,
                                     horizon_h=horizon, branches=Branches.parse(d.branches),
                                     baseline_mean=d.baseline_mean, overrides=overrides,
                                     ideation_baseline_mean=d.ideation_baseline_mean)
        except ModelError as exc:
            raise DesignError(f"arms.{name}.{exc.field}", exc.problem, exc.fix) from None
        e = d.endpoint
        t = hours(e.time)
        if e.measure == "response":
            return float(np.mean(ep.responders(course, t, e.instrument)))
        if e.measure == "remission":
            return float(np.mean(ep.remitters(course, t, e.instrument)))
        if e.measure == "mean_change":
            return float(np.mean(ep.change(course, t, e.instrument)))
        last = max(arm.session_times())
        days, hit = ep.relapse_times(course, last, t, e.instrument)
        med = ep.km_median(days, hit)
        if math.isnan(med):  # nobody responded, so nobody relapses
            return 0.0
        if math.isinf(med):  # not reached: the follow-up length, a lower bound
            return (t - last) / 24.0
        return med

    def value(self, overrides: dict[str, float]) -> float:
        """The forecast with ``overrides``."""
        y = self.arm_value(self.arm, overrides)
        if self.versus is not None:
            y -= self.arm_value(self.versus, overrides)
        return y

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=float))
        return np.array([self.value(dict(zip(self.names, map(float, row), strict=True)))
                         for row in x])


@dataclass(eq=False)
class AcuteForecast:
    """An acute-session forecast as a function of parameter rows (``acute.<name>`` columns):
    ``measure`` (:data:`ACUTE_MEASURES`) over ``patients`` virtual patients in the first
    session of ``arm``'s regimen (typical 70-kg, 45-year-old PK, :func:`ketasim.pd.acute.
    acute_driver`), each draw with the same patients (the arm's trial seed) and
    :func:`ketasim.pd.acute.simulate_session`'s ``params`` override."""

    design: TrialDesign
    arm: str
    measure: str
    patients: int
    names: tuple[str, ...]
    _driver: Any = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_driver": None}

    @property
    def label(self) -> str:
        """What is forecast, in words."""
        return f"{ACUTE_MEASURES[self.measure][0]}, first session of {self.arm}"

    @property
    def unit(self) -> str:
        """The forecast's unit."""
        return ACUTE_MEASURES[self.measure][1]

    def _setup(self) -> tuple[Any, int]:
        if self._driver is None:
            from ketasim.errors import ModelError
            from ketasim.pd.acute import acute_driver
            k = [a.name for a in self.design.arms].index(self.arm)
            spec = self.design.arms[k]
            try:
                driver = acute_driver(str(spec.regimen), model=spec.model)
            except ModelError as exc:
                raise DesignError(f"arms.{spec.name}.{exc.field}", exc.problem,
                                  exc.fix) from None
            self._driver = (driver, self.design.seed + 7919 * k)
        return cast(tuple[Any, int], self._driver)

    def value(self, overrides: dict[str, float]) -> float:
        """The forecast with ``overrides`` (``acute.<name>`` → value)."""
        from ketasim.pd.acute import CADSS_CASE, simulate_session, values
        driver, seed = self._setup()
        p = values()
        p.update({k.removeprefix(ACUTE_PREFIX): v for k, v in overrides.items()})
        s = simulate_session(driver, self.patients, np.random.default_rng(seed), params=p)
        if self.measure == "cadss_peak":
            return float(np.mean(s.cadss.max(axis=1)))
        if self.measure == "dissociation":
            return float(np.mean(s.cadss.max(axis=1) > CADSS_CASE))
        if self.measure == "sedation":
            return s.p_moaas_le(4)
        if self.measure == "ready_2h":
            return float(np.mean(s.ready_h <= 2.0))
        return float(np.mean((s.sbp - s.baseline_sbp[:, None]).max(axis=1)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=float))
        return np.array([self.value(dict(zip(self.names, map(float, row), strict=True)))
                         for row in x])


def _evaluate(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.asarray(fn(x), dtype=float)


def evaluate(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, client: Any = None,
             block_rows: int | None = None,
             progress: Callable[[int], None] | None = None) -> np.ndarray:
    """``fn`` over the rows of ``x`` in blocks (here or on a Dask ``client``), in row order.
    Rows are independent and deterministic, so the result does not depend on the blocks."""
    rows = x.shape[0]
    if block_rows is None:
        block_rows = int(min(4096, max(64, math.ceil(rows / (8 * n_workers(client))))))
    starts = range(0, rows, block_rows)
    out = np.empty(rows)
    done = 0
    for a, y in zip(starts, map_blocks(_evaluate, ((fn, x[a:a + block_rows]) for a in starts),
                                       client=client), strict=True):
        out[a:a + len(y)] = y
        done += len(y)
        if progress is not None:
            progress(done)
    return out


# --------------------------------------------------------------------------- Sobol
@dataclass(frozen=True)
class SobolResult:
    """First-order and total indices with their 95 % bootstrap half-widths."""

    names: tuple[str, ...]
    s1: dict[str, float]
    s1_conf: dict[str, float]
    st: dict[str, float]
    st_conf: dict[str, float]
    draws: int
    base_samples: int
    y_sample: np.ndarray
    seconds: float
    notes: tuple[str, ...] = ()


def base_samples(draws: int, d: int) -> int:
    """N for about ``draws`` evaluations N·(d+2): the power of two nearest on a log scale
    (Sobol' points keep their balance at powers of two), at least 4."""
    target = max(draws / (d + 2), 1.0)
    return max(4, 2 ** round(math.log2(target)))


def sobol(fn: Callable[[np.ndarray], np.ndarray], ranges: Sequence[Uncertainty], *,
          draws: int, seed: int, client: Any = None,
          progress: Callable[[int, int], None] | None = None) -> SobolResult:
    """Sobol' indices of ``fn`` (rows of parameter values → values) over ``ranges``.

    ``progress(done, total)`` follows the evaluations. The sample matrix comes from ``seed``
    alone and each row's value from the row alone, so the result is the same with any
    number of workers."""
    sample_mod = require("SALib.sample.sobol", "Sobol' sensitivity analysis")
    analyze_mod = require("SALib.analyze.sobol", "Sobol' sensitivity analysis")
    t0 = time.perf_counter()
    names = tuple(r.name for r in ranges)
    d = len(names)
    if d == 0:
        raise DesignError("sensitivity.parameters", "no parameter is left to vary",
                          "name parameters, or widen their ranges")
    n = base_samples(draws, d)
    problem = {"num_vars": d, "names": list(names), "bounds": [[0.0, 1.0]] * d}
    u = sample_mod.sample(problem, n, calc_second_order=False, scramble=True, seed=int(seed))
    x = np.column_stack([r.from_unit(u[:, j]) for j, r in enumerate(ranges)])
    total = x.shape[0]
    y = evaluate(fn, x, client=client,
                 progress=None if progress is None else (lambda k: progress(k, total)))
    a_rows = y[:: d + 2]  # the Saltelli layout: A, AB_1 … AB_d, B per base point
    notes: list[str] = []
    if not np.all(np.isfinite(y)):
        raise KetasimError("forecast", "some draws gave no finite value",
                           "narrow the ranges or choose another endpoint")
    if float(np.ptp(y)) == 0.0:
        zero = dict.fromkeys(names, 0.0)
        notes.append("the forecast does not change over these ranges")
        return SobolResult(names, zero, zero, zero, zero, total, n, a_rows,
                           time.perf_counter() - t0, tuple(notes))
    boot_seed = int(np.random.SeedSequence(int(seed)).generate_state(1)[0]) | 1
    si = analyze_mod.analyze(problem, y, calc_second_order=False, num_resamples=100,
                             conf_level=0.95, seed=boot_seed)

    def col(key: str) -> dict[str, float]:
        return {k: float(v) for k, v in zip(names, si[key], strict=True)}
    return SobolResult(names, col("S1"), col("S1_conf"), col("ST"), col("ST_conf"), total, n,
                       a_rows, time.perf_counter() - t0, tuple(notes))


# --------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class SensitivityResult:
    """A sensitivity run: the forecast, the ranges, what was screened out and the indices."""

    forecast: str
    unit: str
    nominal: float
    ranges: tuple[Uncertainty, ...]
    screened_out: tuple[str, ...]
    sobol: SobolResult
    patients: int
    seed: int
    workers: int
    notes: tuple[str, ...] = ()

    def ranked(self) -> list[str]:
        """Parameter names by total index, largest first."""
        return sorted(self.sobol.names, key=lambda k: -self.sobol.st[k])

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record (indices ranked by ST)."""
        s = self.sobol
        y = s.y_sample
        return {
            "forecast": self.forecast, "unit": self.unit, "nominal": self.nominal,
            "forecast_over_ranges": {"mean": float(np.mean(y)), "sd": float(np.std(y)),
                                     "p2.5": float(np.percentile(y, 2.5)),
                                     "p50": float(np.percentile(y, 50)),
                                     "p97.5": float(np.percentile(y, 97.5))},
            "indices": [{"name": k, "S1": s.s1[k], "S1_conf95": s.s1_conf[k], "ST": s.st[k],
                         "ST_conf95": s.st_conf[k]} for k in self.ranked()],
            "ranges": [r.to_json() for r in self.ranges],
            "screened_out": list(self.screened_out), "draws": s.draws,
            "base_samples": s.base_samples, "patients_per_draw": self.patients,
            "seed": str(self.seed), "workers": self.workers,
            "seconds": round(s.seconds, 3), "notes": list(self.notes + s.notes),
        }


def run_sensitivity(design: TrialDesign, settings: SensitivitySettings | None = None, *,
                    draws: int | None = None, seed: int | None = None,
                    patients: int | None = None, client: Any = None,
                    on_ranges: Callable[[list[Uncertainty], list[str]], None] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> SensitivityResult:
    """Screen, sample and analyse (module docstring). Arguments given here win over
    ``settings``; ``on_ranges(kept, screened_out)`` is called before the draws start."""
    st = settings or SensitivitySettings()
    draws_ = draws if draws is not None else st.draws
    if draws_ < 8:
        raise DesignError("draws", f"is {draws_}", "give at least 8 draws")
    seed_ = seed if seed is not None else st.seed if st.seed is not None else design.seed
    if seed_ is None:  # pragma: no cover - a design always has a seed
        seed_ = fresh_seed()
    n = patients if patients is not None else st.patients
    if n < 5:
        raise DesignError("patients", f"is {n}", "simulate at least 5 patients per draw")
    acute = st.acute is not None
    all_ranges = parameter_ranges(st.evidence, dict(st.ranges), acute=acute)
    if st.parameters is not None:
        known = list(model_parameters(acute))
        for name in st.parameters:
            if name not in known:
                raise _unknown(name, known, acute)
            if name not in all_ranges:
                raise DesignError(f"sensitivity.ranges.{name}", "has no derivable range "
                                  "(its value is 0 or its evidence is not included)",
                                  f"give one: {name} = [low, high] under [sensitivity.ranges]")
        candidates = [all_ranges[k] for k in st.parameters]
    else:
        candidates = list(all_ranges.values())
    names = tuple(r.name for r in candidates)
    arm = _arm_name(design, st)

    def forecast(names: tuple[str, ...]) -> Forecast | AcuteForecast:
        if st.acute is not None:
            return AcuteForecast(design, arm, st.acute, n, names)
        return Forecast(design, arm, st.versus, n, names)
    fc = forecast(names)
    nominal_row = np.array([[r.value for r in candidates]])
    screened: list[str] = []
    if st.parameters is None:
        # one at a time to each end of its range: both ends unchanged → no effect here
        rows = [nominal_row[0]]
        for j, r in enumerate(candidates):
            for end in (r.low, r.high):
                row = nominal_row[0].copy()
                row[j] = end
                rows.append(row)
        y = evaluate(fc, np.array(rows), client=client)
        nominal = float(y[0])
        keep = [r for j, r in enumerate(candidates)
                if y[1 + 2 * j] != nominal or y[2 + 2 * j] != nominal]
        screened = [r.name for r in candidates if r not in keep]
        candidates = keep
        fc = forecast(tuple(r.name for r in candidates))
    else:
        nominal = float(fc(nominal_row)[0])
    if on_ranges is not None:
        on_ranges(candidates, screened)
    result = sobol(fc, candidates, draws=draws_, seed=int(seed_), client=client,
                   progress=progress)
    notes = []
    if not acute and design.endpoint.measure == "median_time_to_relapse":
        notes.append("a draw whose median is not reached counts as the follow-up length (a "
                     "lower bound); a draw without responders as 0 days")
    return SensitivityResult(fc.label, fc.unit, nominal, tuple(candidates), tuple(screened),
                             result, n, int(seed_), n_workers(client), tuple(notes))


__all__ = ["ACUTE_MEASURES", "AcuteForecast", "Forecast", "SensitivityResult",
           "SensitivitySettings", "SobolResult", "Uncertainty", "base_samples", "evaluate",
           "load_sensitivity_design", "model_parameters", "parameter_ranges",
           "parse_sensitivity_design", "run_sensitivity", "sobol"]
