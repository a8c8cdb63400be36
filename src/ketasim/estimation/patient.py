"""One patient's record: doses, symptom ratings, session observations and drug levels.

A patient file is an NM-TRAN-style table, one record per row (CSV, comma or whitespace
separated, ``#`` comment lines allowed). Column names are case-insensitive:

=========  =================================================================================
TIME       hours, any origin (times are taken relative to the first dose)
EVID       1 a dose, 0 an observation (default: 1 when AMT > 0, else 0)
AMT        dose in mg (dose rows)
DUR/RATE   infusion duration (h) or rate (mg/h); blank or 0: not an infusion
ROUTE      iv, im, intranasal, sc, oral, sublingual, buccal, rectal (dose rows)
CMPD       racemic (default), esketamine or arketamine (dose rows, optional)
DVID       what an observation is: a rating instrument (``phq9``, ``madrs``, ``qids_sr16``,
           ``hamd17``, ``pcl5`` …), a session reading (``cadss``, ``sbp``, ``dbp``) or a drug
           level (an analyte of the PK model: ``ketamine``, ``norketamine``, ``esketamine`` …)
DV         the observed value: a rating's total; CADSS total; mmHg; a level in ng/mL
WT, AGE    weight (kg) and age (years); the first non-blank value is used
=========  =================================================================================

Ratings at or before the first dose are the baseline. A session reading belongs to the dose
it follows (within 4 h); a blood pressure at the dose's time is that session's pre-dose
baseline. Every refusal names the row (1 = the first data row) and the column.

>>> import io
>>> text = "TIME,EVID,AMT,DUR,ROUTE,DVID,DV,WT\\n0,0,,,,phq9,20,70\\n0,1,35,0.667,iv,,,\\n"
>>> p = read_patient(io.StringIO(text))
>>> p.weight_kg, len(p.ratings), p.regimen.n_administrations
(70.0, 1, 1)
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from ketasim.dosing.regimen import Dose, Regimen
from ketasim.dosing.route import Route
from ketasim.errors import KetasimError
from ketasim.scales import INSTRUMENTS, get_instrument

SESSION_KINDS = ("cadss", "sbp", "dbp")
SESSION_WINDOW_H = 4.0
LEVEL_KINDS = ("ketamine", "s_ketamine", "r_ketamine", "norketamine", "s_norketamine",
               "r_norketamine", "hnk", "esketamine", "noresketamine")


class PatientDataError(KetasimError):
    """A patient record that cannot be used as it is (names the row and the column)."""


@dataclass(frozen=True)
class Rating:
    """A symptom rating: ``time_h`` from the first dose, instrument id, whole-number total."""

    time_h: float
    instrument: str
    value: float
    row: int


@dataclass(frozen=True)
class Reading:
    """A session reading (CADSS, SBP or DBP) ``time_h`` from the first dose."""

    time_h: float
    kind: str
    value: float
    row: int


@dataclass(frozen=True)
class Level:
    """A drug level (ng/mL) of ``analyte`` ``time_h`` from the first dose."""

    time_h: float
    analyte: str
    value: float
    row: int


@dataclass(frozen=True)
class PatientData:
    """What is known of one patient. Times are hours from the first dose (``origin_h`` in
    the file's own clock)."""

    weight_kg: float
    age: float | None
    regimen: Regimen
    ratings: tuple[Rating, ...] = ()
    readings: tuple[Reading, ...] = ()
    levels: tuple[Level, ...] = ()
    origin_h: float = 0.0
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def dose_times(self) -> list[float]:
        """Hours of each administration from the first."""
        return [t for t, _, _ in self.regimen.administrations(self.weight_kg)]

    @property
    def last_time_h(self) -> float:
        """The latest dose or observation (h from the first dose)."""
        times = [*self.dose_times, *(r.time_h for r in self.ratings),
                 *(r.time_h for r in self.readings), *(lv.time_h for lv in self.levels)]
        return max(times)

    def ratings_on(self, instrument: str) -> list[Rating]:
        """The ratings on one instrument, in time order."""
        return sorted((r for r in self.ratings if r.instrument == instrument),
                      key=lambda r: r.time_h)

    def baseline(self, instrument: str) -> float | None:
        """The last rating on ``instrument`` at or before the first dose, if any."""
        before = [r for r in self.ratings_on(instrument) if r.time_h <= 0.0]
        return before[-1].value if before else None

    def with_ratings(self, ratings: Sequence[Rating]) -> PatientData:
        """The same patient with other ratings (what-if and leave-last-out checks)."""
        return PatientData(self.weight_kg, self.age, self.regimen, tuple(ratings),
                           self.readings, self.levels, self.origin_h, self.source, self.notes)


def _fail(row: int | None, column: str, problem: str, fix: str) -> PatientDataError:
    where = f"row {row}: {column}" if row is not None else column
    return PatientDataError(where, problem, fix)


def _number(value: Any, row: int, column: str) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if text in ("", ".", "NA", "na"):
        return None
    try:
        x = float(text)
    except ValueError:
        raise _fail(row, column, f"{text!r} is not a number", f"give {column} as a number"
                    ) from None
    if not math.isfinite(x):
        raise _fail(row, column, f"{text!r} is not finite", f"give {column} as a number")
    return x


def _table(source: str | Path | IO[str]) -> tuple[pd.DataFrame, str]:
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise _fail(None, "file", f"{path} does not exist", "give the patient file's path")
        text, name = path.read_text(encoding="utf-8"), str(path)
    else:
        text, name = source.read(), "<patient>"
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise _fail(None, "file", "has no rows", "give a header and at least one record")
    sep = "," if "," in lines[0] else r"\s+"
    try:
        df = pd.read_csv(io.StringIO("\n".join(lines)), sep=sep, dtype=str,
                         keep_default_na=False, engine="python")
    except (pd.errors.ParserError, ValueError) as exc:
        raise _fail(None, "file", f"cannot be read as a table ({exc})",
                    "write one record per row with the same columns") from None
    df.columns = [str(c).strip().upper() for c in df.columns]
    return df, name


def read_patient(source: str | Path | IO[str], *, weight_kg: float | None = None,
                 age: float | None = None) -> PatientData:
    """Read a patient file (module docstring). ``weight_kg``/``age`` fill in what the file
    lacks; a file value takes precedence only when the argument is not given."""
    df, name = _table(source)
    for col in ("TIME", "DVID", "DV"):
        if col not in df.columns:
            raise _fail(None, col, "column is missing",
                        "give TIME (h), DVID (what was observed) and DV (its value)")
    ids = {str(x).strip() for x in df["ID"]} - {""} if "ID" in df.columns else set()
    if len(ids) > 1:
        raise _fail(None, "ID", "the file holds more than one patient",
                    "give one patient per file")
    doses: list[tuple[float, int, Dose]] = []
    obs: list[tuple[float, int, str, float]] = []
    w_file = a_file = None
    records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()}
                                     for r in df.to_dict("records")]
    for i, rec in enumerate(records, start=1):
        t = _number(rec.get("TIME"), i, "TIME")
        if t is None:
            raise _fail(i, "TIME", "is blank", "give every record a time in hours")
        w = _number(rec.get("WT"), i, "WT")
        a = _number(rec.get("AGE"), i, "AGE")
        w_file = w_file if w_file is not None else w
        a_file = a_file if a_file is not None else a
        amt = _number(rec.get("AMT"), i, "AMT")
        evid_v = _number(rec.get("EVID"), i, "EVID")
        evid = int(evid_v) if evid_v is not None else (1 if amt else 0)
        if evid not in (0, 1):
            raise _fail(i, "EVID", f"is {evid}", "use 1 for a dose and 0 for an observation")
        if evid == 1:
            doses.append((t, i, _dose(rec, i, amt)))
            continue
        kind = str(rec.get("DVID", "")).strip().lower()
        dv = _number(rec.get("DV"), i, "DV")
        if not kind:
            raise _fail(i, "DVID", "is blank on an observation",
                        "name what was observed (phq9, madrs, cadss, sbp, ketamine …)")
        if dv is None:
            raise _fail(i, "DV", f"is blank on a {kind} observation", "give the value")
        obs.append((t, i, kind, dv))
    if not doses:
        raise _fail(None, "AMT", "the file has no doses",
                    "give the ketamine doses (EVID 1 rows with AMT in mg)")
    weight = weight_kg if weight_kg is not None else w_file
    if weight is None:
        raise _fail(None, "WT", "the patient's weight is missing",
                    "give a WT column (kg) or --weight")
    if not 20.0 <= weight <= 300.0:
        raise _fail(None, "WT", f"{weight:g} kg is outside 20-300 kg",
                    "give the weight in kilograms")
    age_v = age if age is not None else a_file
    if age_v is not None and not 12.0 <= age_v <= 110.0:
        raise _fail(None, "AGE", f"{age_v:g} years is outside 12-110", "give the age in years")
    doses.sort(key=lambda x: x[0])
    origin = doses[0][0]
    regimen = Regimen(tuple(Dose(d.amount, d.route, time=t - origin, duration=d.duration,
                                 rate=d.rate, compound=d.compound) for t, _, d in doses))
    dose_times = np.array([t - origin for t, _, _ in doses])
    ratings, readings, levels = [], [], []
    for t, row, kind, dv in obs:
        rel = t - origin
        if kind in SESSION_KINDS:
            before = dose_times[dose_times <= rel + 1e-9]
            if before.size == 0 or rel - before[-1] > SESSION_WINDOW_H:
                when = "before the first dose" if before.size == 0 else \
                    "more than 4 h after a dose"
                raise _fail(row, "TIME", f"a {kind} reading {when}",
                            "session readings belong to a dose: give them within 4 h after it")
            _check_reading(kind, dv, row)
            readings.append(Reading(rel, kind, dv, row))
        elif kind in LEVEL_KINDS:
            if rel <= 0.0:
                raise _fail(row, "TIME", "a drug level before the first dose",
                            "give levels measured after a dose (or drop the row)")
            if dv < 0:
                raise _fail(row, "DV", f"level {dv:g} ng/mL is negative", "give ng/mL ≥ 0")
            levels.append(Level(rel, kind, dv, row))
        elif kind in INSTRUMENTS:
            ratings.append(Rating(rel, kind, _check_rating(kind, dv, row), row))
        else:
            raise _fail(row, "DVID", f"{kind!r} is not a known instrument, reading or level",
                        "use an instrument id (phq9, madrs, qids_sr16, hamd17, pcl5 …), "
                        "cadss/sbp/dbp, or an analyte (ketamine, norketamine, esketamine …)")
    return PatientData(float(weight), age_v, regimen, tuple(ratings), tuple(readings),
                       tuple(levels), origin, name)


def _dose(rec: dict[str, Any], row: int, amt: float | None) -> Dose:
    if amt is None or amt <= 0:
        raise _fail(row, "AMT", f"is {amt!r} on a dose", "give the dose in mg (> 0)")
    route_text = str(rec.get("ROUTE", "")).strip()
    if not route_text:
        raise _fail(row, "ROUTE", "is blank on a dose", "give iv, im, intranasal, sc, oral …")
    try:
        route = Route.parse(route_text)
    except KetasimError:
        raise _fail(row, "ROUTE", f"{route_text!r} is not a route",
                    "use iv, im, intranasal, sc, oral, sublingual, buccal or rectal") from None
    dur = _number(rec.get("DUR"), row, "DUR")
    rate = _number(rec.get("RATE"), row, "RATE")
    dur = dur if dur else None
    rate = rate if rate else None
    if dur is not None and rate is not None:
        raise _fail(row, "DUR", "given together with RATE", "give one of them")
    if (dur is not None or rate is not None) and route is Route.IV_BOLUS:
        route = Route.IV_INFUSION
    if route is Route.IV_INFUSION and dur is None and rate is None:
        route = Route.IV_BOLUS
    cmpd = str(rec.get("CMPD", "") or "").strip().lower() or None
    if cmpd in ("ketamine",):
        cmpd = "racemic"
    try:
        return Dose(float(amt), route, duration=dur, rate=rate, compound=cmpd)
    except KetasimError as exc:
        raise _fail(row, exc.field.upper(), exc.problem, exc.fix) from None


def _check_rating(kind: str, dv: float, row: int) -> float:
    inst = get_instrument(kind)
    lo, hi = inst.total_range
    if dv != round(dv) or not lo <= dv <= hi:
        raise _fail(row, "DV", f"{inst.id} total {dv:g} is not a whole number in {lo}-{hi}",
                    f"give the {inst.id} total score")
    return float(dv)


def _check_reading(kind: str, dv: float, row: int) -> None:
    ranges = {"cadss": (0.0, 92.0, "a CADSS total"), "sbp": (60.0, 260.0, "mmHg"),
              "dbp": (30.0, 160.0, "mmHg")}
    lo, hi, what = ranges[kind]
    if not lo <= dv <= hi:
        raise _fail(row, "DV", f"{kind} {dv:g} is outside {lo:g}-{hi:g}", f"give {what}")


__all__ = ["LEVEL_KINDS", "SESSION_KINDS", "Level", "PatientData", "PatientDataError",
           "Rating", "Reading", "read_patient"]
