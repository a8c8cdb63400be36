"""Dose-range checking: clinic-owned, versioned limits with soft warnings and hard stops.

A :class:`DoseLimits` table (pydantic, loaded from a clinic's file with
:func:`parse_limits_json`) says what is accepted; :func:`check_dose` returns every finding with
its severity, and :func:`authorize` accepts an override only with a reason (soft) or a reason
and a second clinician (hard), returning the audit record. The default values are a worked
example (dose-range checks with soft warnings and hard stops as medication-safety practice
recommends, and one :class:`RouteLimit` per route whose source names bibliography keys) —
each clinic sets its own.

Caught on purpose: a compound/route with no limits in the table, doses above the per-dose,
per-session and rolling 24-hour limits of their route, doses ≥ 10× the protocol dose, mg typed
into a mg/kg field, a volume (mL) whose stock is not one the clinic holds or that looks like mg
typed as mL, undiluted 100 mg/mL stock given IV, esketamine entered in mL, a weight in pounds
typed as kilograms (×2.2 against the last weight), weight jumps > 10 %, stale or implausible
weights, esketamine outside whole 28-mg devices or above 84 mg, short IV infusions, and dosing
more often than the label schedule.

>>> from datetime import datetime, timedelta, timezone
>>> now = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
>>> patient = PatientDoseContext(weight_kg=70, weight_measured_at=now - timedelta(days=2))
>>> order = DoseOrder(compound="racemic", route="iv_infusion", amount=0.5, unit="mg/kg",
...                   duration_min=40, time=now)
>>> check_dose(order, patient, DoseLimits()).verdict
'accept'
>>> check_dose(order.model_copy(update={"amount": 35.0}), patient, DoseLimits()).verdict
'hard'
>>> DoseLimits().route_limits["racemic:im"].mg_per_kg_hard   # IM: hard stop above 1 mg/kg
1.0
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ketasim.dosing.route import Route
from ketasim.errors import KetasimError

Severity = Literal["soft", "hard"]
Compound = Literal["racemic", "esketamine"]
EXAMPLE = "worked example shipped with ketasim (sources per route); set by each clinic"
DEFAULT_VERSION = "example-1"

MAX_LIMITS_BYTES = 64 * 1024
MAX_LIMITS_DEPTH = 20
MAX_MG_PER_KG = 20.0
MAX_MG = 5000.0
MAX_STOCK_MG_PER_ML = 500.0
IV_DILUTE_MG_PER_ML = 100.0
_REL_TOL = 1e-9  # limits are compared with this relative slack so that "at the limit" is exact
_COMPOUNDS: tuple[str, ...] = ("racemic", "esketamine")
_WORD = {"racemic": "racemic ketamine", "esketamine": "esketamine"}


class DoseCheckError(KetasimError):
    """A dose order, a limits table or an override that cannot be accepted as given."""


class _LimitProblem(ValueError):
    """Raised inside validators: pydantic wraps it, :func:`parse_limits_json` unwraps the field."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field, self.problem, self.fix = field, problem, fix
        super().__init__(f"{field}: {problem} (fix: {fix})" if field else f"{problem} "
                         f"(fix: {fix})")


def _finite_positive(field: str, value: float, cap: float, unit: str) -> None:
    if not math.isfinite(value):
        raise _LimitProblem(field, f"{value!r} is not a finite number",
                            "enter a finite number")
    if value <= 0:
        raise _LimitProblem(field, f"{value:g} {unit} is not above 0", "enter a positive limit")
    if value > cap:
        raise _LimitProblem(field, f"{value:g} {unit} is above the plausible cap {cap:g} {unit}",
                            f"enter at most {cap:g} {unit}")


def _text(field: str, value: str, longest: int, *, empty_ok: bool = False) -> None:
    if not value.strip() and not empty_ok:
        raise _LimitProblem(field, "is empty", f"enter 1-{longest} characters")
    if len(value) > longest:
        raise _LimitProblem(field, f"has {len(value)} characters", f"use at most {longest}")
    if not value.isprintable():
        raise _LimitProblem(field, "contains control or non-printable characters",
                            "use printable characters only")


def _over(value: float, limit: float) -> bool:
    return value > limit * (1 + _REL_TOL)


class RouteLimit(BaseModel):
    """Dose limits for one compound by one route, with the evidence behind them.

    Per dose: ``mg_per_kg_soft/hard`` and ``mg_soft/mg_hard``; per session (earlier doses of
    the session plus this one): ``session_*``; rolling 24 hours: ``day_*``. Every limit is
    optional, but an entry needs at least one hard limit; soft never exceeds hard.

    >>> RouteLimit(mg_per_kg_soft=0.5, mg_per_kg_hard=1.0, source="assumed: example").mg_per_kg_hard
    1.0
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    mg_per_kg_soft: float | None = None
    mg_per_kg_hard: float | None = None
    mg_soft: float | None = None
    mg_hard: float | None = None
    session_mg_per_kg_soft: float | None = None
    session_mg_per_kg_hard: float | None = None
    session_mg_soft: float | None = None
    session_mg_hard: float | None = None
    day_mg_per_kg_soft: float | None = None
    day_mg_per_kg_hard: float | None = None
    day_mg_soft: float | None = None
    day_mg_hard: float | None = None
    source: str

    @model_validator(mode="after")
    def _checked(self) -> RouteLimit:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "source" or value is None:
                continue
            per_kg = "per_kg" in name
            _finite_positive(name, value, MAX_MG_PER_KG if per_kg else MAX_MG,
                             "mg/kg" if per_kg else "mg")
        for scope in ("", "session_", "day_"):
            for unit in ("mg_per_kg", "mg"):
                soft = getattr(self, f"{scope}{unit}_soft")
                hard = getattr(self, f"{scope}{unit}_hard")
                if soft is not None and hard is not None and soft > hard:
                    raise _LimitProblem(f"{scope}{unit}_hard", f"the hard limit {hard:g} is "
                                        f"below the soft limit {soft:g}",
                                        "make the hard limit at least the soft limit")
        if not any(getattr(self, n) is not None for n in type(self).model_fields
                   if n.endswith("_hard")):
            raise _LimitProblem("mg_per_kg_hard", "the entry has no hard limit",
                                "set at least one hard limit (per dose, session or 24 h)")
        _text("source", self.source, 500)
        return self

    def hard_mg(self, weight_kg: float) -> float | None:
        """The smallest hard limit that bounds one dose, in mg, for this weight.

        >>> RouteLimit(mg_per_kg_hard=1.0, mg_hard=60, source="assumed: x").hard_mg(70)
        60.0
        """
        limits = [v * weight_kg if "per_kg" in n else v for n, v in self._items("_hard")]
        return float(min(limits)) if limits else None

    def _items(self, suffix: str) -> list[tuple[str, float]]:
        return [(n, v) for n in type(self).model_fields
                if n.endswith(suffix) and (v := getattr(self, n)) is not None]


def _src(*parts: str) -> str:
    return "; ".join(parts)


_IV = _src("per-session limits are racemic_iv_mg_per_kg_soft/hard (0.5 mg/kg over 40 min is "
           "standard, evidence above 0.75 limited: sanacora2017; highest dose in a "
           "dose-ranging RCT 1.0 mg/kg: fava2020)",
           "24-h limit assumed: no published schedule gives more than one session in 24 h")
_ORAL_LIKE = ("assumed: no depression study by this route; oral limits carried over because "
              "bioavailability is similar (oral ~17-25 %, clements1982)")
DEFAULT_ROUTE_LIMITS: dict[str, RouteLimit] = {
    "racemic:iv_infusion": RouteLimit(day_mg_per_kg_hard=1.0, source=_IV),
    "racemic:iv_bolus": RouteLimit(day_mg_per_kg_hard=1.0, source=_IV),
    "racemic:im": RouteLimit(
        mg_per_kg_soft=0.5, mg_per_kg_hard=1.0, session_mg_per_kg_soft=0.5,
        session_mg_per_kg_hard=1.0, day_mg_per_kg_hard=1.0,
        source=_src("soft: highest IM dose studied in depression 0.5 mg/kg (chilukuri2014; "
                    "loo2016, IV/IM/SC 0.1-0.5 mg/kg)", "hard assumed: the IV hard limit, as "
                    "IM bioavailability is ~93 % (clements1982)")),
    "racemic:sc": RouteLimit(
        mg_per_kg_soft=0.9, mg_per_kg_hard=1.0, session_mg_per_kg_soft=0.9,
        session_mg_per_kg_hard=1.0, day_mg_per_kg_hard=1.0,
        source=_src("soft: flexible SC dosing 0.5-0.9 mg/kg twice weekly (loo2023)",
                    "hard: highest SC dose studied 1 mg/kg (glue2017)")),
    "racemic:oral": RouteLimit(
        mg_per_kg_soft=1.0, mg_per_kg_hard=2.0, session_mg_per_kg_soft=1.0,
        session_mg_per_kg_hard=2.0, day_mg_per_kg_hard=2.0,
        source=_src("soft: 1 mg/kg three times weekly (domany2019)", "hard: highest RCT arm "
                    "2 mg/kg (kheirabadi2023)", "24-h limit assumed: one dose a day")),
    "racemic:sublingual": RouteLimit(
        mg_per_kg_soft=1.0, mg_per_kg_hard=2.0, session_mg_per_kg_soft=1.0,
        session_mg_per_kg_hard=2.0, day_mg_per_kg_hard=2.0,
        source=_src("the only depression study used 10 mg (lara2013)",
                    _ORAL_LIKE + " and sublingual ~30 % (lara2013)")),
    "racemic:buccal": RouteLimit(
        mg_per_kg_soft=1.0, mg_per_kg_hard=2.0, session_mg_per_kg_soft=1.0,
        session_mg_per_kg_hard=2.0, day_mg_per_kg_hard=2.0,
        source=_src(_ORAL_LIKE, "buccal treated as sublingual (lara2013)")),
    "racemic:rectal": RouteLimit(
        mg_per_kg_soft=1.0, mg_per_kg_hard=2.0, session_mg_per_kg_soft=1.0,
        session_mg_per_kg_hard=2.0, day_mg_per_kg_hard=2.0,
        source=_src(_ORAL_LIKE, "rectal bioavailability 25 % (malinovsky1996)")),
    "racemic:intranasal": RouteLimit(
        mg_soft=50.0, mg_hard=100.0, session_mg_soft=50.0, session_mg_hard=100.0,
        day_mg_hard=100.0,
        source=_src("soft: 50 mg (lapidus2014)", "hard assumed: no higher racemic dose "
                    "studied in depression; 100 mg racemic holds 50 mg esketamine, below the "
                    "esketamine label maximum of 84 mg")),
    "racemic:inhaled": RouteLimit(
        mg_per_kg_soft=0.75, mg_per_kg_hard=1.5, session_mg_per_kg_soft=0.75,
        session_mg_per_kg_hard=1.5, day_mg_per_kg_hard=1.5,
        source=_src("nebulised 0.75/1/1.5 mg/kg for pain (dove2021)", "assumed for "
                    "depression: no depression study by inhalation")),
    "esketamine:intranasal": RouteLimit(
        session_mg_hard=84.0, day_mg_hard=84.0,
        source=_src("per-dose limits are esketamine_max_mg and esketamine_label_doses_mg",
                    "spravato-label: 56 or 84 mg per session in 28-mg devices, at most 84 mg "
                    "(popova2019)")),
}


def route_key(compound: str, route: str | Route) -> str:
    """The ``route_limits`` key of a compound and route.

    >>> route_key("racemic", "IM")
    'racemic:im'
    """
    return f"{compound}:{Route.parse(str(route)).value}"


class DoseLimits(BaseModel):
    """A clinic's dose-range table (versioned; every change is a new version)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    version: str = DEFAULT_VERSION
    effective: date = date(2026, 1, 1)
    owner: str = "example clinic"
    source: str = EXAMPLE
    weight_range_kg: tuple[float, float] = (30.0, 250.0)
    weight_max_age_days: int = Field(30, ge=0, le=3650)
    weight_jump_fraction: float = Field(0.10, gt=0, le=1)
    racemic_iv_mg_per_kg_soft: float = Field(0.75, gt=0)
    racemic_iv_mg_per_kg_hard: float = Field(1.0, gt=0)
    racemic_iv_min_duration_min: float = Field(40.0, ge=0, le=1440)
    esketamine_device_mg: float = Field(28.0, gt=0)
    esketamine_max_mg: float = Field(84.0, gt=0)
    esketamine_label_doses_mg: tuple[float, ...] = (56.0, 84.0)
    esketamine_max_sessions_7d: int = Field(2, ge=1, le=14)
    protocol_multiple_hard: float = Field(10.0, gt=1, le=100)
    route_limits: dict[str, RouteLimit] = Field(
        default_factory=lambda: dict(DEFAULT_ROUTE_LIMITS), max_length=len(_COMPOUNDS) * 10)
    stock_concentrations_mg_per_ml: tuple[float, ...] = Field((10.0, 50.0, 100.0), min_length=1,
                                                              max_length=10)

    @field_validator("route_limits")
    @classmethod
    def _keys(cls, v: dict[str, RouteLimit]) -> dict[str, RouteLimit]:
        for key, entry in v.items():
            compound, _, route = key.partition(":")
            if compound not in _COMPOUNDS or route not in {r.value for r in Route}:
                raise _LimitProblem(key[:40], "is not a known "
                                    "'<compound>:<route>' key", "use racemic or esketamine and "
                                    "one of " + ", ".join(r.value for r in Route))
            iv = compound == "racemic" and Route(route).is_intravenous
            moved = (("mg_per_kg_soft", "mg_per_kg_hard", "session_mg_per_kg_soft",
                      "session_mg_per_kg_hard") if iv else ("mg_soft", "mg_hard")
                     if key == "esketamine:intranasal" else ())
            for name in moved:
                if getattr(entry, name) is not None:
                    where = ("racemic_iv_mg_per_kg_soft/hard" if iv else
                             "esketamine_max_mg and esketamine_label_doses_mg")
                    raise _LimitProblem(f"{key}.{name}", "is set twice: these "
                                        f"limits are {where}", f"remove {name} and edit {where}")
        return v

    @model_validator(mode="after")
    def _checked(self) -> DoseLimits:
        _text("version", self.version, 60)
        _text("owner", self.owner, 200)
        _text("source", self.source, 200)
        lo, hi = self.weight_range_kg
        for i, w in enumerate((lo, hi)):
            if not math.isfinite(w) or not 1 < w < 500:
                raise _LimitProblem(f"weight_range_kg.{i}", f"{w!r} kg is outside (1, 500) kg",
                                    "enter a weight range within 1-500 kg")
        if lo >= hi:
            raise _LimitProblem("weight_range_kg", f"the low end {lo:g} kg is not below the "
                                f"high end {hi:g} kg", "enter the range as low, high")
        for name in ("racemic_iv_mg_per_kg_soft", "racemic_iv_mg_per_kg_hard"):
            _finite_positive(name, getattr(self, name), MAX_MG_PER_KG, "mg/kg")
        if self.racemic_iv_mg_per_kg_soft > self.racemic_iv_mg_per_kg_hard:
            raise _LimitProblem("racemic_iv_mg_per_kg_hard", "the hard limit must not be below "
                                f"the soft limit ({self.racemic_iv_mg_per_kg_hard:g} < "
                                f"{self.racemic_iv_mg_per_kg_soft:g} mg/kg)",
                                "make the hard limit at least the soft limit")
        for name in ("esketamine_device_mg", "esketamine_max_mg"):
            _finite_positive(name, getattr(self, name), MAX_MG, "mg")
        if self.esketamine_device_mg > self.esketamine_max_mg:
            raise _LimitProblem("esketamine_max_mg", "is below one device", "give at least one "
                                "device's mg")
        for i, d in enumerate(self.esketamine_label_doses_mg):
            _finite_positive(f"esketamine_label_doses_mg.{i}", d, self.esketamine_max_mg, "mg")
        for i, c in enumerate(self.stock_concentrations_mg_per_ml):
            _finite_positive(f"stock_concentrations_mg_per_ml.{i}", c, MAX_STOCK_MG_PER_ML,
                             "mg/mL")
        if not math.isfinite(self.protocol_multiple_hard):
            raise _LimitProblem("protocol_multiple_hard", "is not finite", "enter e.g. 10")
        if self.version == DEFAULT_VERSION and _DEFAULTS is not None and self != _DEFAULTS:
            raise _LimitProblem("version", f"{DEFAULT_VERSION!r} names the built-in example "
                                "table and these limits differ from it",
                                "give the clinic's table its own version name")
        return self

    def route_limit(self, compound: str, route: str | Route) -> RouteLimit | None:
        """The limits for a compound by a route, or ``None`` when the table has none.

        >>> DoseLimits().route_limit("racemic", "SC").mg_per_kg_hard
        1.0
        """
        return self.route_limits.get(route_key(compound, route))


_DEFAULTS: DoseLimits | None = None
_DEFAULTS = DoseLimits.model_validate({})


def _limits_error(exc: ValidationError) -> DoseCheckError:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, _LimitProblem):
        field = ".".join([*loc, cause.field] if cause.field else loc) or "limits"
        return DoseCheckError(field, cause.problem, cause.fix)
    field = ".".join(loc) or "limits"
    return DoseCheckError(field, f"{err['msg']} (got {str(err.get('input'))[:40]!r})",
                          "correct the value")


def _nesting_depth(text: str, limit: int) -> int:
    """Bracket depth of a JSON text outside strings; stops counting just above ``limit``."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


class _Bad:
    """A JSON number that cannot be a limit, kept in place so its field can be named."""

    def __init__(self, token: str, problem: str) -> None:
        self.token, self.problem = token[:40], problem


def _constant(token: str) -> _Bad:
    return _Bad(token, f"{token} is not a finite number")


def _float(token: str) -> float | _Bad:
    value = float(token)
    return value if math.isfinite(value) else _Bad(token, f"{token[:40]} overflows to infinity")


def _int(token: str) -> int | _Bad:
    return int(token) if len(token) <= 18 else _Bad(token, f"the integer {token[:20]}… is "
                                                    "too long")


def _find_bad(value: Any, path: tuple[str, ...] = ()) -> tuple[str, _Bad] | None:
    if isinstance(value, _Bad):
        return ".".join(path) or "limits", value
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        if (hit := _find_bad(item, (*path, str(key)))) is not None:
            return hit
    return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DoseCheckError(str(key)[:60], "appears twice in one object",
                                 "give each setting once")
        out[key] = value
    return out


def parse_limits_json(text: str) -> DoseLimits:
    """Read a clinic's limits table from JSON text, refusing anything unsafe or implausible.

    Refuses text over 64 KB, nesting deeper than 20 (checked before parsing), ``NaN`` and
    ``Infinity``, numbers that overflow, duplicate keys, invalid JSON (with line and column),
    the built-in example's version name and every limit that is not finite, ordered and within
    its cap; every refusal is a :class:`DoseCheckError` naming the dotted field.

    >>> parse_limits_json('{"version": "clinic-2026-01"}').version
    'clinic-2026-01'
    >>> parse_limits_json('{"version": "v2", "racemic_iv_mg_per_kg_hard": Infinity}')
    Traceback (most recent call last):
    ...
    ketasim.clinic.dose_check.DoseCheckError: racemic_iv_mg_per_kg_hard: Infinity is not a ...
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_LIMITS_BYTES:
        raise DoseCheckError("limits", f"the text is {size} bytes, above "
                             f"{MAX_LIMITS_BYTES} bytes", "paste only the limits table")
    depth = _nesting_depth(text, MAX_LIMITS_DEPTH)
    if depth > MAX_LIMITS_DEPTH:
        raise DoseCheckError("limits", f"nesting is deeper than {MAX_LIMITS_DEPTH} levels",
                             "use the flat layout of the limits table")
    try:
        data = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int,
                          object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise DoseCheckError("limits", f"is not valid JSON: {exc.msg} at line {exc.lineno} "
                             f"column {exc.colno}", "fix the JSON") from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise DoseCheckError("limits", "nesting is too deep", "use the flat layout") from None
    if (bad := _find_bad(data)) is not None:
        raise DoseCheckError(bad[0], bad[1].problem, "enter a finite, plausible number")
    if not isinstance(data, dict):
        raise DoseCheckError("limits", f"is a JSON {type(data).__name__}, not an object",
                             "give the table as one JSON object")
    if data.get("version", DEFAULT_VERSION) == DEFAULT_VERSION:
        raise DoseCheckError("version", f"{DEFAULT_VERSION!r} is the built-in example's "
                             "version (or the version is missing)",
                             "give the clinic's table its own version name")
    return limits_from_mapping(data)


def limits_from_mapping(data: Mapping[str, Any]) -> DoseLimits:
    """Validate a stored or parsed limits mapping; errors become :class:`DoseCheckError`.

    >>> limits_from_mapping({"version": "v1", "weight_range_kg": [250, 30]})
    Traceback (most recent call last):
    ...
    ketasim.clinic.dose_check.DoseCheckError: weight_range_kg: the low end 250 kg is not ...
    """
    try:
        return DoseLimits.model_validate(dict(data))
    except ValidationError as exc:
        raise _limits_error(exc) from None


class DoseOrder(BaseModel):
    """What the prescriber entered: an amount in mg, mg/kg, or mL of a stock concentration."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    compound: Compound
    route: str
    amount: float = Field(gt=0)
    unit: Literal["mg", "mg/kg", "mL"]
    time: datetime
    duration_min: float | None = Field(default=None, gt=0)
    protocol_dose_mg: float | None = Field(default=None, gt=0)
    concentration_mg_per_ml: float | None = Field(default=None, gt=0)

    @field_validator("route")
    @classmethod
    def _route(cls, v: str) -> str:
        return Route.parse(v).value

    @model_validator(mode="after")
    def _volume(self) -> DoseOrder:
        if self.unit == "mL" and self.concentration_mg_per_ml is None:
            raise DoseCheckError("concentration_mg_per_ml", "a volume needs the stock "
                                 "concentration", "enter the stock's mg/mL from the vial")
        if self.unit != "mL" and self.concentration_mg_per_ml is not None:
            raise DoseCheckError("concentration_mg_per_ml", f"is given for a dose in "
                                 f"{self.unit}", "enter the dose in mL, or leave the "
                                 "concentration empty")
        return self


class PatientDoseContext(BaseModel):
    """What the chart knows: the weight (and when it was measured), earlier weights, earlier
    sessions, the doses already given in this session, and earlier doses with their times.

    ``earlier_doses`` may include this session's doses; the 24-hour total never counts less
    than this session's total, and never counts a dose twice.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    weight_kg: float = Field(gt=0)
    weight_measured_at: datetime
    previous_weight_kg: float | None = Field(default=None, gt=0)
    session_times: tuple[datetime, ...] = ()
    session_doses_mg: tuple[float, ...] = Field((), max_length=1000)
    earlier_doses: tuple[tuple[datetime, float], ...] = Field((), max_length=100_000)

    @field_validator("session_doses_mg")
    @classmethod
    def _positive(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(d <= 0 for d in v):
            raise ValueError("earlier doses must be above 0 mg")
        return v

    @field_validator("earlier_doses")
    @classmethod
    def _positive_timed(cls, v: tuple[tuple[datetime, float], ...]
                        ) -> tuple[tuple[datetime, float], ...]:
        if any(d <= 0 for _, d in v):
            raise ValueError("earlier doses must be above 0 mg")
        return v


class Finding(BaseModel):
    """One reason to stop or warn."""

    model_config = ConfigDict(frozen=True)

    rule: str
    severity: Severity
    message: str
    fix: str


class DoseCheck(BaseModel):
    """The result of a check: the dose in mg (and mL), the totals, the findings, the verdict."""

    model_config = ConfigDict(frozen=True)

    dose_mg: float
    dose_mg_per_kg: float
    findings: tuple[Finding, ...]
    limits_version: str
    volume_ml: float | None = None
    session_total_mg: float | None = None
    day_total_mg: float | None = None

    @property
    def verdict(self) -> Literal["accept", "soft", "hard"]:
        """``hard`` if any hard stop, ``soft`` if only warnings, else ``accept``."""
        if any(f.severity == "hard" for f in self.findings):
            return "hard"
        return "soft" if self.findings else "accept"


def dose_hard_mg(limits: DoseLimits, compound: str, route: str | Route,
                 weight_kg: float) -> float | None:
    """The smallest hard limit that bounds a single dose, in mg (``None``: no limits at all).

    >>> dose_hard_mg(DoseLimits(), "racemic", "im", 70)
    70.0
    """
    r = Route.parse(str(route))
    found: list[float] = []
    entry = limits.route_limit(compound, r)
    if entry is not None and (mg := entry.hard_mg(weight_kg)) is not None:
        found.append(mg)
    if compound == "racemic" and r.is_intravenous:
        found.append(limits.racemic_iv_mg_per_kg_hard * weight_kg)
    if compound == "esketamine" and r is Route.INTRANASAL:
        found.append(limits.esketamine_max_mg)
    return min(found) if found else None


def _within_day(order_time: datetime, t: datetime) -> bool:
    try:
        return abs(order_time - t) < timedelta(hours=24)
    except TypeError:
        raise DoseCheckError("earlier_doses", "mixes times with and without a time zone",
                             "give every time in UTC") from None


def check_dose(order: DoseOrder, patient: PatientDoseContext, limits: DoseLimits) -> DoseCheck:
    """Check one dose order against the clinic's limits and the patient's chart."""
    f: list[Finding] = []

    def add(rule: str, severity: Severity, message: str, fix: str) -> None:
        f.append(Finding(rule=rule, severity=severity, message=message, fix=fix))

    w = patient.weight_kg
    lo, hi = limits.weight_range_kg
    if not lo <= w <= hi:
        add("weight_range", "hard", f"weight {w:g} kg is outside {lo:g}-{hi:g} kg",
            "re-weigh the patient and enter kilograms")
    age = order.time - patient.weight_measured_at
    if age > timedelta(days=limits.weight_max_age_days) or age < timedelta(0):
        add("weight_recent", "hard", f"the weight was measured {age.days} days before the dose",
            f"weigh the patient (a weight within {limits.weight_max_age_days} days is needed)")
    if patient.previous_weight_kg:
        ratio = w / patient.previous_weight_kg
        if abs(ratio - 2.2046) < 0.11 or abs(ratio - 1 / 2.2046) < 0.023:
            add("weight_lb_kg", "hard", f"the weight {w:g} kg is 2.2× or 1/2.2× the last "
                f"({patient.previous_weight_kg:g} kg): pounds and kilograms mixed up?",
                "enter the weight in kilograms")
        elif abs(ratio - 1) > limits.weight_jump_fraction:
            add("weight_jump", "soft", f"the weight changed by {abs(ratio - 1) * 100:.0f} % "
                f"since the last ({patient.previous_weight_kg:g} kg)",
                "confirm the weight")
    volume = order.amount if order.unit == "mL" else None
    conc = order.concentration_mg_per_ml
    if order.unit == "mg/kg":
        dose_mg, per_kg = order.amount * w, order.amount
    else:
        dose_mg = order.amount * conc if conc is not None else order.amount
        per_kg = dose_mg / w
    route = Route(order.route)
    key = route_key(order.compound, route)
    entry = limits.route_limits.get(key)
    racemic_iv = order.compound == "racemic" and route.is_intravenous
    esk_in = order.compound == "esketamine" and route is Route.INTRANASAL
    what = f"{_WORD[order.compound]} by {route.value}"
    if entry is None:
        add("route_limits_missing", "hard", f"no dose limits for {what} in limits version "
            f"{limits.version}", "an administrator must add limits for this route")
    hard_mg = dose_hard_mg(limits, order.compound, route, w)

    # -- entry errors: units, volumes and stocks -------------------------------------------
    if order.unit == "mL" and conc is not None:
        if order.compound == "esketamine":
            add("esketamine_ml", "hard", f"esketamine was entered as {order.amount:g} mL; the "
                "nasal spray is dosed in 28-mg devices (mg), never mL",
                "enter the dose in mg (whole devices)")
        elif not any(abs(conc - s) <= 1e-9 * s for s in limits.stock_concentrations_mg_per_ml):
            held = ", ".join(f"{s:g}" for s in limits.stock_concentrations_mg_per_ml)
            add("stock_concentration", "hard", f"{conc:g} mg/mL is not a stock this clinic "
                f"holds ({held} mg/mL)", "read the concentration from the vial")
        if hard_mg is not None and dose_mg >= 10 * hard_mg and order.amount <= hard_mg:
            add("ml_as_mg", "hard", f"{order.amount:g} mL of {conc:g} mg/mL is {dose_mg:g} mg, "
                f"≥ 10× the {hard_mg:.3g} mg limit: looks like mg typed as mL",
                "enter the dose in the unit you mean")
        if racemic_iv and conc >= IV_DILUTE_MG_PER_ML:
            add("iv_undiluted", "soft", f"{conc:g} mg/mL stock for IV use: dilute before IV "
                f"use; never give {IV_DILUTE_MG_PER_ML:g} mg/mL IV undiluted (KETALAR "
                "prescribing information, section 2)", "dilute with an equal volume or more of "
                "0.9 % saline, 5 % dextrose or sterile water")
    per_kg_hard = limits.racemic_iv_mg_per_kg_hard if racemic_iv else (
        entry.mg_per_kg_hard if entry is not None else None)
    if order.unit == "mg/kg" and per_kg_hard is not None and \
            order.amount > 5 * per_kg_hard and order.amount / w <= per_kg_hard:
        add("mg_as_mg_per_kg", "hard", f"{order.amount:g} mg/kg looks like {order.amount:g} "
            f"mg typed into the mg/kg field ({order.amount / w:.2g} mg/kg)",
            "enter the dose in the unit you mean")

    # -- per dose --------------------------------------------------------------------------
    if racemic_iv:
        if _over(per_kg, limits.racemic_iv_mg_per_kg_hard):
            add("racemic_iv_hard", "hard", f"{per_kg:.3g} mg/kg exceeds the hard limit "
                f"{limits.racemic_iv_mg_per_kg_hard:g} mg/kg", "lower the dose")
        elif _over(per_kg, limits.racemic_iv_mg_per_kg_soft):
            add("racemic_iv_soft", "soft", f"{per_kg:.3g} mg/kg is above "
                f"{limits.racemic_iv_mg_per_kg_soft:g} mg/kg", "confirm the dose")
        if route is Route.IV_BOLUS or (order.duration_min is not None and
                                       order.duration_min < limits.racemic_iv_min_duration_min):
            got = "a bolus" if order.duration_min is None else f"{order.duration_min:g} min"
            add("racemic_iv_duration", "soft", f"infusion over {got} is shorter than "
                f"{limits.racemic_iv_min_duration_min:g} min",
                "infuse over the protocol duration")
    session_total = dose_mg + sum(patient.session_doses_mg)
    if esk_in:
        dev = dose_mg / limits.esketamine_device_mg
        if abs(dev - round(dev)) > 1e-9:
            add("esketamine_devices", "hard", f"{dose_mg:g} mg is not a whole number of "
                f"{limits.esketamine_device_mg:g}-mg devices", "give whole devices")
        if _over(dose_mg, limits.esketamine_max_mg):
            add("esketamine_max", "hard", f"{dose_mg:g} mg exceeds "
                f"{limits.esketamine_max_mg:g} mg per session", "give at most "
                f"{limits.esketamine_max_mg:g} mg")
        elif not any(abs(session_total - d) <= 1e-9 * d
                     for d in limits.esketamine_label_doses_mg):
            add("esketamine_label_dose", "soft", f"{session_total:g} mg is not a label dose "
                f"({', '.join(f'{d:g}' for d in limits.esketamine_label_doses_mg)} mg)",
                "confirm the dose")
        recent = [t for t in patient.session_times
                  if timedelta(0) <= order.time - t < timedelta(days=7)]
        if len(recent) + 1 > limits.esketamine_max_sessions_7d:
            add("esketamine_frequency", "soft", f"{len(recent) + 1} sessions within 7 days "
                f"exceed the label's {limits.esketamine_max_sessions_7d}",
                "confirm the schedule")
    if entry is not None:
        _check_amount(add, "route_dose", f"one dose of {what}", dose_mg, w,
                      entry.mg_per_kg_soft, entry.mg_per_kg_hard, entry.mg_soft, entry.mg_hard,
                      "lower the dose")

    # -- totals: this session, rolling 24 hours --------------------------------------------
    per_dose_severities = {x.severity for x in f if x.rule in (
        "racemic_iv_hard", "racemic_iv_soft", "esketamine_max", "route_dose_hard",
        "route_dose_soft")}
    before = len(f)
    s_kg_soft, s_kg_hard = (limits.racemic_iv_mg_per_kg_soft, limits.racemic_iv_mg_per_kg_hard
                            ) if racemic_iv else (
        (entry.session_mg_per_kg_soft, entry.session_mg_per_kg_hard) if entry else (None, None))
    if entry is not None or racemic_iv:
        _check_amount(add, "session_total", f"the session total of {what} "
                      f"({len(patient.session_doses_mg) + 1} doses)", session_total, w,
                      s_kg_soft, s_kg_hard, entry.session_mg_soft if entry else None,
                      entry.session_mg_hard if entry else None,
                      "stop dosing in this session, or record an override")
    day = [mg for t, mg in patient.earlier_doses if _within_day(order.time, t)]
    day_total = dose_mg + max(sum(day), sum(patient.session_doses_mg))
    if entry is not None:
        _check_amount(add, "day_total", f"the 24-hour total of {what}", day_total, w,
                      entry.day_mg_per_kg_soft, entry.day_mg_per_kg_hard, entry.day_mg_soft,
                      entry.day_mg_hard, "wait until 24 h after the earlier doses")
    # a lone dose whose per-dose rule already fired needs no second finding of the same weight
    totals = f[before:]
    del f[before:]
    for x in totals:
        alone = (x.rule.startswith("session_total") and not patient.session_doses_mg) or \
            (x.rule.startswith("day_total") and day_total == dose_mg)
        if not (alone and x.severity in per_dose_severities):
            f.append(x)
    if order.protocol_dose_mg and dose_mg >= limits.protocol_multiple_hard * \
            order.protocol_dose_mg:
        add("ten_fold", "hard", f"{dose_mg:g} mg is ≥ {limits.protocol_multiple_hard:g}× the "
            f"protocol dose ({order.protocol_dose_mg:g} mg)", "check units and decimal point")
    return DoseCheck(dose_mg=dose_mg, dose_mg_per_kg=per_kg, findings=tuple(f),
                     limits_version=limits.version, volume_ml=volume,
                     session_total_mg=session_total, day_total_mg=day_total)


def _check_amount(add: Callable[[str, Severity, str, str], None], rule: str, what: str,
                  mg: float, w: float, kg_soft: float | None, kg_hard: float | None,
                  mg_soft: float | None, mg_hard: float | None, fix: str) -> None:
    """Add ``<rule>_hard`` if ``mg`` is above a hard limit, else ``<rule>_soft`` if above a
    soft one; per-kg limits are compared with ``mg / w``."""
    per_kg = mg / w

    def above(kg_limit: float | None, mg_limit: float | None) -> list[str]:
        out = []
        if kg_limit is not None and _over(per_kg, kg_limit):
            out.append(f"{per_kg:.3g} mg/kg > {kg_limit:g} mg/kg")
        if mg_limit is not None and _over(mg, mg_limit):
            out.append(f"{mg:.4g} mg > {mg_limit:g} mg")
        return out

    if hard := above(kg_hard, mg_hard):
        add(f"{rule}_hard", "hard", f"{what} exceeds the hard limit: {'; '.join(hard)}", fix)
    elif soft := above(kg_soft, mg_soft):
        add(f"{rule}_soft", "soft", f"{what} is above the soft limit: {'; '.join(soft)}",
            "confirm the dose")


class Override(BaseModel):
    """A clinician's decision to proceed despite findings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str
    clinician: str
    second_clinician: str | None = None
    at: datetime


def authorize(check: DoseCheck, override: Override | None = None) -> dict[str, object]:
    """Accept a checked dose, with an override where findings demand one; returns the
    audit record (what was found, who decided, why, under which limits version)."""
    verdict = check.verdict
    if verdict != "accept":
        if override is None:
            raise DoseCheckError("override", f"the dose has {verdict} findings: "
                                 + "; ".join(x.message for x in check.findings),
                                 "change the order or record an override with a reason")
        if len(override.reason.strip()) < 10:
            raise DoseCheckError("override.reason", "is missing or too short",
                                 "explain the clinical reason (10 characters or more)")
        if verdict == "hard":
            second = (override.second_clinician or "").strip()
            if not second or second == override.clinician.strip():
                raise DoseCheckError("override.second_clinician",
                                     "a hard stop needs a second clinician",
                                     "have a second clinician confirm the override")
    return {
        "dose_mg": check.dose_mg, "verdict": verdict, "limits_version": check.limits_version,
        "findings": [x.model_dump() for x in check.findings],
        "override": None if override is None else override.model_dump(mode="json"),
    }


__all__ = ["DEFAULT_ROUTE_LIMITS", "DEFAULT_VERSION", "DoseCheck", "DoseCheckError",
           "DoseLimits", "DoseOrder", "Finding", "Override", "PatientDoseContext", "RouteLimit",
           "authorize", "check_dose", "dose_hard_mg", "limits_from_mapping",
           "parse_limits_json", "route_key"]
