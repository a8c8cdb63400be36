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

from ketasim.dosing import text
from ketasim.dosing.dose import (
    WEIGHT_RANGE_KG,
    Dose,
    check_weight,
    combine_doses,
    first_time,
    last_time,
    shift_doses,
    then_doses,
)
from ketasim.dosing.events import EventTable
from ketasim.dosing.route import Route
from ketasim.errors import RegimenError


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
    def parse(cls, source: str) -> Regimen:
        """Read the regimen language (see :mod:`ketasim.dosing.language`)."""
        return cls(text.parse_doses(source))

    def to_text(self) -> str:
        """Print in the regimen language (round trip with :meth:`parse`)."""
        return text.format_doses(self.doses)

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
        return Regimen(combine_doses(self.doses, *(o.doses for o in others)))

    def shift(self, by: float) -> Regimen:
        """Move every dose later by ``by`` hours."""
        return Regimen(shift_doses(self.doses, by))

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
        return Regimen(then_doses(self.doses, other.doses, gap=gap))

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
        return first_time(self.doses)

    @property
    def last_time(self) -> float:
        """Time of the last administration (h)."""
        return last_time(self.doses)

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
