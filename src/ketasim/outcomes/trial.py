"""Virtual trials: a published-style design (TOML) run on virtual patients.

A design names the indication, patients per arm, a seed, the arms (a ketamine regimen in the
regimen language, or ``control = "placebo" | "midazolam"``; optional ``psychotherapy``,
``naltrexone``) and one endpoint (instrument, time, measure). Optional: ``background =
"oral_antidepressant"`` (every arm starts one, as in TRANSFORM-2), ``baseline_mean`` (the
inclusion criterion's mean baseline on the endpoint's indication instrument),
``ideation_baseline_mean`` (mean C-SSRS ideation severity at entry, 1-5: lets a depression
indication without its own ideation baseline forecast C-SSRS ideation), ``branches``
(hypotheses switched on).

>>> d = TrialDesign.model_validate({"indication": "trd", "n_per_arm": 50, "seed": 1,
...     "arms": [{"name": "ketamine", "regimen": "0.5 mg/kg IV over 40 min"},
...              {"name": "midazolam", "control": "midazolam"}],
...     "endpoint": {"instrument": "madrs", "time": "24 h", "measure": "response"}})
>>> r = run_trial(d)
>>> r.arms["ketamine"].estimate > r.arms["midazolam"].estimate
True
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ketasim.dosing.regimen import Regimen
from ketasim.errors import KetasimError, ModelError
from ketasim.mechanism.parameters import Branches
from ketasim.outcomes import endpoints as ep
from ketasim.outcomes.course import IDEATION, Arm, Course, hours, simulate_course
from ketasim.outcomes.indications import get_indication, require_efficacy
from ketasim.scales import get_instrument


class DesignError(KetasimError):
    """A trial design file that cannot be run."""


def _checked(fn: Callable[[], Any]) -> Any:
    """Run a ketasim check inside a pydantic validator (its message becomes the error)."""
    try:
        return fn()
    except KetasimError as exc:
        raise ValueError(f"{exc.problem} ({exc.fix})") from None


class ArmSpec(BaseModel):
    """One arm of a design."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60)
    regimen: str | None = None
    control: Literal["placebo", "midazolam"] | None = None
    psychotherapy: Literal["cbt", "mbrp", "psychotherapy"] | None = None
    naltrexone: bool = False
    model: str | None = None


class Endpoint(BaseModel):
    """What is measured, when, and how it is summarised."""

    model_config = ConfigDict(extra="forbid")
    instrument: str
    time: str
    measure: Literal["response", "remission", "mean_change", "median_time_to_relapse"]

    @field_validator("instrument")
    @classmethod
    def _known(cls, v: str) -> str:
        return _checked(lambda: get_instrument(v).id)

    @field_validator("time")
    @classmethod
    def _time(cls, v: str) -> str:
        _checked(lambda: hours(v))
        return v


class TrialDesign(BaseModel):
    """A virtual trial."""

    model_config = ConfigDict(extra="forbid")
    indication: str
    n_per_arm: int = Field(ge=2, le=10_000)
    seed: int = Field(ge=0)
    arms: list[ArmSpec] = Field(min_length=1, max_length=12)
    endpoint: Endpoint
    background: Literal["oral_antidepressant"] | None = None
    baseline_mean: float | None = None
    ideation_baseline_mean: float | None = Field(default=None, ge=1.0, le=5.0)
    branches: list[str] = Field(default_factory=list)

    @field_validator("indication")
    @classmethod
    def _indication(cls, v: str) -> str:
        return _checked(lambda: get_indication(v).id)


@dataclass(frozen=True)
class ArmResult:
    """An arm's endpoint estimate with its 95 % CI, and its mean trajectory."""

    estimate: float | None
    ci95: tuple[float | None, float | None]
    times_h: np.ndarray
    mean_score: np.ndarray
    n: int
    note: str = ""


@dataclass(frozen=True)
class TrialResult:
    """All arms of a virtual trial."""

    design: TrialDesign
    arms: dict[str, ArmResult]
    unit: str
    prediction: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"arms": {NAME: {"estimate": x, "ci95": [lo, hi], "pi95": [lo, hi]}},
        "differences": {"A - B": {"estimate", "ci95", "pi95"}}, ...}``; ``pi95`` is the
        prediction interval for a new real trial (:mod:`ketasim.outcomes.prediction`)."""
        pred = self.prediction or {}
        parms = pred.get("arms", {})
        return {"arms": {k: {"estimate": a.estimate, "ci95": list(a.ci95), "n": a.n,
                             **({"pi95": parms[k]["pi95"]} if k in parms else {}),
                             **({"note": a.note} if a.note else {})}
                         for k, a in self.arms.items()},
                "differences": pred.get("differences", {}),
                **({"prediction_note": pred["note"]} if "note" in pred else {}),
                "indication": self.design.indication,
                "endpoint": self.design.endpoint.model_dump(), "unit": self.unit,
                "seed": self.design.seed}


def read_design_toml(path: Path) -> dict[str, Any]:
    """A design file's TOML as a dict (a missing file or bad syntax is a DesignError)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DesignError("design", f"{path} does not exist",
                          "give the path of a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise DesignError("design", f"{path} is not valid TOML ({exc})",
                          "fix the TOML syntax") from None


def load_design(path: Path) -> TrialDesign:
    """Read and validate a TOML design (typed errors name the field)."""
    return parse_design(read_design_toml(path))


def parse_design(raw: dict[str, Any]) -> TrialDesign:
    """Validate a design mapping."""
    try:
        design = TrialDesign.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "design"
        raise DesignError(where, err["msg"], "see docs/outcomes.md for the design format") \
            from None
    names = [a.name for a in design.arms]
    if len(set(names)) != len(names):
        raise DesignError("arms.name", "arm names repeat", "give every arm its own name")
    for a in design.arms:
        if (a.regimen is None) == (a.control is None):
            raise DesignError(f"arms.{a.name}", "needs exactly one of regimen or control",
                              'give regimen = "..." or control = "placebo" | "midazolam"')
    ind = get_indication(design.indication)
    require_efficacy(ind)
    inst = get_instrument(design.endpoint.instrument)
    if inst.id == IDEATION and not ind.forecasts_ideation and ind.pathway == "cascade":
        if design.ideation_baseline_mean is None:
            raise DesignError("ideation_baseline_mean", "C-SSRS ideation needs the "
                              f"population's baseline, which {ind.name} does not give",
                              "give ideation_baseline_mean (mean C-SSRS ideation severity "
                              'at entry, 1-5) or use indication = "suicidal_ideation"')
    elif inst.id not in ind.instruments:
        raise DesignError("endpoint.instrument", f"{inst.id} is not modelled for {ind.name}",
                          f"use one of {', '.join(ind.instruments)}")
    if design.ideation_baseline_mean is not None and ind.pathway != "cascade":
        raise DesignError("ideation_baseline_mean", f"ideation is not modelled for {ind.name}",
                          "leave ideation_baseline_mean out")
    m = design.endpoint.measure
    if m in ("response", "median_time_to_relapse") and inst.response_fall is None:
        raise DesignError("endpoint.measure", f"{inst.id} has no response definition",
                          "use mean_change")
    if m == "remission" and inst.remission_max is None:
        raise DesignError("endpoint.measure", f"{inst.id} has no remission definition",
                          "use response or mean_change")
    Branches.parse(design.branches)
    return design


def _arm(spec: ArmSpec, design: TrialDesign, sham: Regimen | None = None) -> Arm:
    """The arm ``spec`` describes; a control arm gets sham sessions on ``sham`` (default: the
    first drug arm's regimen, parsed here)."""
    if spec.control and sham is None:
        text = next((a.regimen for a in design.arms if a.regimen), None)
        sham = None if text is None else _arm(ArmSpec(name="sham", regimen=text), design).dosing
    try:
        return Arm(regimen=spec.regimen, control=spec.control,
                   psychotherapy=spec.psychotherapy, naltrexone=spec.naltrexone,
                   background=design.background, model=spec.model,
                   sham=sham if spec.control else None)
    except KetasimError as exc:
        raise DesignError(f"arms.{spec.name}.{exc.field}", exc.problem, exc.fix) from None


def design_arms(design: TrialDesign) -> dict[str, Arm]:
    """Every arm of ``design``, each regimen text parsed once (a control arm's sham sessions
    reuse the first drug arm's parsed regimen: blinding).

    >>> d = TrialDesign.model_validate({"indication": "trd", "n_per_arm": 10, "seed": 1,
    ...     "arms": [{"name": "k", "regimen": "0.5 mg/kg IV over 40 min weekly for 2 weeks"},
    ...              {"name": "p", "control": "placebo"}],
    ...     "endpoint": {"instrument": "madrs", "time": "24 h", "measure": "response"}})
    >>> arms = design_arms(d)
    >>> arms["p"].sham_dosing is arms["k"].dosing, arms["p"].session_times()
    (True, [0.0, 168.0])
    """
    drugs = {spec.name: _arm(spec, design) for spec in design.arms if not spec.control}
    sham = next((a.dosing for a in drugs.values() if a.dosing is not None), None)
    return {spec.name: drugs[spec.name] if spec.name in drugs else _arm(spec, design, sham)
            for spec in design.arms}


def _summarise(course: Course, design: TrialDesign, arm: Arm) -> ArmResult:
    e = design.endpoint
    t = hours(e.time)
    mean = course.scores(e.instrument).mean(axis=0)
    if e.measure == "response":
        est, ci = ep.proportion(ep.responders(course, t, e.instrument))
    elif e.measure == "remission":
        est, ci = ep.proportion(ep.remitters(course, t, e.instrument))
    elif e.measure == "mean_change":
        est, ci = ep.mean_ci(ep.change(course, t, e.instrument))
    else:
        last = max(arm.session_times())
        days, hit = ep.relapse_times(course, last, t, e.instrument)
        med, (lo, hi) = ep.median_relapse_ci(days, hit, design.seed)
        note = f"{days.size} responders followed; {int(hit.sum())} relapsed"
        fin = [x if np.isfinite(x) else None for x in (med, lo, hi)]
        if fin[0] is None:
            note += "; median not reached by the end of follow-up"
        return ArmResult(fin[0], (fin[1], fin[2]), course.times, mean, course.n, note)
    return ArmResult(float(est), (float(ci[0]), float(ci[1])), course.times, mean, course.n)


def run_trial(design: TrialDesign, *, predict: bool = True,
              progress: Callable[[str, int], None] | None = None,
              arms: Mapping[str, Arm] | None = None) -> TrialResult:
    """Run every arm (``progress(arm_name, patients_done)`` after each); with ``predict``,
    add prediction intervals for a new real trial (:mod:`ketasim.outcomes.prediction`).

    ``arms``: the design's arms already built (:func:`design_arms`), so that runs of the same
    design with other seeds parse no regimen text again."""
    t = hours(design.endpoint.time)
    branches = Branches.parse(design.branches)
    out: dict[str, ArmResult] = {}
    arms = dict(arms) if arms is not None else design_arms(design)
    seeds = {spec.name: design.seed + 7919 * k for k, spec in enumerate(design.arms)}
    horizon = {name: max(t, max(arm.session_times()) + 24.0) + 1.0
               for name, arm in arms.items()}
    courses: dict[str, Course] = {}

    def simulate(name: str, n: int, overrides: Mapping[str, float] | None = None) -> Course:
        try:
            return simulate_course(arms[name], design.indication, n=n, seed=seeds[name],
                                   horizon_h=horizon[name], branches=branches,
                                   baseline_mean=design.baseline_mean, overrides=overrides,
                                   ideation_baseline_mean=design.ideation_baseline_mean)
        except ModelError as exc:
            raise DesignError(f"arms.{name}.{exc.field}", exc.problem, exc.fix) from None
    for spec in design.arms:
        courses[spec.name] = simulate(spec.name, design.n_per_arm)
        out[spec.name] = _summarise(courses[spec.name], design, arms[spec.name])
        if progress is not None:
            progress(spec.name, design.n_per_arm)
    m = design.endpoint.measure
    unit = {"response": "fraction", "remission": "fraction", "mean_change":
            f"{design.endpoint.instrument} points", "median_time_to_relapse": "days"}[m]
    prediction = None
    if predict:
        from ketasim.outcomes.prediction import intervals
        by_arm = {id(a): name for name, a in arms.items()}
        prediction = intervals(
            arms, courses, design.indication, m, design.endpoint.time,
            design.endpoint.instrument,
            simulate=lambda arm, n, ov: simulate(by_arm[id(arm)], n, ov))
    return TrialResult(design, out, unit, prediction)


__all__ = ["ArmResult", "ArmSpec", "DesignError", "Endpoint", "TrialDesign", "TrialResult",
           "design_arms", "load_design", "parse_design", "run_trial"]
