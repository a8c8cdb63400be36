"""The clinic web app: log-in, sessions, CSRF, headers, authorization, audit (SQLite)."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from ketasim.clinic.audit import AuditEntry, verify
from ketasim.storage.models import (
    AuditRow,
    LoginThrottle,
    MonitoredSessionRow,
    Patient,
    User,
    WebSession,
)
from ketasim.web.app import ROLES, create_app, seed_demo

KEY = b"a" * 32
PASSWORDS = {r: f"demo-{r}-password" for r in ROLES}


BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("KETASIM_TEST_POSTGRES_URL") else [])


def database_url(backend: str, tmp_path: Path) -> str:
    """SQLite in a temporary file, or the CI PostgreSQL database, emptied first."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'k.db'}"
    url = os.environ["KETASIM_TEST_POSTGRES_URL"]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(params=BACKENDS)
def app(request, tmp_path: Path):
    application = create_app(database_url(request.param, tmp_path), audit_key=KEY)
    seed_demo(application.state.sessions, PASSWORDS)
    yield application
    application.state.engine.dispose()  # PostgreSQL has a limited number of connections


def client(app) -> TestClient:
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def login(c: TestClient, user: str, password: str | None = None):
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return c.post("/login", data={"username": user, "password": password or PASSWORDS[user],
                                  "csrf_token": token})


def csrf_of(c: TestClient) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get("/patients").text).group(1)


def test_login_sets_a_secure_session_and_headers(app) -> None:
    c = client(app)
    r = login(c, "nurse")
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    page = c.get("/patients")
    assert page.status_code == 200 and "Demo Patient A" in page.text
    assert "Other Clinic Patient" not in page.text
    for h in ("content-security-policy", "x-content-type-options", "x-frame-options",
              "referrer-policy", "cache-control"):
        assert h in page.headers
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_login_needs_the_form_token(app) -> None:
    c = client(app)
    r = c.post("/login", data={"username": "nurse", "password": PASSWORDS["nurse"],
                               "csrf_token": "forged"})
    assert r.status_code == 400 and "Set-Cookie" not in r.headers.get("set-cookie", "")


def test_wrong_password_and_throttling_without_permanent_lockout(app) -> None:
    """Failures slow down the address they come from (back-off, never an account lock);
    known and unknown names are answered alike (issue #11 item 15; more in
    test_web_safety)."""
    c = client(app)
    assert login(c, "nurse", "wrong").status_code == 401
    assert login(c, "nobody", "wrong").status_code == 401
    for _ in range(4):
        login(c, "nurse", "wrong")
    assert login(c, "nurse").status_code == 429  # slowed down even with the right password
    with app.state.sessions() as db:
        assert db.scalar(select(User).where(User.username == "nurse")).locked_until is None
        for row in db.scalars(select(LoginThrottle)):
            row.blocked_until = datetime.now(UTC) - timedelta(seconds=1)
        db.commit()
    assert login(c, "nurse").status_code == 303


def test_server_side_authorization(app) -> None:
    with app.state.sessions() as db:
        other = db.scalar(select(Patient).where(Patient.display_name == "Other Clinic Patient"))
        mine = db.scalar(select(Patient).where(Patient.display_name == "Demo Patient A"))
        second = db.scalar(select(Patient).where(Patient.display_name == "Demo Patient B"))
    staff = client(app)
    login(staff, "prescriber")
    assert staff.get(f"/patients/{mine.id}").status_code == 200
    assert staff.get(f"/patients/{other.id}").status_code == 404
    assert staff.get("/patients/999999").status_code == 404
    assert staff.get("/patients/not-a-number").status_code == 422
    pt = client(app)
    login(pt, "patient")
    assert pt.get(f"/patients/{mine.id}").status_code == 200
    assert pt.get(f"/patients/{second.id}").status_code == 404
    researcher = client(app)
    login(researcher, "researcher")
    assert researcher.get(f"/patients/{mine.id}").status_code == 404
    anon = client(app)
    assert anon.get("/patients").status_code == 303


def test_logout_needs_csrf_and_ends_the_session(app) -> None:
    c = client(app)
    login(c, "nurse")
    assert c.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert c.post("/logout", data={"csrf_token": csrf_of(c)}).status_code == 303
    assert c.get("/patients").status_code == 303


def test_idle_and_absolute_timeouts(app) -> None:
    c = client(app)
    login(c, "nurse")
    with app.state.sessions() as db:
        ws = db.scalars(select(WebSession)).one()
        ws.last_seen = datetime.now(UTC) - timedelta(minutes=16)
        db.commit()
    assert c.get("/patients").status_code == 303
    login(c, "nurse")
    with app.state.sessions() as db:
        ws = db.scalars(select(WebSession)).one()
        ws.created_at = datetime.now(UTC) - timedelta(hours=9)
        db.commit()
    assert c.get("/patients").status_code == 303


def test_every_access_is_audited_in_a_verifiable_chain(app) -> None:
    c = client(app)
    login(c, "nurse", "wrong")
    login(c, "nurse")
    c.get("/patients")
    with app.state.sessions() as db:
        rows = db.scalars(select(AuditRow).order_by(AuditRow.seq)).all()
    actions = [r.action for r in rows]
    assert actions[:3] == ["login_failed", "login", "read"]
    entries = [AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, r.detail, r.prev, r.mac)
               for r in rows]
    assert verify(entries, KEY).ok
    tampered = list(entries)
    tampered[1] = AuditEntry(**{**tampered[1].__dict__, "actor": "user:99"})
    assert not verify(tampered, KEY).ok


STAFF = {"administrator", "prescriber", "nurse", "front_desk"}


def expected(role: str | None, route: str) -> int:
    """The policy: who may see what (clinic-scoped; a patient sees only their own record)."""
    if route == "consult_public":
        return 200
    if role is None:
        return 303
    if route == "queue":
        return 200 if role in STAFF else 404
    if route in ("export_own", "nmtran_own"):
        return 200 if role in ("administrator", "prescriber", "nurse", "patient") else 404
    if route == "export_other":
        return 404
    if route == "export_clinic":
        return 200 if role in ("administrator", "researcher") else 404
    if route == "admin":
        return 200 if role == "administrator" else 404
    if route in ("schedule_forged", "assess_forged", "plan_forged", "q_post_forged",
                 "admin_forged"):
        return 403
    if route == "list":
        return 200
    if route == "own_a":
        return 200 if role in STAFF or role == "patient" else 404
    if route == "own_b":
        return 200 if role in STAFF else 404
    if route == "other":
        return 404
    if route in ("logout_forged", "ack_forged"):
        return 403
    if route == "q_own_a":  # patient-reported: the patient, or a clinician for them
        return 200 if role in ("patient", "prescriber", "nurse") else 404
    if route == "q_other":
        return 404
    if route in ("session_own", "form_own"):
        return 200 if role in ("administrator", "prescriber", "nurse") else 404
    if route in ("session_other", "form_other", "start_other"):
        return 404 if route != "start_other" else 403
    if route in ("start_forged", "step_forged"):
        return 403
    raise AssertionError(route)


def test_authorization_matrix_every_route_role_and_patient(app) -> None:
    with app.state.sessions() as db:
        ids = {p.display_name: p.id for p in db.scalars(select(Patient))}
        own, other = (MonitoredSessionRow(patient_id=ids[n], compound="racemic",
                                          rems_enrolled=False, started_by=1,
                                          started_at=datetime.now(UTC))
                      for n in ("Demo Patient A", "Other Clinic Patient"))
        db.add_all([own, other])
        db.commit()
        sid_own, sid_other = own.id, other.id
    routes = {"list": ("get", "/patients"),
              "consult_public": ("get", "/consult"),
              "queue": ("get", "/consultations"),
              "admin": ("get", "/admin"),
              "admin_forged": ("post", "/admin/thresholds"),
              "plan_forged": ("post", f"/patients/{ids['Demo Patient A']}/plans"),
              "q_post_forged": ("post",
                                f"/patients/{ids['Demo Patient A']}/questionnaires/phq9"),
              "schedule_forged": ("post", "/consultations/1/schedule"),
              "assess_forged": ("post", "/consultations/1/assess"),
              "export_own": ("get", f"/patients/{ids['Demo Patient A']}/export.csv"),
              "nmtran_own": ("get", f"/patients/{ids['Demo Patient A']}/export.nmtran.csv"),
              "export_other": ("get", f"/patients/{ids['Other Clinic Patient']}/export.csv"),
              "export_clinic": ("get", "/export/clinic.csv"),
              "session_own": ("get", f"/sessions/{sid_own}"),
              "form_own": ("get", f"/sessions/{sid_own}/form"),
              "session_other": ("get", f"/sessions/{sid_other}"),
              "form_other": ("get", f"/sessions/{sid_other}/form"),
              "start_forged": ("post", f"/patients/{ids['Demo Patient A']}/sessions"),
              "start_other": ("post", f"/patients/{ids['Other Clinic Patient']}/sessions"),
              "step_forged": ("post", f"/sessions/{sid_own}/vitals"),
              "own_a": ("get", f"/patients/{ids['Demo Patient A']}"),
              "own_b": ("get", f"/patients/{ids['Demo Patient B']}"),
              "other": ("get", f"/patients/{ids['Other Clinic Patient']}"),
              "q_own_a": ("get", f"/patients/{ids['Demo Patient A']}/questionnaires/phq9"),
              "q_other": ("get", f"/patients/{ids['Other Clinic Patient']}/questionnaires/phq9"),
              "ack_forged": ("post", "/alerts/1/acknowledge"),
              "logout_forged": ("post", "/logout")}
    cells = 0
    for role in (None, *ROLES):
        c = client(app)
        if role is not None:
            assert login(c, role).status_code == 303
        for name, (method, path) in routes.items():
            r = c.get(path) if method == "get" else c.post(path, data={"csrf_token": "x"})
            assert r.status_code == expected(role, name), (role, name, r.status_code)
            cells += 1
    assert cells == 7 * len(routes)


def test_two_server_processes_extend_one_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = create_app(url, audit_key=KEY)
    seed_demo(first.state.sessions, PASSWORDS)
    second = create_app(url, audit_key=KEY)
    a, b = client(first), client(second)
    for _ in range(3):
        login(a, "nurse")
        login(b, "prescriber")
        a.get("/patients")
        b.get("/patients")
    with first.state.sessions() as db:
        rows = db.scalars(select(AuditRow).order_by(AuditRow.seq)).all()
    entries = [AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, r.detail, r.prev, r.mac)
               for r in rows]
    assert len(entries) == 12 and verify(entries, KEY).ok


def submit(c: TestClient, patient_id: int, instrument: str, items: list[str],
           csrf: str | None = None):
    token = csrf if csrf is not None else re.search(
        r'name="csrf_token" value="([^"]+)"', c.get(f"/patients/{patient_id}").text).group(1)
    data = {"csrf_token": token, **{f"item_{k}": v for k, v in enumerate(items, start=1)}}
    return c.post(f"/patients/{patient_id}/questionnaires/{instrument}", data=data)


def count(app, model) -> int:
    with app.state.sessions() as db:
        return len(db.scalars(select(model)).all())


def test_phq9_item9_raises_an_alert_a_clinician_acknowledges(app) -> None:
    from ketasim.storage.models import QuestionnaireResponse, SafetyAlert
    with app.state.sessions() as db:
        mine = db.scalar(select(Patient).where(Patient.display_name == "Demo Patient A"))
    pt = client(app)
    login(pt, "patient")
    assert pt.get(f"/patients/{mine.id}/questionnaires/phq9").status_code == 200
    r = submit(pt, mine.id, "phq9", ["1", "1", "2", "1", "0", "1", "1", "0", "1"])
    assert r.status_code == 303
    assert count(app, QuestionnaireResponse) == 1 and count(app, SafetyAlert) == 1
    nurse = client(app)
    login(nurse, "nurse")
    chart = nurse.get(f"/patients/{mine.id}")
    assert "phq9_item9_positive" in chart.text and ">8</td><td>mild</td>" in chart.text
    alert_id = re.search(r'/alerts/(\d+)/acknowledge', chart.text).group(1)
    assert nurse.post(f"/alerts/{alert_id}/acknowledge",
                      data={"csrf_token": "forged"}).status_code == 403
    desk = client(app)
    login(desk, "front_desk")
    assert desk.post(f"/alerts/{alert_id}/acknowledge",
                     data={"csrf_token": csrf_of(desk)}).status_code == 404
    assert nurse.post(f"/alerts/{alert_id}/acknowledge",
                      data={"csrf_token": csrf_of(nurse)}).status_code == 303
    with app.state.sessions() as db:
        alert = db.scalars(select(SafetyAlert)).one()
        assert alert.acknowledged_by is not None and alert.acknowledged_at is not None
    assert "phq9_item9_positive" not in nurse.get(f"/patients/{mine.id}").text


@pytest.mark.parametrize("items", [
    ["1"] * 8,                       # an item missing
    ["1"] * 8 + ["4"],               # out of range
    ["1"] * 8 + ["x"],               # not a number
    ["1"] * 8 + ["-1"],
    ["1"] * 8 + ["1.0"],
    ["1"] * 8 + [""],
])
def test_bad_questionnaires_store_nothing(app, items) -> None:
    from ketasim.storage.models import QuestionnaireResponse, SafetyAlert
    with app.state.sessions() as db:
        mine = db.scalar(select(Patient).where(Patient.display_name == "Demo Patient A"))
    pt = client(app)
    login(pt, "patient")
    r = submit(pt, mine.id, "phq9", items)
    assert r.status_code == 400 and "item" in r.text and "fix:" in r.text
    assert count(app, QuestionnaireResponse) == 0 and count(app, SafetyAlert) == 0


def test_questionnaires_are_scoped_and_need_csrf(app) -> None:
    with app.state.sessions() as db:
        ids = {p.display_name: p.id for p in db.scalars(select(Patient))}
    pt = client(app)
    login(pt, "patient")
    assert submit(pt, ids["Demo Patient B"], "phq9", ["0"] * 9,
                  csrf=csrf_of(pt)).status_code == 404
    assert submit(pt, ids["Demo Patient A"], "phq9", ["0"] * 9, csrf="x").status_code == 403
    assert pt.get(f"/patients/{ids['Demo Patient A']}/questionnaires/madrs").status_code == 404
    researcher = client(app)
    login(researcher, "researcher")
    assert submit(researcher, ids["Demo Patient A"], "phq9", ["0"] * 9,
                  csrf=csrf_of(researcher)).status_code == 404
