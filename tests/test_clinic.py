"""Clinic rules: number entry, dose-range checks and overrides, monitored sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketasim.clinic.dose_check import (
    DoseCheckError,
    DoseLimits,
    DoseOrder,
    Override,
    PatientDoseContext,
    authorize,
    check_dose,
)
from ketasim.clinic.numbers import NumberEntryError, parse_number
from ketasim.clinic.session import MonitoredSession, MonitoringRules, SessionError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIMITS = DoseLimits()


def patient(weight: float = 70.0, **kw) -> PatientDoseContext:
    return PatientDoseContext(weight_kg=weight, weight_measured_at=NOW - timedelta(days=1), **kw)


def racemic(amount: float, unit: str = "mg/kg", duration: float | None = 40.0,
            **kw) -> DoseOrder:
    return DoseOrder(compound="racemic", route="iv_infusion" if duration else "iv_bolus",
                     amount=amount, unit=unit, duration_min=duration, time=NOW, **kw)


def esk(mg: float) -> DoseOrder:
    return DoseOrder(compound="esketamine", route="intranasal", amount=mg, unit="mg", time=NOW)


@pytest.mark.parametrize("text,value", [("0.5", 0.5), ("84", 84.0), ("12.25", 12.25),
                                        ("1", 1.0)])
def test_numbers_accepted(text: str, value: float) -> None:
    assert parse_number(text, field="dose") == value


@pytest.mark.parametrize("text", [".5", "5.0", "1.50", "0,5", "5e-1", "-1", "+2", "", " ",
                                  "0", "00.5", "1 000", "abc", "½", "5 mg"])
def test_numbers_refused_never_coerced(text: str) -> None:
    with pytest.raises(NumberEntryError):
        parse_number(text, field="dose")


@pytest.mark.parametrize("order,ctx,verdict,rule", [
    (racemic(0.75), patient(), "accept", None),
    (racemic(0.76), patient(), "soft", "racemic_iv_soft"),
    (racemic(1.0), patient(), "soft", "racemic_iv_soft"),
    (racemic(1.01), patient(), "hard", "racemic_iv_hard"),
    (racemic(0.5, duration=39.0), patient(), "soft", "racemic_iv_duration"),
    (racemic(35.0, unit="mg"), patient(), "accept", None),
    (racemic(0.5), patient(29.0), "hard", "weight_range"),
    (racemic(0.5), patient(251.0), "hard", "weight_range"),
    (esk(56.0), patient(), "accept", None),
    (esk(84.0), patient(), "accept", None),
    (esk(28.0), patient(), "soft", "esketamine_label_dose"),
    (esk(70.0), patient(), "hard", "esketamine_devices"),
    (esk(112.0), patient(), "hard", "esketamine_max"),
])
def test_dose_range_boundaries(order, ctx, verdict, rule) -> None:
    check = check_dose(order, ctx, LIMITS)
    assert check.verdict == verdict
    if rule:
        assert rule in {f.rule for f in check.findings}


def test_stale_weight_lb_kg_and_jumps() -> None:
    stale = PatientDoseContext(weight_kg=70, weight_measured_at=NOW - timedelta(days=40))
    assert "weight_recent" in {f.rule for f in check_dose(racemic(0.5), stale, LIMITS).findings}
    lb = patient(154.0, previous_weight_kg=70.0)  # 70 kg typed as 154 lb
    assert check_dose(racemic(0.5), lb, LIMITS).verdict == "hard"
    jump = patient(80.0, previous_weight_kg=70.0)
    assert {f.rule for f in check_dose(racemic(0.5), jump, LIMITS).findings} == {"weight_jump"}


def test_frequency_above_label() -> None:
    ctx = patient(session_times=(NOW - timedelta(days=3), NOW - timedelta(days=6)))
    assert "esketamine_frequency" in {f.rule for f in check_dose(esk(84), ctx, LIMITS).findings}


@settings(max_examples=200, deadline=None)
@given(protocol=st.floats(5.0, 100.0), factor=st.floats(10.0, 1000.0),
       weight=st.floats(30.0, 250.0))
def test_ten_fold_errors_never_escape(protocol: float, factor: float, weight: float) -> None:
    order = racemic(protocol * factor, unit="mg", protocol_dose_mg=protocol)
    assert check_dose(order, patient(weight), LIMITS).verdict == "hard"


@settings(max_examples=200, deadline=None)
@given(weight=st.floats(40.0, 120.0), per_kg=st.floats(0.1, 0.75))
def test_mg_typed_into_the_mg_per_kg_field_is_stopped(weight: float, per_kg: float) -> None:
    mg = round(per_kg * weight, 1)  # the intended dose in mg, typed into the mg/kg field
    check = check_dose(racemic(mg, unit="mg/kg"), patient(weight), LIMITS)
    assert check.verdict == "hard"


def test_overrides_need_reasons_and_a_second_clinician() -> None:
    soft = check_dose(racemic(0.8), patient(), LIMITS)
    with pytest.raises(DoseCheckError, match="override"):
        authorize(soft)
    with pytest.raises(DoseCheckError, match="reason"):
        authorize(soft, Override(reason="ok", clinician="dr a", at=NOW))
    record = authorize(soft, Override(reason="protocol 0.8 mg/kg for non-response",
                                      clinician="dr a", at=NOW))
    assert record["verdict"] == "soft" and record["limits_version"] == LIMITS.version
    hard = check_dose(racemic(1.2), patient(), LIMITS)
    with pytest.raises(DoseCheckError, match="second clinician"):
        authorize(hard, Override(reason="documented anaesthesia plan", clinician="dr a",
                                 at=NOW, second_clinician="dr a"))
    assert authorize(hard, Override(reason="documented anaesthesia plan", clinician="dr a",
                                    second_clinician="dr b", at=NOW))["verdict"] == "hard"
    assert authorize(check_dose(racemic(0.5), patient(), LIMITS))["override"] is None


def test_limits_table_is_validated() -> None:
    from pydantic import ValidationError
    with pytest.raises(ValidationError):
        DoseLimits(racemic_iv_mg_per_kg_soft=1.0, racemic_iv_mg_per_kg_hard=0.5)
    with pytest.raises(ValidationError):
        DoseLimits(unknown_rule=1)  # type: ignore[call-arg]


RULES = MonitoringRules(spo2_min=92, moaas_alert_max=2)


def started(compound: str = "esketamine") -> MonitoredSession:
    s = MonitoredSession(compound, RULES, rems_enrolled=True)  # type: ignore[arg-type]
    s.predose_check(NOW, sbp=125, dbp=80, hr=70, spo2=98, contraindications_confirmed=True)
    s.administer(NOW + timedelta(minutes=2), dose_mg=84)
    return s


def test_session_rules() -> None:
    with pytest.raises(SessionError, match="REMS"):
        MonitoredSession("esketamine", RULES)
    s = MonitoredSession("racemic", RULES)
    with pytest.raises(SessionError, match="pre-dose"):
        s.administer(NOW, dose_mg=35)
    with pytest.raises(SessionError, match="above"):
        s.predose_check(NOW, sbp=150, dbp=85, hr=70, spo2=98, contraindications_confirmed=True)
    s.predose_check(NOW, sbp=150, dbp=85, hr=70, spo2=98, contraindications_confirmed=True,
                    override_reason="chronic controlled hypertension, cardiology cleared")
    assert s.predose_override
    with pytest.raises(SessionError, match="time zone"):
        s.administer(datetime(2026, 3, 2, 9, 5), dose_mg=35)
    s = started()
    alerts = s.vitals(NOW + timedelta(minutes=40), sbp=170, dbp=95, hr=90, spo2=91, moaas=2)
    assert {a.kind for a in alerts} == {"bp", "spo2", "sedation"}
    s.vitals(NOW + timedelta(minutes=115), sbp=130, dbp=82, hr=72, spo2=97, moaas=5)
    with pytest.raises(SessionError, match="observation"):
        s.discharge(NOW + timedelta(minutes=100), effects_resolved=True)
    with pytest.raises(SessionError, match="acknowledge"):
        s.discharge(NOW + timedelta(minutes=125), effects_resolved=True)
    for a in s.alerts:
        s.acknowledge(a, "nurse b")
    with pytest.raises(SessionError, match="resolved"):
        s.discharge(NOW + timedelta(minutes=125), effects_resolved=False)
    due = s.discharge(NOW + timedelta(minutes=125), effects_resolved=True)
    assert due == NOW + timedelta(minutes=125, days=7)
    with pytest.raises(SessionError, match="closed"):
        s.vitals(NOW + timedelta(minutes=130), sbp=120, dbp=80, hr=70, spo2=98)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["vitals", "discharge", "ack"]),
                          st.integers(0, 240), st.booleans()), max_size=12))
def test_no_illegal_closure(events) -> None:
    """Whatever the order of events, a session closes only when every rule holds."""
    s = started()
    first = NOW + timedelta(minutes=2)
    for kind, minute, flag in events:
        t = NOW + timedelta(minutes=minute)
        if kind == "vitals":
            try:
                s.vitals(t, sbp=175 if flag else 130, dbp=85, hr=75, spo2=97)
            except SessionError:
                pass
        elif kind == "ack":
            for a in s.alerts:
                s.acknowledge(a, "nurse")
        else:
            try:
                s.discharge(t, effects_resolved=flag)
            except SessionError:
                continue
            assert t - first >= timedelta(minutes=120)
            assert flag
            assert any(timedelta(minutes=30) <= v.time - first <= timedelta(minutes=60)
                       for v in s.observations)
            assert any(timedelta(0) <= t - v.time <= timedelta(minutes=30)
                       for v in s.observations)
            assert all(a.acknowledged_by for a in s.alerts)
            break
