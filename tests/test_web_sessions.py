"""Monitored sessions in the web app: the REMS/IV rules end to end, dose-range checks, bad
input storing nothing, and who may see or record what (SQLite and PostgreSQL).

The server clock is the app's ``ctx.clock``; these tests drive it (a session is run over two
hours of server time in a second), and every stated time is checked against it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from tests.test_web import app, client, login  # noqa: F401  (fixture and helpers)

from ketasim.storage.models import AuditRow, Clinic, Patient, SessionEvent

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)


class Clock:
    """The server clock, moved by the tests."""

    def __init__(self) -> None:
        self.t = T0 - timedelta(minutes=5)

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture(autouse=True)
def server_clock(app):  # noqa: F811
    from ketasim.web.deps import Settings
    clock = Clock()
    app.state.ctx.clock = clock
    # the clock jumps minutes between requests here: keep the log-in alive meanwhile
    app.state.ctx.settings = Settings(idle_timeout=timedelta(days=20),
                                      absolute_timeout=timedelta(days=30))
    return clock


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S")


def set_clock(app, when: datetime) -> None:  # noqa: F811
    app.state.ctx.clock.t = when


def ids(app) -> dict[str, int]:  # noqa: F811
    with app.state.sessions() as db:
        return {p.display_name: p.id for p in db.scalars(select(Patient))}


def token(c, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text).group(1)


def start(c, pid: int, compound: str = "racemic", rems: bool = False):
    tok = token(c, "/patients")
    data = {"csrf_token": tok, "compound": compound}
    if rems:
        data["rems_enrolled"] = "yes"
    return c.post(f"/patients/{pid}/sessions", data=data)


def form_token(c, path: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', c.get(path).text).group(1)


def post(c, sid: int, step: str, **fields):
    """Post a step with the page's CSRF and one-use form tokens; a stated time also moves
    the server clock to 30 s after it (the entry is made as it happens)."""
    page = c.get(f"/sessions/{sid}").text
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    ft = re.search(r'name="form_token" value="([^"]+)"', page)
    stated = fields.get("time")
    try:
        when = datetime.fromisoformat(stated).replace(tzinfo=UTC) if stated else None
    except ValueError:
        when = None
    if when is not None and abs(when - T0) < timedelta(days=30):
        c.app.state.ctx.clock.t = when + timedelta(seconds=30)
    data = {"csrf_token": tok, **fields}
    if ft and "form_token" not in fields:
        data["form_token"] = ft.group(1)
    return c.post(f"/sessions/{sid}/{step}", data=data)


VITALS_OK = {"sbp": "128", "dbp": "80", "hr": "70", "spo2": "98"}


def n_events(app) -> int:  # noqa: F811
    with app.state.sessions() as db:
        return int(db.scalar(select(func.count()).select_from(SessionEvent)))


def dosed_session(app, c) -> int:  # noqa: F811
    r = start(c, ids(app)["Demo Patient A"])
    assert r.status_code == 303, r.text
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    assert post(c, sid, "predose", **VITALS_OK, contraindications_confirmed="yes",
                time=at(0)).status_code == 303
    r = post(c, sid, "dose", product="ketamine 10 mg/mL", lot="L123", route="iv_infusion",
             duration_min="40", amount="0.5", unit="mg/kg", weight_kg="70",
             weight_date=T0.date().isoformat(), time=at(5))
    assert r.status_code == 303, r.text
    return sid


def test_a_nurse_runs_a_session_from_check_to_discharge(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = dosed_session(app, c)
    # BP 40 min after: a rise of 42/20 raises an alert
    assert post(c, sid, "vitals", sbp="170", dbp="100", hr="88", spo2="97", moaas="4",
                cadss="12", time=at(45)).status_code == 303
    page = c.get(f"/sessions/{sid}").text
    assert "rise of 42/20" in page and "Acknowledge" in page
    assert "<svg" in page and "SBP 170 at 40" in page  # observed values, minutes from dose
    # too early: refused, nothing stored
    before = n_events(app)
    r = post(c, sid, "discharge", effects_resolved="yes", time=at(100))
    assert r.status_code == 400 and "before the end of the 120-min observation" in r.text
    assert n_events(app) == before
    assert post(c, sid, "vitals", **VITALS_OK, time=at(124)).status_code == 303
    # an unacknowledged alert blocks discharge
    r = post(c, sid, "discharge", effects_resolved="yes", time=at(126))
    assert r.status_code == 400 and "not acknowledged" in r.text
    assert post(c, sid, "ack", alert="0").status_code == 303
    assert post(c, sid, "discharge", effects_resolved="yes", time=at(126)).status_code == 303
    page = c.get(f"/sessions/{sid}").text
    # discharge is at the server's time (the stated 126 min moved the clock to 126.5 min)
    due = (app.state.ctx.clock.t + timedelta(days=7)).strftime("%Y-%m-%d %H:%M")
    assert "Discharged" in page and due in page
    form = c.get(f"/sessions/{sid}/form").text
    assert "128/80" in form and "170/100" in form
    assert "Dissociation recorded (CADSS &gt; 0)</th><td>yes" in form
    # closed: nothing more can be recorded
    r = post(c, sid, "vitals", **VITALS_OK)
    assert r.status_code == 400 and "closed" in r.text
    assert post(c, sid, "form").status_code == 303
    with app.state.sessions() as db:
        steps = [r.detail.get("step") for r in db.scalars(select(AuditRow))
                 if r.detail.get("session") == sid]
    assert {"start", "predose", "dose", "vitals", "ack", "discharge", "form"} <= set(steps)


@pytest.mark.parametrize(("fields", "message"), [
    ({**VITALS_OK, "sbp": "abc"}, "cannot read"),
    ({**VITALS_OK, "spo2": "150"}, "outside 50-100"),
    ({**VITALS_OK, "hr": ""}, "is empty"),
    ({**VITALS_OK, "moaas": "2.5"}, "whole number"),
    ({**VITALS_OK, "cadss": "3.0"}, "trailing zero"),
    # strict number entry (issue #11 item 4): nothing coerced
    ({**VITALS_OK, "sbp": "128.0"}, "trailing zero"),
    ({**VITALS_OK, "spo2": "9.8e1"}, "scientific notation"),
    ({**VITALS_OK, "sbp": "１２８"}, "cannot read"),  # full-width digits
    ({**VITALS_OK, "sbp": "١٢٨"}, "cannot read"),  # Arabic-Indic digits
    ({**VITALS_OK, "hr": "+70"}, "has a sign"),
    ({**VITALS_OK, "time": "yesterday"}, "not a date and time"),
    ({**VITALS_OK, "time": "2999-01-01T00:00"}, "in the future"),
    # back-dating (item 3): vitals dated 2001, or more than an hour back, are refused
    ({**VITALS_OK, "time": "2001-01-01T09:00"}, "more than 60 min before now"),
])
def test_bad_vitals_get_a_message_and_store_nothing(app, fields, message) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = dosed_session(app, c)
    before = n_events(app)
    r = post(c, sid, "vitals", **fields)
    assert r.status_code == 400 and message in r.text
    assert n_events(app) == before


@pytest.mark.parametrize(("fields", "status", "message"), [
    ({"amount": "35", "unit": "mg/kg"}, 400, "hard stop"),  # mg typed as mg/kg
    ({"amount": "35", "unit": "mg/kg", "override_reason": "I am sure of this dose",
      "second_clinician": "prescriber", "second_password": "wrong"}, 400, "not confirmed"),
    ({"amount": "35", "unit": "mg/kg", "override_reason": "I am sure of this dose",
      "second_clinician": "nurse", "second_password": "demo-nurse-password"}, 400,
     "not confirmed"),  # the recording nurse cannot be the second clinician
    ({"amount": "1.2", "unit": "mg/kg", "override_reason": "anaesthetist-led, per protocol",
      "second_clinician": "prescriber", "second_password": "demo-prescriber-password"}, 303,
     ""),  # a confirmed hard-stop override
    ({"amount": "1.2", "unit": "mg/kg", "second_clinician": "prescriber",
      "second_password": "demo-prescriber-password"}, 400, "override"),  # no reason
    ({"amount": "0.8", "unit": "mg/kg"}, 400, "override"),  # soft warning, no reason
    ({"amount": "0.8", "unit": "mg/kg", "override_reason": "titrated per protocol v2"},
     303, ""),
    ({"amount": "0.5", "unit": "mg/kg", "weight_kg": "154"}, 400, ""),  # lb typed as kg
    ({"amount": "0.5", "unit": "mg/kg", "lot": ""}, 400, "lot"),
])
def test_dose_range_checks(app, fields, status, message) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    pid = ids(app)["Demo Patient A"]
    sid = dosed_session(app, c)  # an earlier dose at 70 kg
    assert post(c, sid, "vitals", **VITALS_OK, time=at(45)).status_code == 303
    assert post(c, sid, "vitals", **VITALS_OK, time=at(124)).status_code == 303
    assert post(c, sid, "discharge", effects_resolved="yes", time=at(126)).status_code == 303
    later = 3 * 24 * 60  # the next session, three days later (outside the 24-h total)
    set_clock(app, T0 + timedelta(minutes=later - 2))
    r = start(c, pid)
    sid2 = int(r.headers["location"].rsplit("/", 1)[1])
    assert post(c, sid2, "predose", **VITALS_OK, contraindications_confirmed="yes",
                time=at(later)).status_code == 303
    before = n_events(app)
    base = {"product": "ketamine", "lot": "L1", "route": "iv_infusion", "duration_min": "40",
            "weight_kg": "70", "weight_date": T0.date().isoformat(), "time": at(later + 5)}
    r = post(c, sid2, "dose", **{**base, **fields})
    assert r.status_code == status, r.text
    assert message in r.text
    assert n_events(app) == before + (1 if status == 303 else 0)


def test_predose_rules(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "prescriber")
    r = start(c, ids(app)["Demo Patient B"])
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    high = {"sbp": "150", "dbp": "95", "hr": "70", "spo2": "98"}
    r = post(c, sid, "predose", **high, contraindications_confirmed="yes")
    assert r.status_code == 400 and "document the reason" in r.text
    r = post(c, sid, "predose", **VITALS_OK)
    assert r.status_code == 400 and "contraindication" in r.text
    r = post(c, sid, "dose", product="k", lot="1", amount="35", unit="mg", weight_kg="70",
             weight_date=T0.date().isoformat(), duration_min="40")
    assert r.status_code == 400 and "pre-dose check" in r.text
    assert post(c, sid, "predose", **high, contraindications_confirmed="yes",
                override_reason="benefit outweighs risk, BP stable").status_code == 303


def test_esketamine_needs_rems_and_thresholds_must_be_set(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    pid = ids(app)["Demo Patient A"]
    r = start(c, pid, "esketamine")
    assert r.status_code == 400 and "REMS" in r.text
    assert start(c, pid, "esketamine", rems=True).status_code == 303
    with app.state.sessions() as db:
        clinic = db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic"))
        clinic.spo2_min = None
        db.commit()
    r = start(c, pid)
    assert r.status_code == 400 and "thresholds are not set" in r.text


def test_who_may_see_and_record_sessions(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = dosed_session(app, c)
    other = ids(app)["Other Clinic Patient"]
    assert start(c, other).status_code == 404
    assert c.post(f"/sessions/{sid}/vitals", data={**VITALS_OK, "csrf_token": "x"}
                  ).status_code == 403
    expected = {"administrator": 200, "prescriber": 200, "nurse": 200, "front_desk": 404,
                "patient": 404, "researcher": 404}
    for role, code in expected.items():
        c2 = client(app)
        login(c2, role)
        assert c2.get(f"/sessions/{sid}").status_code == code, role
        assert c2.get(f"/sessions/{sid}/form").status_code == code, role
        assert c2.get("/sessions/999999").status_code == 404, role
        if code == 200:
            tok = token(c2, f"/sessions/{sid}")
            r = c2.post(f"/sessions/{sid}/vitals", data={**VITALS_OK, "csrf_token": tok})
            assert r.status_code == (303 if role != "administrator" else 404), role
    anon = client(app)
    assert anon.get(f"/sessions/{sid}").status_code == 303
    assert anon.get("/sessions/not-a-number").status_code in (303, 422)


def test_audit_verify_command(tmp_path) -> None:
    """`ketasim audit verify` passes an intact chain and names the entry that was edited."""
    from tests.test_web import KEY, PASSWORDS
    from typer.testing import CliRunner

    from ketasim.cli.app import app as cli
    from ketasim.web.app import create_app, seed_demo
    url = f"sqlite:///{tmp_path / 'a.db'}"
    web = create_app(url, audit_key=KEY)
    seed_demo(web.state.sessions, PASSWORDS)
    c = client(web)
    login(c, "nurse")
    c.get("/patients")
    keyfile = tmp_path / "k.key"
    keyfile.write_bytes(KEY)
    run = CliRunner().invoke
    r = run(cli, ["audit", "verify", "--database", url, "--audit-key-file", str(keyfile)])
    assert r.exit_code == 0 and "intact" in r.output
    with web.state.sessions() as db:
        row = db.scalar(select(AuditRow).where(AuditRow.seq == 2))
        row.actor = "user:999"
        db.commit()
    r = run(cli, ["audit", "verify", "--database", url, "--audit-key-file", str(keyfile)])
    assert r.exit_code == 1 and "BROKEN at entry 2" in r.output
    wrong = tmp_path / "w.key"
    wrong.write_bytes(b"b" * 32)
    r = run(cli, ["audit", "verify", "--database", url, "--audit-key-file", str(wrong)])
    assert r.exit_code == 1


def test_exports(app) -> None:  # noqa: F811
    import io

    import pandas as pd
    c = client(app)
    login(c, "nurse")
    sid = dosed_session(app, c)
    assert post(c, sid, "vitals", sbp="140", dbp="88", hr="75", spo2="97", moaas="5",
                time=at(45)).status_code == 303
    pid = ids(app)["Demo Patient A"]
    r = c.get(f"/patients/{pid}/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = pd.read_csv(io.StringIO(r.text))
    assert set(rows["kind"]) >= {"predose", "dose", "vitals"}
    r = c.get(f"/patients/{pid}/export.nmtran.csv")
    nm = pd.read_csv(io.StringIO(r.text))
    dose = nm[nm.EVID == 1].iloc[0]
    assert dose.TIME == pytest.approx(5 / 60, abs=1e-6) and dose.AMT == 35.0
    assert dose.RATE == pytest.approx(52.5)
    sbp = nm[(nm.EVID == 0) & (nm.DVID == 1)]
    assert list(sbp.DV) == [128.0, 140.0]
    assert list(sbp.TIME) == [0.0, pytest.approx(45 / 60, abs=1e-6)]
    assert (nm.TIME.diff().dropna() >= 0).all()
    assert (nm.MDV == (nm.EVID == 1).astype(int)).all()
    # clinic export: administrator sees names, researcher pseudonyms only
    a = client(app)
    login(a, "administrator")
    admin = pd.read_csv(io.StringIO(a.get("/export/clinic.csv").text))
    assert "Demo Patient A" in set(admin["patient"])
    rsr = client(app)
    login(rsr, "researcher")
    deid = rsr.get("/export/clinic.csv")
    assert deid.status_code == 200 and "Demo Patient" not in deid.text
    assert pd.read_csv(io.StringIO(deid.text))["patient"].str.startswith("P-").all()
    assert rsr.get(f"/patients/{pid}/export.csv").status_code == 404
    fd = client(app)
    login(fd, "front_desk")
    assert fd.get("/export/clinic.csv").status_code == 404
    assert fd.get(f"/patients/{pid}/export.nmtran.csv").status_code == 404
    other = ids(app)["Other Clinic Patient"]
    assert c.get(f"/patients/{other}/export.csv").status_code == 404


def test_a_misconfigured_clinic_gets_a_message_not_a_500(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    sid = dosed_session(app, c)
    with app.state.sessions() as db:
        clinic = db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic"))
        clinic.moaas_alert_max = None
        db.commit()
    for path in (f"/sessions/{sid}", f"/sessions/{sid}/form"):
        r = c.get(path)
        assert r.status_code == 400 and "thresholds are not set" in r.text, path


def test_clinic_owned_versioned_dose_limits_and_thresholds(app) -> None:  # noqa: F811
    import json

    from ketasim.storage.models import DoseLimitsVersion
    a = client(app)
    login(a, "administrator")
    page = a.get("/admin")
    assert page.status_code == 200 and "example-1" in page.text
    tok = token(a, "/admin")
    limits = json.loads(re.search(r'<textarea[^>]*name="limits"[^>]*>(.*?)</textarea>', page.text,
                                  re.S).group(1).replace("&#34;", '"').replace("&quot;", '"'))
    # bad edits: nothing stored, the message names the field
    for text, message in (("{not json", "not valid JSON"),
                          (json.dumps({**limits, "racemic_iv_mg_per_kg_hard": 0.5}),
                           "hard limit"),
                          (json.dumps(limits), "built-in")):
        r = a.post("/admin/dose-limits", data={"csrf_token": tok, "limits": text})
        assert r.status_code == 400 and message in r.text, message
    r = a.post("/admin/thresholds", data={"csrf_token": tok, "spo2_min": "120",
                                          "moaas_alert_max": "2"})
    assert r.status_code == 400 and "SpO₂" in r.text
    # a stricter clinic version: 0.6 mg/kg is now a warning
    stricter = {**limits, "version": "clinic-2026-11", "racemic_iv_mg_per_kg_soft": 0.55}
    assert a.post("/admin/dose-limits", data={"csrf_token": tok,
                                              "limits": json.dumps(stricter)}).status_code == 303
    assert a.post("/admin/thresholds", data={"csrf_token": tok, "spo2_min": "93",
                                             "moaas_alert_max": "1"}).status_code == 303
    with app.state.sessions() as db:
        assert [r.version for r in db.scalars(select(DoseLimitsVersion))] == ["clinic-2026-11"]
        assert db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic")).spo2_min == 93.0
    c = client(app)
    login(c, "nurse")
    r = start(c, ids(app)["Demo Patient A"])
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    assert post(c, sid, "predose", **VITALS_OK, contraindications_confirmed="yes",
                time=at(0)).status_code == 303
    dose = {"product": "ketamine", "lot": "L1", "route": "iv_infusion", "duration_min": "40",
            "amount": "0.6", "unit": "mg/kg", "weight_kg": "70",
            "weight_date": T0.date().isoformat(), "time": at(5)}
    r = post(c, sid, "dose", **dose)
    assert r.status_code == 400 and "override" in r.text
    r = post(c, sid, "dose", **dose, override_reason="protocol allows 0.6 for this patient")
    assert r.status_code == 303
    with app.state.sessions() as db:
        ev = db.scalar(select(SessionEvent).where(SessionEvent.kind == "dose"))
        assert ev.data["limits_version"] == "clinic-2026-11"
    for role in ("prescriber", "nurse", "front_desk", "patient", "researcher"):
        u = client(app)
        login(u, role)
        assert u.get("/admin").status_code == 404, role
        t = token(u, "/patients")
        assert u.post("/admin/thresholds", data={"csrf_token": t, "spo2_min": "90",
                                                 "moaas_alert_max": "2"}).status_code == 404


def test_hard_stop_override_is_audited_with_both_clinicians(app) -> None:  # noqa: F811
    c = client(app)
    login(c, "nurse")
    r = start(c, ids(app)["Demo Patient B"])
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    assert post(c, sid, "predose", **VITALS_OK, contraindications_confirmed="yes",
                time=at(0)).status_code == 303
    r = post(c, sid, "dose", product="ketamine", lot="L9", route="iv_infusion",
             duration_min="40", amount="1.2", unit="mg/kg", weight_kg="70",
             weight_date=T0.date().isoformat(), time=at(5),
             override_reason="anaesthetist-led, per protocol",
             second_clinician="prescriber", second_password="demo-prescriber-password")
    assert r.status_code == 303, r.text
    with app.state.sessions() as db:
        rec = [a.detail["dose_check"] for a in db.scalars(select(AuditRow))
               if "dose_check" in a.detail][-1]
    assert rec["verdict"] == "hard"
    assert rec["override"]["clinician"] == "nurse"
    assert rec["override"]["second_clinician"] == "prescriber"
