"""The NM-TRAN event table: ``ID TIME EVID AMT CMT RATE DUR II ADDL SS`` plus covariates.

Records keep file order; times must not decrease within a subject. ``CMT`` is the model's
1-based compartment number, or 0 for "the model's dosing compartment for this record's route"
(regimens built from clinical text carry routes, models resolve them).

>>> t = EventTable.from_records([dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=1),
...                              dict(ID=1, TIME=1, EVID=0, CMT=2)])
>>> t.n_records, t.evid.tolist()
(2, [1, 0])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ketasim.errors import EventError

if TYPE_CHECKING:  # pandas is imported where a frame is made (it takes ~0.3 s to import)
    import pandas as pd

FloatArray = np.ndarray

NMTRAN_COLUMNS = ("ID", "TIME", "EVID", "AMT", "CMT", "RATE", "DUR", "II", "ADDL", "SS")
_INT_COLUMNS = ("ID", "EVID", "CMT", "ADDL", "SS")


def _as_array(values: Any, n: int, default: float, dtype: Any) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=dtype)
    arr = np.asarray(values)
    if arr.shape == ():
        arr = np.full(n, arr)
    return arr


@dataclass(frozen=True, eq=False)
class EventTable:
    """Columnar NM-TRAN records for one or more subjects (validated at construction)."""

    id: np.ndarray
    time: np.ndarray
    evid: np.ndarray
    amt: np.ndarray
    cmt: np.ndarray
    rate: np.ndarray
    dur: np.ndarray
    ii: np.ndarray
    addl: np.ndarray
    ss: np.ndarray
    route: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    covariates: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.time)
        cols = {
            "id": (self.id, np.int64), "time": (self.time, np.float64),
            "evid": (self.evid, np.int64), "amt": (self.amt, np.float64),
            "cmt": (self.cmt, np.int64), "rate": (self.rate, np.float64),
            "dur": (self.dur, np.float64), "ii": (self.ii, np.float64),
            "addl": (self.addl, np.int64), "ss": (self.ss, np.int64),
        }
        for name, (values, dtype) in cols.items():
            arr = np.asarray(values)
            if arr.shape != (n,):
                raise EventError(name.upper(), f"has {arr.shape} values for {n} records",
                                 "give one value per record")
            if not np.all(np.isfinite(arr.astype(np.float64))):
                bad = int(np.flatnonzero(~np.isfinite(arr.astype(np.float64)))[0])
                raise EventError(name.upper(), f"record {bad + 1} is not a finite number",
                                 "replace NaN/inf with a number ('.' in CSV means 0)")
            if dtype is np.int64:
                as_float = arr.astype(np.float64)
                if np.any(as_float != np.round(as_float)):
                    bad = int(np.flatnonzero(as_float != np.round(as_float))[0])
                    raise EventError(name.upper(), f"record {bad + 1} has non-integer value "
                                     f"{as_float[bad]}", f"{name.upper()} must be a whole number")
            object.__setattr__(self, name, arr.astype(dtype))
        route = np.asarray(self.route, dtype=object)
        if route.size == 0:
            route = np.full(n, "", dtype=object)
        if route.shape != (n,):
            raise EventError("ROUTE", f"has {route.shape} values for {n} records",
                             "give one route per record, '' for none")
        object.__setattr__(self, "route", route)
        covs = {}
        for name, values in dict(self.covariates).items():
            arr = np.asarray(values, dtype=np.float64)
            if arr.shape != (n,):
                raise EventError(name, f"covariate has {arr.shape} values for {n} records",
                                 "give one covariate value per record")
            if not np.all(np.isfinite(arr)):
                raise EventError(name, "covariate has a missing or non-finite value",
                                 "fill every record's covariate (NONMEM needs a value per record)")
            covs[name] = arr
        object.__setattr__(self, "covariates", covs)
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        def bad(mask: np.ndarray, col: str, problem: str, fix: str) -> None:
            if np.any(mask):
                i = int(np.flatnonzero(mask)[0])
                raise EventError(col, f"record {i + 1} (ID {self.id[i]}, TIME {self.time[i]:g}) "
                                 f"{problem}", fix)

        bad(self.time < 0, "TIME", "is negative", "times must be >= 0")
        bad(~np.isin(self.evid, (0, 1, 2, 3, 4)), "EVID", "is not 0, 1, 2, 3 or 4",
            "use 0 observation, 1 dose, 2 other, 3 reset, 4 reset and dose")
        bad(~np.isin(self.ss, (0, 1, 2)), "SS", "is not 0, 1 or 2", "use SS 0, 1 or 2")
        dose = np.isin(self.evid, (1, 4))
        bad(dose & (self.amt < 0), "AMT", "is a negative dose", "amounts must be >= 0")
        bad(self.cmt < 0, "CMT", "is negative",
            "CMT is a 1-based compartment number (0: the route's default)")
        bad(dose & (self.rate < 0) & ~np.isin(self.rate, (-1.0, -2.0)), "RATE",
            "is negative but not -1 or -2", "use RATE > 0, 0 (bolus), -1 (modelled rate) or -2 "
            "(modelled duration)")
        bad(self.dur < 0, "DUR", "is negative", "durations must be >= 0")
        bad((self.dur > 0) & (self.dur < 1e-9), "DUR", "is shorter than 1e-9 h",
            "give DUR = 0 for a bolus or a duration of at least 1e-9 h")
        bad(dose & (self.rate > 1e12), "RATE", "is above 1e12 per hour",
            "give a bolus (RATE = 0) instead of an instantaneous infusion")
        bad(dose & (self.dur > 0) & (self.rate != 0), "DUR", "is given together with RATE",
            "give either RATE or DUR for an infusion, not both")
        bad(self.ii < 0, "II", "is negative", "dosing intervals must be >= 0")
        bad(self.addl < 0, "ADDL", "is negative", "ADDL counts additional doses, >= 0")
        bad(dose & (self.addl > 0) & (self.ii <= 0), "II", "is 0 but ADDL > 0",
            "give the interval II between the additional doses")
        ss = dose & (self.ss > 0)
        const_inf = ss & (self.amt == 0) & (self.rate > 0)
        bad(ss & ~const_inf & (self.ii <= 0), "II", "is 0 on a steady-state dose",
            "steady state needs II > 0 (or AMT=0 with RATE>0 for a constant infusion)")
        bad(const_inf & (self.ii != 0), "II", "must be 0 for a steady-state constant infusion",
            "set II=0 with AMT=0 and RATE>0")
        # times non-decreasing within each subject, in file order
        same = self.id[1:] == self.id[:-1]
        dec = np.zeros(len(self.time), dtype=bool)
        dec[1:] = same & (self.time[1:] < self.time[:-1])
        bad(dec, "TIME", "is earlier than the record before it",
            "sort records by time within each subject")
        ids = self.id
        if len(ids) > 1:
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            if len(np.unique(ids[starts])) != len(starts):
                raise EventError("ID", "a subject's records are not contiguous",
                                 "keep each subject's records together, sorted by time")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]],
                     covariates: Sequence[str] = ()) -> EventTable:
        """Build from dicts with NM-TRAN keys (missing keys default to 0, ROUTE to '')."""
        n = len(records)
        def col(key: str) -> list[Any]:
            return [r.get(key, r.get(key.lower(), 0)) for r in records]
        return cls(
            id=np.array(col("ID")) if n else np.zeros(0),
            time=np.array(col("TIME"), dtype=float), evid=np.array(col("EVID")),
            amt=np.array(col("AMT"), dtype=float), cmt=np.array(col("CMT")),
            rate=np.array(col("RATE"), dtype=float), dur=np.array(col("DUR"), dtype=float),
            ii=np.array(col("II"), dtype=float), addl=np.array(col("ADDL")),
            ss=np.array(col("SS")),
            route=np.array([r.get("ROUTE", r.get("route", "")) or "" for r in records],
                           dtype=object),
            covariates={c: np.array([float(r[c]) for r in records]) for c in covariates},
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, covariates: Sequence[str] = ()) -> EventTable:
        """Build from a DataFrame with NM-TRAN column names (case-insensitive)."""
        upper = {c.upper(): c for c in frame.columns}
        n = len(frame)
        def get(name: str, default: float) -> np.ndarray:
            if name in upper:
                return frame[upper[name]].to_numpy()
            return np.full(n, default)
        if "TIME" not in upper:
            raise EventError("TIME", "column is missing", "the dataset needs a TIME column")
        route = frame[upper["ROUTE"]].fillna("").astype(str).to_numpy(dtype=object) \
            if "ROUTE" in upper else np.full(n, "", dtype=object)
        covs = {}
        for c in covariates:
            key = upper.get(c.upper())
            if key is None:
                raise EventError(c, "covariate column is missing",
                                 f"add a {c} column or drop it from the covariates")
            covs[c] = frame[key].to_numpy(dtype=float)
        return cls(id=get("ID", 1), time=get("TIME", 0), evid=get("EVID", 0), amt=get("AMT", 0),
                   cmt=get("CMT", 0), rate=get("RATE", 0), dur=get("DUR", 0), ii=get("II", 0),
                   addl=get("ADDL", 0), ss=get("SS", 0), route=route, covariates=covs)

    # ------------------------------------------------------------------ views
    @property
    def n_records(self) -> int:
        """Number of records."""
        return len(self.time)

    @property
    def subject_ids(self) -> np.ndarray:
        """Subject IDs in file order."""
        if self.n_records == 0:
            return np.zeros(0, dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, self.id[1:] != self.id[:-1]])
        return self.id[starts]

    def take(self, index: np.ndarray) -> EventTable:
        """The records at ``index`` (an integer array or boolean mask), same columns."""
        columns = {f.name: getattr(self, f.name)[index] for f in fields(self)
                   if f.name != "covariates"}
        return replace(self, **columns,
                       covariates={k: v[index] for k, v in self.covariates.items()})

    def subjects(self) -> Iterator[tuple[int, EventTable]]:
        """Yield ``(id, table)`` for each subject, in file order."""
        if self.n_records == 0:
            return
        starts = np.flatnonzero(np.r_[True, self.id[1:] != self.id[:-1]])
        ends = np.r_[starts[1:], self.n_records]
        for s, e in zip(starts, ends, strict=True):
            yield int(self.id[s]), self.take(np.arange(s, e))

    def expand_addl(self) -> EventTable:
        """Each additional dose (ADDL) as an explicit record (same semantics, no ADDL left).

        >>> t = EventTable.from_records([dict(ID=1, EVID=1, AMT=5, CMT=1, II=12, ADDL=2)])
        >>> t.expand_addl().time.tolist()
        [0.0, 12.0, 24.0]
        """
        if not np.any(self.addl > 0):
            return self
        import pandas as pd
        frame = self.to_frame()
        rows = []
        for k, rec in enumerate(frame.to_dict("records")):
            rows.append({**rec, "_o": k, "_s": 0})
            for j in range(1, int(rec["ADDL"]) + 1):
                rows.append({**rec, "TIME": rec["TIME"] + j * rec["II"], "ADDL": 0,
                             "EVID": 1 if rec["EVID"] in (1, 4) else rec["EVID"], "_o": k,
                             "_s": j})
        out = pd.DataFrame(rows)
        out.loc[out["_s"] == 0, "ADDL"] = 0
        out = out.sort_values(["ID", "TIME", "_s", "_o"], kind="stable").drop(
            columns=["_o", "_s"])
        return EventTable.from_frame(out.reset_index(drop=True), covariates=list(self.covariates))

    def with_covariates(self, **covariates: Any) -> EventTable:
        """A copy with covariate columns added or replaced (scalars are broadcast)."""
        covs = dict(self.covariates)
        for k, v in covariates.items():
            covs[k] = _as_array(v, self.n_records, 0.0, float).astype(float)
        return replace(self, covariates=covs)

    def with_observations(self, times: Sequence[float] | np.ndarray, cmt: int = 0) -> EventTable:
        """Add EVID 0 records at ``times`` for every subject (after doses at the same time)."""
        import pandas as pd
        times = np.asarray(times, dtype=float)
        parts = []
        for sid, sub in self.subjects():
            frame = sub.to_frame()
            obs = pd.DataFrame({"ID": sid, "TIME": times, "EVID": 0, "AMT": 0.0, "CMT": cmt,
                                "RATE": 0.0, "DUR": 0.0, "II": 0.0, "ADDL": 0, "SS": 0,
                                "ROUTE": ""})
            for c in self.covariates:
                # carry the last known covariate value forward to new rows
                obs[c] = np.interp(times, sub.time, sub.covariates[c], left=sub.covariates[c][0])
            merged = pd.concat([frame.assign(_o=0), obs.assign(_o=1)], ignore_index=True)
            merged = merged.sort_values(["TIME", "_o"], kind="stable").drop(columns="_o")
            parts.append(merged)
        return EventTable.from_frame(pd.concat(parts, ignore_index=True),
                                     covariates=list(self.covariates))

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with NM-TRAN columns, ROUTE and covariates."""
        import pandas as pd
        data: dict[str, Any] = {
            "ID": self.id, "TIME": self.time, "EVID": self.evid, "AMT": self.amt,
            "CMT": self.cmt, "RATE": self.rate, "DUR": self.dur, "II": self.ii,
            "ADDL": self.addl, "SS": self.ss, "ROUTE": self.route}
        data.update(self.covariates)
        return pd.DataFrame(data)


__all__ = ["NMTRAN_COLUMNS", "EventTable"]
