"""The regimen language's grammar: text to doses and doses to text, on plain
:class:`~ketasim.dosing.dose.Dose` tuples (the grammar itself is described in
:mod:`ketasim.dosing.language`, the public face; :class:`~ketasim.dosing.regimen.Regimen` reads
and prints through this module, so the two never import each other).

>>> doses = parse_doses("84 mg intranasal twice weekly for 4 weeks")
>>> len(doses), doses[0].every, doses[0].additional
(1, 84.0, 7)
>>> format_doses(doses)
'84 mg intranasal twice weekly for 4 weeks'
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ketasim.dosing.dose import Dose, combine_doses, then_doses
from ketasim.dosing.route import Route
from ketasim.errors import RegimenError, UnitError
from ketasim.units import amount_unit_factor, time_unit_factor

_NUM = r"(\d+(?:\.\d+)?|\.\d+)"
_TIME_UNIT = r"(seconds?|secs?|s|minutes?|mins?|min|hours?|hrs?|h|days?|d|weeks?|wks?|w)"
_AMOUNT_UNIT = r"(mg|g|µg|μg|ug|mcg)(\s*/\s*kg)?"

_ROUTE_PATTERNS = [
    (r"iv\s+bolus|iv\s+push|bolus", Route.IV_BOLUS),
    (r"iv\s+infusion|iv|intravenous", Route.IV_INFUSION),  # bolus unless "over"/"at … /h"
    (r"im|intramuscular", Route.INTRAMUSCULAR),
    (r"intranasal|nasal\s+spray|nasal|in", Route.INTRANASAL),
    (r"oral|po", Route.ORAL),
    (r"sublingual|sl", Route.SUBLINGUAL),
    (r"buccal", Route.BUCCAL),
    (r"rectal|pr", Route.RECTAL),
    (r"subcutaneous|subcut|sc|sq", Route.SUBCUTANEOUS),
    (r"inhaled|inhalation", Route.INHALED),
]

_PER_WEEK_WORDS = {"once": 1, "twice": 2, "three times": 3, "thrice": 3, "four times": 4,
                   "five times": 5}
_PER_DAY_WORDS = {"once": 1, "twice": 2, "three times": 3, "four times": 4}
_NAMED = {"qd": 24.0, "od": 24.0, "bid": 12.0, "tid": 8.0, "qid": 6.0, "qw": 168.0,
          "qod": 48.0, "biw": 84.0, "tiw": 56.0}


@dataclass
class _Phase:
    dose: Dose
    explicit_start: bool
    route_given: bool


class _Reader:
    """A tiny cursor over the normalised text of one phase."""

    def __init__(self, text: str, whole: str) -> None:
        self.text = text
        self.pos = 0
        self.whole = whole

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t,":
            self.pos += 1

    def match(self, pattern: str) -> re.Match[str] | None:
        self.skip_ws()
        m = re.compile(pattern + r"(?![\w/µμ])", re.IGNORECASE).match(self.text, self.pos)
        if m:
            self.pos = m.end()
        return m

    @property
    def rest(self) -> str:
        return self.text[self.pos:].strip()

    def fail(self, problem: str, fix: str) -> RegimenError:
        return RegimenError("regimen", f"{problem} in {self.whole!r}", fix)


def _hours(value: str, unit: str) -> float:
    try:
        return float(value) * time_unit_factor(unit)
    except UnitError as exc:
        raise RegimenError("regimen", exc.problem, exc.fix) from exc


def _parse_phase(text: str, whole: str, previous: _Phase | None) -> _Phase:
    r = _Reader(text, whole)
    m = r.match(_NUM + r"\s*" + _AMOUNT_UNIT)
    if not m:
        raise r.fail(f"expected an amount with a unit at {r.rest!r}",
                     "start each phase with an amount, e.g. '0.5 mg/kg' or '84 mg'")
    factor, kind = amount_unit_factor(m.group(2) + (m.group(3) or ""))
    amount = float(m.group(1)) * factor
    per_kg = kind == "per_kg"

    compound = None
    m = r.match(r"(racemic\s+ketamine|racemic|ketamine|esketamine|s-ketamine|arketamine|"
                r"r-ketamine)")
    if m:
        word = m.group(1).lower()
        compound = {"esketamine": "esketamine", "s-ketamine": "esketamine",
                    "arketamine": "arketamine", "r-ketamine": "arketamine"}.get(word, "racemic")
    elif previous is not None:
        compound = previous.dose.compound
    route: Route | None = None
    for pattern, candidate in _ROUTE_PATTERNS:
        if r.match(pattern):
            route = candidate
            break
    route_given = route is not None
    if route is None:
        if previous is None:
            raise r.fail("no route given", "name the route, e.g. 'IV', 'intranasal', 'oral'")
        route = previous.dose.route

    duration = rate = None
    m = r.match(r"over\s+" + _NUM + r"\s*" + _TIME_UNIT)
    if m:
        duration = _hours(m.group(1), m.group(2))
    else:
        m = r.match(r"at\s+" + _NUM + r"\s*" + _AMOUNT_UNIT + r"\s*/\s*" + _TIME_UNIT)
        if m:
            f2, kind2 = amount_unit_factor(m.group(2) + (m.group(3) or ""))
            if (kind2 == "per_kg") != per_kg:
                raise r.fail("the infusion rate and the dose use different units",
                             "give both per kg or both as absolute amounts")
            rate = float(m.group(1)) * f2 / _hours("1", m.group(4))
    if route is Route.IV_INFUSION and duration is None and rate is None:
        route = Route.IV_BOLUS
    if route is Route.IV_BOLUS and (duration is not None or rate is not None):
        route = Route.IV_INFUSION
    if (duration is not None or rate is not None) and route is not Route.IV_INFUSION:
        raise r.fail(f"a {route.word} dose cannot run 'over' a time",
                     "only IV doses are infusions; drop 'over …' or use IV")

    start = None
    m = r.match(r"on\s+day\s+" + _NUM)
    if m:
        day = float(m.group(1))
        if day < 1 or day != int(day):
            raise r.fail(f"day {m.group(1)} is not a whole day number >= 1",
                         "count days from 1 (day 1 is time 0)")
        start = (day - 1) * 24.0
    else:
        m = r.match(r"at\s+" + _NUM + r"\s*" + _TIME_UNIT)
        if m:
            start = _hours(m.group(1), m.group(2))

    every: float | None = None
    once = False
    if r.match(r"once(\s+only)?(?!\s+(daily|weekly|a))"):
        once = True
    elif m := r.match(r"(once|twice|three\s+times|thrice|four\s+times|five\s+times|"
                      r"(\d+)\s+times)\s+(weekly|a\s+week|per\s+week)"):
        word = re.sub(r"\s+", " ", m.group(1).lower())
        n = int(m.group(2)) if m.group(2) else _PER_WEEK_WORDS[word]
        every = 168.0 / n
    elif m := r.match(r"(once|twice|three\s+times|four\s+times)\s+(daily|a\s+day|per\s+day)"):
        every = 24.0 / _PER_DAY_WORDS[re.sub(r"\s+", " ", m.group(1).lower())]
    elif r.match(r"daily"):
        every = 24.0
    elif r.match(r"weekly"):
        every = 168.0
    elif r.match(r"every\s+other\s+day"):
        every = 48.0
    elif m := r.match(r"every\s+" + _NUM + r"\s*" + _TIME_UNIT):
        every = _hours(m.group(1), m.group(2))
    elif m := r.match(r"every\s+" + _TIME_UNIT):
        every = _hours("1", m.group(1))
    elif m := r.match(r"q\s*" + _NUM + r"\s*" + _TIME_UNIT):
        every = _hours(m.group(1), m.group(2))
    elif m := r.match(r"(qd|od|bid|tid|qid|qw|qod|biw|tiw)"):
        every = _NAMED[m.group(1).lower()]
    if every is not None and not every > 0:
        raise r.fail("the dosing interval is 0", "give a positive interval")

    count: int | None = None
    if m := r.match(r"(?:x|×)\s*(\d+)(\s*doses?)?"):
        count = int(m.group(1))
    elif m := r.match(r"for\s+" + _NUM + r"\s*(doses?|days?|weeks?|wks?|hours?|h|d|w)"):
        number = float(m.group(1))
        unit = m.group(2).lower()
        if unit.startswith("dose"):
            if number != int(number):
                raise r.fail(f"{m.group(1)} doses is not a whole number", "count whole doses")
            count = int(number)
        else:
            if every is None:
                raise r.fail(f"'for {m.group(1)} {unit}' without a frequency",
                             "say how often, e.g. 'twice weekly for 4 weeks'")
            span = _hours(m.group(1), unit)
            exact = span / every
            count = round(exact)
            if abs(exact - count) > 1e-6 or count < 1:
                raise r.fail(f"{m.group(1)} {unit} is not a whole number of "
                             f"{every:g}-hour intervals", "give the number of doses with 'x N'")
    elif m := r.match(r"until\s+day\s+" + _NUM):
        if every is None:
            raise r.fail("'until day' without a frequency", "say how often, e.g. 'daily'")
        end = (float(m.group(1)) - 1) * 24.0
        count = math.floor(((end - (start or 0.0)) / every) + 1e-9) + 1
        if count < 1:
            raise r.fail("the end day is before the start", "give a later end day")

    if r.rest:
        raise r.fail(f"cannot read {r.rest!r}",
                     "see the regimen language: '<amount> <unit> <route> [over <time>] "
                     "[on day N] [daily|weekly|every N h …] [for N weeks|x N]'")
    if every is not None and count is None:
        raise r.fail("a repeated dose without a count or duration",
                     "add 'for N weeks', 'for N days', 'x N' or 'until day N'")
    if count is not None and every is None:
        raise r.fail("a count without a frequency", "say how often, e.g. 'q24h x 14'")
    if once and every is not None:
        raise r.fail("'once' and a repeating schedule together", "use one of them")
    if count is not None and count < 1:
        raise r.fail("a count of 0 doses", "give at least one dose")
    additional = (count - 1) if count is not None else 0
    dose = Dose(amount, route, time=start or 0.0, per_kg=per_kg, duration=duration, rate=rate,
                every=every if additional > 0 else None, additional=additional,
                compound=compound)
    return _Phase(dose, explicit_start=start is not None, route_given=route_given)


def parse_doses(text: str) -> tuple[Dose, ...]:
    """The doses regimen text describes, in time order; ambiguous text raises
    :class:`~ketasim.errors.RegimenError`."""
    if not isinstance(text, str) or not text.strip():
        raise RegimenError("regimen", "is empty", "write e.g. '0.5 mg/kg IV over 40 min'")
    norm = " ".join(text.replace("μ", "µ").split())
    parts = re.split(r"\s*(?:,\s*)?\bthen\b\s*", norm, flags=re.IGNORECASE)
    if any(not p for p in parts):
        raise RegimenError("regimen", f"an empty phase around 'then' in {text!r}",
                           "put a dose on both sides of 'then'")
    doses: tuple[Dose, ...] = ()
    previous: _Phase | None = None
    for part in parts:
        phase = _parse_phase(part, text, previous)
        piece = (phase.dose,)
        if previous is None or phase.explicit_start:
            doses = combine_doses(doses, piece)
        else:
            doses = then_doses(doses, piece)
        previous = phase
    return doses


# ---------------------------------------------------------------------- printing
def _g(x: float) -> str:
    s = f"{x:.10g}"
    return s


def _format_duration(h: float) -> str:
    minutes = h * 60.0
    if abs(minutes - round(minutes)) < 1e-9 and round(minutes) < 120:
        return f"{round(minutes)} min"
    return f"{_g(h)} h"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _format_schedule(every: float, count: int) -> str:
    words = {168.0: "weekly", 84.0: "twice weekly", 56.0: "three times weekly",
             24.0: "daily", 12.0: "twice daily", 48.0: "every other day"}
    per_week = 168.0 / every
    if every in words:
        sched = words[every]
    elif abs(per_week - round(per_week)) < 1e-12 and 4 <= round(per_week) <= 7:
        sched = f"{round(per_week)} times weekly"
    elif every % 24.0 == 0:
        sched = f"every {_g(every / 24.0)} days"
    else:
        sched = f"q{_g(every)}h"
    span = count * every
    if every in (24.0, 12.0, 48.0) and abs(span / 24.0 - round(span / 24.0)) < 1e-9:
        return f"{sched} for {_plural(round(span / 24.0), 'day')}"
    if abs(span / 168.0 - round(span / 168.0)) < 1e-9 and any(
            abs(every - 168.0 / k) < 1e-12 for k in range(1, 8)):
        return f"{sched} for {_plural(round(span / 168.0), 'week')}"
    return f"{sched} x {count}"


def _format_start(t: float) -> str:
    if abs(t / 24.0 - round(t / 24.0)) < 1e-12:
        return f"on day {round(t / 24.0) + 1}"
    minutes = _g(t * 60.0)
    if t < 24.0 and _hours(minutes, "min") == t:  # within a day, in minutes when exact
        return f"at {minutes} min"
    return f"at {_g(t)} h"


def format_doses(given: Sequence[Dose]) -> str:
    """Doses in the regimen language; :func:`parse_doses` reads the text back to equal doses."""
    doses = sorted(given, key=lambda d: d.time)
    if not doses:
        raise RegimenError("regimen", "has no doses", "add at least one dose")
    phrases = []
    built: tuple[Dose, ...] = ()
    prev: Dose | None = None
    for i, d in enumerate(doses):
        unit = "mg/kg" if d.per_kg else "mg"
        text = f"{_g(d.amount)} {unit}"
        if d.compound is not None and (prev is None or prev.compound != d.compound):
            text += " ketamine" if d.compound == "racemic" else f" {d.compound}"
        route_word = "IV" if d.route in (Route.IV_INFUSION, Route.IV_BOLUS) and \
            (d.duration is not None or d.rate is not None) else d.route.word
        if prev is None or prev.route is not d.route or d.route in (
                Route.IV_BOLUS, Route.IV_INFUSION):
            text += f" {route_word}"
        if d.duration is not None:
            text += f" over {_format_duration(d.duration)}"
        elif d.rate is not None:
            text += f" at {_g(d.rate)} {unit}/h"
        if i == 0:
            implied = 0.0
        else:
            try:
                # where 'then' would start this dose: the same dose at time 0, placed
                implied = then_doses(built, (replace(d, time=0.0),))[-1].time
            except RegimenError:
                implied = math.nan
        single_in_multi = d.additional == 0 and len(doses) > 1
        # no implied start (NaN: 'then' cannot place it) means the start must be printed
        if not abs(d.time - implied) <= 1e-9 or (single_in_multi and i == 0):
            text += f" {_format_start(d.time)}"
        if d.additional > 0:
            assert d.every is not None
            text += f" {_format_schedule(d.every, d.additional + 1)}"
        phrases.append(text)
        built = combine_doses(built, (d,))
        prev = d
    return " then ".join(phrases)


__all__ = ["format_doses", "parse_doses"]
