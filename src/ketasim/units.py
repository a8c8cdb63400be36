"""One pint registry for all of ketasim; canonical internal units are mg, L and h.

Quantities carry units only at the boundary (CLI, files, API). Inside, values are plain floats
in canonical units: amounts in mg, volumes in L, time in h, concentrations in mg/L (which equals
µg/mL). Reported concentrations are ng/mL and µM.

The registry (``ureg``, ``Quantity``) is built on first use, because importing pint and
building it takes about 0.3 s; the time and dose units of the regimen language are a fixed
table (the same floats pint gives), so reading a regimen needs no pint at all.

>>> to_hours("40 min")
0.6666666666666666
>>> round(ng_per_ml_to_umol_per_l(237.73, molar_mass_g_per_mol=237.73), 12)
1.0
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from ketasim.errors import UnitError

if TYPE_CHECKING:
    import pint

# created on first access (module __getattr__ below)
ureg: pint.UnitRegistry
Quantity: Any


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """ketasim's one pint registry (built on first call)."""
    import pint
    reg: pint.UnitRegistry = pint.UnitRegistry()
    reg.formatter.default_format = "~P"
    return reg


def __getattr__(name: str) -> Any:
    if name == "ureg":
        return registry()
    if name == "Quantity":
        return registry().Quantity
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DoseKind = Literal["amount", "per_kg"]

_TIME_ALIASES = {
    "s": "second", "sec": "second", "secs": "second", "second": "second", "seconds": "second",
    "min": "minute", "mins": "minute", "minute": "minute", "minutes": "minute",
    "h": "hour", "hr": "hour", "hrs": "hour", "hour": "hour", "hours": "hour",
    "d": "day", "day": "day", "days": "day",
    "w": "week", "wk": "week", "wks": "week", "week": "week", "weeks": "week",
}
_AMOUNT_ALIASES = {
    "mg": "milligram", "g": "gram", "ug": "microgram", "µg": "microgram", "mcg": "microgram",
    "μg": "microgram", "ng": "nanogram",
}
# hours and milligrams per unit: exactly the floats pint's registry gives (tests/test_startup.py)
_HOURS = {"second": 1 / 3600, "minute": 1 / 60, "hour": 1.0, "day": 24.0, "week": 168.0}
_MILLIGRAMS = {"milligram": 1.0, "gram": 1000.0, "microgram": 0.001,
               "nanogram": 1.0000000000000002e-06}


@lru_cache(maxsize=256)
def _parse(text: str) -> pint.Quantity:
    import pint
    try:
        return registry().Quantity(text)
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError,
            ValueError, AttributeError, TypeError) as exc:
        raise UnitError("quantity", f"cannot read {text!r} as a quantity",
                        "write a number and a unit, e.g. '40 min' or '0.5 mg/kg'") from exc


def time_unit_factor(unit: str) -> float:
    """Hours per one ``unit`` for the time units ketasim accepts (s, min, h, d, week)."""
    name = _TIME_ALIASES.get(unit.strip().lower())
    if name is None:
        raise UnitError("time unit", f"unknown time unit {unit!r}",
                        "use one of s, min, h, d, week")
    return _HOURS[name]


def to_hours(value: str | float | pint.Quantity, *, field: str = "time") -> float:
    """Convert a time (``'40 min'``, a pint quantity, or a float already in hours) to hours."""
    if isinstance(value, int | float):
        return float(value)
    import pint
    q = _parse(value) if isinstance(value, str) else value
    try:
        return float(q.to("hour").magnitude)
    except pint.errors.DimensionalityError as exc:
        raise UnitError(field, f"{value!r} is not a time", "use s, min, h, d or week") from exc


def amount_unit_factor(unit: str) -> tuple[float, DoseKind]:
    """Milligrams per one ``unit``; ``per_kg`` when the unit is per kilogram of body weight.

    >>> amount_unit_factor("µg/kg")
    (0.001, 'per_kg')
    """
    u = unit.strip().replace(" ", "")
    per_kg = False
    low = u.lower()
    if low.endswith("/kg"):
        per_kg = True
        u = u[:-3]
    name = _AMOUNT_ALIASES.get(u if u in _AMOUNT_ALIASES else u.lower())
    if name is None:
        raise UnitError("dose unit", f"unknown dose unit {unit!r}",
                        "use mg, g, µg (or mcg), optionally per kg: mg/kg, µg/kg")
    return _MILLIGRAMS[name], ("per_kg" if per_kg else "amount")


def to_mg(value: str | float | pint.Quantity, *, field: str = "amount") -> float:
    """Convert an absolute amount to mg (floats are taken as mg already)."""
    if isinstance(value, int | float):
        return float(value)
    import pint
    q = _parse(value) if isinstance(value, str) else value
    try:
        return float(q.to("milligram").magnitude)
    except pint.errors.DimensionalityError as exc:
        raise UnitError(field, f"{value!r} is not a mass", "use mg, g or µg") from exc


def mg_per_l_to_ng_per_ml(value: float) -> float:
    """mg/L → ng/mL (×1000)."""
    return float(registry().Quantity(value, "mg/L").to("ng/mL").magnitude)


def ng_per_ml_to_umol_per_l(value: float, *, molar_mass_g_per_mol: float) -> float:
    """ng/mL → µmol/L for a compound of the given molar mass."""
    if not molar_mass_g_per_mol > 0:
        raise UnitError("molar_mass_g_per_mol", f"molar mass {molar_mass_g_per_mol} is not > 0",
                        "give the compound's molar mass in g/mol")
    return value / molar_mass_g_per_mol


def convert(value: float, from_unit: str, to_unit: str, *, field: str = "value") -> float:
    """Convert a float between any two compatible units.

    >>> convert(1.0, "L/h", "mL/min")
    16.666666666666668
    """
    import pint
    try:
        return float(registry().Quantity(value, from_unit).to(to_unit).magnitude)
    except (pint.errors.DimensionalityError, pint.errors.UndefinedUnitError) as exc:
        raise UnitError(field, f"cannot convert {from_unit!r} to {to_unit!r}",
                        f"give {field} in a unit compatible with {to_unit}") from exc


__all__ = [
    "Quantity",
    "amount_unit_factor",
    "convert",
    "mg_per_l_to_ng_per_ml",
    "ng_per_ml_to_umol_per_l",
    "registry",
    "time_unit_factor",
    "to_hours",
    "to_mg",
    "ureg",
]
