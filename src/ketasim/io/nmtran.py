"""Read and write NONMEM-style CSV datasets (NM-TRAN data items).

This is ketasim's own CSV format (the header names the columns; ``DUR`` is read, as
:func:`write_nonmem_csv` writes it). Files written for NONMEM, whose columns are named by
``$INPUT`` and filtered by ``$DATA IGNORE/ACCEPT``, are read by
:func:`ketasim.io.read_nonmem` instead. Here column names are case-insensitive, ``.`` is 0 for
data items, records whose ``C`` column holds anything other than ``.`` (or that start with
``#`` or ``@``) are comments, comment lines before the header are skipped, items may be
separated by commas or blanks, and ``MDV``/``DV`` are kept for the caller. Writing puts the standard
items first (``ID TIME EVID AMT CMT RATE DUR II ADDL SS MDV``), then covariates, then ``DV``.

>>> import io, pandas as pd
>>> text = "ID,TIME,EVID,AMT,CMT,WT\\n1,0,1,100,1,70\\n1,1,0,.,2,70\\n"
>>> table, extra = read_nonmem_csv(io.StringIO(text), covariates=["WT"])
>>> table.n_records, list(table.covariates)
(2, ['WT'])
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from ketasim.dosing.events import EventTable
from ketasim.errors import DataError, EventError

_STANDARD = ("ID", "TIME", "EVID", "AMT", "CMT", "RATE", "DUR", "II", "ADDL", "SS")


def read_nonmem_csv(source: str | Path | IO[str], *, covariates: Sequence[str] = (),
                    lowercase_covariates: bool = False) -> tuple[EventTable, pd.DataFrame]:
    """Read a dataset; return the event table and the remaining columns (DV, MDV, …)."""
    try:
        if hasattr(source, "read"):
            text = source.read()
        else:
            text = Path(source).read_text(encoding="utf-8-sig")
        lines = str(text).splitlines()
        # comment lines (#, @, a NONMEM "TABLE NO." line) and blank lines before the header
        start = 0
        while start < len(lines) and (not lines[start].strip()
                                      or lines[start].lstrip().startswith(("#", "@"))
                                      or lines[start].startswith("TABLE NO.")):
            start += 1
        header = lines[start] if start < len(lines) else ""
        body = io.StringIO("\n".join(lines[start:]) + "\n")
        if "," in header or not header.strip():
            raw = pd.read_csv(body, dtype=str, keep_default_na=False, skipinitialspace=True)
        else:  # blank- or tab-separated, as NM-TRAN also reads
            raw = pd.read_csv(body, sep=r"\s+", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError("dataset", f"cannot read the file: {exc}",
                        "give a comma-, tab- or blank-separated file with a header row") from exc
    upper = {c.strip().upper(): c for c in raw.columns}
    keep = np.ones(len(raw), dtype=bool)
    if "C" in upper:
        keep &= raw[upper["C"]].str.strip().isin(("", "."))
    first = raw[raw.columns[0]].astype(str).str.strip()
    keep &= ~first.str.startswith(("#", "@"))
    raw = raw.loc[keep].reset_index(drop=True)
    if "TIME" not in upper:
        raise DataError("TIME", "no TIME column in the header "
                        f"({', '.join(map(str, raw.columns))})",
                        "name the time column TIME, or read the file as NONMEM does, by "
                        "position: ketasim.io.read_nonmem(path, input='ID TIME ...', ignore='@')")

    def numeric(col: str) -> np.ndarray:
        values = raw[col].str.strip().replace({".": "0", "": "0"})
        try:
            return values.astype(float).to_numpy()
        except ValueError:
            bad = values[pd.to_numeric(values, errors="coerce").isna()].iloc[0]
            row = int(values[pd.to_numeric(values, errors="coerce").isna()].index[0]) + 1
            raise DataError(col.strip().upper(), f"record {row} has {bad!r}, not a number",
                            "use numbers, or '.' for an empty data item") from None

    data: dict[str, Any] = {}
    for name in _STANDARD:
        if name in upper:
            data[name] = numeric(upper[name])
    if "EVID" not in data:
        # NM-TRAN default: records with AMT > 0 are doses, others observations
        amt = data.get("AMT", np.zeros(len(raw)))
        mdv = numeric(upper["MDV"]) if "MDV" in upper else np.zeros(len(raw))
        data["EVID"] = np.where(amt > 0, 1, np.where(mdv > 0, 2, 0))
    frame = pd.DataFrame(data)
    covs = {}
    for c in covariates:
        key = upper.get(c.upper())
        if key is None:
            raise DataError(c, "covariate column is missing", f"add a {c} column")
        covs[c.lower() if lowercase_covariates else c] = numeric(key)
    for k, v in covs.items():
        frame[k] = v
    table = EventTable.from_frame(frame, covariates=list(covs))
    used = set(_STANDARD) | {c.upper() for c in covariates} | {"C"}
    extra = raw[[upper[k] for k in upper if k not in used]].copy()
    return table, extra


def write_nonmem_csv(table: EventTable, target: str | Path | IO[str], *,
                     dv: np.ndarray | None = None) -> None:
    """Write ``table`` as a NONMEM dataset (with MDV, and DV if given)."""
    if np.any(np.isin(table.evid, (1, 4)) & (table.cmt == 0)):
        raise EventError("CMT", "dose records without a compartment number",
                         "resolve routes with ketasim.engine.simulate.resolve_compartments first")
    frame = table.to_frame().drop(columns=["ROUTE"])
    if not np.any(table.dur):
        frame = frame.drop(columns=["DUR"])
    frame.insert(list(frame.columns).index("SS") + 1, "MDV",
                 (~np.isin(table.evid, (0,))).astype(int))
    if dv is not None:
        frame["DV"] = np.where(table.evid == 0, dv, np.nan)
    frame.to_csv(target, index=False, na_rep=".", float_format="%.10g")


__all__ = ["read_nonmem_csv", "write_nonmem_csv"]
