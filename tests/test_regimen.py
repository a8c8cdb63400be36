"""The regimen language, regimens and their expansion to NM-TRAN events."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketasim.dosing import Dose, Regimen, Route, format_regimen, parse_regimen
from ketasim.errors import CovariateError, DoseError, RegimenError

EXAMPLES = {
    "0.5 mg/kg IV over 40 min": [0.0],
    "0.5 mg/kg IV over 40 min three times weekly for 2 weeks": [0, 56, 112, 168, 224, 280],
    "56 mg intranasal on day 1 then 84 mg twice weekly for 4 weeks then 84 mg weekly for "
    "4 weeks": [0.0, *np.arange(84, 84 * 9, 84), *np.arange(756, 756 + 4 * 168, 168)],
    "25 mg sublingual q24h x 14": list(np.arange(14) * 24.0),
    "1 mg/kg SC weekly for 12 weeks": list(np.arange(12) * 168.0),
}


@pytest.mark.parametrize("text", list(EXAMPLES))
def test_issue_examples_parse_to_the_stated_times(text: str) -> None:
    reg = parse_regimen(text)
    times = [t for t, _, _ in reg.administrations(weight_kg=70)]
    assert np.allclose(times, EXAMPLES[text])


@pytest.mark.parametrize("text", list(EXAMPLES))
def test_round_trip(text: str) -> None:
    reg = parse_regimen(text)
    assert parse_regimen(format_regimen(reg)) == reg


def test_doses_minutes_apart_print_their_start() -> None:
    """Two single doses within a day ('then' cannot place the second): the second's start
    is printed, so the text reads back to the same regimen (a session with a top-up dose)."""
    for text in ["84 mg esketamine intranasal then 28 mg esketamine intranasal at 15 min",
                 "0.5 mg/kg ketamine IV over 40 min then 10 mg ketamine IV bolus at 32.5 min"]:
        reg = parse_regimen(text)
        assert parse_regimen(format_regimen(reg)) == reg
        assert [d.time for d in reg.doses][1] > 0


def test_canonical_texts_print_back_identically() -> None:
    for text in ["0.5 mg/kg IV over 40 min three times weekly for 2 weeks",
                 "1 mg/kg SC weekly for 12 weeks",
                 "56 mg intranasal on day 1 then 84 mg twice weekly for 4 weeks then 84 mg "
                 "weekly for 4 weeks", "25 mg sublingual daily for 14 days"]:
        assert format_regimen(parse_regimen(text)) == text


def test_meaning_of_the_parts() -> None:
    d = parse_regimen("0.5 mg/kg IV over 40 min").doses[0]
    assert d.route is Route.IV_INFUSION and d.per_kg and d.duration == pytest.approx(2 / 3)
    assert parse_regimen("100 µg/kg IV").doses[0].route is Route.IV_BOLUS
    assert parse_regimen("100 mcg/kg IV").doses[0].amount == pytest.approx(0.1)
    assert parse_regimen("1 g oral").doses[0].amount == 1000.0
    assert parse_regimen("20 mg IM on day 3").doses[0].time == 48.0
    assert parse_regimen("20 mg IM at 90 min").doses[0].time == 1.5
    assert parse_regimen("35 mg IV at 20 mg/h").doses[0].rate == 20.0
    r = parse_regimen("50 mg oral daily until day 10")
    assert r.n_administrations == 10
    assert parse_regimen("10 mg buccal bid x 4").doses[0].every == 12.0


@pytest.mark.parametrize("text,field_words", [
    ("", "empty"),
    ("0.5 mg/kg IV over 40 min weekly", "without a count"),
    ("0.5 mg/kg IV for 2 weeks", "without a frequency"),
    ("5 mg oral daily for 10 h", "whole number"),
    ("84 mg intranasal then", "empty phase"),
    ("84 mg", "no route"),
    ("84 mg oral over 10 min", "cannot run"),
    ("84 mL oral", "expected an amount"),
    ("84 mg oral daily for 2 weeks please", "cannot read"),
    ("84 mg oral on day 0", "whole day"),
    ("2 mg/kg IV at 5 mg/h", "different units"),
])
def test_ambiguous_or_bad_text_raises_a_clear_error(text: str, field_words: str) -> None:
    with pytest.raises(RegimenError) as exc:
        parse_regimen(text)
    assert exc.value.field == "regimen"
    assert field_words in str(exc.value)
    assert "fix:" in str(exc.value)


def test_regimen_combinators() -> None:
    a = Regimen.single(10, Route.ORAL)
    r = a.repeat(every=24, count=3)
    assert [t for t, _, _ in r.administrations()] == [0, 24, 48]
    assert r.shift(12).first_time == 12
    both = r + Regimen.single(5, Route.IV_BOLUS, time=6)
    assert both.n_administrations == 4
    seq = r.then(Regimen.single(20, Route.ORAL).repeat(every=12, count=2))
    assert [t for t, _, _ in seq.administrations()] == [0, 24, 48, 72, 84]
    assert a.repeat(every=24, until=48).n_administrations == 3
    assert r.total_mg() == 30
    block = r.repeat(every=168, count=2)
    assert block.n_administrations == 6


def test_dose_validation() -> None:
    with pytest.raises(DoseError, match="amount"):
        Dose(-1, Route.ORAL)
    with pytest.raises(DoseError, match="time"):
        Dose(1, Route.ORAL, time=float("nan"))
    with pytest.raises(DoseError, match="duration"):
        Dose(1, Route.ORAL, duration=1.0)
    with pytest.raises(DoseError, match="every"):
        Dose(1, Route.ORAL, additional=2)
    with pytest.raises(DoseError, match="route"):
        Dose(1, "teleport")  # type: ignore[arg-type]
    with pytest.raises(RegimenError):
        Regimen.single(1, Route.ORAL).shift(-5)


def test_mg_per_kg_needs_a_plausible_weight() -> None:
    reg = parse_regimen("0.5 mg/kg IV over 40 min")
    with pytest.raises(CovariateError, match="weight"):
        reg.to_events()
    with pytest.raises(CovariateError, match="outside"):
        reg.to_events(weight_kg=600)
    with pytest.raises(CovariateError, match="outside"):
        reg.to_events(weight_kg=0.1)
    t = reg.to_events(weight_kg=80)
    assert t.amt[0] == pytest.approx(40.0) and t.dur[0] == pytest.approx(2 / 3)
    assert t.route[0] == "iv_infusion"


@settings(max_examples=200, deadline=None)
@given(
    amount=st.floats(0.01, 500).map(lambda x: round(x, 3)),
    per_kg=st.booleans(),
    route=st.sampled_from([Route.ORAL, Route.INTRANASAL, Route.SUBLINGUAL, Route.IV_BOLUS,
                           Route.INTRAMUSCULAR, Route.RECTAL, Route.SUBCUTANEOUS]),
    every=st.sampled_from([None, 6.0, 8.0, 12.0, 24.0, 48.0, 56.0, 72.0, 84.0, 168.0]),
    count=st.integers(2, 30),
    start_day=st.integers(0, 20),
    infusion_min=st.sampled_from([None, 15, 40, 90, 240]),
)
def test_round_trip_property(amount, per_kg, route, every, count, start_day,
                             infusion_min) -> None:
    if infusion_min is not None:
        route = Route.IV_INFUSION
    d = Dose(amount, route, time=24.0 * start_day, per_kg=per_kg,
             duration=None if infusion_min is None else infusion_min / 60,
             every=every, additional=(count - 1) if every else 0)
    if every is not None and d.duration is not None and d.duration > every:
        return
    reg = Regimen((d,))
    text = format_regimen(reg)
    again = parse_regimen(text)
    assert again == reg, text
    assert format_regimen(again) == text
