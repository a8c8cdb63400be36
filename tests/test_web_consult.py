"""Consultation and screening: the public form, its honest summary, and the staff queue."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from tests.test_web import app, client, login  # noqa: F401

from ketasim.clinic.references import has_working_notes
from ketasim.storage.models import Clinic, ConsultationRequest, Patient


def form_token(c) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get("/consult").text).group(1)


def answers(**over) -> dict:
    data = {"condition": "depression", "prior": ["antidepressants_2", "psychotherapy"],
            "caution": ["hypertension"], "name": "Alex Example", "contact": "555-0100",
            "consent": "yes"}
    data.update({f"phq9_{k}": "2" for k in range(1, 10)})
    data["phq9_9"] = "0"
    data.update({f"gad7_{k}": "1" for k in range(1, 8)})
    data.update(over)
    return data


def submit(app, **over):  # noqa: F811
    c = client(app)
    tok = form_token(c)
    with app.state.sessions() as db:
        clinic = db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic")).id
    return c.post("/consult", data={"csrf_token": tok, "clinic_id": str(clinic),
                                    **answers(**over)})


def count(app) -> int:  # noqa: F811
    with app.state.sessions() as db:
        return int(db.scalar(select(func.count()).select_from(ConsultationRequest)))


def test_public_screening_gives_an_honest_sourced_summary(app) -> None:  # noqa: F811
    r = submit(app)
    assert r.status_code == 200
    text = r.text
    # the evidence and the papers behind it, with their DOIs; no working notes
    assert "graded A" in text and "Murrough JW et al. (2013)" in text
    assert 'href="https://doi.org/10.1176/appi.ajp.2013.13030392"' in text
    # the caution, sourced from the label
    assert "blood pressure" in text and "SPRAVATO (esketamine) nasal spray, US prescribing " \
        "information" in text
    assert not has_working_notes(text), re.findall(r".{40}(?:PDC|\.md|§|\[[VMU]\]).{20}", text)
    assert "PHQ-9 score (how you have been feeling) is <strong>16</strong>" in text
    assert "crisis" not in text.split("</h1>")[1][:200]
    assert not re.search(r"you are (eligible|a candidate)", text, re.I)
    assert count(app) == 1
    urgent = submit(app, phq9_9="1")
    assert "988" in urgent.text and "Do not wait" in urgent.text
    limited = submit(app, condition="eating_disorder")
    assert "evidence is limited" in limited.text and "case reports" in limited.text


@pytest.mark.parametrize(("over", "message"), [
    ({"phq9_4": ""}, "PHQ9 question 4"),
    ({"gad7_2": "7"}, "GAD7 question 2"),
    ({"condition": "flu"}, "condition"),
    ({"caution": ["unknown"]}, "caution"),
    ({"consent": ""}, "consent"),
    ({"name": ""}, "name"),
])
def test_bad_screening_answers_store_nothing(app, over, message) -> None:  # noqa: F811
    r = submit(app, **over)
    assert r.status_code == 400 and message in r.text
    assert count(app) == 0


def test_expired_form_is_refused(app) -> None:  # noqa: F811
    c = client(app)
    r = c.post("/consult", data={"csrf_token": "forged", **answers()})
    assert r.status_code == 400 and "expired" in r.text and count(app) == 0


def test_front_desk_schedules_and_a_prescriber_assesses(app) -> None:  # noqa: F811
    submit(app)
    with app.state.sessions() as db:
        rid = db.scalar(select(ConsultationRequest.id))
    fd = client(app)
    login(fd, "front_desk")
    queue = fd.get("/consultations")
    assert queue.status_code == 200 and "Alex Example" in queue.text
    tok = re.search(r'name="csrf_token" value="([^"]+)"', queue.text).group(1)
    bad = fd.post(f"/consultations/{rid}/schedule", data={"csrf_token": tok, "when": "soon"})
    assert bad.status_code == 400 and "not a date" in bad.text
    ok = fd.post(f"/consultations/{rid}/schedule",
                 data={"csrf_token": tok, "when": "2026-12-01T10:00"})
    assert ok.status_code == 303
    assert fd.post(f"/consultations/{rid}/assess", data={"csrf_token": tok, "decision": "plan",
                                                         "note": "x" * 20}).status_code == 404
    pr = client(app)
    login(pr, "prescriber")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', pr.get("/consultations").text
                    ).group(1)
    short = pr.post(f"/consultations/{rid}/assess",
                    data={"csrf_token": tok, "decision": "plan", "note": "ok"})
    assert short.status_code == 400
    r = pr.post(f"/consultations/{rid}/assess", data={
        "csrf_token": tok, "decision": "plan",
        "note": "TRD after two adequate trials; BP 128/80 at clinic"})
    assert r.status_code == 303 and r.headers["location"].startswith("/patients/")
    with app.state.sessions() as db:
        assert db.scalar(select(Patient).where(Patient.display_name == "Alex Example"))


def test_queue_access(app) -> None:  # noqa: F811
    submit(app)
    with app.state.sessions() as db:
        rid = db.scalar(select(ConsultationRequest.id))
        other = db.scalar(select(Clinic).where(Clinic.name == "Other Clinic"))
        db.add(ConsultationRequest(clinic_id=other.id, created_at=func.now(), name="Z",
                                   contact="zzz", condition="other", answers={"phq9": [0] * 9,
                                   "cautions": []}, phq9_total=0, gad7_total=0, status="new"))
        db.commit()
        other_id = db.scalar(select(ConsultationRequest.id).where(
            ConsultationRequest.clinic_id == other.id))
    for role, code in {"administrator": 200, "prescriber": 200, "nurse": 200,
                       "front_desk": 200, "patient": 404, "researcher": 404}.items():
        c = client(app)
        login(c, role)
        r = c.get("/consultations")
        assert r.status_code == code, role
        if code == 200:
            assert "Z" not in re.findall(r"<td>([^<]*)</td>", r.text)
        tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/patients").text).group(1)
        r = c.post(f"/consultations/{other_id}/schedule",
                   data={"csrf_token": tok, "when": "2026-12-01T10:00"})
        assert r.status_code == 404, role
        r = c.post(f"/consultations/{rid}/schedule",
                   data={"csrf_token": tok, "when": "2026-12-01T10:00"})
        assert r.status_code == (303 if role in ("administrator", "front_desk") else 404), role
    assert client(app).get("/consultations").status_code == 303
