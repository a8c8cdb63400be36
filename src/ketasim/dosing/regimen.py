"""Doses and regimens: what was given, how, and when — as plain frozen data.

A :class:`Dose` is one administration, optionally repeated NM-TRAN style (``every`` = II,
``additional`` = ADDL). A :class:`Regimen` is an ordered tuple of doses with combinators
(``+``, :meth:`Regimen.repeat`, :meth:`Regimen.shift`, :meth:`Regimen.then`). Regimens name
routes, not compartments; :meth:`Regimen.to_events` expands them to an NM-TRAN event table,
resolving mg/kg from the subject's weight.

>>> r = Regimen.single(0.5, Route.IV_INFUSION, per_kg=True, duration=40 / 60)
>>> r = r.repeat(every=56, count=6)
>>> r.n_administrations, r.last_time
(6, 280.0)
>>> float(r.to_events(weight_kg=70).amt[0])
35.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from ketasim.dosing.events import EventTable
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


@dataclass(frozen=True)
class Regimen:
    """An ordered set of doses. Combine with ``+``; build with the combinators below."""

    doses: tuple[Dose, ...]

    def __post_init__(self) -> None:
        if isinstance(self.doses, Dose):
            object.__setattr__(self, "doses", (self.doses,))
        object.__setattr__(self, "doses", tuple(self.doses))
        for d in self.doses:
            if not isinstance(d, Dose):
                raise RegimenError("doses", f"{d!r} is not a Dose",
                                   "build regimens from Dose objects")

    # ---------------------------------------------------------------- constructors
    @classmethod
    def single(cls, amount: float, route: Route | str, *, time: float = 0.0,
               per_kg: bool = False, duration: float | None = None,
               rate: float | None = None) -> Regimen:
        """One administration."""
        return cls((Dose(amount, Route.parse(route) if isinstance(route, str) else route,
                         time=time, per_kg=per_kg, duration=duration, rate=rate),))

    @classmethod
    def parse(cls, text: str) -> Regimen:
        """Read the regimen language (see :mod:`ketasim.dosing.language`)."""
        from ketasim.dosing.language import parse_regimen
        return parse_regimen(text)

    def to_text(self) -> str:
        """Print in the regimen language (round trip with :meth:`parse`)."""
        from ketasim.dosing.language import format_regimen
        return format_regimen(self)

    def __str__(self) -> str:
        try:
            return self.to_text()
        except RegimenError:
            return repr(self)

    # ---------------------------------------------------------------- combinators
    def __add__(self, other: Regimen) -> Regimen:
        return self.combine(other)

    def combine(self, *others: Regimen) -> Regimen:
        """All doses of this and the other regimens, kept in time order."""
        doses = list(self.doses)
        for o in others:
            doses.extend(o.doses)
        return Regimen(tuple(sorted(doses, key=lambda d: d.time)))

    def shift(self, by: float) -> Regimen:
        """Move every dose later by ``by`` hours."""
        if any(d.time + by < 0 for d in self.doses):
            raise RegimenError("shift", f"shifting by {by:g} h moves a dose before time 0",
                               "shift by an amount that keeps every dose time >= 0")
        return Regimen(tuple(replace(d, time=d.time + by) for d in self.doses))

    def repeat(self, *, every: float, count: int | None = None,
               until: float | None = None) -> Regimen:
        """Repeat each administration pattern ``count`` times in all (or until time ``until``).

        A regimen of single doses becomes NM-TRAN II/ADDL doses; a regimen whose doses already
        repeat is copied as a block every ``every`` hours.
        """
        if not every > 0:
            raise RegimenError("every", f"is {every!r}", "give a positive interval in hours")
        if (count is None) == (until is None):
            raise RegimenError("count", "give exactly one of count or until",
                               "e.g. repeat(every=24, count=14)")
        start = self.first_time
        if until is not None:
            count = math.floor((until - start) / every + 1e-9) + 1
        assert count is not None
        if count < 1:
            raise RegimenError("count", f"is {count}", "repeat at least once")
        if all(d.additional == 0 for d in self.doses):
            return Regimen(tuple(replace(d, every=every, additional=count - 1) for d in self.doses))
        return Regimen(tuple(replace(d, time=d.time + k * every)
                             for k in range(count) for d in self.doses))

    def then(self, other: Regimen, *, gap: float | None = None) -> Regimen:
        """``other`` starting after this regimen ends.

        ``other`` starts ``gap`` hours after this regimen's last administration; by default the
        gap is this regimen's dosing interval, or, for a single dose, ``other``'s interval
        (the next dose comes at the new schedule's spacing).
        """
        if not other.doses:
            return self
        if gap is None:
            last = max(self.doses, key=lambda d: d.last_time) if self.doses else None
            gap = (last.every if last is not None and last.every else None) \
                or other.doses[0].every
            if gap is None:
                raise RegimenError("then", "cannot tell when the next phase starts",
                                   "give a start ('on day N') or a gap")
        return self.combine(other.shift(self.last_time + gap - other.first_time))

    # ---------------------------------------------------------------- views
    @property
    def compound(self) -> str | None:
        """The compound all doses name (None when none names one); mixed raises."""
        named = {d.compound for d in self.doses if d.compound is not None}
        if len(named) > 1:
            raise RegimenError("compound", f"the regimen mixes {', '.join(sorted(named))}",
                               "simulate one compound per regimen")
        return named.pop() if named else None

    @property
    def first_time(self) -> float:
        """Time of the first administration (h)."""
        return min((d.time for d in self.doses), default=0.0)

    @property
    def last_time(self) -> float:
        """Time of the last administration (h)."""
        return max((d.last_time for d in self.doses), default=0.0)

    @property
    def n_administrations(self) -> int:
        """Number of administrations, repeats included."""
        return sum(d.n_administrations for d in self.doses)

    def administrations(self, weight_kg: float | None = None) -> list[tuple[float, float, Dose]]:
        """``(time_h, amount_mg, dose)`` for every administration, in time order."""
        out = [(float(t), d.amount_mg(weight_kg), d) for d in self.doses for t in d.times()]
        return sorted(out, key=lambda x: x[0])

    def total_mg(self, weight_kg: float | None = None) -> float:
        """Total amount given (mg)."""
        return sum(a for _, a, _ in self.administrations(weight_kg))

    def to_events(self, *, weight_kg: float | None = None, subject_id: int = 1,
                  observe: Iterable[float] | None = None) -> EventTable:
        """Expand to an NM-TRAN event table (CMT 0: the model's compartment for each route).

        Infusions become DUR records (a rate given as 'at … mg/h' sets DUR = amount/rate).
        """
        if any(d.per_kg for d in self.doses):
            check_weight(weight_kg)
        elif weight_kg is not None:
            check_weight(weight_kg)
        records = []
        for d in sorted(self.doses, key=lambda d: d.time):
            amt = d.amount_mg(weight_kg)
            rate = 0.0
            dur = 0.0
            if d.rate is not None:
                # a pump rate fixes the infusion's duration (amount / rate); written as DUR so
                # that a model's F (bioavailability, or the enantiomer split of a racemate)
                # scales the rate, not the running time, as at the bedside
                dur = d.amount / d.rate
            elif d.duration is not None:
                dur = d.duration
            records.append(dict(ID=subject_id, TIME=d.time, EVID=1, AMT=amt, CMT=d.compartment,
                                RATE=rate, DUR=dur, II=d.every or 0.0, ADDL=d.additional, SS=0,
                                ROUTE=d.route.value))
        table = EventTable.from_records(records)
        if observe is not None:
            table = table.with_observations(np.asarray(list(observe), dtype=float))
        return table


__all__ = ["WEIGHT_RANGE_KG", "Dose", "Regimen", "check_weight"]
