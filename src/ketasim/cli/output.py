"""The command line's one output helper: ``--format table|csv|json`` for every command.

* ``table`` (default): rich tables and messages for people. When stdout is not a terminal (a
  pipe, a file) and ``COLUMNS`` is not set, lines are not wrapped at 80 characters: a table is
  as wide as its content.
* ``csv``: the command's table(s) as CSV on stdout. One table: a header row and the rows
  (``pandas.read_csv`` reads it). Several tables: each block starts with a line ``# NAME``,
  then its header and rows; blocks are separated by one empty line.
* ``json``: one JSON document on stdout (UTF-8, indented). Commands that had ``--json``
  before keep their documented shape (``--json`` stays as an alias of ``--format json``);
  the others print ``{TABLE_NAME: [{COLUMN: value, ...}, ...], ...}`` plus the fields their
  module docstrings name. Nothing else is printed on stdout (progress bars are off).
* Notes and "wrote FILE" messages go to stderr in csv.

A bad ``--format`` is a :class:`~ketasim.errors.KetasimError` (one line, exit code 2).

>>> pick_format("CSV", False), pick_format("table", True)
(<Format.csv: 'csv'>, <Format.json: 'json'>)
>>> import io
>>> buf = io.StringIO()
>>> write_csv([ResultTable("t", ["a", "b"], [[1, "x"], [2.5, None]])], buf)
>>> buf.getvalue()
'a,b\\n1,x\\n2.5,\\n'
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ketasim.errors import KetasimError

PIPE_WIDTH = 4096


def _width() -> int | None:
    """Terminal: its width (rich decides); COLUMNS set: that; otherwise no 80-column wrap."""
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty or os.environ.get("COLUMNS"):
        return None
    return PIPE_WIDTH


console = Console(width=_width())
err_console = Console(stderr=True)


class Format(StrEnum):
    """What a command prints."""

    table = "table"
    csv = "csv"
    json = "json"


FORMAT_HELP = ("output: table (for people), csv (the tables) or json (machine-readable, "
               "stable; see docs/tutorial.md)")
FormatOption = Annotated[str, typer.Option("--format", help=FORMAT_HELP,
                                           metavar="table|csv|json")]
JsonFlag = Annotated[bool, typer.Option("--json", help="same as --format json")]
WorkersOption = Annotated[int | None, typer.Option(
    min=1, max=1024, help="run on a local Dask cluster of this many worker processes")]
SchedulerOption = Annotated[str | None, typer.Option(
    help="run on the Dask cluster at this address, e.g. tcp://host:8786")]


def pick_format(value: str, json_flag: bool = False) -> Format:
    """The chosen format (``--json`` wins); anything else than table, csv or json raises."""
    if json_flag:
        return Format.json
    try:
        return Format(value.strip().lower())
    except ValueError:
        raise KetasimError("format", f"{value!r} is not table, csv or json",
                           "use --format table, --format csv or --format json") from None


@dataclass
class ResultTable:
    """One table of results: plain values (numbers, text, None) for csv and json."""

    name: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}``."""
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        return v.item()
    return v


def to_json_text(payload: Any) -> str:
    """``payload`` as indented JSON (numpy scalars and paths converted, NaN as null)."""
    def default(o: Any) -> Any:
        if hasattr(o, "tolist"):
            return o.tolist()
        if isinstance(o, Path | StrEnum):
            return str(o)
        raise TypeError(f"{type(o).__name__} is not JSON serialisable")

    def clean(o: Any) -> Any:
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [clean(v) for v in o]
        return _plain(o)
    return json.dumps(clean(payload), indent=2, ensure_ascii=False, default=default)


def write_csv(tables: Sequence[ResultTable], stream: IO[str]) -> None:
    """The tables as CSV (module docstring: one block, or ``# NAME`` blocks)."""
    writer = csv.writer(stream, lineterminator="\n")
    for i, t in enumerate(tables):
        if len(tables) > 1:
            if i:
                stream.write("\n")
            stream.write(f"# {t.name}\n")
        writer.writerow(t.columns)
        for r in t.rows:
            writer.writerow(["" if v is None else _plain(v) for v in r])


_MARKUP = re.compile(r"\[/?[a-z #0-9_.]*\]")


def strip_markup(text: str) -> str:
    """Rich markup removed: ``'[red]fail[/red]'`` → ``'fail'``."""
    return _MARKUP.sub("", text)


class Output:
    """Collects a command's tables and prints them in the chosen format.

    In ``table`` format :meth:`table` and :meth:`print` print at once (as before); in csv and
    json the tables are kept and :meth:`finish` prints them (or a command's own payload).
    """

    def __init__(self, fmt: str = "table", json_flag: bool = False) -> None:
        self.format = pick_format(fmt, json_flag)
        self.tables: list[ResultTable] = []

    @property
    def rich(self) -> bool:
        """Whether this run prints for people (table format)."""
        return self.format is Format.table

    @property
    def json(self) -> bool:
        """Whether this run prints JSON."""
        return self.format is Format.json

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """A message for people (table format only)."""
        if self.rich:
            console.print(*objects, **kwargs)

    def note(self, text: str, label: str = "note") -> None:
        """A warning or note: stdout in table format, stderr in csv, none in json (the JSON
        carries its notes)."""
        if self.rich:
            console.print(f"[yellow]{label}:[/yellow] {text}")
        elif self.format is Format.csv:
            err_console.print(f"{label}: {text}", markup=False, highlight=False,
                              soft_wrap=True)

    def wrote(self, path: Path | str) -> None:
        """A file was written (stdout in table format, stderr in csv, none in json)."""
        if self.rich:
            console.print(f"wrote {path}")
        elif self.format is Format.csv:
            err_console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)

    def table(self, name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
              title: str | None = None, shown: Iterable[Sequence[Any]] | None = None,
              overflow: str | None = None,
              justify: str | dict[str, str] | None = None) -> ResultTable:
        """Add a table: ``rows`` of plain values; ``shown`` the same rows as rich renders
        them (markup, formatted numbers; default: ``rows`` as text)."""
        result = ResultTable(name, list(columns), [list(r) for r in rows])
        self.tables.append(result)
        if self.rich:
            table = Table(title=title)
            for col in result.columns:
                kw: dict[str, Any] = {}
                if overflow:
                    kw["overflow"] = overflow
                just = justify.get(col) if isinstance(justify, dict) else justify
                if just:
                    kw["justify"] = just
                table.add_column(col, **kw)
            for r in (shown if shown is not None else
                      [["" if v is None else _fmt(v) for v in r] for r in result.rows]):
                table.add_row(*r)
            console.print(table)
        return result

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """Every table as ``{name: [{column: value}]}`` (the default JSON)."""
        return {t.name: t.records() for t in self.tables}

    def finish(self, payload: Any = None) -> None:
        """Print the result in csv or json (nothing more in table format): ``payload`` as
        the JSON when given, else :meth:`records`."""
        if self.format is Format.json:
            print(to_json_text(self.records() if payload is None else payload))
        elif self.format is Format.csv:
            write_csv(self.tables, sys.stdout)
            sys.stdout.flush()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def print_footer(notes: Any, plot: Path | None, disclaimer: str,
                 out: Output | None = None) -> None:
    """A forecast's notes, the picture written, and the disclaimer."""
    out = out or Output()
    for note in notes:
        out.note(str(note))
    if plot is not None:
        out.wrote(plot)
    out.print(f"[dim]{disclaimer}[/dim]")


def print_references(texts: list[str], out: Output | None = None) -> list[dict[str, str]]:
    """The full citation, with its DOI link, of every work ``texts`` name by key (printed in
    table format); returned as ``[{"key", "citation"}]`` for json."""
    from ketasim.references import cited_keys, format_citation
    keys = cited_keys(texts, strict=False)
    refs = [{"key": k, "citation": format_citation(k)} for k in keys]
    if out is None or out.rich:
        if refs:
            console.print("[bold]references[/bold]")
        for r in refs:
            console.print(f"  {r['key']}: {r['citation']}", markup=False, highlight=False,
                          soft_wrap=True)
    return refs


def parse_covariates(items: list[str] | None) -> dict[str, float]:
    """``["weight=70", "age=40"]`` → ``{"weight": 70.0, "age": 40.0}`` (typed errors).

    >>> parse_covariates(["weight=70"])
    {'weight': 70.0}
    """
    from ketasim.errors import CovariateError
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CovariateError("covariate", f"{item!r} is not NAME=VALUE",
                                 "write e.g. --covariate weight=70")
        try:
            out[name] = float(value)
        except ValueError:
            raise CovariateError(name, f"{value.strip()!r} is not a number",
                                 f"write e.g. --covariate {name}=70") from None
    return out


def parse_time(text: str, field: str) -> float:
    """``24h``, ``5 min``, ``2`` (hours) → hours; unreadable text raises with ``field``."""
    from ketasim.units import to_hours
    t = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]+)", t)
    if m:
        t = f"{m.group(1)} {m.group(2)}"
    try:
        return to_hours(t if any(c.isalpha() for c in t) else float(t), field=field)
    except ValueError:
        raise KetasimError(field, f"cannot read {text!r}", "write e.g. 24h or 5min") from None


__all__ = ["FORMAT_HELP", "Format", "FormatOption", "JsonFlag", "Output", "ResultTable",
           "SchedulerOption", "WorkersOption", "console", "err_console", "parse_covariates",
           "parse_time", "pick_format", "print_footer", "print_references", "strip_markup",
           "to_json_text", "write_csv"]
