"""Rating scales: strict scoring, bands, response and remission."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketasim.errors import KetasimError
from ketasim.scales import (
    INSTRUMENTS,
    ScaleError,
    get_instrument,
    is_remission,
    is_response,
    score,
)


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_ranges_and_bands_are_consistent(name: str) -> None:
    inst = INSTRUMENTS[name]
    lo = score(name, [r[0] for r in inst.item_ranges]).total
    hi = score(name, [r[1] for r in inst.item_ranges]).total
    assert (lo, hi) == inst.total_range
    if inst.bands:
        covered = []
        for a, b, _ in inst.bands:
            covered.extend(range(a, b + 1))
        assert covered == list(range(inst.total_range[0], inst.total_range[1] + 1))
    assert inst.source


@given(st.data())
def test_totals_lie_in_range(data) -> None:
    name = data.draw(st.sampled_from(sorted(INSTRUMENTS)))
    inst = INSTRUMENTS[name]
    items = [data.draw(st.integers(lo, hi)) for lo, hi in inst.item_ranges]
    s = score(name, items)
    assert inst.total_range[0] <= s.total <= inst.total_range[1]


@pytest.mark.parametrize("items,words", [
    ([1] * 8, "has 8 answers"),
    ([1] * 8 + [None], "missing"),
    ([1] * 8 + [4], "from 0 to 3"),
    ([1] * 8 + [-1], "from 0 to 3"),
    ([1] * 8 + [1.5], "1.5"),
    ([1] * 8 + [True], "True"),
])
def test_bad_questionnaires_are_typed_errors(items, words) -> None:
    with pytest.raises(ScaleError) as exc:
        score("phq9", items)
    assert words in str(exc.value) and isinstance(exc.value, KetasimError)


def test_phq9_item9_and_cssrs_flags() -> None:
    assert score("phq9", [0] * 8 + [1]).flags == ("phq9_item9_positive",)
    assert score("phq9", [3] * 8 + [0]).flags == ()
    assert score("cssrs_ideation", [2]).flags == ("suicidal_ideation",)
    assert score("phq9", [2] * 9).band == "moderately severe"


def test_response_and_remission_definitions() -> None:
    assert is_response("madrs", baseline=30, current=15)
    assert not is_response("madrs", baseline=30, current=16)
    assert is_response("caps5", baseline=60, current=42)
    assert is_response("ybocs", baseline=20, current=13) and not is_response(
        "ybocs", baseline=20, current=14)
    assert is_remission("madrs", 12) and not is_remission("madrs", 13)
    assert is_remission("phq9", 4) and not is_remission("phq9", 5)
    assert is_remission("hamd17", 7) and not is_remission("hamd17", 8)
    with pytest.raises(ScaleError, match="outside"):
        is_response("madrs", baseline=70, current=10)
    with pytest.raises(ScaleError, match="no remission"):
        is_remission("gad7", 3)
    assert get_instrument("HAM-D").id == "hamd17" and get_instrument("QIDS").id == "qids_sr16"
    with pytest.raises(ScaleError, match="unknown instrument"):
        get_instrument("beck")


def test_qids_domain_scoring() -> None:
    # sleep, appetite/weight and psychomotor domains take the highest item
    items = [3, 1, 0, 0, 2, 0, 1, 3, 0, 2, 1, 0, 2, 1, 0, 3]
    assert score("qids_sr16", items).total == 3 + 2 + 3 + 2 + 1 + 0 + 2 + 1 + 3
