"""Read a NONMEM dataset exactly as NM-TRAN reads it: ``$INPUT``, ``$DATA IGNORE/ACCEPT``.

NM-TRAN does not look at a header line: it names the data items of every record by position
from ``$INPUT`` (``DV=CONC`` gives a synonym, ``WT=DROP``/``SKIP`` drops an item, extra items
beyond the list are ignored, missing trailing items are null), skips records by the first
character (``IGNORE=#``, the default; ``IGNORE=@``: the first non-blank character is a letter,
``#`` or ``@``; ``IGNORE=C``: ``C`` in column 1), then by ``IGNORE=(list)`` or
``ACCEPT=(list)`` conditions (``.EQ.``/``.NE.``/``==``/``/=``/``=`` compare the text,
``.EQN.``/``.NEN.``/``.GT.``/``.GE.``/``.LT.``/``.LE.``/``>``/``>=``/``<``/``<=`` the number).
Fields are separated by commas, tabs or blanks; ``.`` and empty fields are null (0).

PREDPP then gives a dose without a compartment to the model's *default dose compartment* and an
observation to its *default observation compartment* (ADVAN2: 1 and 2), derives EVID from AMT
and MDV when there is no EVID item, and lets TIME start again after a reset record (EVID 3 or
4). Every refusal is a :class:`~ketasim.errors.DataError` or
:class:`~ketasim.errors.EventError` naming the line, the data item and what NONMEM would do.

>>> import io
>>> text = "ID TIME AMT WGT DV\\n1 0. 25.0 1.4 0\\n1 2.0 0 1.4 17.3\\n"
>>> ds = read_nonmem(io.StringIO(text), "ID TIME AMT WT=DROP DV=CONC", ignore="@",
...                  default_obs_cmt=1)
>>> ds.n_records, ds.events.evid.tolist(), ds.events.cmt.tolist(), list(ds.data.columns)
(2, [1, 0], [1, 1], ['ID', 'TIME', 'AMT', 'DV'])
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from ketasim.dosing.events import EventTable
from ketasim.errors import DataError, EventError, KetasimError

#: NM-TRAN's reserved data item labels (PREDPP and NONMEM); any other label is a user item.
RESERVED = frozenset({
    "ID", "L1", "L2", "DV", "MDV", "MRG_", "RAW_", "RPT_", "TIME", "DATE", "DAT1", "DAT2",
    "DAT3", "EVID", "AMT", "RATE", "SS", "II", "ADDL", "CMT", "PCMT", "CALL", "CONT",
    "XVID1", "XVID2", "XVID3", "XVID4", "XVID5",
})
_EVENT_ITEMS = ("ID", "TIME", "EVID", "AMT", "CMT", "RATE", "II", "ADDL", "SS", "MDV")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SEP = re.compile(r" *[,\t] *| +")
_NUMERIC_OPS = {".EQN.": "==", ".NEN.": "!=", ".GT.": ">", ".GE.": ">=", ".LT.": "<",
                ".LE.": "<=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
_TEXT_OPS = {".EQ.": "==", ".NE.": "!=", "==": "==", "=": "==", "/=": "!="}
_CONDITION = re.compile(
    r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(\.EQN\.|\.NEN\.|\.EQ\.|\.NE\.|\.GT\.|\.GE\.|\.LT\.|\.LE\.|==|/=|>=|<=|=|>|<)?"
    r"\s*(\S.*?)\s*\Z", re.IGNORECASE)


# ----------------------------------------------------------------------------- $INPUT
@dataclass(frozen=True)
class InputItem:
    """One ``$INPUT`` entry: its label, synonym, whether it is dropped, and its position."""

    label: str  # the reserved label if one of the names is reserved, else the name given first
    synonym: str | None = None
    dropped: bool = False
    position: int = 0  # 1-based data item number

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the item can be referred to by (upper case)."""
        return tuple(n.upper() for n in (self.label, self.synonym) if n)


def parse_input(text: str | Sequence[str]) -> tuple[InputItem, ...]:
    """Parse ``$INPUT`` text (``"ID TIME AMT DV=CONC WT=DROP SKIP"``) into items.

    ``;`` comments and a leading ``$INPUT`` are allowed; items are separated by blanks, commas
    or line breaks.

    >>> [(i.label, i.synonym, i.dropped) for i in parse_input("ID CONC=DV WT=DROP SKIP")]
    [('ID', None, False), ('DV', 'CONC', False), ('WT', None, True), ('SKIP', None, True)]
    """
    if not isinstance(text, str):
        text = " ".join(text)
    lines = [line.split(";", 1)[0] for line in text.splitlines()]
    body = re.sub(r"^\s*\$INP\w*", "", " ".join(lines), flags=re.IGNORECASE)
    tokens = [t for t in re.split(r"[\s,]+", re.sub(r"\s*=\s*", "=", body)) if t]
    if not tokens:
        raise DataError("$INPUT", "lists no data items",
                        "give the labels of the data items in file order, e.g. 'ID TIME AMT DV'")
    items: list[InputItem] = []
    for pos, token in enumerate(tokens, 1):
        parts = token.split("=")
        if len(parts) > 2 or not all(_LABEL.match(p) for p in parts):
            raise DataError("$INPUT", f"item {pos} {token!r} is not a label, label=DROP or "
                            "label=synonym", "use labels of letters, digits and _, e.g. DV=CONC")
        up = [p.upper() for p in parts]
        if len(parts) == 1:
            items.append(InputItem(parts[0], None, up[0] in ("DROP", "SKIP"), pos))
        elif up[1] in ("DROP", "SKIP"):
            items.append(InputItem(parts[0], None, True, pos))
        elif up[0] in ("DROP", "SKIP"):
            items.append(InputItem(parts[1], None, True, pos))
        elif up[0] in RESERVED or up[1] not in RESERVED:
            items.append(InputItem(parts[0], parts[1], False, pos))
        else:
            items.append(InputItem(parts[1], parts[0], False, pos))
    kept: dict[str, int] = {}
    for it in items:
        if it.dropped:
            continue
        for name in it.names:
            if name in kept:
                raise DataError(name, f"is the label of data items {kept[name]} and "
                                f"{it.position} in $INPUT",
                                "NM-TRAN needs unique labels: rename one or add =DROP")
            kept[name] = it.position
    return tuple(items)


# ----------------------------------------------------------------------------- IGNORE/ACCEPT
@dataclass(frozen=True)
class Condition:
    """One ``IGNORE=(list)`` / ``ACCEPT=(list)`` condition, e.g. ``FLAG.NE.0``."""

    label: str
    operator: str  # python operator: == != > >= < <=
    value: str
    numeric: bool

    def __str__(self) -> str:
        return f"{self.label}{' ' if self.numeric else ' text '}{self.operator} {self.value}"


def parse_condition(text: str) -> Condition:
    """Parse one condition: ``ID.EQ.2``, ``FLAG.NE.0``, ``MDV.NEN.0``, ``DV>10``, ``C='C'``.

    >>> parse_condition("MDV.NEN.0")
    Condition(label='MDV', operator='!=', value='0', numeric=True)
    """
    if re.search(r"\.(AND|OR|NOT)\.", text, re.IGNORECASE):
        raise DataError("IGNORE", f"condition {text!r} combines conditions with .AND./.OR.",
                        "give one condition per list entry: a record is ignored if any "
                        "IGNORE condition holds, accepted only if every ACCEPT condition holds")
    m = _CONDITION.match(text)
    if m is None:
        raise DataError("IGNORE", f"cannot read condition {text!r}",
                        "write LABEL.OP.VALUE with OP one of .EQ. .NE. .EQN. .NEN. .GT. .GE. "
                        ".LT. .LE. == /= > >= < <=")
    label, op, value = m.group(1), (m.group(2) or ".EQ.").upper(), m.group(3)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if op in _NUMERIC_OPS:
        if _number(value) is None:
            raise DataError("IGNORE", f"condition {text!r} compares with {value!r}, not a number",
                            "numeric operators (.EQN. .GT. ...) need a number")
        return Condition(label, _NUMERIC_OPS[op], value, True)
    return Condition(label, _TEXT_OPS[op], value, False)


def _split_options(option: str | Sequence[str] | None) -> tuple[str | None, list[Condition]]:
    """Split IGNORE-style options into the ignore character and the list conditions."""
    if option is None:
        return None, []
    entries = [option] if isinstance(option, str) else list(option)
    char: str | None = None
    conds: list[Condition] = []
    for entry in entries:
        e = re.sub(r"^\s*(IGNORE|IGNOR|IGNO|IGN|ACCEPT|ACCEP|ACCE|ACC)\s*=?\s*", "",
                   entry.strip(), flags=re.IGNORECASE)
        quoted = len(e) == 3 and e[0] == e[2] and e[0] in "'\""
        if len(e) == 1 or quoted:
            c = e[1] if quoted else e
            if char is not None and char != c:
                raise DataError("IGNORE", f"two ignore characters, {char!r} and {c!r}",
                                "NM-TRAN takes one IGNORE=c; filter the rest with "
                                "IGNORE=(list)")
            char = c
            continue
        inner = e[1:-1] if e.startswith("(") and e.endswith(")") else e
        conds.extend(parse_condition(part) for part in _split_list(inner))
    return char, conds


def _split_list(text: str) -> list[str]:
    parts, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _ignored(line: str, char: str) -> bool:
    if line.startswith("TABLE NO."):
        return True
    if char == "@":
        s = line.lstrip(" \t")
        return bool(s) and (s[0].isalpha() or s[0] in "@#")
    return line.startswith(char)


# ----------------------------------------------------------------------------- numbers
_FORTRAN_EXP = re.compile(r"([+-]?[0-9.]+)([+-][0-9]+)\Z")


def _number(text: str) -> float | None:
    """NM-TRAN's reading of one data item: '.' and '' are null; 1.5D+02 and 1.5+02 are 150."""
    s = text.strip()
    if s in ("", "."):
        return 0.0
    t = s.replace("D", "E").replace("d", "e")
    try:
        v = float(t)
    except ValueError:
        m = _FORTRAN_EXP.match(t)
        if m is None:
            return None
        try:
            v = float(f"{m.group(1)}E{m.group(2)}")
        except ValueError:
            return None
    if not math.isfinite(v) or s.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        return None
    return v


# ----------------------------------------------------------------------------- dataset
@dataclass(frozen=True, eq=False)
class NonmemDataset:
    """A dataset as NONMEM reads it.

    ``events`` is the event table PREDPP would see (default compartments filled in, times run
    on across time-restarting resets: ``events.time == TIME + time_offset``); ``data`` has every
    kept data item as a number, one row per record, named by ``$INPUT`` (reserved labels for
    synonyms: ``DV=CONC`` gives a ``DV`` column); ``raw`` has every item (dropped ones too) as
    text; ``line`` is each record's 1-based line in the file.
    """

    events: EventTable
    data: pd.DataFrame
    raw: pd.DataFrame
    line: np.ndarray
    time_offset: np.ndarray
    items: tuple[InputItem, ...]
    n_lines_ignored: int = 0
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_records(self) -> int:
        """Data records kept (NONMEM's "NO. OF DATA RECS IN DATA SET")."""
        return len(self.line)

    @property
    def n_observations(self) -> int:
        """Observation records, MDV = 0 (NONMEM's "TOT. NO. OF OBS RECS")."""
        return int((self.mdv == 0).sum())

    @property
    def n_subjects(self) -> int:
        """Individuals (NONMEM's "TOT. NO. OF INDIVIDUALS")."""
        return len(self.events.subject_ids)

    @property
    def mdv(self) -> np.ndarray:
        """MDV per record: the MDV item, else 0 on EVID 0 records and 1 on the others."""
        if "MDV" in self.data:
            return self.data["MDV"].to_numpy(dtype=float)
        return (self.events.evid != 0).astype(float)

    @property
    def dv(self) -> np.ndarray:
        """DV per record (NaN where the dataset has no DV item)."""
        if "DV" in self.data:
            return self.data["DV"].to_numpy(dtype=float)
        return np.full(self.n_records, np.nan)

    def column(self, name: str) -> np.ndarray:
        """One kept data item by its label or synonym (case-insensitive), as numbers."""
        key = _lookup(self.items, name, kept_only=True)
        return self.data[key].to_numpy(dtype=float)


def _lookup(items: Sequence[InputItem], name: str, *, kept_only: bool = False) -> str:
    up = name.upper()
    for it in items:
        if up in it.names and not (kept_only and it.dropped):
            return it.label.upper() if it.label.upper() in RESERVED else it.label
    labels = ", ".join(it.label + ("=DROP" if it.dropped else "") for it in items)
    raise DataError(name, f"is not a{' kept' if kept_only else ''} data item of $INPUT "
                    f"({labels})", "use a label or synonym from $INPUT")


def _read_lines(source: str | Path | IO[str]) -> tuple[list[str], str]:
    if hasattr(source, "read"):
        text = source.read()
        name = str(getattr(source, "name", "<stream>"))
    else:
        path = Path(source)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataError("dataset", f"cannot read {path}: {exc.strerror or exc}",
                            "give the path of the $DATA file (read_nonmem_control(..., "
                            "data_dir=folder) looks the file up in another folder)") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        name = str(path)
    if not isinstance(text, str):
        raise DataError("dataset", "is not text", "give a text file (NM-TRAN reads ASCII)")
    return text.splitlines(), name


def _fields(line: str) -> list[str]:
    s = line.strip(" \t\r")
    if " " not in s and "\t" not in s:
        return s.split(",")  # the common case, 5x faster than the pattern
    return _SEP.split(s)


def read_nonmem(source: str | Path | IO[str], input: str | Sequence[str] | None = None, *,
                ignore: str | Sequence[str] | None = None,
                accept: str | Sequence[str] | None = None,
                covariates: Sequence[str] | Mapping[str, str] = (),
                default_dose_cmt: int = 1,
                default_obs_cmt: int | None = None,
                n_cmt: int | None = None,
                model: Any = None) -> NonmemDataset:
    """Read a NONMEM dataset with its control stream's ``$INPUT`` and ``$DATA`` options.

    ``input`` is the ``$INPUT`` text (or a list of labels); without it the labels come from
    the header line (the last skipped line before the data whose fields are all labels).
    ``ignore`` takes the ``IGNORE`` options: a character (``"@"``, ``"C"``, ``"#"``; ``#`` is
    NM-TRAN's default) and/or conditions (``"ID.EQ.2"``, ``"(FLAG.NE.0, DOSE.LT.30)"``);
    ``accept`` takes ``ACCEPT`` conditions. Doses without a compartment go to
    ``default_dose_cmt`` (1 in every library ADVAN), observations to ``default_obs_cmt`` (ADVAN2,
    4 and 12: 2; ``None`` leaves CMT 0, "the model's default"). With ``n_cmt`` (or a ketasim
    ``model``) every CMT is checked against the model. ``covariates`` names items to carry as
    event-table covariates (a mapping renames them: ``{"wt": "WGT"}``).

    >>> import io
    >>> text = "# study 1\\nC,ID,TIME,EVID,AMT,DV\\n.,1,0,1,10,.\\n.,1,2,0,.,3.3\\n"
    >>> ds = read_nonmem(io.StringIO(text), "C ID TIME EVID AMT DV", ignore="C")
    Traceback (most recent call last):
    ...
    ketasim.errors.DataError: C: line 1: item 1 is '#', not a number; NM-TRAN stops here \
(fix: skip the line: with IGNORE=C only lines starting with 'C' are skipped; use ignore='@' for \
comment and header lines)
    >>> read_nonmem(io.StringIO(text), "C ID TIME EVID AMT DV", ignore="@").n_records
    2
    """
    if model is not None and n_cmt is None:
        n_cmt = int(model.n_cmt)
    lines, name = _read_lines(source)
    char, ign = _split_options(ignore)
    achar, acc = _split_options(accept)
    if achar is not None:
        raise DataError("ACCEPT", f"takes conditions, not the character {achar!r}",
                        "give the character as ignore=")
    if ign and acc:
        raise DataError("ACCEPT", "IGNORE=(list) and ACCEPT=(list) are both given",
                        "NM-TRAN allows one of them (IGNORE=c may go with either)")
    char = char or "#"

    # records: lines that the ignore character does not skip; trailing blank lines are fine
    while lines and not lines[-1].strip():
        lines.pop()
    records: list[tuple[int, list[str]]] = []
    skipped: list[tuple[int, str]] = []
    for k, line in enumerate(lines, 1):
        if _ignored(line, char):
            skipped.append((k, line))
            continue
        if not line.strip():
            raise DataError("dataset", f"line {k} is blank; NM-TRAN stops at a blank record "
                            "unless $DATA has BLANKOK", "delete the blank line")
        if " \t" in line:
            raise DataError("dataset", f"line {k} has a blank before a tab; NM-TRAN refuses "
                            "such separators", "separate items by commas, tabs or blanks")
        records.append((k, _fields(line)))

    if input is None:
        header = None
        first_data = records[0][0] if records else len(lines) + 1
        for k, line in reversed(skipped):
            if k > first_data:
                continue
            f = _fields(line.lstrip("@#"))
            if f and all(_LABEL.match(x) for x in f):
                header = f
                break
        if header is None and records and all(_LABEL.match(x) for x in records[0][1]):
            raise DataError("dataset", f"line {records[0][0]} is a header line that "
                            f"IGNORE={char} does not skip; NM-TRAN would stop at it",
                            "give ignore='@' (IGNORE=@ skips lines starting with a letter)")
        if header is None:
            raise DataError("$INPUT", f"{name} has no header line and no input= was given",
                            "pass the control stream's $INPUT, e.g. input='ID TIME AMT DV'")
        items = parse_input(" ".join(header))
    else:
        items = parse_input(input)
    n_items = len(items)
    labels = [it.label for it in items]

    # text of each item per record: extra items beyond $INPUT are ignored, missing are null
    texts = [(f + [""] * n_items)[:n_items] for _, f in records]
    line_no = np.array([k for k, _ in records], dtype=np.int64)
    keep = np.ones(len(records), dtype=bool)

    def item_text(label: str) -> list[str]:
        it = next(i for i in items if label.upper() in i.names)
        return [t[it.position - 1] for t in texts]

    def test(cond: Condition) -> np.ndarray:
        try:
            values = item_text(cond.label)
        except StopIteration:
            raise DataError(cond.label, f"is used in the condition {cond} but is not in "
                            f"$INPUT ({' '.join(labels)})",
                            "use a label of $INPUT (dropped items may be used)") from None
        if cond.numeric:
            rhs = float(_number(cond.value) or 0.0)
            try:
                num = np.array(["0" if v in ("", ".") else v for v in values], dtype=float)
                if np.isfinite(num).all():
                    return _compare(num, cond.operator, rhs)
            except ValueError:
                pass
            num = np.empty(len(values))
            for j, v in enumerate(values):
                x = _number(v)
                if x is None:
                    raise DataError(cond.label, f"line {line_no[j]}: {v!r} is not a number, "
                                    f"so the condition {cond} cannot be tested",
                                    "compare text with .EQ./.NE. or fix the value")
                num[j] = x
            return _compare(num, cond.operator, rhs)
        arr = np.array([v.strip() for v in values], dtype=object)
        return arr == cond.value if cond.operator == "==" else arr != cond.value

    if ign:
        hit = np.zeros(len(records), dtype=bool)
        for c in ign:
            hit |= test(c)
        keep &= ~hit
    if acc:
        for c in acc:
            keep &= test(c)
    texts = [t for t, k in zip(texts, keep, strict=True) if k]
    line_no = line_no[keep]
    n_ignored = len(skipped) + int((~keep).sum())

    raw = pd.DataFrame(texts, columns=[_unique(labels)[i] for i in range(n_items)], dtype=object)
    data: dict[str, np.ndarray] = {}
    for it in items:
        if it.dropped:
            continue
        col = it.label.upper() if it.label.upper() in RESERVED else it.label
        column = [t[it.position - 1] for t in texts]
        try:  # the fast path: plain numbers, '.' and '' (null)
            values = np.array(["0" if v in ("", ".") else v for v in column], dtype=float)
            if not np.isfinite(values).all():
                raise ValueError
        except ValueError:
            values = np.empty(len(texts))
            for j, v in enumerate(column):
                x = _number(v)
                if x is None:
                    raise DataError(col, *_not_a_number(col, v, int(line_no[j]), it.position,
                                                        char, input is None)) from None
                values[j] = x
        data[col] = values
    frame = pd.DataFrame(data)
    events, offset, notes = _events(frame, line_no, items, covariates, default_dose_cmt,
                                    default_obs_cmt, n_cmt, model)
    return NonmemDataset(events=events, data=frame, raw=raw, line=line_no, time_offset=offset,
                         items=items, n_lines_ignored=n_ignored, source=name, notes=notes)


def _unique(labels: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        n = seen.get(lab, 0)
        out.append(lab if n == 0 else f"{lab}_{n + 1}")
        seen[lab] = n + 1
    return out


def _compare(x: np.ndarray, op: str, y: float) -> np.ndarray:
    out: np.ndarray = {"==": x == y, "!=": x != y, ">": x > y, ">=": x >= y, "<": x < y,
                       "<=": x <= y}[op]
    return out


def _not_a_number(col: str, value: str, line: int, position: int, char: str,
                  from_header: bool) -> tuple[str, str]:
    problem = f"line {line}: item {position} is {value!r}, not a number; NM-TRAN stops here"
    if col == "TIME" and ":" in value:
        return problem, ("clock times need NONMEM's DATE items; give TIME in hours "
                         "(ketasim does not convert clock times)")
    if col in ("DATE", "DAT1", "DAT2", "DAT3"):
        return problem, "drop the date (DATE=DROP) and give TIME in hours"
    if position == 1 and char != "@":
        return problem, (f"skip the line: with IGNORE={char} only lines starting with "
                         f"{char!r} are skipped; use ignore='@' for comment and header lines")
    if from_header:
        return problem, (f"name the items with input= and drop this one ({col}=DROP), as "
                         "$INPUT does")
    return problem, f"fix the value, or drop the item in $INPUT ({col}=DROP)"


def _events(frame: pd.DataFrame, line: np.ndarray, items: Sequence[InputItem],
            covariates: Sequence[str] | Mapping[str, str], default_dose: int,
            default_obs: int | None, n_cmt: int | None, model: Any
            ) -> tuple[EventTable, np.ndarray, tuple[str, ...]]:
    n = len(frame)
    notes: list[str] = []

    def col(name: str, default: float = 0.0) -> np.ndarray:
        return frame[name].to_numpy(dtype=float) if name in frame else np.full(n, default)

    def where(i: int) -> str:
        return f"line {line[i]} (ID {ident[i]:g}, TIME {time[i]:g})"

    if "TIME" not in frame:
        raise DataError("TIME", "is not a data item of $INPUT "
                        f"({' '.join(it.label for it in items)})",
                        "PREDPP needs TIME: name its column TIME in $INPUT (e.g. TIME=HOURS)")
    if "ID" not in frame:
        raise DataError("ID", "is not a data item of $INPUT",
                        "NONMEM tells individuals apart by ID: add ID to $INPUT")
    ident, time = col("ID"), col("TIME")
    amt, rate, ss, mdv = col("AMT"), col("RATE"), col("SS"), col("MDV")
    if "EVID" in frame:
        evid = col("EVID")
    else:
        # PREDPP without EVID: a dose if AMT > 0 (or a constant infusion at steady state),
        # otherwise an observation, or an other-type event when MDV = 1
        dose = (amt > 0) | ((ss > 0) & (rate > 0))
        evid = np.where(dose, 1, np.where(mdv > 0, 2, 0)).astype(float)
        notes.append("no EVID item: EVID 1 where AMT > 0, 2 where MDV = 1, else 0")
    bad = ~np.isin(evid, (0, 1, 2, 3, 4))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise EventError("EVID", f"{where(i)} has EVID {evid[i]:g}; NONMEM stops: EVID must be "
                         "0 observation, 1 dose, 2 other, 3 reset or 4 reset and dose",
                         "use EVID 0-4")
    starts = np.r_[True, ident[1:] != ident[:-1]] if n else np.zeros(0, dtype=bool)
    seen: dict[float, int] = {}
    for i in map(int, np.flatnonzero(starts)):
        if ident[i] in seen:
            raise EventError("ID", f"{where(i)}: ID {ident[i]:g} appears again after "
                             f"other individuals (first at line {seen[ident[i]]}); NONMEM "
                             "would make it a new individual",
                             "give the second block its own ID, or keep a subject's "
                             "records together")
        seen[ident[i]] = int(line[i])

    # CMT: default compartments, and checks against the model
    cmt = col("CMT")
    dose = np.isin(evid, (1, 4))
    obs = evid == 0
    if np.any(cmt != np.round(cmt)):
        i = int(np.flatnonzero(cmt != np.round(cmt))[0])
        raise EventError("CMT", f"{where(i)} has CMT {cmt[i]:g}, not a whole number; NONMEM "
                         "stops", "CMT is a compartment number")
    neg = (cmt < 0) & (dose | obs | (evid == 2))
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        what = ("turns compartment {c} off" if evid[i] == 2 else
                "observes compartment {c} and then turns it off" if obs[i] else
                "is refused (a dose cannot turn a compartment off)")
        raise EventError("CMT", f"{where(i)} has CMT {cmt[i]:g}: NONMEM "
                         f"{what.format(c=int(-cmt[i]))}",
                         "ketasim cannot switch compartments on or off: remove the record or "
                         "give a positive CMT")
    if "CMT" not in frame:
        notes.append(f"no CMT item: doses go to compartment {default_dose}"
                     + (f", observations to {default_obs}" if default_obs else ""))
    cmt = np.where(dose & (cmt == 0), default_dose, cmt)
    if default_obs is not None:
        cmt = np.where(obs & (cmt == 0), default_obs, cmt)
    if n_cmt is not None:
        names = ""
        if model is not None:
            names = " (" + ", ".join(f"{k + 1} {c.name}" for k, c in
                                     enumerate(model.compartments)) + ")"
        for mask, what, fix in (
                (dose & (cmt > n_cmt), "a dose into compartment {c}",
                 "NONMEM stops: only the model's compartments take doses"),
                (obs & (cmt == n_cmt + 1), "an observation of compartment {c}, NONMEM's output "
                 "compartment (the amount eliminated)",
                 "ketasim has no output compartment"),
                (obs & (cmt > n_cmt + 1), "an observation of compartment {c}",
                 "NONMEM stops: the model has no such compartment")):
            if mask.any():
                i = int(np.flatnonzero(mask)[0])
                raise EventError("CMT", f"{where(i)} is {what.format(c=int(cmt[i]))}; the model "
                                 f"has {n_cmt} compartments{names}",
                                 f"{fix}; use CMT 1..{n_cmt}, or 0 for the default")

    # records NONMEM refuses (or reads differently), named by line before the event table
    ii, addl = col("II"), col("ADDL")
    for mask, item, what, fix in (
            (time < 0, "TIME", "TIME {v:g} is negative: NONMEM accepts it (times need only "
             "increase), ketasim's event table starts at 0", "shift the subject's times so "
             "that the first is 0"),
            (dose & (amt < 0), "AMT", "a dose of {v:g}: NONMEM stops, dose amounts are >= 0",
             "fix the amount"),
            (dose & (rate < 0) & ~np.isin(rate, (-1.0, -2.0)), "RATE",
             "RATE {v:g}: NONMEM stops, RATE is > 0, 0, -1 (modelled rate) or -2 (modelled "
             "duration)", "fix the rate"),
            (~np.isin(ss, (0, 1, 2, 3)), "SS", "SS {v:g}: NONMEM stops, SS is 0, 1, 2 or 3",
             "fix the value (a data column that is not SS needs another label in $INPUT)"),
            (ss == 3, "SS", "SS 3: NONMEM (7.4 and later) reads it as a steady-state dose that "
             "keeps the other compartments; ketasim implements SS 0, 1 and 2", "use SS 1 or 2"),
            (ii < 0, "II", "II {v:g}: NONMEM stops, intervals are >= 0", "fix the interval"),
            ((addl < 0) | (addl != np.round(addl)), "ADDL", "ADDL {v:g}: NONMEM stops, ADDL "
             "counts additional doses", "give a whole number >= 0"),
            (dose & (addl > 0) & (ii <= 0), "II", "ADDL {a:g} with II {v:g}: NONMEM stops, "
             "additional doses need an interval", "give II > 0"),
            (dose & (ss > 0) & (ii <= 0) & ~((amt == 0) & (rate > 0)), "II",
             "a steady-state dose with II {v:g}: NONMEM stops, steady state needs II > 0",
             "give II, or AMT 0 with RATE > 0 and II 0 for a constant infusion"),
            (dose & (ss > 0) & (amt == 0) & (rate > 0) & (ii != 0), "II",
             "a steady-state constant infusion (AMT 0, RATE > 0) with II {v:g}: NONMEM stops",
             "give II 0")):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            vals = {"TIME": time, "AMT": amt, "RATE": rate, "SS": ss, "II": ii, "ADDL": addl}
            raise EventError(item, f"{where(i)}: " + what.format(v=vals[item][i], a=addl[i]),
                             fix)

    # TIME may start again on a reset record (EVID 3 or 4): run it on as elapsed time
    offset = np.zeros(n)
    shift = 0.0
    for i in range(1, n):
        if ident[i] != ident[i - 1]:
            shift = 0.0
        elif time[i] + shift < time[i - 1] + offset[i - 1]:
            if evid[i] in (3, 4):
                shift = time[i - 1] + offset[i - 1] - time[i]
            else:
                raise EventError("TIME", f"{where(i)} is earlier than TIME "
                                 f"{time[i - 1]:g} on line {line[i - 1]}; NONMEM allows TIME to "
                                 "go back only on a reset record (EVID 3 or 4)",
                                 "sort the subject's records by time, or start the new period "
                                 "with a reset (EVID 3, or EVID 4 with its dose)")
        offset[i] = shift
    if offset.any():
        notes.append("TIME starts again after a reset: events.time is TIME + time_offset")

    covs: dict[str, np.ndarray] = {}
    pairs = covariates.items() if isinstance(covariates, Mapping) else \
        [(c, c) for c in covariates]
    for cname, label in pairs:
        covs[cname] = frame[_lookup(items, label, kept_only=True)].to_numpy(dtype=float)
    try:
        table = EventTable(id=ident, time=time + offset, evid=evid, amt=amt, cmt=cmt,
                           rate=rate, dur=np.zeros(n), ii=ii, addl=addl, ss=ss,
                           covariates=covs)
    except EventError as exc:
        raise _with_lines(exc, line) from None
    return table, offset, tuple(notes)


def _with_lines(exc: KetasimError, line: np.ndarray) -> KetasimError:
    def repl(m: re.Match[str]) -> str:
        k = int(m.group(1))
        return f"line {line[k - 1]}" if 1 <= k <= len(line) else m.group(0)
    problem = re.sub(r"record (\d+)", repl, exc.problem)
    return type(exc)(exc.field, problem, exc.fix)


# ----------------------------------------------------------------------------- control stream
#: Built-in default dose and observation compartments and compartment counts of PREDPP's
#: library models (NONMEM help, "default compartment").
ADVAN_DEFAULTS: Mapping[int, tuple[int, int, int]] = {
    1: (1, 1, 1), 2: (1, 2, 2), 3: (1, 1, 2), 4: (1, 2, 3), 10: (1, 1, 1), 11: (1, 1, 3),
    12: (1, 2, 4),
}


@dataclass(frozen=True)
class NonmemControl:
    """What a control stream says about its data: ``$DATA``, ``$INPUT``, ``$SUBROUTINES``."""

    data_file: Path
    input: tuple[InputItem, ...]
    ignore: tuple[str, ...]
    accept: tuple[str, ...]
    advan: int | None
    default_dose_cmt: int
    default_obs_cmt: int | None
    n_cmt: int | None
    problem: str = ""

    def read_data(self, path: str | Path | IO[str] | None = None, **options: Any
                  ) -> NonmemDataset:
        """Read the ``$DATA`` file (or ``path``) as this control stream does.

        ``options`` override the control stream's (see :func:`read_nonmem`).
        """
        kw: dict[str, Any] = dict(ignore=list(self.ignore) or None,
                                  accept=list(self.accept) or None,
                                  default_dose_cmt=self.default_dose_cmt,
                                  default_obs_cmt=self.default_obs_cmt, n_cmt=self.n_cmt)
        kw.update(options)
        labels = " ".join(
            (it.label + ("=DROP" if it.dropped else "")
             + (f"={it.synonym}" if it.synonym else "")) for it in self.input)
        return read_nonmem(self.data_file if path is None else path, labels, **kw)


def read_nonmem_control(source: str | Path | IO[str], *, problem: int = 1,
                        data_dir: str | Path | None = None) -> NonmemControl:
    """Read ``$INPUT``, ``$DATA`` and ``$SUBROUTINES``/``$MODEL`` of a control stream.

    The ``$DATA`` path is resolved against the control stream's folder; with ``data_dir`` the
    file (by its name) is looked up there instead.

    >>> import io
    >>> ctl = read_nonmem_control(io.StringIO(
    ...     "$PROB x\\n$INPUT ID TIME AMT WGT DV\\n$DATA pheno.dta IGNORE=@ IGNORE(ID.EQ.2)\\n"
    ...     "$SUBROUTINE ADVAN1 TRANS2\\n"))
    >>> ctl.data_file.name, ctl.ignore, ctl.default_obs_cmt
    ('pheno.dta', ('@', 'ID.EQ.2'), 1)
    """
    if hasattr(source, "read"):
        text = source.read()
        folder = Path(data_dir) if data_dir is not None else Path.cwd()
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise DataError("control stream", f"cannot read {path}: {exc.strerror or exc}",
                            "give the path of the .mod/.ctl file") from None
        folder = Path(data_dir) if data_dir is not None else path.parent
    body = "\n".join(line.split(";", 1)[0] for line in str(text).splitlines())
    recs = [(m.group(1).upper(), m.start(), m.end())
            for m in re.finditer(r"\$([A-Za-z]+)", body)]
    records: list[tuple[str, str]] = []
    for k, (rname, _, end) in enumerate(recs):
        stop = recs[k + 1][1] if k + 1 < len(recs) else len(body)
        records.append((rname, body[end:stop]))
    # keep the records of the requested problem
    probs = [k for k, (r, _) in enumerate(records) if r.startswith("PROB")]
    if probs:
        if not 1 <= problem <= len(probs):
            raise DataError("$PROBLEM", f"the control stream has {len(probs)} problems, "
                            f"not {problem}", f"use problem=1..{len(probs)}")
        lo = probs[problem - 1]
        hi = probs[problem] if problem < len(probs) else len(records)
        head = records[:probs[0]]
        sub = head + records[lo:hi]
        title = records[lo][1].strip().splitlines()[0] if records[lo][1].strip() else ""
    else:
        sub, title = records, ""

    def get(prefix: str, minimum: int = 3) -> list[str]:
        return [t for r, t in sub if r.startswith(prefix[:minimum]) and prefix.startswith(r)]

    inputs = get("INPUT")
    datas = get("DATA")
    if not inputs or not datas:
        raise DataError("$INPUT" if not inputs else "$DATA", "record is missing",
                        "the control stream needs $INPUT and $DATA")
    items = parse_input(" ".join(inputs))
    data_text = " ".join(datas[0].split())
    m = re.match(r"\s*(\"[^\"]*\"|'[^']*'|\S+)", data_text)
    if m is None:
        raise DataError("$DATA", "names no file", "write $DATA file.csv IGNORE=@ ...")
    fname = m.group(1).strip("'\"")
    rest = data_text[m.end():]
    if re.match(r"\s*\(", rest):
        raise DataError("$DATA", f"reads {fname} with a Fortran format {rest.split()[0]}",
                        "read_nonmem reads delimited files: write the data comma-separated")
    if re.search(r"\bTRANS\w*\s*=", rest, re.IGNORECASE):
        raise DataError("$DATA", "uses TRANSLATE=, which changes the data as it is read",
                        "apply the translation to the file (e.g. TIME in hours) and drop it")
    ignore: list[str] = []
    accept: list[str] = []
    pattern = re.compile(
        r"\b(IGNORE|IGNOR|IGNO|IGN|ACCEPT|ACCEP|ACCE|ACC|NULL|RECORDS|RECORD|RECOR|RECO|REC)"
        r"\s*(=\s*)?(\((?:[^()'\"]|'[^']*'|\"[^\"]*\")*\)|'.'|\".\"|\S)", re.IGNORECASE)
    for opt in pattern.finditer(rest):
        key, value = opt.group(1).upper(), opt.group(3)
        if key.startswith("IGN"):
            ignore.append(value.strip("'\"") if len(value) == 3 and value[0] in "'\"" else value)
        elif key.startswith("ACC"):
            accept.append(value)
        elif key.startswith("REC"):
            raise DataError("$DATA", f"uses RECORDS={value}",
                            "read_nonmem reads every record: cut the file instead")
        elif key == "NULL" and value.strip("'\"") != ".":
            raise DataError("$DATA", f"uses NULL={value}",
                            "read_nonmem takes '.' and empty items as null only")
    ignore = [i[1:-1] if i.startswith("(") and i.endswith(")") else i for i in ignore]
    accept = [a[1:-1] if a.startswith("(") and a.endswith(")") else a for a in accept]

    advan: int | None = None
    for t in [t for r, t in sub if r.startswith("SUB")]:
        am = re.search(r"\bADVAN\s*(\d+)", t, re.IGNORECASE)
        if am:
            advan = int(am.group(1))
    dose, obs_cmt, n_cmt = 1, None, None
    if advan is not None and advan in ADVAN_DEFAULTS:
        dose, obs_cmt, n_cmt = ADVAN_DEFAULTS[advan]
    elif get("MODEL"):
        dose, obs_cmt, n_cmt = _model_defaults(" ".join(get("MODEL")))
    data_file = folder / Path(fname).name if data_dir is not None else folder / fname
    return NonmemControl(data_file=data_file, input=items, ignore=tuple(ignore),
                         accept=tuple(accept), advan=advan, default_dose_cmt=dose,
                         default_obs_cmt=obs_cmt, n_cmt=n_cmt, problem=title)


def _model_defaults(text: str) -> tuple[int, int | None, int | None]:
    comps = re.findall(r"\bCOMP\w*\s*=?\s*\(([^)]*)\)", text, re.IGNORECASE)
    ncm = re.search(r"\b(?:NCOMPARTMENTS|NCOMPS|NCM)\s*=\s*(\d+)", text, re.IGNORECASE)
    attrs = [{a.upper() for a in re.split(r"[\s,]+", c.strip()) if a} for c in comps]
    n = int(ncm.group(1)) if ncm else (len(attrs) or None)
    dose = next((k + 1 for k, a in enumerate(attrs) if "DEFDOSE" in a or "DEFDOS" in a),
                next((k + 1 for k, a in enumerate(attrs) if "NODOSE" not in a), 1))
    obs = next((k + 1 for k, a in enumerate(attrs) if "DEFOBS" in a), 1)
    return dose, obs, n


__all__ = ["ADVAN_DEFAULTS", "RESERVED", "Condition", "InputItem", "NonmemControl",
           "NonmemDataset", "parse_condition", "parse_input", "read_nonmem",
           "read_nonmem_control"]
