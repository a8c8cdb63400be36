"""Bad input never escapes as an untyped exception (property-based fuzzing)."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketasim.dosing import parse_regimen
from ketasim.errors import KetasimError
from ketasim.io import read_nonmem_csv
from ketasim.model import Expression

WORDS = ["0.5", "84", "mg", "mg/kg", "µg", "g", "IV", "over", "40", "min", "h", "intranasal",
         "oral", "then", "daily", "weekly", "twice", "three", "times", "for", "weeks", "days",
         "x", "q24h", "on", "day", "1", "at", "esketamine", "ketamine", "SL", "every", "-3",
         "1e9", "nan", "/h", "until", "", "0", "buccal", "IM", "x 0"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=60),
                 st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join)))
def test_regimen_parser_raises_only_typed_errors(text: str) -> None:
    try:
        reg = parse_regimen(text)
    except KetasimError as exc:
        assert "\n" not in str(exc)
        return
    assert parse_regimen(reg.to_text()) == reg


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_expression_parser_raises_only_typed_errors(text: str) -> None:
    try:
        Expression.parse(text, field="fuzz")
    except KetasimError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["1", "0", ".", "-1", "x", "2.5", "", "1e400",
                                          "nan", "4"]), min_size=6, max_size=6),
                min_size=1, max_size=6))
def test_dataset_reader_raises_only_typed_errors(rows: list[list[str]]) -> None:
    text = "ID,TIME,EVID,AMT,CMT,II\n" + "\n".join(",".join(r) for r in rows) + "\n"
    try:
        read_nonmem_csv(io.StringIO(text))
    except KetasimError:
        pass
