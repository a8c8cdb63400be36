"""Dose-range checking by route, session and 24-hour totals, volumes, and the limits editor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ketasim.clinic.dose_check import (
    DEFAULT_ROUTE_LIMITS,
    DEFAULT_VERSION,
    DoseCheck,
    DoseCheckError,
    DoseLimits,
    DoseOrder,
    PatientDoseContext,
    RouteLimit,
    check_dose,
    dose_hard_mg,
    limits_from_mapping,
    parse_limits_json,
)
from ketasim.dosing.route import Route
from ketasim.references import Source, resolve

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIMITS = DoseLimits()
W = 70.0


def patient(weight: float = W, **kw) -> PatientDoseContext:
    return PatientDoseContext(weight_kg=weight, weight_measured_at=NOW - timedelta(days=1), **kw)


def order(route: str, amount: float, unit: str = "mg/kg", compound: str = "racemic",
          **kw) -> DoseOrder:
    if route == "iv_infusion":
        kw.setdefault("duration_min", 40.0)
    return DoseOrder(compound=compound, route=route, amount=amount, unit=unit, time=NOW, **kw)


def rules(check: DoseCheck) -> set[str]:
    return {f.rule for f in check.findings}


# -- every default route: just below / at / just above each per-dose limit ----------------
def _boundary_cases() -> list[tuple[str, str, float, str, str]]:
    cases = []
    for key, entry in DEFAULT_ROUTE_LIMITS.items():
        compound, _, route = key.partition(":")
        if compound != "racemic" or Route(route).is_intravenous:
            continue
        for unit, soft, hard in (("mg/kg", entry.mg_per_kg_soft, entry.mg_per_kg_hard),
                                 ("mg", entry.mg_soft, entry.mg_hard)):
            if hard is None:
                continue
            assert soft is not None, key
            cases += [(route, unit, soft * 0.99, "accept", key), (route, unit, soft, "accept", key),
                      (route, unit, soft * 1.01, "soft", key), (route, unit, hard, "soft", key),
                      (route, unit, hard * 1.01, "hard", key)]
    return cases


def test_every_route_and_compound_has_default_limits_with_a_source() -> None:
    racemic = {f"racemic:{r.value}" for r in Route}
    assert racemic | {"esketamine:intranasal"} == set(DEFAULT_ROUTE_LIMITS)
    for key, entry in DEFAULT_ROUTE_LIMITS.items():
        src = entry.source
        # a bibliography key (resolving to a record with a DOI, a PMID or a stated reason)
        keys = Source.parse(src).keys
        assert keys or "assumed" in src, key
        assert all(resolve(k).has_identifier or "no DOI" in resolve(k).note for k in keys)
        assert dose_hard_mg(LIMITS, *key.split(":"), W) is not None


@pytest.mark.parametrize("route,unit,amount,verdict,key", _boundary_cases())
def test_per_dose_boundaries_for_every_route(route: str, unit: str, amount: float,
                                             verdict: str, key: str) -> None:
    check = check_dose(order(route, amount, unit), patient(), LIMITS)
    assert check.verdict == verdict, [f.message for f in check.findings]
    if verdict != "accept":
        assert f"route_dose_{verdict}" in rules(check)


@pytest.mark.parametrize("mg_per_kg,verdict", [(0.74, "accept"), (0.75, "accept"),
                                               (0.76, "soft"), (1.0, "soft"), (1.01, "hard")])
def test_racemic_iv_boundaries_in_mg_and_mg_per_kg(mg_per_kg: float, verdict: str) -> None:
    assert check_dose(order("iv_infusion", mg_per_kg), patient(), LIMITS).verdict == verdict
    assert check_dose(order("iv_infusion", mg_per_kg * W, "mg"), patient(),
                      LIMITS).verdict == verdict
    bolus = check_dose(order("iv_bolus", mg_per_kg), patient(), LIMITS)
    assert bolus.verdict == ("hard" if verdict == "hard" else "soft")  # a bolus is always soft


def test_im_ten_mg_per_kg_is_hard_stopped() -> None:
    check = check_dose(order("im", 10.0), patient(72.0), LIMITS)
    assert check.verdict == "hard" and check.dose_mg == 720.0
    assert "route_dose_hard" in rules(check)
    assert check_dose(order("im", 720.0, "mg"), patient(72.0), LIMITS).verdict == "hard"


@pytest.mark.parametrize("key", sorted(DEFAULT_ROUTE_LIMITS))
def test_a_route_removed_from_the_table_is_hard_stopped(key: str) -> None:
    compound, _, route = key.partition(":")
    limits = DoseLimits(version="clinic-x", route_limits={
        k: v for k, v in DEFAULT_ROUTE_LIMITS.items() if k != key})
    small = 28.0 if compound == "esketamine" else 0.1 * W
    check = check_dose(order(route, small, "mg", compound), patient(), limits)
    assert check.verdict == "hard"
    [missing] = [f for f in check.findings if f.rule == "route_limits_missing"]
    assert f"by {route} in limits version clinic-x" in missing.message
    assert missing.fix == "an administrator must add limits for this route"


def test_routes_without_default_limits_are_hard_stopped() -> None:
    check = check_dose(order("sc", 0.5, compound="esketamine"), patient(), LIMITS)
    assert check.verdict == "hard"
    assert "no dose limits for esketamine by sc in limits version example-1" in \
        check.findings[0].message


# -- session and 24-hour totals ------------------------------------------------------------
def test_four_doses_of_0_7_mg_per_kg_are_stopped_by_the_session_total() -> None:
    given_mg: list[float] = []
    verdicts = []
    for _ in range(4):
        check = check_dose(order("iv_infusion", 0.7), patient(session_doses_mg=tuple(given_mg)),
                           LIMITS)
        verdicts.append(check.verdict)
        given_mg.append(check.dose_mg)
    assert verdicts == ["accept", "hard", "hard", "hard"]
    second = check_dose(order("iv_infusion", 0.7), patient(session_doses_mg=(49.0,)), LIMITS)
    assert "session_total_hard" in rules(second) and second.session_total_mg == 98.0


@pytest.mark.parametrize("earlier_mg_per_kg,verdict", [(0.2, "accept"), (0.3, "soft"),
                                                       (0.55, "hard")])
def test_session_total_soft_and_hard_for_iv(earlier_mg_per_kg: float, verdict: str) -> None:
    ctx = patient(session_doses_mg=(earlier_mg_per_kg * W,))
    check = check_dose(order("iv_infusion", 0.5), ctx, LIMITS)
    assert check.verdict == verdict
    if verdict != "accept":
        assert f"session_total_{verdict}" in rules(check)


def test_esketamine_devices_add_up_per_session() -> None:
    doses: list[float] = []
    for n in range(1, 5):
        check = check_dose(order("intranasal", 28.0, "mg", "esketamine"),
                           patient(session_doses_mg=tuple(doses)), LIMITS)
        doses.append(28.0)
        expected = {1: "soft", 2: "accept", 3: "accept", 4: "hard"}[n]  # 56 and 84 are label doses
        assert check.verdict == expected, (n, rules(check))
    assert "session_total_hard" in rules(check)


@pytest.mark.parametrize("hours_ago,verdict", [(20.0, "hard"), (23.9, "hard"), (24.0, "accept"),
                                               (30.0, "accept")])
def test_rolling_24_hour_total_across_sessions(hours_ago: float, verdict: str) -> None:
    ctx = patient(earlier_doses=((NOW - timedelta(hours=hours_ago), 0.7 * W),))
    check = check_dose(order("iv_infusion", 0.7), ctx, LIMITS)
    assert check.verdict == verdict
    if verdict == "hard":
        assert rules(check) == {"day_total_hard"}


def test_oral_doses_within_a_day() -> None:
    one = (NOW - timedelta(hours=10), 1.0 * W)
    two = (NOW - timedelta(hours=5), 1.0 * W)
    assert check_dose(order("oral", 1.0), patient(earlier_doses=(one,)), LIMITS).verdict == \
        "accept"  # 2 mg/kg in 24 h is the limit itself
    check = check_dose(order("oral", 1.0), patient(earlier_doses=(one, two)), LIMITS)
    assert check.verdict == "hard" and "day_total_hard" in rules(check)


def test_this_sessions_doses_are_not_counted_twice_in_the_day_total() -> None:
    earlier = (NOW - timedelta(minutes=20), 0.4 * W)
    ctx = patient(session_doses_mg=(0.4 * W,), earlier_doses=(earlier,))
    check = check_dose(order("iv_infusion", 0.3), ctx, LIMITS)
    assert check.day_total_mg == pytest.approx(0.7 * W) and check.verdict == "accept"
    # the session's doses count even when the caller leaves them out of earlier_doses
    check = check_dose(order("iv_infusion", 0.3), patient(session_doses_mg=(0.8 * W,)), LIMITS)
    assert {"session_total_hard", "day_total_hard"} <= rules(check)


def test_mixed_naive_and_aware_times_are_refused() -> None:
    ctx = patient(earlier_doses=((datetime(2026, 3, 2, 8), 10.0),))
    with pytest.raises(DoseCheckError, match="earlier_doses"):
        check_dose(order("iv_infusion", 0.5), ctx, LIMITS)


# -- volumes -------------------------------------------------------------------------------
@pytest.mark.parametrize("conc", [10.0, 50.0, 100.0])
def test_ml_at_each_stock_concentration(conc: float) -> None:
    ml = 35.0 / conc  # 35 mg = 0.5 mg/kg at 70 kg
    check = check_dose(order("iv_infusion", ml, "mL", concentration_mg_per_ml=conc), patient(),
                       LIMITS)
    assert check.dose_mg == pytest.approx(35.0) and check.volume_ml == ml
    assert rules(check) == ({"iv_undiluted"} if conc == 100.0 else set())
    im = check_dose(order("im", ml, "mL", concentration_mg_per_ml=conc), patient(), LIMITS)
    assert im.verdict == "accept"  # undiluted stock is fine IM


def test_100_mg_per_ml_iv_gets_the_dilution_warning() -> None:
    check = check_dose(order("iv_infusion", 0.35, "mL", concentration_mg_per_ml=100.0),
                       patient(), LIMITS)
    assert check.verdict == "soft"
    [f] = check.findings
    assert "dilute before IV use; never give 100 mg/mL IV undiluted" in f.message


def test_a_stock_the_clinic_does_not_hold_is_hard() -> None:
    check = check_dose(order("im", 1.0, "mL", concentration_mg_per_ml=25.0), patient(), LIMITS)
    assert check.verdict == "hard" and "stock_concentration" in rules(check)
    clinic = DoseLimits(version="c2", stock_concentrations_mg_per_ml=(10.0, 25.0))
    assert check_dose(order("im", 1.0, "mL", concentration_mg_per_ml=25.0), patient(),
                      clinic).verdict == "accept"


@pytest.mark.parametrize("route,mg", [("iv_infusion", 35.0), ("im", 35.0), ("sc", 35.0),
                                      ("oral", 70.0), ("intranasal", 50.0)])
@pytest.mark.parametrize("conc", [50.0, 100.0])
def test_mg_typed_as_ml_is_caught(route: str, mg: float, conc: float) -> None:
    check = check_dose(order(route, mg, "mL", concentration_mg_per_ml=conc), patient(), LIMITS)
    assert check.verdict == "hard" and "ml_as_mg" in rules(check)
    assert any("looks like mg typed as mL" in f.message for f in check.findings)


def test_esketamine_is_never_dosed_in_ml() -> None:
    check = check_dose(order("intranasal", 0.4, "mL", "esketamine",
                             concentration_mg_per_ml=140.0), patient(), LIMITS)
    assert check.verdict == "hard" and "esketamine_ml" in rules(check)


def test_volume_needs_a_concentration_and_only_a_volume_has_one() -> None:
    with pytest.raises(DoseCheckError, match="concentration_mg_per_ml"):
        order("im", 1.0, "mL")
    with pytest.raises(DoseCheckError, match="concentration_mg_per_ml"):
        order("im", 35.0, "mg", concentration_mg_per_ml=10.0)
    with pytest.raises(ValidationError):
        order("im", float("inf"), "mg")


# -- ten-fold errors never escape, in any unit -----------------------------------------------
ALL_KEYS = [(c, r.value) for c in ("racemic", "esketamine") for r in Route]


@settings(max_examples=400, deadline=None)
@given(key=st.sampled_from(ALL_KEYS), weight=st.floats(30.0, 250.0),
       factor=st.floats(10.0, 1000.0), unit=st.sampled_from(["mg", "mg/kg", "mL"]),
       conc=st.sampled_from([10.0, 50.0, 100.0]), drop=st.booleans())
def test_ten_fold_the_route_hard_limit_is_always_hard(key: tuple[str, str], weight: float,
                                                      factor: float, unit: str, conc: float,
                                                      drop: bool) -> None:
    compound, route = key
    limits = LIMITS if not drop else DoseLimits(version="clinic-y", route_limits={
        k: v for k, v in DEFAULT_ROUTE_LIMITS.items() if k != f"{compound}:{route}"})
    hard = dose_hard_mg(limits, compound, route, weight) or 10.0
    mg = factor * hard
    amount = {"mg": mg, "mg/kg": mg / weight, "mL": mg / conc}[unit]
    extra = {"concentration_mg_per_ml": conc} if unit == "mL" else {}
    check = check_dose(order(route, amount, unit, compound, **extra), patient(weight), limits)
    assert check.verdict == "hard"


# -- the limits editor ---------------------------------------------------------------------
def doc(**changes: object) -> str:
    data = LIMITS.model_dump(mode="json")
    data.update({"version": "clinic-2026-03", **changes})
    return json.dumps(data)


def test_a_clinic_table_round_trips() -> None:
    limits = parse_limits_json(doc(racemic_iv_mg_per_kg_soft=0.55))
    assert limits.version == "clinic-2026-03" and limits.racemic_iv_mg_per_kg_soft == 0.55
    assert limits.route_limits == LIMITS.route_limits


def test_existing_stored_json_without_route_limits_still_loads() -> None:
    stored = {"version": "clinic-2026-11", "effective": "2026-01-01", "owner": "Demo Clinic",
              "source": "clinic protocol", "weight_range_kg": [30.0, 250.0],
              "weight_max_age_days": 30, "weight_jump_fraction": 0.1,
              "racemic_iv_mg_per_kg_soft": 0.55, "racemic_iv_mg_per_kg_hard": 1.0,
              "racemic_iv_min_duration_min": 40.0, "esketamine_device_mg": 28.0,
              "esketamine_max_mg": 84.0, "esketamine_label_doses_mg": [56.0, 84.0],
              "esketamine_max_sessions_7d": 2, "protocol_multiple_hard": 10.0}
    for limits in (DoseLimits.model_validate(stored), limits_from_mapping(stored),
                   parse_limits_json(json.dumps(stored))):
        assert limits.route_limits == DEFAULT_ROUTE_LIMITS
        assert limits.stock_concentrations_mg_per_ml == (10.0, 50.0, 100.0)
        assert check_dose(order("im", 10.0), patient(), limits).verdict == "hard"
    assert DoseLimits.model_validate({}) == LIMITS  # the web layer's fallback


def _nested(depth: int) -> str:
    return '{"version": "v9", "owner": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("text,field,problem", [
    (doc(racemic_iv_mg_per_kg_hard="Infinity").replace('"Infinity"', "Infinity"),
     "racemic_iv_mg_per_kg_hard", "not a finite number"),
    (doc(racemic_iv_mg_per_kg_hard="NaN").replace('"NaN"', "NaN"),
     "racemic_iv_mg_per_kg_hard", "not a finite number"),
    (doc(esketamine_max_mg="X").replace('"X"', "-Infinity"), "esketamine_max_mg",
     "not a finite number"),
    (doc(racemic_iv_mg_per_kg_hard="X").replace('"X"', "1e999"), "racemic_iv_mg_per_kg_hard",
     "overflows"),
    (doc(racemic_iv_mg_per_kg_hard=1e300), "racemic_iv_mg_per_kg_hard", "plausible cap"),
    (doc(esketamine_max_mg=1e300), "esketamine_max_mg", "plausible cap"),
    (doc(racemic_iv_mg_per_kg_soft=1.0, racemic_iv_mg_per_kg_hard=0.5),
     "racemic_iv_mg_per_kg_hard", "hard limit"),
    (doc(weight_range_kg=[250, 30]), "weight_range_kg", "not below"),
    (doc(weight_range_kg=[0.5, 250]), "weight_range_kg.0", "outside"),
    (doc(weight_range_kg=[30, 1e300]), "weight_range_kg.1", "outside"),
    (doc(version=""), "version", "empty"),
    (doc(version="   "), "version", "empty"),
    (doc(version="x" * 61), "version", "61 characters"),
    (doc(version="a\x00b"), "version", "non-printable"),
    (doc(version=DEFAULT_VERSION), "version", "built-in"),
    (json.dumps({"owner": "no version given"}), "version", "built-in"),
    (doc(version="x" * 100_000), "limits", "bytes"),
    (doc(owner="o" * 201), "owner", "201 characters"),
    ("[" * 100_000 + "]" * 100_000, "limits", "bytes"),
    ("[" * 30_000 + "]" * 30_000, "limits", "deeper than 20"),
    (_nested(25), "limits", "deeper than 20"),
    ("{not json", "limits", "line 1 column 2"),
    ('{"version": "v1",\n "owner": }', "limits", "line 2 column"),
    ("[1, 2]", "limits", "not an object"),
    ('{"version": "v1", "version": "v2"}', "version", "twice"),
    (doc(unknown_rule=1), "unknown_rule", "Extra inputs"),
    (doc(stock_concentrations_mg_per_ml=[10, 0]), "stock_concentrations_mg_per_ml.1", "above 0"),
    (doc(stock_concentrations_mg_per_ml=[]), "stock_concentrations_mg_per_ml", "at least 1"),
    (doc(route_limits={"racemic:im": {"mg_per_kg_soft": 2.0, "mg_per_kg_hard": 1.0,
                                      "source": "x"}}),
     "route_limits.racemic:im.mg_per_kg_hard", "below the soft"),
    (doc(route_limits={"racemic:im": {"mg_per_kg_hard": 50.0, "source": "x"}}),
     "route_limits.racemic:im.mg_per_kg_hard", "plausible cap"),
    (doc(route_limits={"racemic:im": {"mg_hard": 1e300, "source": "x"}}),
     "route_limits.racemic:im.mg_hard", "plausible cap"),
    (doc(route_limits={"racemic:im": {"mg_per_kg_hard": "X", "source": "x"}}).replace(
        '"X"', "Infinity"), "route_limits.racemic:im.mg_per_kg_hard", "not a finite number"),
    (doc(route_limits={"racemic:im": {"mg_per_kg_soft": 0.5, "source": "x"}}),
     "route_limits.racemic:im.mg_per_kg_hard", "no hard limit"),
    (doc(route_limits={"racemic:im": {"mg_per_kg_hard": 1.0, "source": ""}}),
     "route_limits.racemic:im.source", "empty"),
    (doc(route_limits={"racemic:nose": {"mg_hard": 10.0, "source": "x"}}),
     "route_limits.racemic:nose", "not a known"),
    (doc(route_limits={"racemic:iv_bolus": {"mg_per_kg_hard": 5.0, "source": "x"}}),
     "route_limits.racemic:iv_bolus.mg_per_kg_hard", "set twice"),
    (doc(route_limits={"esketamine:intranasal": {"mg_hard": 168.0, "source": "x"}}),
     "route_limits.esketamine:intranasal.mg_hard", "set twice"),
])
def test_bad_limits_documents_are_refused_naming_the_field(text: str, field: str,
                                                           problem: str) -> None:
    with pytest.raises(DoseCheckError) as caught:
        parse_limits_json(text)
    assert caught.value.field == field, str(caught.value)
    assert problem in caught.value.problem, str(caught.value)
    assert caught.value.fix


def test_limits_are_validated_from_python_too() -> None:
    for bad in ({"racemic_iv_mg_per_kg_hard": float("inf")},
                {"racemic_iv_mg_per_kg_hard": float("nan")},
                {"racemic_iv_mg_per_kg_hard": 1e300},
                {"weight_range_kg": (250.0, 30.0)},
                {"version": "x" * 100_000},
                {"stock_concentrations_mg_per_ml": (float("inf"),)},
                {"route_limits": {"racemic:im": RouteLimit.model_construct(
                    mg_per_kg_hard=float("inf"), source="x")}}):
        with pytest.raises(ValidationError):
            DoseLimits.model_validate({"version": "v5", **bad})
        with pytest.raises(DoseCheckError):
            limits_from_mapping({"version": "v5", **bad})
    with pytest.raises(ValidationError):
        RouteLimit(mg_per_kg_hard=float("inf"), source="x")
    with pytest.raises(DoseCheckError) as caught:
        limits_from_mapping({"version": "x" * 100_000})
    assert caught.value.field == "version"


def test_the_example_version_is_reserved_for_the_built_in_table() -> None:
    assert DoseLimits().version == DEFAULT_VERSION
    assert DoseLimits.model_validate(LIMITS.model_dump(mode="json")) == LIMITS
    with pytest.raises(ValidationError, match="built-in example"):
        DoseLimits(racemic_iv_mg_per_kg_soft=0.5)
    with pytest.raises(DoseCheckError, match="version"):
        parse_limits_json(LIMITS.model_dump_json())


def test_a_raised_hard_limit_cannot_switch_off_the_stop() -> None:
    limits = parse_limits_json(doc(racemic_iv_mg_per_kg_hard=20.0))
    assert check_dose(order("iv_infusion", 50.0), patient(), limits).verdict == "hard"
