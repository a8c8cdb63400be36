"""This patient's individual forecast in the clinic (issue #14 item 5), over HTTP on SQLite and
PostgreSQL: the chart and the plan page show the individual band beside the population band
with P(response), P(relapse by 28 days), the median time to relapse and the suggested next
session (alternatives in a table); while the background worker computes, the page shows the
population band and says so; a saved rating gives a new data version and a new forecast; a
second view is a cache hit; a prescriber accepts the suggestion into the plan (audited, the
dose checked against the clinic's limits), a nurse is refused (403) and so is a form shown on
data that have changed since (409); records the forecast cannot use give a clear message,
never a 500; the worker process computes out of the server's process; migration 0010 up and
down.

The worker runs in a thread here (``app.state.individual_mode``) with few posterior draws
(``app.state.individual_policy``), so counting calls by monkeypatching works and the tests
stay quick; one test runs the real worker process."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from tests.test_a11y import ARTEFACTS, Page, audit_page, browser  # noqa: F401  (fixture)
from tests.test_e2e import CHROMIUM
from tests.test_web import BACKENDS, KEY, app, client, database_url, login  # noqa: F401
from tests.test_web_ui import check_structure

from ketasim.clinic import individual
from ketasim.clinic.audit import AuditEntry, verify
from ketasim.clinic.individual import (
    DoseRecord,
    IndividualUnavailable,
    PlanRecord,
    Policy,
    RatingRecord,
    ReadingRecord,
    patient_inputs,
)
from ketasim.estimation.patient import PatientDataError
from ketasim.storage.models import (
    AuditRow,
    IndividualForecast,
    MonitoredSessionRow,
    Patient,
    PlannedSession,
    QuestionnaireResponse,
    SessionEvent,
    User,
)
from ketasim.web.individual import RUNNER

NOW = datetime(2026, 3, 20, 10, 0, tzinfo=UTC)
POLICY = Policy(n_forecast=300, n_recommend=200, intervals_days=(7.0, 14.0, 28.0))
PHQ9 = {20: [3, 3, 3, 3, 2, 2, 2, 2, 0], 10: [2, 2, 1, 1, 1, 1, 1, 1, 0],
        7: [1, 1, 1, 1, 1, 1, 1, 0, 0], 5: [1, 1, 1, 1, 1, 0, 0, 0, 0],
        4: [1, 1, 1, 1, 0, 0, 0, 0, 0], 18: [2, 2, 2, 2, 2, 2, 2, 2, 2]}


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
def clinic(app):  # noqa: F811
    """The app with a fixed server clock, few draws and the worker in a thread; every job
    finished before the database goes."""
    from ketasim.web.deps import Settings
    app.state.ctx.clock = Clock(NOW)
    app.state.ctx.settings = Settings(idle_timeout=timedelta(days=400),
                                      absolute_timeout=timedelta(days=400))
    app.state.individual_policy = POLICY
    app.state.individual_mode = "thread"
    yield app
    assert RUNNER.wait(120)


def pid(app, name: str = "Demo Patient A") -> int:  # noqa: F811
    with app.state.sessions() as db:
        return db.scalar(select(Patient.id).where(Patient.display_name == name))


def csrf(c, path: str = "/patients") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text).group(1)


def rating(db, patient_id: int, total: int, at: datetime, by: int) -> None:
    db.add(QuestionnaireResponse(patient_id=patient_id, instrument="phq9", items=PHQ9[total],
                                 total=total, band="", submitted_by=by, submitted_at=at,
                                 entered_as="clinician_for_patient"))


def session(db, patient_id: int, at: datetime, by: int, *, dose: dict | None = None) -> int:
    """A completed session: pre-dose check, a 35 mg IV infusion over 40 min at 70 kg, BP and
    CADSS 40 min after, discharge."""
    row = MonitoredSessionRow(patient_id=patient_id, compound="racemic", rems_enrolled=False,
                              started_by=by, started_at=at, discharged_at=at + timedelta(hours=2))
    db.add(row)
    db.flush()
    d = dose if dose is not None else {
        "dose_mg": 35.0, "dose_mg_per_kg": 0.5, "amount": 0.5, "unit": "mg/kg",
        "route": "iv_infusion", "duration_min": 40.0, "weight_kg": 70.0, "product": "ketamine",
        "lot": "L1"}
    for kind, minutes, data in (
            ("predose", 0, {"sbp": 124.0, "dbp": 78.0, "hr": 70.0, "spo2": 98.0}),
            ("dose", 5, d),
            ("vitals", 45, {"sbp": 140.0, "dbp": 86.0, "hr": 78.0, "spo2": 97.0, "moaas": 4,
                            "cadss": 10}),
            ("discharge", 125, {})):
        db.add(SessionEvent(session_id=row.id, kind=kind, at=at + timedelta(minutes=minutes),
                            data=data, recorded_by=by, recorded_at=at))
    return row.id


def responder(app, *, baseline: bool = True) -> int:  # noqa: F811
    """Demo Patient A: PHQ-9 20 before three infusions (days 0, 3, 6), then 10, 7 and 5 —
    a response — and an IV induction plan made today (its sessions continue from now)."""
    p = pid(app)
    first = NOW - timedelta(days=14)
    with app.state.sessions() as db:
        nurse = db.scalar(select(User.id).where(User.username == "nurse"))
        if baseline:
            rating(db, p, 20, first - timedelta(days=1), nurse)
        for k in range(3):
            session(db, p, first + timedelta(days=3 * k), nurse)
        for day, total in ((2, 10), (5, 7), (8, 5)):
            rating(db, p, total, first + timedelta(days=day), nurse)
        db.commit()
    pr = client(app)
    login(pr, "prescriber")
    r = pr.post(f"/patients/{p}/plans", data={"csrf_token": csrf(pr), "protocol": "iv_induction",
                                              "indication": "trd", "weight_kg": "70"})
    assert r.status_code == 303, r.text[:300]
    return p


def section(page: str) -> str:
    """The individual forecast's section of a page."""
    m = re.search(r'<section class="individual-forecast.*?</section>', page, re.S)
    assert m, "no individual forecast section"
    return m.group(0)


def status_of(page: str) -> str:
    return re.search(r'class="individual-forecast card"[^>]*data-status="(\w+)"',
                     page).group(1)


def ready(c, path: str) -> str:
    """The page once the background worker has finished."""
    assert RUNNER.wait(120)
    page = c.get(path)
    assert page.status_code == 200
    return page.text


def band_rows(page: str) -> list[list[str]]:
    body = re.search(r'<table class="individual-table">.*?<tbody>(.*?)</tbody>', page,
                     re.S).group(1)
    return [re.findall(r"<td[^>]*>(.*?)</td>", tr) for tr in re.findall(r"<tr[^>]*>(.*?)</tr>",
                                                                         body)]


def count_calls(monkeypatch) -> dict[str, int]:
    calls = {"forecast": 0, "recommend": 0}
    real_f, real_r = individual.forecast_patient, individual.recommend

    def f(*a, **k):
        calls["forecast"] += 1
        return real_f(*a, **k)

    def r(*a, **k):
        calls["recommend"] += 1
        return real_r(*a, **k)

    monkeypatch.setattr(individual, "forecast_patient", f)
    monkeypatch.setattr(individual, "recommend", r)
    return calls


# ---- the clinic's records as the library's (pure) -------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLAN = PlanRecord(1, "0.5 mg/kg IV over 40 min three times weekly for 2 weeks", "trd", 72.0,
                  T0 - timedelta(days=2))


def dose(i: int, days: float, **kw) -> DoseRecord:
    return DoseRecord(i, i, T0 + timedelta(days=days), kw.get("compound", "racemic"),
                      kw.get("route", "iv_infusion"), kw.get("mg", 35.0),
                      kw.get("duration", 40.0), kw.get("weight", 70.0))


def test_records_become_the_patients_data_and_a_version() -> None:
    ratings = [RatingRecord(1, "phq9", 20, T0 - timedelta(days=1)),
               RatingRecord(2, "gad7", 12, T0 - timedelta(days=1)),  # not a TRD instrument
               RatingRecord(3, "phq9", 9, T0 + timedelta(days=3))]
    readings = [ReadingRecord(10, 1, T0 - timedelta(minutes=5), "predose", 126, 80),
                ReadingRecord(11, 1, T0 + timedelta(minutes=40), "vitals", 150, 92, 12),
                ReadingRecord(12, 1, T0 + timedelta(hours=6), "vitals", 130, 80, None),
                ReadingRecord(13, 1, T0 + timedelta(minutes=60), "vitals", 280, 92, None)]
    i = patient_inputs(plan=PLAN, doses=[dose(1, 0), dose(2, 2, weight=71.0)], ratings=ratings,
                       readings=readings, birth_year=1974, today=T0 + timedelta(days=4))
    d = i.data
    assert [(r.time_h, r.instrument, r.value, r.row) for r in d.ratings] == [
        (-24.0, "phq9", 20.0, 1), (72.0, "phq9", 9.0, 3)]
    # the pre-dose BP at the dose's own time; 40-min readings; 6 h after: not a reading
    assert [(r.time_h, r.kind, r.value) for r in d.readings] == [
        (0.0, "sbp", 126.0), (0.0, "dbp", 80.0), (0.666667, "sbp", 150.0),
        (0.666667, "dbp", 92.0), (0.666667, "cadss", 12.0), (1.0, "dbp", 92.0)]
    assert i.left_out == ("SBP 280 (outside the model's 60-260)",)
    assert [(t, mg) for t, mg, _ in d.regimen.administrations()] == [(0.0, 35.0), (48.0, 35.0)]
    assert d.regimen.doses[0].duration == pytest.approx(40 / 60)
    assert d.weight_kg == 71.0 and d.age == 52.0  # the latest dose's weight; age from birth
    # the plan ahead: two of its six doses given since it was made, four to go, on its own
    # spacing from its first dose given (56 h), never before today
    assert i.plan is not None and i.plan.n_administrations == 4
    assert i.start_h == 112.0  # the plan's third dose: 2 × 56 h after its first
    late = patient_inputs(plan=PLAN, doses=[dose(1, 0), dose(2, 2, weight=71.0)],
                          ratings=ratings, readings=readings, birth_year=1974,
                          today=T0 + timedelta(days=6))
    assert late.start_h == 6 * 24.0 - 9.0  # overdue: from today (midnight) on
    # the version: stable for the same records, new for any new one
    again = patient_inputs(plan=PLAN, doses=[dose(1, 0), dose(2, 2, weight=71.0)],
                           ratings=ratings, readings=readings, birth_year=1974,
                           today=T0 + timedelta(days=4))
    assert again.version == i.version
    more = patient_inputs(plan=PLAN, doses=[dose(1, 0), dose(2, 2, weight=71.0)],
                          ratings=[*ratings, RatingRecord(4, "phq9", 8, T0 + timedelta(days=4))],
                          readings=readings, birth_year=1974, today=T0 + timedelta(days=4))
    assert more.version != i.version
    other = patient_inputs(plan=PLAN, doses=[dose(1, 0), dose(2, 2, weight=71.0)],
                           ratings=ratings, readings=readings[:2], birth_year=1974,
                           today=T0 + timedelta(days=4))
    assert other.version != i.version


def test_esketamine_doses_and_a_finished_plan() -> None:
    plan = PlanRecord(1, "56 mg esketamine intranasal weekly for 2 weeks", "trd", 70.0,
                      T0 - timedelta(days=1))
    i = patient_inputs(plan=plan, doses=[dose(1, 0, compound="esketamine", route="intranasal",
                                              mg=56.0, duration=None),
                                         dose(2, 7, compound="esketamine", route="intranasal",
                                              mg=56.0, duration=None)],
                       ratings=[RatingRecord(1, "madrs", 30, T0 - timedelta(hours=1))])
    assert {d.compound for d in i.data.regimen.doses} == {"esketamine"}
    assert i.plan is None and "all been given" in i.plan_text


@pytest.mark.parametrize(("kwargs", "field", "words"), [
    ({"plan": None}, "plan", "create a plan"),
    ({"doses": []}, "dose", "no dose has been recorded"),
    ({"ratings": []}, "rating", "no rating on an instrument"),
    ({"ratings": [RatingRecord(1, "phq9", 9, T0 + timedelta(days=1))]}, "baseline rating",
     "no rating before the first dose (2026-03-02): the first was on 2026-03-03"),
    ({"plan": PlanRecord(1, "0.5 mg/kg IV over 40 min", "crps", 70.0, T0)}, "indication",
     "symptom course"),
])
def test_what_cannot_be_forecast_says_what_is_missing(kwargs, field, words) -> None:
    args = {"plan": PLAN, "doses": [dose(1, 0)],
            "ratings": [RatingRecord(1, "phq9", 20, T0 - timedelta(days=1))], **kwargs}
    with pytest.raises(IndividualUnavailable) as e:
        patient_inputs(**args)
    assert e.value.field == field and words in str(e.value)


def test_compute_hands_back_errors_instead_of_raising(monkeypatch) -> None:
    i = patient_inputs(plan=PLAN, doses=[dose(1, 0)],
                       ratings=[RatingRecord(1, "phq9", 20, T0 - timedelta(days=1))])

    def bad(*a, **k):
        raise PatientDataError("row 1: TIME", "is odd", "fix it")

    monkeypatch.setattr(individual, "forecast_patient", bad)
    got = individual.compute(i, "forecast")
    assert got["expected"] and "row 1: TIME" in got["error"]
    monkeypatch.setattr(individual, "forecast_patient", lambda *a, **k: 1 / 0)
    got = individual.compute(i, "forecast")
    assert not got["expected"] and "ZeroDivisionError" in got["trace"]


# ---- the chart and the plan page ------------------------------------------------------------

def test_the_chart_shows_this_patients_band_beside_the_populations(clinic, monkeypatch) -> None:
    calls = count_calls(monkeypatch)
    p = responder(clinic)
    nurse = client(clinic)
    login(nurse, "nurse")
    first = nurse.get(f"/patients/{p}")
    assert first.status_code == 200
    # while the worker computes: the population band (the plan's trend) and a note
    assert status_of(first.text) == "computing" and 'class="trend"' in first.text
    assert "is being computed" in section(first.text) and "population band" in first.text
    page = ready(nurse, f"/patients/{p}")
    sec = section(page)
    assert status_of(page) == "done"
    check_structure("chart with the individual forecast", page)
    svg = re.search(r'<svg[^>]*class="trend individual".*?</svg>', sec, re.S).group(0)
    mine = re.search(r'class="band-individual" points="([^"]+)"', svg).group(1)
    pop = re.search(r'class="band-population" points="([^"]+)"', svg).group(1)
    assert mine != pop and svg.count('<circle class="measured"') == 4
    # the table: this patient's median lies below the population's on some weeks (a
    # responder), and the band is narrower
    rows = band_rows(sec)
    assert any(int(r[3]) < int(r[5]) for r in rows), rows
    width = [int(r[4].split("–")[1]) - int(r[4].split("–")[0]) for r in rows]
    pop_width = [int(r[6].split("–")[1]) - int(r[6].split("–")[0]) for r in rows]
    assert sum(width) < sum(pop_width)
    for key in ("p_response", "p_relapse_28", "median_relapse", "next_session"):
        assert f'data-output="{key}"' in sec
    assert re.search(r'data-output="p_response">\d+ %', sec)
    assert re.search(r'data-output="p_relapse_28">(\d+ %|—)', sec)
    next_session = re.search(r'data-output="next_session">(.*?)</dd>', sec, re.S).group(1)
    assert re.search(r"\d{4}-\d\d-\d\d|none keeps", next_session), next_session
    assert '<table class="alternatives">' in sec and "7 days" in sec and "28 days" in sec
    assert "ketasim supports decisions and research; it does not replace a clinician" in sec
    # the nurse sees a link to the plan page, not the form
    assert 'action="/patients/' not in sec.split("accept")[0] or "next-session" not in sec
    assert calls == {"forecast": 1, "recommend": 1}
    # the same on the plan page, from the cache: no recomputation
    plan_page = nurse.get(f"/patients/{p}/plan")
    assert plan_page.status_code == 200 and status_of(plan_page.text) == "done"
    assert re.search(r'class="band-individual" points="([^"]+)"', plan_page.text).group(1) \
        == mine
    check_structure("plan page", plan_page.text)
    assert nurse.get(f"/patients/{p}").status_code == 200
    assert RUNNER.wait(60)
    assert calls == {"forecast": 1, "recommend": 1}
    with clinic.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(IndividualForecast)) == 1


def test_a_new_rating_gives_a_new_forecast(clinic, monkeypatch) -> None:
    calls = count_calls(monkeypatch)
    p = responder(clinic)
    nurse = client(clinic)
    login(nurse, "nurse")
    nurse.get(f"/patients/{p}")
    before = section(ready(nurse, f"/patients/{p}"))
    with clinic.state.sessions() as db:
        version = db.scalar(select(IndividualForecast.version))
    # the patient relapses: PHQ-9 18 today, entered by the nurse for the patient
    r = nurse.post(f"/patients/{p}/questionnaires/phq9", data={
        "csrf_token": csrf(nurse), **{f"item_{k}": v for k, v in
                                      enumerate(map(str, PHQ9[18]), start=1)}})
    assert r.status_code == 303
    page = nurse.get(f"/patients/{p}").text
    assert status_of(page) == "computing"
    after = section(ready(nurse, f"/patients/{p}"))
    assert calls == {"forecast": 2, "recommend": 2}
    with clinic.state.sessions() as db:
        versions = set(db.scalars(select(IndividualForecast.version)))
    assert len(versions) == 2 and version in versions
    band = re.compile(r'class="band-individual" points="([^"]+)"')
    assert band.search(before).group(1) != band.search(after).group(1)
    assert "<strong>18</strong>" in after and "<strong>18</strong>" not in before
    # a new session reading changes the version too
    with clinic.state.sessions() as db:
        sid = db.scalar(select(MonitoredSessionRow.id).where(
            MonitoredSessionRow.patient_id == p).order_by(MonitoredSessionRow.id.desc()))
        nurse_id = db.scalar(select(User.id).where(User.username == "nurse"))
        ev = db.scalars(select(SessionEvent).where(SessionEvent.session_id == sid,
                                                   SessionEvent.kind == "dose")).one()
        db.add(SessionEvent(session_id=sid, kind="vitals", at=ev.at + timedelta(minutes=90),
                            data={"sbp": 132.0, "dbp": 82.0, "hr": 72.0, "spo2": 98.0,
                                  "cadss": 2}, recorded_by=nurse_id, recorded_at=ev.at))
        db.commit()
    assert status_of(nurse.get(f"/patients/{p}").text) == "computing"


def test_no_page_waits_for_the_worker(clinic, monkeypatch) -> None:
    release = threading.Event()
    real = individual.compute

    def slow(inputs, part):
        release.wait(60)
        return real(inputs, part)

    monkeypatch.setattr(individual, "compute", slow)
    p = responder(clinic)
    pr = client(clinic)
    login(pr, "prescriber")
    t = time.perf_counter()
    for path in (f"/patients/{p}", f"/patients/{p}/plan", f"/patients/{p}"):
        r = pr.get(path)
        assert r.status_code == 200 and status_of(r.text) == "computing"
    assert time.perf_counter() - t < 10  # the worker is stuck; the pages are not
    assert RUNNER.busy() == 1  # one job for the version, however many views
    assert 'action="/patients/' + str(p) + '/plan/next-session"' not in r.text
    release.set()
    page = ready(pr, f"/patients/{p}/plan")
    assert f'action="/patients/{p}/plan/next-session"' in page


def test_a_pending_row_whose_worker_went_away_is_taken_up_again(clinic) -> None:
    p = responder(clinic)
    nurse = client(clinic)
    login(nurse, "nurse")
    nurse.get(f"/patients/{p}")
    assert RUNNER.wait(120)
    with clinic.state.sessions() as db:  # as a server killed mid-computation leaves it
        row = db.scalars(select(IndividualForecast)).one()
        row.status, row.forecast, row.recommendation = "pending", None, None
        db.commit()
    assert status_of(nurse.get(f"/patients/{p}").text) == "computing"
    assert RUNNER.busy() == 0  # not yet: another server process may still be on it
    clinic.state.ctx.clock.t = NOW + timedelta(minutes=11)
    assert status_of(nurse.get(f"/patients/{p}").text) == "computing"
    assert status_of(ready(nurse, f"/patients/{p}")) == "done"


# ---- accepting the suggestion into the plan --------------------------------------------------

def accept_form(page: str) -> dict[str, str]:
    form = re.search(r'<form method="post" action="[^"]*/plan/next-session".*?</form>', page,
                     re.S).group(0)
    out = dict(re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', form))
    out["interval_days"] = re.search(r'<option value="([^"]+)" selected', form).group(1)
    return out


def audit_ok(app) -> list[AuditRow]:  # noqa: F811
    with app.state.sessions() as db:
        rows = db.scalars(select(AuditRow).order_by(AuditRow.seq)).all()
    entries = [AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, r.detail, r.prev, r.mac)
               for r in rows]
    assert verify(entries, KEY).ok
    return list(rows)


def n_planned(app) -> int:  # noqa: F811
    with app.state.sessions() as db:
        return int(db.scalar(select(func.count()).select_from(PlannedSession)))


def test_a_prescriber_accepts_the_next_session_into_the_plan(clinic) -> None:
    p = responder(clinic)
    pr = client(clinic)
    login(pr, "prescriber")
    pr.get(f"/patients/{p}/plan")
    page = ready(pr, f"/patients/{p}/plan")
    check_structure("plan page with the form", page)
    form = accept_form(page)
    assert len(form["data_version"]) == 64 and form["dose_mg"] == "35"
    form["next_date"] = (NOW + timedelta(days=5)).date().isoformat()
    r = pr.post(f"/patients/{p}/plan/next-session", data=form)
    assert r.status_code == 303, r.text[:2000]
    with clinic.state.sessions() as db:
        ps = db.scalars(select(PlannedSession)).one()
        due = ps.due_at if ps.due_at.tzinfo else ps.due_at.replace(tzinfo=UTC)
        assert due == datetime(2026, 3, 25, 9, 0, tzinfo=UTC)
        assert (ps.dose_mg, ps.route, ps.duration_min, ps.compound) == (
            35.0, "iv_infusion", 40.0, "racemic")
        assert ps.interval_days == float(form["interval_days"])
        assert ps.data_version == form["data_version"]
        assert ps.detail["dose_check"]["verdict"] == "accept"
    entry = [a for a in audit_ok(clinic) if a.detail.get("step") == "accept next session"]
    assert len(entry) == 1 and entry[0].subject == f"patient:{p}"
    assert entry[0].detail["planned_session"] == ps.id and entry[0].detail["dose_mg"] == 35.0
    page = pr.get(f"/patients/{p}/plan").text
    assert "Next session in the plan:</strong> 2026-03-25, 35 mg IV over 40 min" in page
    assert "Next session in the plan" in pr.get(f"/patients/{p}").text
    # accepting changed the plan ahead, so the data version: the same form again is stale
    r = pr.post(f"/patients/{p}/plan/next-session", data=form)
    assert r.status_code == 409 and "changed since the page was shown" in r.text
    assert n_planned(clinic) == 1
    # the forecast now follows the accepted schedule
    page = ready(pr, f"/patients/{p}/plan")
    assert re.search(r"plan ahead: 35 mg IV over 40 min (on day \d+ then|every)", page)


def test_a_nurse_cannot_accept(clinic) -> None:
    p = responder(clinic)
    pr = client(clinic)
    login(pr, "prescriber")
    pr.get(f"/patients/{p}/plan")
    form = accept_form(ready(pr, f"/patients/{p}/plan"))
    nurse = client(clinic)
    login(nurse, "nurse")
    page = nurse.get(f"/patients/{p}/plan").text
    assert status_of(page) == "done" and "/plan/next-session" not in page  # no form
    r = nurse.post(f"/patients/{p}/plan/next-session", data={**form, "csrf_token": csrf(nurse)})
    assert r.status_code == 403 and "Only a prescriber" in r.text
    assert n_planned(clinic) == 0
    denied = [a for a in audit_ok(clinic) if a.action == "denied"]
    assert denied and denied[-1].detail == {"action": "accept next session"}
    for role, status in (("administrator", 403), ("front_desk", 404), ("patient", 404),
                         ("researcher", 404)):  # 404: they do not see plans at all
        c = client(clinic)
        login(c, role)
        r = c.post(f"/patients/{p}/plan/next-session", data={**form, "csrf_token": csrf(c)})
        assert r.status_code == status, (role, r.status_code)
    # a forged CSRF token: 403 before anything else
    assert pr.post(f"/patients/{p}/plan/next-session",
                   data={**form, "csrf_token": "forged"}).status_code == 403
    assert n_planned(clinic) == 0


def test_a_form_shown_on_old_data_is_refused(clinic) -> None:
    p = responder(clinic)
    pr = client(clinic)
    login(pr, "prescriber")
    pr.get(f"/patients/{p}/plan")
    form = accept_form(ready(pr, f"/patients/{p}/plan"))
    nurse = client(clinic)
    login(nurse, "nurse")
    r = nurse.post(f"/patients/{p}/questionnaires/phq9", data={
        "csrf_token": csrf(nurse), **{f"item_{k}": v for k, v in
                                      enumerate(map(str, PHQ9[7]), start=1)}})
    assert r.status_code == 303
    r = pr.post(f"/patients/{p}/plan/next-session", data=form)
    assert r.status_code == 409
    assert "changed since the page was shown" in r.text and "nothing was saved" in r.text
    assert n_planned(clinic) == 0
    assert all(a.detail.get("step") != "accept next session" for a in audit_ok(clinic))
    # a made-up version, and none at all
    for v in ("0" * 64, "", "x" * 500):
        r = pr.post(f"/patients/{p}/plan/next-session", data={**form, "data_version": v})
        assert r.status_code == 409, v
    assert n_planned(clinic) == 0


REFUSALS = [
    ({"dose_mg": "200"}, "hard stop"),                 # 2.9 mg/kg IV
    ({"dose_mg": "350"}, "hard stop"),                 # ten-fold the last dose
    ({"dose_mg": "0.5e2"}, "dose (mg)"),               # not a number as typed
    ({"dose_mg": ""}, "dose (mg)"),
    ({"dose_mg": "60"}, "override reason"),            # 0.86 mg/kg: a soft finding
    ({"dose_mg": "60", "override_reason": "ok"}, "too short"),
    ({"next_date": "2026-03-19"}, "is not from today"),
    ({"next_date": "2027-01-01"}, "is not from today"),
    ({"next_date": "20.3.2026"}, "not a date"),
    ({"interval_days": "9"}, "is not one of the forecast"),
    ({"override_reason": "x" * 501}, "override reason"),
]


def test_a_refused_acceptance_stores_nothing(clinic) -> None:
    p = responder(clinic)
    pr = client(clinic)
    login(pr, "prescriber")
    pr.get(f"/patients/{p}/plan")
    form = accept_form(ready(pr, f"/patients/{p}/plan"))
    before = len(audit_ok(clinic))
    for change, words in REFUSALS:
        r = pr.post(f"/patients/{p}/plan/next-session", data={**form, **change})
        assert r.status_code == 400 and words in r.text, (change, r.text[-3000:])
        assert 'role="alert"' in r.text and 'aria-invalid="true"' in r.text, change
        check_structure(f"refused acceptance {change}", r.text)
    assert n_planned(clinic) == 0
    rows = audit_ok(clinic)
    assert all(a.action == "read" for a in rows[before:])  # the pages shown; nothing written


def test_a_soft_finding_is_accepted_with_a_reason(clinic) -> None:
    p = responder(clinic)
    pr = client(clinic)
    login(pr, "prescriber")
    pr.get(f"/patients/{p}/plan")
    form = accept_form(ready(pr, f"/patients/{p}/plan"))
    r = pr.post(f"/patients/{p}/plan/next-session", data={
        **form, "dose_mg": "60", "override_reason": "partial response at 0.5 mg/kg"})
    assert r.status_code == 303, r.text[-2000:]
    with clinic.state.sessions() as db:
        ps = db.scalars(select(PlannedSession)).one()
        assert ps.detail["dose_check"]["verdict"] == "soft"
        assert ps.detail["dose_check"]["override"]["reason"] == "partial response at 0.5 mg/kg"


# ---- records the forecast cannot use ---------------------------------------------------------

def test_no_baseline_rating_is_a_clear_message(clinic) -> None:
    p = responder(clinic, baseline=False)
    for role in ("nurse", "prescriber", "administrator"):
        c = client(clinic)
        login(c, role)
        for path in (f"/patients/{p}", f"/patients/{p}/plan"):
            r = c.get(path)
            assert r.status_code == 200
            sec = section(r.text)
            assert status_of(r.text) == "unavailable"
            assert "No individual forecast: baseline rating: no rating before the first dose " \
                   "(2026-03-06)" in sec
            assert "/plan/next-session" not in sec
    assert RUNNER.busy() == 0
    with clinic.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(IndividualForecast)) == 0


def test_an_unreadable_dose_record_and_a_failing_model_are_messages(clinic, monkeypatch) -> None:
    p = responder(clinic)
    nurse = client(clinic)
    login(nurse, "nurse")

    def bad(*a, **k):
        raise PatientDataError("row 3: TIME", "a rating the model cannot place",
                               "check the rating")

    monkeypatch.setattr(individual, "forecast_patient", bad)
    nurse.get(f"/patients/{p}")
    page = ready(nurse, f"/patients/{p}")
    assert status_of(page) == "failed"
    assert "could not be made: row 3: TIME: a rating the model cannot place" in section(page)
    # a bug, not the data: said without the details, logged
    monkeypatch.setattr(individual, "forecast_patient", lambda *a, **k: {}["missing"])
    with clinic.state.sessions() as db:
        db.execute(text("DELETE FROM individual_forecasts"))
        db.commit()
    nurse.get(f"/patients/{p}")
    page = ready(nurse, f"/patients/{p}")
    assert status_of(page) == "failed" and "an error in ketasim" in page
    # not the data's fault: tried again 10 minutes later
    monkeypatch.undo()
    assert status_of(nurse.get(f"/patients/{p}").text) == "failed" and RUNNER.busy() == 0
    clinic.state.ctx.clock.t = NOW + timedelta(minutes=11)
    assert status_of(nurse.get(f"/patients/{p}").text) == "computing"
    assert status_of(ready(nurse, f"/patients/{p}")) == "done"
    # a stored dose without its mg: a message, never a 500
    with clinic.state.sessions() as db:
        ev = db.scalars(select(SessionEvent).where(SessionEvent.kind == "dose")).first()
        ev.data = {"route": "iv_infusion"}
        db.commit()
    for path in (f"/patients/{p}", f"/patients/{p}/plan"):
        r = nurse.get(path)
        assert r.status_code == 200 and status_of(r.text) == "unavailable"
        assert "cannot be read" in r.text


def test_who_sees_the_plan_page(clinic) -> None:
    p = responder(clinic)
    other = pid(clinic, "Other Clinic Patient")
    for role, code in (("administrator", 200), ("prescriber", 200), ("nurse", 200),
                       ("front_desk", 404), ("patient", 404), ("researcher", 404)):
        c = client(clinic)
        login(c, role)
        assert c.get(f"/patients/{p}/plan").status_code == code, role
        assert c.get(f"/patients/{other}/plan").status_code == 404, role
    anon = client(clinic)
    assert anon.get(f"/patients/{p}/plan").status_code == 303


# ---- the worker process ----------------------------------------------------------------------

def test_the_worker_process_computes_out_of_the_server(clinic) -> None:
    if clinic.state.engine.dialect.name != "sqlite":
        pytest.skip("the worker process is the same on PostgreSQL")
    clinic.state.individual_mode = "process"
    p = responder(clinic)
    nurse = client(clinic)
    login(nurse, "nurse")
    assert status_of(nurse.get(f"/patients/{p}").text) == "computing"
    page = ready(nurse, f"/patients/{p}")
    assert status_of(page) == "done" and 'class="band-individual"' in page
    assert RUNNER.worker.running
    proc = RUNNER.worker.proc
    assert proc is not None and proc.pid > 0


# ---- in a browser ----------------------------------------------------------------------------

@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="no Chromium here (.ci/run installs it)")
def test_the_pages_are_accessible_in_a_browser(clinic, browser) -> None:  # noqa: F811
    """axe-core finds nothing serious on the chart and the plan page while computing, when
    done, and with a refused form; no CSP violation, no sideways scrolling on a tablet or a
    phone, touch targets of 44 px (as tests/test_a11y.py checks every other page)."""
    import uvicorn
    p = responder(clinic)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(clinic, host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if srv.started:
                break
            time.sleep(0.05)
        base = f"http://localhost:{port}"
        shots = ARTEFACTS / "individual" / clinic.state.engine.dialect.name
        shots.mkdir(parents=True, exist_ok=True)
        report: dict = {}
        pr = Page(browser, base).login("prescriber")
        pr.page.goto(f"{base}/patients/{p}")
        audit_page(pr, "01-chart-computing", shots, report)
        assert RUNNER.wait(120)
        pr.page.goto(f"{base}/patients/{p}")
        pr.page.wait_for_selector("svg.individual")
        audit_page(pr, "02-chart-individual", shots, report)
        pr.page.goto(f"{base}/patients/{p}/plan")
        pr.page.wait_for_selector("form[action$=next-session]")
        audit_page(pr, "03-plan-page", shots, report)
        pr.page.fill("input[name=dose_mg]", "200")
        with pr.page.expect_navigation():
            pr.page.click("button:has-text('Accept into the plan')")
        pr.page.wait_for_selector("[role=alert]")
        audit_page(pr, "04-plan-refused", shots, report)
        (shots / "report.json").write_text(json.dumps(report, indent=1))
        assert not report.get("serious"), json.dumps(report["serious"], indent=1)
        assert not pr.csp, pr.csp
        assert not report.get("sideways"), report["sideways"]
        assert not report.get("small"), report["small"]
    finally:
        srv.should_exit = True
        thread.join(5)


# ---- migration 0010 --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_0010_up_and_down(backend: str, tmp_path) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config
    url = database_url(backend, tmp_path)
    cfg = Config()
    cfg.set_main_option("script_location",
                        str(resources.files("ketasim.storage").joinpath("migrations")))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0009")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO clinics (name, require_mfa) VALUES ('Old', false)"))
        command.upgrade(cfg, "0010")
        tables = set(inspect(engine).get_table_names())
        assert {"individual_forecasts", "planned_sessions"} <= tables
        uniques = inspect(engine).get_unique_constraints("individual_forecasts")
        assert any(set(u["column_names"]) == {"patient_id", "version"} for u in uniques)
        command.downgrade(cfg, "0009")
        engine.dispose()
        tables = set(inspect(engine).get_table_names())
        assert not {"individual_forecasts", "planned_sessions"} & tables
        with engine.begin() as conn:
            assert conn.execute(text("SELECT name FROM clinics")).scalar() == "Old"
        command.upgrade(cfg, "0010")
    finally:
        engine.dispose()
