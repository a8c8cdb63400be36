"""Issue #11 regression tests: dose and session safety, bad input, log-in back-off, second
factor, exports — each numbered item of the review, through the real app (SQLite and
PostgreSQL), with the server clock driven by the tests."""

from __future__ import annotations

import io
import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyotp
import pytest
from sqlalchemy import func, select
from tests.test_web import KEY, PASSWORDS, app, client, csrf_of, login  # noqa: F401
from tests.test_web_sessions import (  # noqa: F401
    T0,
    VITALS_OK,
    at,
    dosed_session,
    ids,
    n_events,
    post,
    server_clock,
    set_clock,
    start,
    token,
)

from ketasim.storage.models import (
    AuditRow,
    Clinic,
    DoseLimitsVersion,
    LoginThrottle,
    MonitoredSessionRow,
    QuestionnaireResponse,
    SafetyAlert,
    SessionEvent,
    User,
    WebSession,
)

DOSE = {"product": "ketamine 10 mg/mL", "lot": "L1", "route": "iv_infusion",
        "duration_min": "40", "amount": "0.5", "unit": "mg/kg", "weight_kg": "72",
        "weight_date": T0.date().isoformat()}


def checked_session(app, c, patient: str = "Demo Patient A") -> int:  # noqa: F811
    """A started session with its pre-dose check at T0 (no dose yet)."""
    set_clock(app, T0 - timedelta(minutes=2))
    r = start(c, ids(app)[patient])
    assert r.status_code == 303, r.text
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    assert post(c, sid, "predose", **VITALS_OK, contraindications_confirmed="yes",
                time=at(0)).status_code == 303
    return sid


def count(app, table) -> int:  # noqa: F811
    with app.state.sessions() as db:
        return int(db.scalar(select(func.count()).select_from(table)))


# -- 1. every route the server accepts has limits; a route without limits is a hard stop --

@pytest.mark.parametrize(("route", "amount", "unit"), [
    ("im", "10", "mg/kg"),  # the review's case: IM 10 mg/kg = 720 mg
    ("sc", "3", "mg/kg"), ("oral", "10", "mg/kg"), ("sublingual", "500", "mg"),
    ("buccal", "500", "mg"), ("rectal", "10", "mg/kg"), ("intranasal", "400", "mg"),
    ("inhaled", "5", "mg/kg"),  # not offered by the form, accepted by the server: checked
])
def test_every_route_has_a_hard_limit(app, route, amount, unit) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = checked_session(app, c)
    before = n_events(app)
    r = post(c, sid, "dose", **{**DOSE, "route": route, "amount": amount, "unit": unit},
             time=at(5))
    assert r.status_code == 400 and "hard stop" in r.text, r.text[-800:]
    assert n_events(app) == before


def test_a_route_without_limits_is_a_hard_stop(app) -> None:  # noqa: F811
    a = client(app)
    login(a, "administrator")
    limits = json.loads(re.search(r'<textarea name="limits"[^>]*>(.*?)</textarea>',
                                  a.get("/admin").text, re.S).group(1).replace("&#34;", '"'))
    del limits["route_limits"]["racemic:im"]
    limits["version"] = "no-im-2026"
    assert a.post("/admin/dose-limits", data={"csrf_token": token(a, "/admin"),
                                              "limits": json.dumps(limits)}).status_code == 303
    c = client(app)
    login(c, "nurse")
    sid = checked_session(app, c)
    r = post(c, sid, "dose", **{**DOSE, "route": "im", "amount": "0.25"}, time=at(5))
    assert r.status_code == 400 and "no dose limits" in r.text


# -- 2. session and day totals, one-use form tokens, one open session per patient --

def test_doses_in_one_session_are_checked_as_a_total(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = checked_session(app, c)
    soft = {**DOSE, "amount": "0.7", "override_reason": "titration per protocol"}
    assert post(c, sid, "dose", **soft, time=at(5)).status_code == 303
    r = post(c, sid, "dose", **soft, time=at(20))  # 1.4 mg/kg in the session
    assert r.status_code == 400 and "hard stop" in r.text
    assert count(app, SessionEvent) == 2  # pre-dose check and the first dose only


def dose_form(app, c, sid: int) -> dict[str, str]:  # noqa: F811
    """The dose form as the page gives it (with its one-use token), at 5 min, the server
    clock 30 s later."""
    page = c.get(f"/sessions/{sid}").text
    set_clock(app, T0 + timedelta(minutes=5, seconds=30))
    return {"csrf_token": csrf_of(c), **DOSE, "time": at(5),
            "form_token": re.search(r'name="form_token" value="([^"]+)"', page).group(1)}


def test_a_double_click_records_a_dose_once(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = checked_session(app, c)
    data = dose_form(app, c, sid)
    first = c.post(f"/sessions/{sid}/dose", data=data)
    second = c.post(f"/sessions/{sid}/dose", data=data)
    assert first.status_code == second.status_code == 303
    with app.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(SessionEvent).where(
            SessionEvent.kind == "dose")) == 1
    # a dose without the form's token is refused
    r = c.post(f"/sessions/{sid}/dose", data={**data, "form_token": ""})
    assert r.status_code == 400 and "form_token" in r.text


def test_concurrent_double_submission_records_once(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = checked_session(app, c)
    data = dose_form(app, c, sid)
    codes: list[int] = []

    def submit() -> None:
        codes.append(c.post(f"/sessions/{sid}/dose", data=data).status_code)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(code in (303, 409) for code in codes), codes
    with app.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(SessionEvent).where(
            SessionEvent.kind == "dose")) == 1


def test_one_open_session_per_patient(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    pid = ids(app)["Demo Patient A"]
    assert start(c, pid).status_code == 303
    r = start(c, pid)
    assert r.status_code == 400 and "still open" in r.text
    assert count(app, MonitoredSessionRow) == 1
    # a session started by mistake is cancelled (with a reason) before any dose
    with app.state.sessions() as db:
        sid = db.scalar(select(MonitoredSessionRow.id))
    assert post(c, sid, "cancel", cancel_reason="x").status_code == 400
    assert post(c, sid, "cancel", cancel_reason="wrong patient selected").status_code == 303
    assert start(c, pid).status_code == 303
    # concurrent starts for one patient: exactly one succeeds
    other = ids(app)["Demo Patient B"]
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(start(c, other).status_code))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes).count(303) == 1, codes
    with app.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(MonitoredSessionRow).where(
            MonitoredSessionRow.patient_id == other)) == 1


def test_a_dosed_session_cannot_be_cancelled(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = dosed_session(app, c)
    r = post(c, sid, "cancel", cancel_reason="changed my mind about it")
    assert r.status_code == 400 and "dose has been given" in r.text


# -- 3. server time: no back-dating past a bounded window, discharge on the server clock --

def test_discharge_is_judged_on_the_server_clock(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    set_clock(app, datetime.now(UTC))
    r = start(c, ids(app)["Demo Patient A"])
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    now = app.state.ctx.clock.t
    # the review's walk-around: every step stated hours back, discharge 40 ms later
    old = (now - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")

    def raw(step: str, **fields: str):
        page = c.get(f"/sessions/{sid}").text
        ft = re.search(r'name="form_token" value="([^"]+)"', page)
        return c.post(f"/sessions/{sid}/{step}", data={
            "csrf_token": csrf_of(c), "form_token": ft.group(1) if ft else "", **fields})

    r = raw("predose", **VITALS_OK, contraindications_confirmed="yes", time=old)
    assert r.status_code == 400 and "more than 60 min" in r.text
    assert raw("predose", **VITALS_OK, contraindications_confirmed="yes").status_code == 303
    assert raw("dose", **DOSE).status_code == 303
    assert raw("vitals", **VITALS_OK).status_code == 303
    r = raw("discharge", effects_resolved="yes", time=old)
    assert r.status_code == 400 and "120-min observation" in r.text
    with app.state.sessions() as db:
        assert db.get(MonitoredSessionRow, sid).discharged_at is None


def test_late_entries_need_a_reason_and_never_precede_the_session(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = checked_session(app, c)
    set_clock(app, T0 + timedelta(minutes=40))
    page = c.get(f"/sessions/{sid}").text
    ft = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    stated = at(5)  # 35 min before the server clock
    data = {"csrf_token": csrf_of(c), **DOSE, "time": stated, "form_token": ft}
    r = c.post(f"/sessions/{sid}/dose", data=data)
    assert r.status_code == 400 and "reason for the late entry" in r.text
    r = c.post(f"/sessions/{sid}/dose", data={**data, "late_reason": "charted after the "
                                              "infusion was set up"})
    assert r.status_code == 303
    with app.state.sessions() as db:
        ev = db.scalar(select(SessionEvent).where(SessionEvent.kind == "dose"))
        assert ev.data["late_reason"].startswith("charted after")
        assert ev.recorded_at.replace(tzinfo=UTC) - ev.at.replace(tzinfo=UTC) == \
            timedelta(minutes=35)
    r = post(c, sid, "vitals", **VITALS_OK, time=at(-3), late_reason="x" * 20)
    assert r.status_code == 400 and "before the session started" in r.text


# -- 4. strict number entry for doses and weights --

@pytest.mark.parametrize(("field", "value", "message"), [
    ("amount", ".5", "leading zero"), ("amount", "0.50", "trailing zero"),
    ("amount", "5e-1", "scientific notation"), ("amount", "０.５", "cannot read"),
    ("amount", "٠٫٥", "cannot read"), ("amount", "0,5", "comma"),
    ("weight_kg", "72.0", "trailing zero"), ("weight_kg", "７２", "cannot read"),
    ("amount", "Infinity", "cannot read"), ("amount", "NaN", "cannot read"),
])
def test_dose_and_weight_are_read_strictly(app, field, value, message) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = checked_session(app, c)
    r = post(c, sid, "dose", **{**DOSE, field: value}, time=at(5))
    assert r.status_code == 400 and message in r.text
    assert count(app, SessionEvent) == 1


# -- 5. the dose-limits editor refuses what would switch the hard stop off --

@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: {**d, "version": "v2", "racemic_iv_mg_per_kg_hard": "INF"}, "Infinity"),
    (lambda d: {**d, "version": "v2", "racemic_iv_mg_per_kg_hard": 1e300}, "racemic_iv"),
    (lambda d: {**d, "version": "v2", "racemic_iv_mg_per_kg_soft": 2.0,
                "racemic_iv_mg_per_kg_hard": 1.0}, "racemic_iv"),
    (lambda d: {**d, "version": "v2", "weight_range_kg": [250, 30]}, "weight_range"),
    (lambda d: {**d, "version": ""}, "version"),
    (lambda d: {**d, "version": "v" * 100_000}, "above 65536 bytes"),
    (lambda d: {**d, "version": "v" * 61}, "version"),
    (lambda d: {**d, "version": "example-1", "racemic_iv_mg_per_kg_soft": 0.6}, "example-1"),
])
def test_bad_dose_limits_are_refused(app, edit, message) -> None:  # noqa: F811
    a = client(app)
    login(a, "administrator")
    limits = json.loads(re.search(r'<textarea name="limits"[^>]*>(.*?)</textarea>',
                                  a.get("/admin").text, re.S).group(1).replace("&#34;", '"'))
    text = json.dumps(edit(limits)).replace('"INF"', "Infinity")
    r = a.post("/admin/dose-limits", data={"csrf_token": token(a, "/admin"), "limits": text})
    assert r.status_code in (400, 413), r.status_code
    if r.status_code == 400:
        assert message in r.text
    assert count(app, DoseLimitsVersion) == 0


def test_deep_json_limits_are_refused_and_the_hard_stop_holds(app) -> None:  # noqa: F811
    a = client(app)
    login(a, "administrator")
    deep = "[" * 100_000 + "]" * 100_000
    r = a.post("/admin/dose-limits", data={"csrf_token": token(a, "/admin"), "limits": deep})
    assert r.status_code in (400, 413)
    deep = "[" * 5_000 + "]" * 5_000  # under the body cap: refused by the parser
    r = a.post("/admin/dose-limits", data={"csrf_token": token(a, "/admin"), "limits": deep})
    assert r.status_code == 400 and "deep" in r.text
    c = client(app)
    login(c, "nurse")
    sid = checked_session(app, c)
    r = post(c, sid, "dose", **{**DOSE, "amount": "50"}, time=at(5))
    assert r.status_code == 400 and "hard stop" in r.text


# -- 6. patient-reported measures: the patient, or a clinician entering for them --

def test_only_the_patient_or_a_clinician_submits_patient_reported_measures(app) -> None:  # noqa: F811
    pid = ids(app)["Demo Patient A"]
    nine = {f"item_{k}": "1" for k in range(1, 10)}
    for role in ("front_desk", "administrator", "researcher"):
        u = client(app)
        login(u, role)
        r = u.post(f"/patients/{pid}/questionnaires/phq9",
                   data={"csrf_token": csrf_of(u), **nine})
        assert r.status_code == 404, role
        assert u.get(f"/patients/{pid}/questionnaires/phq9").status_code == 404, role
    assert count(app, QuestionnaireResponse) == 0 and count(app, SafetyAlert) == 0
    for role, as_ in (("patient", "patient"), ("nurse", "clinician_for_patient")):
        u = client(app)
        login(u, role)
        r = u.post(f"/patients/{pid}/questionnaires/phq9",
                   data={"csrf_token": csrf_of(u), **nine})
        assert r.status_code == 303, role
        with app.state.sessions() as db:
            latest = db.scalar(select(QuestionnaireResponse).order_by(
                QuestionnaireResponse.id.desc()).limit(1))
            assert latest.entered_as == as_
    with app.state.sessions() as db:
        denials = db.scalar(select(func.count()).select_from(AuditRow).where(
            AuditRow.action == "denied"))
    assert denials >= 6  # every role denial is audited (item 14)


@pytest.mark.parametrize("answer", ["²", "٣", "３", "1.0", "-1", "1e0", " ", "99"])
def test_questionnaire_items_are_ascii_whole_numbers(app, answer) -> None:  # noqa: F811
    pid = ids(app)["Demo Patient A"]
    u = client(app)
    login(u, "patient")
    items = {f"item_{k}": "1" for k in range(1, 10)}
    items["item_3"] = answer
    r = u.post(f"/patients/{pid}/questionnaires/phq9", data={"csrf_token": csrf_of(u), **items})
    assert r.status_code == 400
    assert count(app, QuestionnaireResponse) == 0


def test_a_questionnaire_submitted_twice_is_stored_once(app) -> None:  # noqa: F811
    pid = ids(app)["Demo Patient A"]
    u = client(app)
    login(u, "patient")
    page = u.get(f"/patients/{pid}/questionnaires/phq9").text
    ft = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    data = {"csrf_token": csrf_of(u), "form_token": ft,
            **{f"item_{k}": "0" for k in range(1, 10)}}
    assert u.post(f"/patients/{pid}/questionnaires/phq9", data=data).status_code == 303
    assert u.post(f"/patients/{pid}/questionnaires/phq9", data=data).status_code == 303
    assert count(app, QuestionnaireResponse) == 1


def test_public_form_refuses_non_ascii_digits(app) -> None:  # noqa: F811
    c = client(app)
    page = c.get("/consult").text
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = {"csrf_token": tok, "name": "A", "contact": "a@b.org", "consent": "yes",
            "condition": "depression", **{f"phq9_{k}": "1" for k in range(1, 10)},
            **{f"gad7_{k}": "1" for k in range(1, 8)}}
    data["phq9_2"] = "²"
    r = c.post("/consult", data=data)
    assert r.status_code == 400 and "PHQ9 question 2" in r.text


# -- 7. a dose entered as a volume, and the mL-vs-mg confusion --

def test_dose_as_volume_with_stock_concentration(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = checked_session(app, c)
    vol = {**DOSE, "unit": "mL", "amount": "3.6", "concentration_mg_per_ml": "10"}
    r = post(c, sid, "dose", **{**vol, "amount": "36"}, time=at(5))  # 36 mg typed as mL
    assert r.status_code == 400 and "hard stop" in r.text
    r = post(c, sid, "dose", **{**vol, "concentration_mg_per_ml": "25"}, time=at(5))
    assert r.status_code == 400  # not a stock the clinic holds
    assert post(c, sid, "dose", **vol, time=at(5)).status_code == 303
    with app.state.sessions() as db:
        ev = db.scalar(select(SessionEvent).where(SessionEvent.kind == "dose"))
    assert ev.data["dose_mg"] == pytest.approx(36.0) and ev.data["volume_ml"] == 3.6


# -- 9, 10, 11: ids, body size, validation pages, over-long text --

ID_ROUTES = [("get", "/patients/{id}"), ("get", "/patients/{id}/questionnaires/phq9"),
             ("post", "/patients/{id}/questionnaires/phq9"), ("post", "/patients/{id}/plans"),
             ("post", "/patients/{id}/sessions"), ("get", "/patients/{id}/export.csv"),
             ("get", "/patients/{id}/export.nmtran.csv"), ("get", "/sessions/{id}"),
             ("get", "/sessions/{id}/form"), ("post", "/sessions/{id}/vitals"),
             ("post", "/alerts/{id}/acknowledge"), ("post", "/consultations/{id}/schedule"),
             ("get", "/consult?clinic={id}")]


@pytest.mark.parametrize("big", [2**31, 2**63, 2**64, 10**30, -1, 0])
def test_out_of_range_ids_are_not_found(app, big) -> None:  # noqa: F811
    staff = client(app)
    login(staff, "nurse")
    anon = client(app)
    for c in (staff, anon):
        tok = csrf_of(c) if c is staff else "x"
        for method, path in ID_ROUTES:
            url = path.format(id=big)
            r = c.get(url) if method == "get" else c.post(url, data={"csrf_token": tok})
            assert r.status_code < 500, (url, r.status_code)
            if c is staff:
                assert r.status_code in (404, 422), (url, r.status_code)


def test_request_bodies_and_field_counts_are_capped(app) -> None:  # noqa: F811
    c = client(app)
    r = c.post("/consult", data={"name": "x" * 1_000_000})
    assert r.status_code == 413
    fields = {f"f{k}": "1" for k in range(500)}
    r = c.post("/consult", data=fields)
    assert r.status_code == 400
    assert count(app, SessionEvent) == 0


def test_validation_errors_are_pages_naming_the_field(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    r = c.get("/patients?page=abc")
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "page" in r.text and '"detail"' not in r.text
    r = c.post(f"/patients/{ids(app)['Demo Patient A']}/sessions",
               data={"csrf_token": csrf_of(c), "compound": "nonsense"})
    assert r.status_code == 400 and "compound" in r.text
    assert r.headers["content-type"].startswith("text/html")


def test_over_long_text_is_refused_not_truncated(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = checked_session(app, c)
    r = post(c, sid, "dose", **{**DOSE, "lot": "L" * 51}, time=at(5))
    assert r.status_code == 400 and "at most 50" in r.text
    assert count(app, SessionEvent) == 1


# -- 8. load shedding: a busy server says so --

def test_excess_load_is_refused_with_503_and_retry_after(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from ketasim.web.app import create_app
    busy = create_app(f"sqlite:///{tmp_path / 'b.db'}", audit_key=KEY, max_in_flight=0)
    r = TestClient(busy, base_url="https://testserver").get("/login")
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert busy.state.busy["count"] == 1


# -- 15. log-in back-off per address, answered alike for known and unknown names --

def test_login_back_off_is_per_address_and_never_locks_an_account(app) -> None:  # noqa: F811
    from fastapi.testclient import TestClient
    attacker = TestClient(app, base_url="https://testserver", follow_redirects=False,
                          client=("203.0.113.9", 5555))
    for k in range(6):  # failures from one address, known and unknown names alike
        assert login(attacker, ("prescriber", "nobody")[k % 2], "wrong").status_code == 401
    known = login(attacker, "prescriber", "wrong")
    unknown = login(attacker, "nobody", "wrong")
    assert known.status_code == unknown.status_code == 429
    def message(r) -> str:
        return re.search(r'<p class="error"[^>]*>(.*?)</p>', r.text).group(1)

    assert message(known) == message(unknown) and "Too many failed attempts" in message(known)
    # the attacker is slowed down; the prescriber, elsewhere, logs in at once
    assert login(attacker, "prescriber").status_code == 429
    elsewhere = TestClient(app, base_url="https://testserver", follow_redirects=False,
                           client=("198.51.100.7", 4444))
    assert login(elsewhere, "prescriber").status_code == 303
    with app.state.sessions() as db:  # the back-off ends
        for row in db.scalars(select(LoginThrottle)):
            row.blocked_until = app.state.ctx.clock.t - timedelta(seconds=1)
        db.commit()
    assert login(attacker, "prescriber").status_code == 303


def test_a_new_login_ends_the_old_session_and_reads_refresh_the_idle_timer(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    old = c.cookies.get("ketasim_session")
    login(c, "prescriber")
    with app.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(WebSession)) == 1
    stale = client(app)
    stale.cookies.set("ketasim_session", old)
    assert stale.get("/patients").status_code == 303
    from ketasim.web.deps import Settings
    app.state.ctx.settings = Settings()  # the real 15-min idle timeout
    clock = app.state.ctx.clock
    with app.state.sessions() as db:
        ws = db.scalars(select(WebSession)).one()
        ws.last_seen = clock.t - timedelta(minutes=14)
        db.commit()
    assert c.get("/consultations").status_code == 200  # a read-only page
    with app.state.sessions() as db:
        seen = db.scalars(select(WebSession)).one().last_seen.replace(tzinfo=UTC)
    assert seen == clock.t
    clock.t += timedelta(minutes=14)
    assert c.get("/consultations").status_code == 200  # 14 idle minutes later: still in
    clock.t += timedelta(minutes=16)
    assert c.get("/consultations").status_code == 303  # 16: out


# -- 16. TOTP second factor --

def test_totp_second_factor_with_recovery_codes(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "prescriber")
    tok = csrf_of(c)
    page = c.post("/account/mfa/setup", data={"csrf_token": tok}).text
    secret = re.search(r"Secret: <code>([A-Z2-7]+)</code>", page).group(1)
    assert c.post("/account/mfa/confirm", data={"csrf_token": tok, "code": "000000"}
                  ).status_code == 400
    page = c.post("/account/mfa/confirm", data={"csrf_token": tok,
                                                "code": pyotp.TOTP(secret).now()}).text
    codes = re.findall(r"<li><code>([0-9a-f]{10})</code></li>", page)
    assert len(codes) == 10
    c.post("/logout", data={"csrf_token": tok})
    r = login(c, "prescriber")
    assert r.status_code == 303 and r.headers["location"] == "/login/mfa"
    assert c.get("/patients").headers["location"] == "/login/mfa"  # nothing before the code
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login/mfa").text).group(1)
    assert c.post("/login/mfa", data={"csrf_token": tok, "code": "123456"}).status_code == 401
    assert c.post("/login/mfa", data={"csrf_token": tok, "code": codes[0]}).status_code == 303
    assert c.get("/patients").status_code == 200
    c.post("/logout", data={"csrf_token": tok})
    login(c, "prescriber")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login/mfa").text).group(1)
    assert c.post("/login/mfa", data={"csrf_token": tok, "code": codes[0]}).status_code == 401
    assert c.post("/login/mfa", data={"csrf_token": tok,
                                      "code": pyotp.TOTP(secret).now()}).status_code == 303
    with app.state.sessions() as db:
        actions = [r.action for r in db.scalars(select(AuditRow))]
    assert {"mfa_setup", "mfa_enabled", "mfa_failed", "login_password"} <= set(actions)


def test_a_clinic_can_require_a_second_factor(app) -> None:  # noqa: F811
    a = client(app)
    login(a, "administrator")
    assert a.post("/admin/mfa", data={"csrf_token": csrf_of(a), "require_mfa": "yes"}
                  ).status_code == 303
    with app.state.sessions() as db:
        assert db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic")).require_mfa
    n = client(app)
    r = login(n, "nurse")
    assert r.headers["location"] == "/account/mfa"
    assert n.get("/patients").headers["location"] == "/login/mfa"
    p = client(app)  # a patient is not a clinical role
    assert login(p, "patient").headers["location"] == "/patients"


# -- 17. exports: no formulas, de-identified research data --

def test_exports_neutralise_formulas_and_deidentify(app) -> None:  # noqa: F811
    from ketasim.storage.models import ConsultationRequest, Patient
    with app.state.sessions() as db:
        clinic = db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic"))
        p = Patient(clinic_id=clinic.id, display_name="=HYPERLINK(\"http://x\",\"y\")")
        db.add(p)
        db.flush()
        db.add(QuestionnaireResponse(patient_id=p.id, instrument="phq9", items=[0] * 9,
                                     total=0, band="-minimal", submitted_by=1,
                                     submitted_at=datetime.now(UTC)))
        db.add(ConsultationRequest(clinic_id=clinic.id, created_at=datetime.now(UTC),
                                   name="@SUM(1)", contact="+123", condition="depression",
                                   answers={}, phq9_total=1, gad7_total=1))
        db.commit()
    c = client(app)
    login(c, "nurse")
    sid = dosed_session(app, c)
    assert post(c, sid, "vitals", **VITALS_OK, time=at(45)).status_code == 303
    a = client(app)
    login(a, "administrator")
    text = a.get("/export/clinic.csv").text
    frame = pd.read_csv(io.StringIO(text))
    assert "'=HYPERLINK" in set(frame["patient"].str[:11])
    assert not any(str(v).startswith(("=", "+", "-", "@")) for v in frame.to_numpy().ravel())
    r = client(app)
    login(r, "researcher")
    deid = r.get("/export/clinic.csv").text
    assert "weight" not in deid and "L123" not in deid and "ketamine 10 mg/mL" not in deid
    assert "session" not in pd.read_csv(io.StringIO(deid)).columns
    exact = T0.strftime("%Y-%m-%dT%H:%M")
    assert exact not in deid  # dates are shifted per patient


def test_every_clinical_row_is_covered_by_the_chain(app, tmp_path) -> None:  # noqa: F811
    from ketasim.storage.audit_store import verify_database
    c = client(app)
    login(c, "nurse")
    sid = dosed_session(app, c)
    assert post(c, sid, "vitals", **VITALS_OK, time=at(45)).status_code == 303
    u = client(app)
    login(u, "patient")
    pid = ids(app)["Demo Patient A"]
    assert u.post(f"/patients/{pid}/questionnaires/phq9", data={
        "csrf_token": csrf_of(u), **{f"item_{k}": "1" for k in range(1, 10)}}
        ).status_code == 303
    with app.state.sessions() as db:
        assert verify_database(db, KEY).ok
        ev = db.scalar(select(SessionEvent).where(SessionEvent.kind == "dose"))
        ev.data = {**ev.data, "dose_mg": 3.5}
        db.commit()
    with app.state.sessions() as db:
        report = verify_database(db, KEY)
    assert not report.ok


def test_users_table_is_untouched_by_failed_logins(app) -> None:  # noqa: F811
    c = client(app)
    for _ in range(8):
        login(c, "nurse", "wrong")
    with app.state.sessions() as db:
        nurse = db.scalar(select(User).where(User.username == "nurse"))
    assert nurse.locked_until is None  # no account lock-out exists any more
