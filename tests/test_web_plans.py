"""Treatment plans with forecasts on the chart, and the trend against the forecast."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from tests.test_web import app, client, login  # noqa: F401

from ketasim.storage.models import Patient, TreatmentPlan


def pid_a(app) -> int:  # noqa: F811
    with app.state.sessions() as db:
        return db.scalar(select(Patient.id).where(Patient.display_name == "Demo Patient A"))


def tok(c, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text).group(1)


def plans(app) -> int:  # noqa: F811
    with app.state.sessions() as db:
        return int(db.scalar(select(func.count()).select_from(TreatmentPlan)))


def test_plan_forecast_and_trend(app) -> None:  # noqa: F811
    pid = pid_a(app)
    pt = client(app)
    login(pt, "patient")
    items = {f"item_{k}": "2" for k in range(1, 10)} | {"item_9": "0"}
    t = tok(pt, f"/patients/{pid}/questionnaires/phq9")
    assert pt.post(f"/patients/{pid}/questionnaires/phq9",
                   data={"csrf_token": t, **items}).status_code == 303
    pr = client(app)
    login(pr, "prescriber")
    t = tok(pr, f"/patients/{pid}")
    r = pr.post(f"/patients/{pid}/plans", data={"csrf_token": t, "protocol": "iv_induction",
                                               "indication": "trd", "weight_kg": "72"})
    assert r.status_code == 303, r.text
    page = pr.get(f"/patients/{pid}").text
    assert "IV racemic ketamine induction series" in page and "C<sub>max</sub>" in page
    # the PHQ-9 measured at baseline, drawn over the forecast and in the chart's table
    assert "<svg" in page and page.count('<circle class="measured"') == 1
    assert re.search(r'<td class="num"><strong>16</strong></td><td class="num">16</td>', page)
    assert "does not replace a clinician" in page
    with app.state.sessions() as db:
        plan = db.scalar(select(TreatmentPlan))
        f = plan.forecast
    assert f["instrument"] == "phq9" and f["baseline"] == 16.0
    assert f["p50"][0] == 16.0 and min(f["p50"]) < 12  # improvement expected
    assert all(lo <= mid <= hi for lo, mid, hi in zip(f["p5"], f["p50"], f["p95"], strict=True))


def test_bad_plans_store_nothing(app) -> None:  # noqa: F811
    pid = pid_a(app)
    pr = client(app)
    login(pr, "prescriber")
    t = tok(pr, f"/patients/{pid}")
    for data in ({"protocol": "magic", "indication": "trd", "weight_kg": "70"},
                 {"protocol": "iv_induction", "indication": "eating_disorders",
                  "weight_kg": "70"},
                 {"protocol": "iv_induction", "indication": "trd", "weight_kg": "700"},
                 {"protocol": "iv_induction", "indication": "trd", "weight_kg": "seventy"}):
        r = pr.post(f"/patients/{pid}/plans", data={"csrf_token": t, **data})
        assert r.status_code == 400 and "fix" in r.text, data
    assert plans(app) == 0
    for role in ("nurse", "front_desk", "patient", "researcher", "administrator"):
        c = client(app)
        login(c, role)
        t = tok(c, "/patients")
        r = c.post(f"/patients/{pid}/plans", data={"csrf_token": t, "protocol": "iv_induction",
                                                  "indication": "trd", "weight_kg": "70"})
        assert r.status_code == 404, role
    assert plans(app) == 0


def test_madrs_is_clinician_rated_and_questionnaires_show_when_due(app) -> None:  # noqa: F811
    pid = pid_a(app)
    pt = client(app)
    login(pt, "patient")
    page = pt.get(f"/patients/{pid}").text
    assert "never done" in page and "MADRS" not in page
    assert pt.get(f"/patients/{pid}/questionnaires/madrs").status_code == 404
    nu = client(app)
    login(nu, "nurse")
    t = tok(nu, f"/patients/{pid}/questionnaires/madrs")
    r = nu.post(f"/patients/{pid}/questionnaires/madrs",
                data={"csrf_token": t, **{f"item_{k}": "3" for k in range(1, 11)}})
    assert r.status_code == 303
    bad = nu.post(f"/patients/{pid}/questionnaires/madrs",
                  data={"csrf_token": t, **{f"item_{k}": "7" for k in range(1, 11)}})
    assert bad.status_code == 400
    page = nu.get(f"/patients/{pid}").text
    assert "<td>madrs</td><td class=\"num\">30</td><td>moderate</td>" in page
    items = {f"item_{k}": "0" for k in range(1, 10)}
    t = tok(pt, f"/patients/{pid}/questionnaires/phq9")
    pt.post(f"/patients/{pid}/questionnaires/phq9", data={"csrf_token": t, **items})
    page = pt.get(f"/patients/{pid}").text
    assert 'PHQ-9</a> <span class="badge due">' not in page  # just done: not due


def test_patient_list_pages_and_search(app) -> None:  # noqa: F811
    from ketasim.storage.models import Clinic
    with app.state.sessions() as db:
        clinic = db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic"))
        db.add_all([Patient(clinic_id=clinic.id, display_name=f"Zed {i:03d}")
                    for i in range(120)])
        db.commit()
    c = client(app)
    login(c, "front_desk")
    first = c.get("/patients").text
    assert first.count('<li><a href="/patients/') == 50 and "Next page" in first
    third = c.get("/patients?page=3").text
    assert third.count('<li><a href="/patients/') == 22 and "Next page</a>" not in third
    found = c.get("/patients?q=Zed%20007").text
    assert found.count('<li><a href="/patients/') == 1
    assert "Other Clinic" not in c.get("/patients?q=Other").text
    assert c.get("/patients?page=0").status_code == 422
    assert c.get("/patients?q=%25").status_code == 200  # wildcards are not special
