"""The clinic's records as inputs of the session forecast (:mod:`ketasim.pd.session_forecast`).

Pure functions, no I/O: the web layer reads the rows and passes plain values in.

- :func:`session_regimen` writes the doses recorded in one session (each a dict as the dose
  step stores it: ``dose_mg``, ``amount``, ``unit``, ``route``, ``duration_min``) as regimen
  text the library reads, the first dose at time 0 and later ones ``at N min``; a dose it
  cannot write raises :class:`ForecastUnavailable`.
- :func:`history` turns the patient's earlier sessions (:class:`PastSession`) into
  :class:`~ketasim.pd.session_forecast.AcuteObservation` readings (CADSS, SBP, DBP at their
  time after that session's first dose, BP rises from its pre-dose check), each with its
  session's number (1 for the patient's first dosed session).
- :func:`outside_band` compares one reading with a forecast band, as the page shows it.

The age comes from the patient's year of birth on the clinic record (the web layer reads it);
when it is not recorded, forecasts use :data:`ASSUMED_AGE` (the library's default adult) and
say so.

>>> from datetime import UTC, datetime
>>> t0 = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
>>> session_regimen("racemic", [(t0, {"dose_mg": 35.0, "amount": 0.5, "unit": "mg/kg",
...                                   "route": "iv_infusion", "duration_min": 40.0})])
'0.5 mg/kg ketamine IV over 40 min'
>>> session_regimen("esketamine", [(t0, {"dose_mg": 84.0, "route": "intranasal"})])
'84 mg esketamine intranasal'
>>> outside_band(172, (118.0, 137.0, 158.2))
('above', 158)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ketasim.dosing.route import Route
from ketasim.errors import KetasimError
from ketasim.pd.session_forecast import HORIZON_H, AcuteObservation

ASSUMED_AGE = 45.0  # years, when the record has no year of birth (the library's default adult)
TYPICAL_BASELINE = (125.0, 78.0, 75.0)  # SBP, DBP, HR when none was ever recorded
COMPOUND_WORDS = {"racemic": "ketamine", "esketamine": "esketamine"}


class ForecastUnavailable(KetasimError):
    """The recorded dose cannot be written as a regimen the forecast reads."""


def _g(x: float) -> str:
    return f"{x:.6g}"


def _number(data: Mapping[str, Any], key: str) -> float | None:
    v = data.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    v = float(v)
    return v if math.isfinite(v) and v > 0 else None


def dose_phrase(compound: str, data: Mapping[str, Any]) -> str:
    """One recorded dose as a phrase of the regimen language (no start time).

    >>> dose_phrase("racemic", {"dose_mg": 35.0, "route": "im"})
    '35 mg ketamine IM'
    """
    word = COMPOUND_WORDS.get(compound)
    if word is None:
        raise ForecastUnavailable("compound", f"{compound!r} has no forecast",
                                  "forecasts cover racemic ketamine and esketamine")
    raw = data.get("route") or ("intranasal" if compound == "esketamine" else "iv_infusion")
    try:
        route = Route.parse(str(raw))
    except KetasimError:
        raise ForecastUnavailable("route", f"{str(raw)[:30]!r} is not a route the model knows",
                                  "record the route from the list") from None
    per_kg = _number(data, "amount") if data.get("unit") == "mg/kg" else None
    mg = _number(data, "dose_mg")
    if per_kg is not None:
        amount = f"{_g(per_kg)} mg/kg"
    elif mg is not None:
        amount = f"{_g(mg)} mg"
    else:
        raise ForecastUnavailable("dose", "no dose in mg was recorded",
                                  "record the dose in mg, mg/kg or mL with its concentration")
    if route is Route.IV_INFUSION:
        minutes = _number(data, "duration_min")
        if minutes is None:
            raise ForecastUnavailable("infusion duration", "was not recorded",
                                      "record how long the infusion ran")
        return f"{amount} {word} IV over {_g(minutes)} min"
    return f"{amount} {word} {route.word}"


def session_regimen(compound: str, doses: Sequence[tuple[datetime, Mapping[str, Any]]]) -> str:
    """The session's doses as regimen text (the first at time 0, later ones ``at N min``)."""
    if not doses:
        raise ForecastUnavailable("dose", "none recorded", "record the dose first")
    ordered = sorted(doses, key=lambda d: d[0])
    t0 = ordered[0][0]
    phrases = [dose_phrase(compound, ordered[0][1])]
    for at, data in ordered[1:]:
        minutes = round((at - t0).total_seconds() / 60.0, 1)
        phrases.append(f"{dose_phrase(compound, data)} at {_g(minutes)} min")
    return " then ".join(phrases)


@dataclass(frozen=True)
class PastSession:
    """An earlier completed session: its number (1 for the patient's first dosed session),
    regimen text, first dose, pre-dose BP and readings ``(time, sbp, dbp, cadss)``."""

    number: int
    regimen: str
    first_dose: datetime
    predose_sbp: float | None
    predose_dbp: float | None
    readings: Sequence[tuple[datetime, float | None, float | None, float | None]] = \
        field(default_factory=tuple)


def history(sessions: Sequence[PastSession]) -> tuple[list[AcuteObservation], int]:
    """The earlier sessions' readings as observations for the forecast, and the number of
    readings left out (outside the forecast's 0-4 h window or its value ranges).

    >>> from datetime import UTC, datetime, timedelta
    >>> t = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    >>> s = PastSession(1, "84 mg esketamine intranasal", t, 130.0, 80.0,
    ...                 [(t + timedelta(minutes=40), 150.0, 90.0, 12.0),
    ...                  (t + timedelta(hours=5), 128.0, 80.0, None)])
    >>> obs, skipped = history([s])
    >>> [(o.session, round(o.t_h * 60), o.cadss, o.sbp, o.dbp) for o in obs], skipped
    ([(1, 40, 12.0, None, None), (1, 40, None, 150.0, None), (1, 40, None, None, 90.0)], 1)
    """
    out: list[AcuteObservation] = []
    skipped = 0
    for s in sessions:
        number = s.number
        for at, sbp, dbp, cadss in s.readings:
            t_h = (at - s.first_dose).total_seconds() / 3600.0
            if not 0.0 < t_h <= HORIZON_H:
                skipped += 1
                continue
            kept = False
            for values in ({"cadss": cadss},
                           {"sbp": sbp, "baseline_sbp": s.predose_sbp} if sbp is not None
                           and s.predose_sbp is not None else {},
                           {"dbp": dbp, "baseline_dbp": s.predose_dbp} if dbp is not None
                           and s.predose_dbp is not None else {}):
                if not values or all(v is None for v in values.values()):
                    continue
                try:
                    out.append(AcuteObservation(number, s.regimen, t_h, **values))
                    kept = True
                except KetasimError:
                    pass
            skipped += 0 if kept else 1
    return out, skipped


def outside_band(value: float, band: tuple[float, float, float], *, decimals: int = 0
                 ) -> tuple[str, float] | None:
    """``('above', p95)`` or ``('below', p5)`` when ``value`` lies outside the band as
    displayed (bounds rounded to ``decimals``), else None."""
    lo, hi = round(band[0], decimals), round(band[2], decimals)
    if decimals == 0:
        lo, hi = int(lo), int(hi)
    if value > hi:
        return "above", hi
    if value < lo:
        return "below", lo
    return None


__all__ = ["ASSUMED_AGE", "COMPOUND_WORDS", "TYPICAL_BASELINE", "ForecastUnavailable",
           "PastSession", "dose_phrase", "history", "outside_band", "session_regimen"]
