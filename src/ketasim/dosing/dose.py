"""One administration as plain frozen data, and the few operations on sequences of doses that
the :class:`~ketasim.dosing.regimen.Regimen` combinators and the regimen language share.

This module sits below both :mod:`ketasim.dosing.regimen` and :mod:`ketasim.dosing.text`, so
that neither imports the other in a circle.

>>> d = Dose.of("0.5 mg/kg", "IV", duration="40 min", every="1 week", additional=3)
>>> d.n_administrations, d.last_time, d.amount_mg(70.0)
(4, 504.0, 35.0)
>>> [x.time for x in then_doses((d,), (Dose(84.0, "intranasal"),))]
[0.0, 672.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ketasim.dosing.route import Route
from ketasim.errors import CovariateError, DoseError, RegimenError

WEIGHT_RANGE_KG = (0.5, 400.0)


def check_weight(weight_kg: float | None, *, field: str = "weight") -> float:
    """Return a valid body weight in kg or raise :class:`CovariateError`."""
    if weight_kg is None:
        raise CovariateError(field, "is missing", "give the body weight in kg (e.g. --weight 70)")
    w = float(weight_kg)
    lo, hi = WEIGHT_RANGE_KG
    if not math.isfinite(w) or not lo <= w <= hi:
        raise CovariateError(field, f"{weight_kg} kg is outside {lo:g}–{hi:g} kg",
                             "give the weight in kilograms (a weight in lb divided by 2.2046)")
    return w


@dataclass(frozen=True)
class Dose:
    """One administration (in mg, or mg/kg when ``per_kg``), possibly repeated.

    ``time`` and ``duration`` are in hours; ``rate`` in mg/h (mg/kg/h when ``per_kg``); an
    IV infusion needs either a duration or a rate. ``every``/``additional`` repeat the dose
    ``additional`` more times at interval ``every`` hours (NM-TRAN II/ADDL).
    """

    amount: float
    route: Route
    time: float = 0.0
    per_kg: bool = False
    duration: float | None = None
    rate: float | None = None
    every: float | None = None
    additional: int = 0
    compartment: int = 0
    compound: str | None = None  # "racemic", "esketamine", "arketamine"; None: unspecified

    def __post_init__(self) -> None:
        if not isinstance(self.route, Route):
            object.__setattr__(self, "route", Route.parse(str(self.route)))
        for name in ("amount", "time"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v):
                raise DoseError(name, f"{v!r} is not a finite number", f"give {name} as a number")
            if v < 0:
                unit = "h" if name == "time" else ("mg/kg" if self.per_kg else "mg")
                raise DoseError(name, f"is {v:g} {unit}", f"{name} must be >= 0")
        for name in ("duration", "rate", "every"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v <= 0):
                raise DoseError(name, f"is {v!r}", f"{name} must be a positive finite number")
        if self.duration is not None and self.rate is not None:
            raise DoseError("duration", "given together with rate",
                            "give an infusion either a duration or a rate")
        if (self.duration is not None or self.rate is not None) and not self.route.is_infusion:
            if self.route is Route.IV_BOLUS:
                object.__setattr__(self, "route", Route.IV_INFUSION)
            else:
                raise DoseError("duration", f"a {self.route.word} dose cannot have a duration",
                                "use route IV for an infusion")
        if self.route.is_infusion and self.duration is None and self.rate is None:
            raise DoseError("duration", "an IV infusion needs a duration or rate",
                            "write e.g. 'over 40 min'")
        if self.compound not in (None, "racemic", "esketamine", "arketamine"):
            raise DoseError("compound", f"{self.compound!r} is not known",
                            "use racemic (ketamine), esketamine or arketamine")
        if int(self.additional) != self.additional or self.additional < 0:
            raise DoseError("additional", f"is {self.additional!r}",
                            "the number of additional doses is a whole number >= 0")
        if self.additional > 0 and self.every is None:
            raise DoseError("every", "repeated dose without an interval",
                            "give the interval between doses, e.g. every=24 (h)")
        if self.every is not None and self.duration is not None and self.duration > self.every:
            raise DoseError("duration", f"infusion of {self.duration:g} h is longer than the "
                            f"{self.every:g} h dosing interval", "shorten the infusion")

    @classmethod
    def of(cls, amount: str | float, route: Route | str, *, time: str | float = 0.0,
           duration: str | float | None = None, every: str | float | None = None,
           additional: int = 0) -> Dose:
        """A dose from quantities with units: ``Dose.of("0.5 mg/kg", "IV", duration="40 min")``.

        Amounts accept mg, g, µg (optionally per kg); times s, min, h, d, week. Plain numbers
        are mg and hours.

        >>> Dose.of("500 µg/kg", "IV", duration="40 min").amount
        0.5
        """
        from ketasim.units import amount_unit_factor, to_hours
        per_kg = False
        if isinstance(amount, str):
            parts = amount.strip().split(None, 1)
            try:
                value = float(parts[0])
            except (ValueError, IndexError):
                raise DoseError("amount", f"cannot read {amount!r}",
                                "write a number and a unit, e.g. '0.5 mg/kg'") from None
            factor, kind = amount_unit_factor(parts[1] if len(parts) > 1 else "mg")
            amount, per_kg = value * factor, kind == "per_kg"
        r = Route.parse(route) if isinstance(route, str) else route
        if isinstance(route, str) and r is Route.IV_INFUSION and duration is None:
            r = Route.IV_BOLUS
        return cls(float(amount), r, time=to_hours(time, field="time"), per_kg=per_kg,
                   duration=None if duration is None else to_hours(duration, field="duration"),
                   every=None if every is None else to_hours(every, field="every"),
                   additional=additional)

    @property
    def n_administrations(self) -> int:
        """1 + additional."""
        return 1 + self.additional

    @property
    def last_time(self) -> float:
        """Time of the last administration (h)."""
        return self.time + self.additional * (self.every or 0.0)

    def amount_mg(self, weight_kg: float | None = None) -> float:
        """The amount in mg (mg/kg resolved from ``weight_kg``)."""
        if not self.per_kg:
            return self.amount
        if weight_kg is None:
            raise DoseError("weight", "a mg/kg dose needs the body weight",
                            "give the subject's weight in kg (e.g. --weight 70)")
        return self.amount * check_weight(weight_kg)

    def times(self) -> np.ndarray:
        """All administration times (h)."""
        return self.time + np.arange(self.n_administrations) * (self.every or 0.0)


Doses = tuple[Dose, ...]


def first_time(doses: Sequence[Dose]) -> float:
    """Time of the first administration (h); 0 for no doses."""
    return min((d.time for d in doses), default=0.0)


def last_time(doses: Sequence[Dose]) -> float:
    """Time of the last administration, repeats included (h); 0 for no doses."""
    return max((d.last_time for d in doses), default=0.0)


def combine_doses(*groups: Sequence[Dose]) -> Doses:
    """All doses of all groups, in time order (a stable sort: equal times keep their order)."""
    return tuple(sorted((d for g in groups for d in g), key=lambda d: d.time))


def shift_doses(doses: Sequence[Dose], by: float) -> Doses:
    """Every dose moved later by ``by`` hours; a dose moved before time 0 raises."""
    if any(d.time + by < 0 for d in doses):
        raise RegimenError("shift", f"shifting by {by:g} h moves a dose before time 0",
                           "shift by an amount that keeps every dose time >= 0")
    return tuple(replace(d, time=d.time + by) for d in doses)


def then_doses(doses: Sequence[Dose], other: Sequence[Dose], *,
               gap: float | None = None) -> Doses:
    """``other`` starting ``gap`` hours after the last administration of ``doses``.

    By default the gap is the dosing interval of the dose that ends last, or, when that is a
    single dose, ``other``'s first interval; when neither repeats the start is unknown and
    :class:`~ketasim.errors.RegimenError` says to give one.
    """
    if not other:
        return tuple(doses)
    if gap is None:
        last = max(doses, key=lambda d: d.last_time) if doses else None
        gap = (last.every if last is not None and last.every else None) or other[0].every
        if gap is None:
            raise RegimenError("then", "cannot tell when the next phase starts",
                               "give a start ('on day N') or a gap")
    return combine_doses(doses, shift_doses(other, last_time(doses) + gap - first_time(other)))


__all__ = ["WEIGHT_RANGE_KG", "Dose", "check_weight", "combine_doses", "first_time",
           "last_time", "shift_doses", "then_doses"]
