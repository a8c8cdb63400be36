"""Drug levels in the clinic (issue #14), over HTTP on SQLite and PostgreSQL: a nurse enters a
level on the chart, it is listed, audited (its row fingerprinted, the chain and the database
verify) and read by the individual forecast (a new data version, computed on the next view);
every refusal (a time in the future or not after the first dose, a negative or too large
value, an unknown analyte, a role that does not enter levels, a missing CSRF token) answers
with a clear message and stores nothing; the same form twice saves once; migration 0011 up and
down."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from tests.test_web import BACKENDS, KEY, app, client, database_url, login  # noqa: F401
from tests.test_web_individual_forecast import (  # noqa: F401  (fixture)
    NOW,
    audit_ok,
    clinic,
    csrf,
    pid,
    ready,
    responder,
    status_of,
)
from tests.test_web_ui import check_structure

from ketasim.clinic.individual import LevelRecord, patient_inputs
from ketasim.storage.audit_store import clinical_digest, verify_database
from ketasim.storage.models import (
    Clinic,
    DrugLevel,
    IndividualForecast,
    MonitoredSessionRow,
    SessionEvent,
)
from ketasim.web.clock import input_value, zone

FIRST = NOW - timedelta(days=14)  # the responder's first session; its dose 5 min after


def first_dose(app, p: int | None = None) -> datetime:  # noqa: F811
    """Demo Patient A's first dose."""
    with app.state.sessions() as db:
        t = db.scalar(select(func.min(SessionEvent.at))
                      .join(MonitoredSessionRow, SessionEvent.session_id == MonitoredSessionRow.id)
                      .where(SessionEvent.kind == "dose",
                             MonitoredSessionRow.patient_id == (p or pid(app))))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def level_form(c, p: int) -> dict[str, str]:
    page = c.get(f"/patients/{p}").text
    form = re.search(r'<form method="post" action="/patients/\d+/levels".*?</form>', page,
                     re.S)
    assert form, "no level form on the chart"
    return dict(re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', form.group(0)))


def n_levels(app) -> int:  # noqa: F811
    with app.state.sessions() as db:
        return int(db.scalar(select(func.count()).select_from(DrugLevel)))


def level_entries(app) -> list:  # noqa: F811
    return [a for a in audit_ok(app) if str(a.detail.get("row", "")).startswith("drug_level:")]


def test_a_nurse_saves_a_level_and_the_forecast_reads_it(clinic) -> None:  # noqa: F811
    p = responder(clinic)
    nurse = client(clinic)
    login(nurse, "nurse")
    nurse.get(f"/patients/{p}")
    page = ready(nurse, f"/patients/{p}")
    assert status_of(page) == "done"
    check_structure("chart with the level form", page)
    assert "Drug levels" in page and "None recorded." in page
    options = re.findall(r'<option value="(\w+)"', re.search(
        r'<select id="level-analyte".*?</select>', page, re.S).group(0))
    assert "ketamine" in options and "norketamine" in options and "esketamine" not in options
    with clinic.state.sessions() as db:
        before = set(db.scalars(select(IndividualForecast.version)))
    drawn = first_dose(clinic) + timedelta(minutes=40)
    form = level_form(nurse, p)
    r = nurse.post(f"/patients/{p}/levels", data={
        **form, "analyte": "ketamine", "value_ng_ml": "185.5",
        "drawn_at": input_value(drawn, UTC)})
    assert r.status_code == 303, r.text[:2000]
    with clinic.state.sessions() as db:
        row = db.scalars(select(DrugLevel)).one()
        at = row.drawn_at if row.drawn_at.tzinfo else row.drawn_at.replace(tzinfo=UTC)
        assert (row.patient_id, row.analyte, row.value_ng_ml, at) == (
            p, "ketamine", 185.5, drawn.replace(second=0, microsecond=0))
        digest = clinical_digest(row)
        report = verify_database(db, KEY)  # (the test's own rows are not audited)
        key = f"drug_level:{row.id}"
        assert report.chain.ok and key not in report.uncovered + report.altered
    entry = level_entries(clinic)
    assert len(entry) == 1 and entry[0].subject == f"patient:{p}"
    assert entry[0].detail["row"] == f"drug_level:{row.id}"
    assert entry[0].detail["digest"] == digest and entry[0].detail["value_ng_ml"] == 185.5
    # listed on the chart; the data version changed, so the chart computes again
    page = nurse.get(f"/patients/{p}").text
    table = re.search(r'<table class="levels-table">.*?</table>', page, re.S).group(0)
    assert "ketamine (racemic)" in table and "185.5" in table
    assert status_of(page) == "computing"
    page = ready(nurse, f"/patients/{p}")
    assert status_of(page) == "done"
    with clinic.state.sessions() as db:
        after = set(db.scalars(select(IndividualForecast.version)))
    assert before < after and len(after - before) == 1
    # the same form again (a double-click) saves once
    r = nurse.post(f"/patients/{p}/levels", data={
        **form, "analyte": "ketamine", "value_ng_ml": "185.5",
        "drawn_at": input_value(drawn, UTC)})
    assert r.status_code == 303 and n_levels(clinic) == 1


def test_a_level_is_entered_in_the_clinics_time_zone(clinic) -> None:  # noqa: F811
    p = responder(clinic)
    with clinic.state.sessions() as db:
        db.scalars(select(Clinic).where(Clinic.name == "Demo Clinic")).one().timezone = \
            "Europe/Oslo"
        db.commit()
    pr = client(clinic)
    login(pr, "prescriber")
    drawn = first_dose(clinic) + timedelta(hours=2)
    r = pr.post(f"/patients/{p}/levels", data={
        **level_form(pr, p), "analyte": "norketamine", "value_ng_ml": "60",
        "drawn_at": input_value(drawn, zone("Europe/Oslo"))})
    assert r.status_code == 303, r.text[:2000]
    with clinic.state.sessions() as db:
        at = db.scalar(select(DrugLevel.drawn_at))
    assert (at if at.tzinfo else at.replace(tzinfo=UTC)) == drawn.replace(second=0,
                                                                          microsecond=0)
    assert "CET" in pr.get(f"/patients/{p}").text


@pytest.mark.parametrize(("change", "words", "field"), [
    ({"drawn_at": "future"}, "time drawn: 2026-03-20 12:00 UTC is in the future", "drawn_at"),
    ({"drawn_at": "before"}, "is not after the patient&#39;s first dose", "drawn_at"),
    ({"drawn_at": ""}, "time drawn: is required", "drawn_at"),
    ({"drawn_at": "yesterday"}, "is not a date and time", "drawn_at"),
    ({"value_ng_ml": "-5"}, "level (ng/mL)", "value_ng_ml"),
    ({"value_ng_ml": "20001"}, "level (ng/mL): 20001 is outside 0-20000", "value_ng_ml"),
    ({"value_ng_ml": "1e3"}, "level (ng/mL)", "value_ng_ml"),
    ({"analyte": "cocaine"}, "analyte: &#39;cocaine&#39; is not an analyte the model knows",
     "analyte"),
    ({"analyte": "esketamine"}, "analyte: esketamine is not predicted by this patient&#39;s "
     "PK model (racemic_enantiomers)", "analyte"),
])
def test_a_refused_level_says_why_and_stores_nothing(clinic, change, words, field) -> None:  # noqa: F811
    p = responder(clinic)
    nurse = client(clinic)
    login(nurse, "nurse")
    first = first_dose(clinic)
    data = {**level_form(nurse, p), "analyte": "ketamine", "value_ng_ml": "120",
            "drawn_at": input_value(first + timedelta(hours=1), UTC), **change}
    if data["drawn_at"] == "future":
        data["drawn_at"] = input_value(NOW + timedelta(hours=2), UTC)
    elif data["drawn_at"] == "before":
        data["drawn_at"] = input_value(first - timedelta(minutes=30), UTC)
    n_audit = len(audit_ok(clinic))
    r = nurse.post(f"/patients/{p}/levels", data=data)
    assert r.status_code == 400, r.text[:2000]
    assert words in r.text, re.search(r'role="alert".*?</div>', r.text, re.S).group(0)
    assert f'id="level-{field}-error"' in r.text  # the message is tied to the field
    check_structure("chart with a refused level", r.text)
    assert n_levels(clinic) == 0 and not level_entries(clinic)
    assert len(audit_ok(clinic)) >= n_audit


def test_no_level_before_any_dose(clinic) -> None:  # noqa: F811
    p = pid(clinic)  # Demo Patient A has no session yet
    nurse = client(clinic)
    login(nurse, "nurse")
    r = nurse.post(f"/patients/{p}/levels", data={
        **level_form(nurse, p), "analyte": "ketamine", "value_ng_ml": "120",
        "drawn_at": input_value(NOW - timedelta(hours=1), UTC)})
    assert r.status_code == 400 and "no dose has been recorded yet" in r.text
    assert n_levels(clinic) == 0


@pytest.mark.parametrize(("role", "status"), [("front_desk", 404), ("administrator", 403),
                                              ("researcher", 404), ("patient", 404)])
def test_who_may_not_enter_levels(clinic, role, status) -> None:  # noqa: F811
    p = responder(clinic)
    c = client(clinic)
    login(c, role)
    r = c.post(f"/patients/{p}/levels", data={
        "csrf_token": csrf(c), "analyte": "ketamine", "value_ng_ml": "120",
        "drawn_at": input_value(first_dose(clinic) + timedelta(hours=1), UTC)})
    assert r.status_code == status
    assert n_levels(clinic) == 0 and not level_entries(clinic)
    denied = [a for a in audit_ok(clinic) if a.action == "denied" and a.subject ==
              f"patient:{p}"]
    assert denied
    page = c.get(f"/patients/{p}").text
    assert 'action="/patients/' + str(p) + '/levels"' not in page


def test_a_level_without_the_csrf_token_is_refused(clinic) -> None:  # noqa: F811
    p = responder(clinic)
    nurse = client(clinic)
    login(nurse, "nurse")
    form = level_form(nurse, p)
    form.pop("csrf_token")
    r = nurse.post(f"/patients/{p}/levels", data={
        **form, "analyte": "ketamine", "value_ng_ml": "120",
        "drawn_at": input_value(first_dose(clinic) + timedelta(hours=1), UTC)})
    assert r.status_code == 403 and n_levels(clinic) == 0


def test_a_level_changes_the_data_version() -> None:
    from tests.test_web_individual_forecast import PLAN, T0, dose

    from ketasim.clinic.individual import RatingRecord
    base = {"plan": PLAN, "doses": [dose(1, 0.0)],
            "ratings": [RatingRecord(3, "phq9", 20, T0 - timedelta(days=1))]}
    plain = patient_inputs(**base)
    lv = patient_inputs(**base, levels=[LevelRecord(9, T0 + timedelta(hours=1), "ketamine",
                                                    150.0)])
    assert plain.version != lv.version
    assert [(x.time_h, x.analyte, x.value, x.row) for x in lv.data.levels] == [
        (1.0, "ketamine", 150.0, 9)]


# ---- migration 0011 --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_0011_up_and_down(backend: str, tmp_path) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config
    url = database_url(backend, tmp_path)
    cfg = Config()
    cfg.set_main_option("script_location",
                        str(resources.files("ketasim.storage").joinpath("migrations")))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0010")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO clinics (name, require_mfa) VALUES ('Old', false)"))
        command.upgrade(cfg, "0011")
        assert "drug_levels" in set(inspect(engine).get_table_names())
        cols = {c["name"]: c for c in inspect(engine).get_columns("drug_levels")}
        assert {"id", "patient_id", "analyte", "value_ng_ml", "drawn_at", "entered_by",
                "created_at", "form_token"} <= set(cols)
        fks = {fk["referred_table"] for fk in inspect(engine).get_foreign_keys("drug_levels")}
        assert fks == {"patients", "users"}
        command.downgrade(cfg, "0010")
        engine.dispose()
        assert "drug_levels" not in set(inspect(engine).get_table_names())
        with engine.begin() as conn:
            assert conn.execute(text("SELECT name FROM clinics")).scalar() == "Old"
        command.upgrade(cfg, "head")
        engine.dispose()
        with engine.begin() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
                == "0011"
    finally:
        engine.dispose()
