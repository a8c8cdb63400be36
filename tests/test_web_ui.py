"""What people see (issue #17), over HTTP on SQLite and PostgreSQL: the stylesheet and a strict
CSP on every page; WCAG checks on the HTML (every input labelled, errors tied to their field,
headings in order, charts with text alternatives, ids unique) and on the stylesheet's colour
pairs; the clinic's time zone (shown to the minute with the zone named, entered with
``datetime-local`` in that zone, stored in UTC, DST gaps refused); the patient's year of birth
and the age it gives the session forecast; the session page as a checklist; the PHQ-9 chart's
axes, legend, thresholds and table; public pages citing papers, not working notes; and
migration 0009 up and down."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text
from tests.test_web import BACKENDS, app, client, database_url, login  # noqa: F401

from ketasim.clinic.references import has_working_notes
from ketasim.clinic.screening import CONDITIONS
from ketasim.storage.models import (
    AuditRow,
    Clinic,
    Patient,
    QuestionnaireResponse,
    SessionEvent,
    TreatmentPlan,
)

CSS = Path(__file__).resolve().parent.parent / "src/ketasim/web/static/ketasim.css"
WINTER = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # 10:00 CET in Oslo
SUMMER = datetime(2026, 7, 15, 9, 0, tzinfo=UTC)  # 11:00 CEST


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
def clock(app):  # noqa: F811
    from ketasim.web.deps import Settings
    c = Clock(WINTER)
    app.state.ctx.clock = c
    app.state.ctx.settings = Settings(idle_timeout=timedelta(days=400),
                                      absolute_timeout=timedelta(days=400))
    return c


def csrf(c, path: str = "/patients") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text).group(1)


def form_token(page: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', page).group(1)


def pid(app, name: str = "Demo Patient A") -> int:  # noqa: F811
    with app.state.sessions() as db:
        return db.scalar(select(Patient.id).where(Patient.display_name == name))


def set_zone(app, name: str) -> None:  # noqa: F811
    a = client(app)
    login(a, "administrator")
    r = a.post("/admin/timezone", data={"csrf_token": csrf(a, "/admin"), "timezone": name})
    assert r.status_code == 303, r.text


def step(c, sid: int, name: str, **fields):
    page = c.get(f"/sessions/{sid}").text
    data = {"csrf_token": csrf(c, f"/sessions/{sid}"), "form_token": form_token(page), **fields}
    return c.post(f"/sessions/{sid}/{name}", data=data)


VITALS = {"sbp": "128", "dbp": "80", "hr": "70", "spo2": "98"}
DOSE = {"product": "ketamine 10 mg/mL", "lot": "L1", "route": "iv_infusion",
        "duration_min": "40", "amount": "0.5", "unit": "mg/kg", "weight_kg": "70"}


def dosed(app, c, clock: Clock, patient: str = "Demo Patient A") -> int:  # noqa: F811
    r = c.post(f"/patients/{pid(app, patient)}/sessions",
               data={"csrf_token": csrf(c), "compound": "racemic"})
    assert r.status_code == 303, r.text
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    assert step(c, sid, "predose", **VITALS, contraindications_confirmed="yes").status_code \
        == 303
    clock.t += timedelta(minutes=5)
    r = step(c, sid, "dose", **DOSE, weight_date=clock.t.date().isoformat())
    assert r.status_code == 303, r.text
    return sid


# ---- the stylesheet and the CSP -------------------------------------------------------------

def pages_of(app, clock: Clock) -> dict[str, str]:  # noqa: F811
    """Every kind of page, as the role that sees it renders it (a session with a forecast,
    a plan with its trend)."""
    out: dict[str, str] = {}
    anon = client(app)
    out["login"] = anon.get("/login").text
    out["consult"] = anon.get("/consult").text
    nurse = client(app)
    login(nurse, "nurse")
    sid = dosed(app, nurse, clock)
    clock.t += timedelta(minutes=40)
    assert step(nurse, sid, "vitals", **VITALS, moaas="4", cadss="10").status_code == 303
    pr = client(app)
    login(pr, "prescriber")
    r = pr.post(f"/patients/{pid(app)}/plans", data={
        "csrf_token": csrf(pr), "protocol": "iv_induction", "indication": "trd",
        "weight_kg": "72"})
    assert r.status_code == 303, r.text
    out["patients"] = nurse.get("/patients").text
    out["patient"] = pr.get(f"/patients/{pid(app)}").text
    out["session"] = nurse.get(f"/sessions/{sid}").text
    out["monitoring form"] = nurse.get(f"/sessions/{sid}/form").text
    out["questionnaire"] = nurse.get(f"/patients/{pid(app)}/questionnaires/phq9").text
    out["consultations"] = nurse.get("/consultations").text
    admin = client(app)
    login(admin, "administrator")
    out["admin"] = admin.get("/admin").text
    out["mfa"] = admin.get("/account/mfa").text
    out["not found"] = admin.get("/patients/999999").text
    return out


def test_every_page_uses_the_stylesheet_and_nothing_inline(app, clock) -> None:  # noqa: F811
    c = client(app)
    r = c.get("/consult")
    csp = r.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "style-src 'self'" in csp
    assert "default-src 'none'" in csp and "http" not in csp  # no other origin
    css = c.get("/static/ketasim.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["content-security-policy"] == csp
    assert c.get("/static/../app.py").status_code == 404
    for name, page in pages_of(app, clock).items():
        assert '<link rel="stylesheet" href="/static/ketasim.css">' in page, name
        assert "<style" not in page and not re.search(r"\sstyle=", page), name
        assert "<script" not in page and not re.search(r"\son[a-z]+=", page), name
        assert 'name="viewport"' in page, name


def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(ch * 2 for ch in h)
    channels = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2.1 contrast ratio of two sRGB colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# (text or mark, background, minimum): every pair the stylesheet puts together
PAIRS = [("ink", "paper", 4.5), ("muted", "paper", 4.5), ("muted", "panel", 4.5),
         ("ink", "panel", 4.5), ("accent", "paper", 4.5), ("accent-ink", "accent", 4.5),
         ("accent-ink", "accent-dark", 4.5), ("accent-dark", "paper", 4.5),
         ("accent", "accent-soft", 4.5), ("accent-dark", "accent-soft", 4.5),
         ("ink", "accent-soft", 4.5), ("muted", "accent-soft", 4.5),
         ("danger", "paper", 4.5), ("danger-ink", "danger-soft", 4.5),
         ("danger", "danger-soft", 4.5), ("accent-ink", "danger", 4.5),
         ("accent-ink", "danger-ink", 4.5), ("ok", "paper", 4.5), ("ok", "ok-soft", 4.5),
         ("warn-ink", "warn-soft", 4.5), ("head-ink", "head", 4.5), ("ink", "focus", 4.5),
         ("field-border", "paper", 3.0), ("field-border", "panel", 3.0),
         ("danger", "paper", 3.0), ("ink", "focus", 3.0)]


def test_the_stylesheet_colour_pairs_meet_wcag_aa() -> None:
    """Text 4.5:1, field borders and focus rings 3:1 (WCAG 1.4.3 and 1.4.11), computed from
    the stylesheet's custom properties; and the rules that use them are there."""
    css = CSS.read_text()
    root = re.search(r":root\s*\{(.*?)\}", css, re.S).group(1)
    colours = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})\s*;", root))
    low = [(a, b, round(contrast(colours[a], colours[b]), 2)) for a, b, need in PAIRS
           if contrast(colours[a], colours[b]) < need]
    assert not low, low
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    # the colours are used as declared: body text, notes, focus, fields, targets
    for rule in (r"body \{[^}]*color: var\(--ink\)", r"\.note, \.hint \{ color: var\(--muted\)",
                 r":focus-visible \{[^}]*outline: 3px solid var\(--ink\)",
                 r"border: 2px solid var\(--field-border\)", r"--target: 2\.75rem"):
        assert re.search(rule, css), rule
    assert not re.search(r"(?<![-\w])color:\s*#(?!fff)", css.split(":root")[1].split("}", 1)[1]
                         .replace("#f0b9b9", "")), "a text colour outside the checked pairs"


class Structure(HTMLParser):
    """Labels, inputs, descriptions, headings, ids and chart alternatives of one page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.label_for: set[str] = set()
        self.inputs: list[tuple[str, dict[str, str], bool]] = []  # tag, attrs, in a label
        self.headings: list[int] = []
        self.svgs: list[dict[str, str]] = []
        self.described: list[str] = []
        self._labels = 0
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "label":
            self._labels += 1
            if a.get("for"):
                self.label_for.add(a["for"])
        elif tag in ("input", "select", "textarea") and a.get("type") not in (
                "hidden", "submit", "button"):
            self.inputs.append((tag, a, self._labels > 0))
        elif re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        elif tag == "svg":
            self.svgs.append(a)
        if a.get("aria-describedby"):
            self.described += a["aria-describedby"].split()

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._labels -= 1


def check_structure(name: str, page: str) -> None:
    s = Structure(page)
    unlabelled = [a.get("name") for tag, a, wrapped in s.inputs
                  if not wrapped and a.get("id") not in s.label_for
                  and not a.get("aria-label")]
    assert not unlabelled, (name, unlabelled)
    assert len(s.ids) == len(set(s.ids)), (name, [i for i in s.ids if s.ids.count(i) > 1])
    assert not [d for d in s.described if d not in s.ids], name
    assert s.headings.count(1) == 1 and s.headings[0] == 1, (name, s.headings)
    jumps = [(a, b) for a, b in zip(s.headings, s.headings[1:], strict=False) if b > a + 1]
    assert not jumps, (name, jumps)
    for svg in s.svgs:
        assert svg.get("role") == "img" and len(svg.get("aria-label", "")) > 10, name
        assert "viewbox" in svg, name  # scales to the screen


def test_every_input_is_labelled_headings_in_order_charts_described(app, clock) -> None:  # noqa: F811
    for name, page in pages_of(app, clock).items():
        check_structure(name, page)


def test_errors_are_tied_to_their_field(app, clock) -> None:  # noqa: F811
    """A refused entry names the field in an alert, marks the input invalid and ties the
    message to it (aria-describedby); what was typed is kept (not the password)."""
    nurse = client(app)
    login(nurse, "nurse")
    sid = dosed(app, nurse, clock)
    clock.t += timedelta(minutes=40)
    r = step(nurse, sid, "vitals", **{**VITALS, "spo2": "150"}, cadss="12")
    assert r.status_code == 400
    field = re.search(r'<input id="vitals-spo2"[^>]*>', r.text).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="vitals-spo2-error"' in field
    assert re.search(r'<p class="field-error" id="vitals-spo2-error">spo2|SpO₂', r.text)
    assert 'role="alert"' in r.text and 'href="#vitals-spo2"' in r.text
    assert re.search(r'<input id="vitals-cadss"[^>]*value="12"', r.text)  # kept
    check_structure("session error", r.text)
    # the public form: the question is marked and every answer kept
    anon = client(app)
    page = anon.get("/consult").text
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answers = {"csrf_token": tok, "condition": "ptsd", "name": "Al", "contact": "555-0100",
               "consent": "yes", **{f"phq9_{k}": "1" for k in range(1, 10)},
               **{f"gad7_{k}": "2" for k in range(1, 7)}}  # GAD-7 question 7 missing
    r = anon.post("/consult", data=answers)
    assert r.status_code == 400 and "GAD7 question 7" in r.text
    assert 'id="consult-gad7_7" aria-describedby="consult-gad7_7-error"' in r.text
    assert 'value="ptsd" checked' in r.text and 'name="phq9_3" value="1" checked' in r.text
    assert 'value="Al"' in r.text
    check_structure("consult error", r.text)
    # the patient's details
    pr = client(app)
    login(pr, "prescriber")
    r = pr.post(f"/patients/{pid(app)}/details", data={"csrf_token": csrf(pr),
                                                       "birth_year": "74"})
    assert r.status_code == 400
    assert re.search(r'<input id="details-birth_year"[^>]*aria-describedby="details-birth_year'
                     r'-error details-birth_year-hint"[^>]*aria-invalid="true"', r.text)
    check_structure("details error", r.text)


# ---- the clinic's time zone -----------------------------------------------------------------

def test_a_clinic_in_oslo_shows_its_times_and_stores_utc(app, clock) -> None:  # noqa: F811
    set_zone(app, "Europe/Oslo")
    nurse = client(app)
    login(nurse, "nurse")
    r = nurse.post(f"/patients/{pid(app)}/sessions",
                   data={"csrf_token": csrf(nurse), "compound": "racemic"})
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    page = nurse.get(f"/sessions/{sid}").text
    assert "Times: Europe/Oslo" in page and "started 2026-01-15 10:00 CET" in page
    assert 'type="datetime-local"' in page and "Time it happened (Europe/Oslo)" in page
    assert 'min="2026-01-15T10:00"' in page  # never before the session started
    assert not re.search(r"\d\d:\d\d:\d\d", page.split("<main")[1])  # to the minute
    # 10:00 typed in Oslo is 09:00 UTC; 09:00 in Oslo is an hour back: refused
    clock.t += timedelta(minutes=20)
    r = step(nurse, sid, "predose", **VITALS, contraindications_confirmed="yes",
             time="2026-01-15T09:10")
    assert r.status_code == 400 and "more than 60 min before now" in r.text
    r = step(nurse, sid, "predose", **VITALS, contraindications_confirmed="yes",
             time="2026-01-15T10:15", late_reason="entered after the check")
    assert r.status_code == 303, r.text
    with app.state.sessions() as db:
        ev = db.scalar(select(SessionEvent).where(SessionEvent.kind == "predose"))
        at = ev.at if ev.at.tzinfo else ev.at.replace(tzinfo=UTC)
        assert at == datetime(2026, 1, 15, 9, 15, tzinfo=UTC)
    page = nurse.get(f"/sessions/{sid}").text
    assert "<td>2026-01-15 10:15 CET</td><td>predose</td>" in page
    # summer: CEST; the audit and the database keep UTC
    clock.t = SUMMER
    r = nurse.post(f"/patients/{pid(app, 'Demo Patient B')}/sessions",
                   data={"csrf_token": csrf(nurse), "compound": "racemic"})
    page = nurse.get(r.headers["location"]).text
    assert "started 2026-07-15 11:00 CEST" in page
    # a time the clocks skipped (29 March 2026, 02:00-03:00 in Oslo) is refused
    clock.t = datetime(2026, 3, 29, 1, 20, tzinfo=UTC)  # 03:20 CEST
    r = nurse.post(f"/patients/{pid(app, 'Demo Patient B')}/sessions",
                   data={"csrf_token": csrf(nurse), "compound": "racemic"})
    sid3 = int(re.search(r"session (\d+) of this patient is still open", r.text).group(1)) \
        if r.status_code == 400 else int(r.headers["location"].rsplit("/", 1)[1])
    with app.state.sessions() as db:  # a session started before the clocks changed
        from ketasim.storage.models import MonitoredSessionRow
        row = db.get(MonitoredSessionRow, sid3)
        row.started_at = datetime(2026, 3, 29, 0, 40, tzinfo=UTC)
        db.commit()
    r = step(nurse, sid3, "predose", **VITALS, contraindications_confirmed="yes",
             time="2026-03-29T02:30")
    assert r.status_code == 400 and "does not exist in Europe/Oslo" in r.text
    r = step(nurse, sid3, "predose", **VITALS, contraindications_confirmed="yes",
             time="2026-03-29T01:50", late_reason="the clocks changed meanwhile")
    assert r.status_code == 303, r.text  # 01:50 CET = 00:50 UTC, 30 min ago


def test_the_time_zone_setting_is_checked_and_audited(app, clock) -> None:  # noqa: F811
    a = client(app)
    login(a, "administrator")
    page = a.get("/admin").text
    assert '<option value="Europe/Oslo">Europe/Oslo</option>' in page
    assert '<option value="UTC" selected>UTC</option>' in page
    for bad in ("Mars/Olympus", "", "Europe/Oslo; DROP TABLE", "x" * 100, "local"):
        r = a.post("/admin/timezone", data={"csrf_token": csrf(a, "/admin"), "timezone": bad})
        assert r.status_code == 400 and "time zone" in r.text, bad
        assert 'aria-describedby="timezone-timezone-error timezone-timezone-hint"' in r.text
    for role in ("nurse", "prescriber", "front_desk", "patient", "researcher"):
        c = client(app)
        login(c, role)
        assert c.post("/admin/timezone", data={"csrf_token": csrf(c),
                                               "timezone": "Asia/Tokyo"}).status_code == 404
    set_zone(app, "America/New_York")
    with app.state.sessions() as db:
        assert db.scalar(select(Clinic.timezone).where(Clinic.name == "Demo Clinic")) \
            == "America/New_York"
        assert db.scalar(select(Clinic.timezone).where(Clinic.name == "Other Clinic")) == "UTC"
        entry = [r for r in db.scalars(select(AuditRow)) if "timezone" in r.detail][-1]
        assert entry.detail["timezone"] == ["UTC", "America/New_York"]
    # the front desk schedules in the clinic's zone; stored in UTC
    anon = client(app)
    tok = re.search(r'name="csrf_token" value="([^"]+)"', anon.get("/consult").text).group(1)
    data = {"csrf_token": tok, "condition": "depression", "name": "Sam", "contact": "555-0100",
            "consent": "yes", **{f"phq9_{k}": "1" for k in range(1, 10)},
            **{f"gad7_{k}": "1" for k in range(1, 8)}}
    assert anon.post("/consult", data=data).status_code == 200
    fd = client(app)
    login(fd, "front_desk")
    from ketasim.storage.models import ConsultationRequest
    with app.state.sessions() as db:
        rid = db.scalar(select(ConsultationRequest.id))
    q = fd.get("/consultations").text
    assert 'type="datetime-local"' in q and "Appointment (America/New_York)" in q
    assert fd.post(f"/consultations/{rid}/schedule", data={
        "csrf_token": csrf(fd), "when": "2026-12-01T10:00"}).status_code == 303
    with app.state.sessions() as db:
        t = db.get(ConsultationRequest, rid).scheduled_for
        assert (t if t.tzinfo else t.replace(tzinfo=UTC)) == datetime(2026, 12, 1, 15, 0,
                                                                      tzinfo=UTC)
    assert "scheduled: 2026-12-01 10:00 EST" in fd.get("/consultations").text


# ---- the patient's year of birth and the forecast's age ------------------------------------

def test_year_of_birth_gives_the_forecast_its_age(app, clock) -> None:  # noqa: F811
    nurse = client(app)
    login(nurse, "nurse")
    sid = dosed(app, nurse, clock)
    page = nurse.get(f"/sessions/{sid}").text
    assert "age 45 years (assumed: the clinic record has no year of birth)" in page
    assert "year of birth not recorded" in nurse.get(f"/patients/{pid(app)}").text
    for role, code in (("front_desk", 303), ("patient", 404), ("researcher", 404)):
        c = client(app)
        login(c, role)
        r = c.post(f"/patients/{pid(app)}/details", data={"csrf_token": csrf(c),
                                                          "birth_year": "1990"})
        assert r.status_code == code, role
    for bad in ("1890", "2027", "１９７４", "74", "1974.0", "abcd"):
        r = nurse.post(f"/patients/{pid(app)}/details", data={"csrf_token": csrf(nurse),
                                                              "birth_year": bad})
        assert r.status_code == 400 and "year of birth" in r.text, bad
    assert nurse.post(f"/patients/{pid(app)}/details", data={
        "csrf_token": csrf(nurse), "birth_year": "1974"}).status_code == 303
    with app.state.sessions() as db:
        assert db.get(Patient, pid(app)).birth_year == 1974
        entry = [r for r in db.scalars(select(AuditRow)) if "birth_year" in r.detail][-1]
        assert entry.detail["birth_year"] == [1990, 1974]
    chart = nurse.get(f"/patients/{pid(app)}").text
    assert "born 1974 (age about 52)" in chart
    page = nurse.get(f"/sessions/{sid}").text
    assert "age 52 years (from the year of birth, 1974)" in page
    # the forecast is the one for a 52-year-old
    from ketasim.pd.session_forecast import AcutePatient, forecast_session
    f = forecast_session("0.5 mg/kg ketamine IV over 40 min", AcutePatient(70, 52, 128, 80, 70))
    assert f"P(ready by 120 min) {round(100 * f.p_ready_by_rems)} %" in page
    # an age the model does not cover gives a note, not an error page
    assert nurse.post(f"/patients/{pid(app)}/details", data={
        "csrf_token": csrf(nurse), "birth_year": "2020"}).status_code == 303
    r = nurse.get(f"/sessions/{sid}")
    assert r.status_code == 200 and "No forecast for this session: age" in r.text
    # empty: unknown again
    assert nurse.post(f"/patients/{pid(app)}/details", data={
        "csrf_token": csrf(nurse), "birth_year": ""}).status_code == 303
    assert "age 45 years (assumed" in nurse.get(f"/sessions/{sid}").text


def test_a_prescriber_records_the_year_of_birth_when_creating_the_patient(app, clock) -> None:  # noqa: F811
    anon = client(app)
    tok = re.search(r'name="csrf_token" value="([^"]+)"', anon.get("/consult").text).group(1)
    assert anon.post("/consult", data={
        "csrf_token": tok, "condition": "depression", "name": "Jo New", "contact": "555-0101",
        "consent": "yes", **{f"phq9_{k}": "1" for k in range(1, 10)},
        **{f"gad7_{k}": "1" for k in range(1, 8)}}).status_code == 200
    from ketasim.storage.models import ConsultationRequest
    with app.state.sessions() as db:
        rid = db.scalar(select(ConsultationRequest.id))
    fd = client(app)
    login(fd, "front_desk")
    fd.post(f"/consultations/{rid}/schedule", data={"csrf_token": csrf(fd),
                                                    "when": "2026-02-01T10:00"})
    pr = client(app)
    login(pr, "prescriber")
    assert "Year of birth (if known)" in pr.get("/consultations").text
    r = pr.post(f"/consultations/{rid}/assess", data={
        "csrf_token": csrf(pr), "decision": "plan", "note": "TRD, two adequate trials",
        "birth_year": "nineteen"})
    assert r.status_code == 400 and "year of birth" in r.text
    r = pr.post(f"/consultations/{rid}/assess", data={
        "csrf_token": csrf(pr), "decision": "plan", "note": "TRD, two adequate trials",
        "birth_year": "1981"})
    assert r.status_code == 303
    with app.state.sessions() as db:
        assert db.scalar(select(Patient.birth_year).where(Patient.display_name == "Jo New")) \
            == 1981


# ---- the session page as a checklist --------------------------------------------------------

def test_the_session_page_says_what_is_due_now_and_next(app, clock) -> None:  # noqa: F811
    set_zone(app, "Europe/Oslo")
    nurse = client(app)
    login(nurse, "nurse")
    r = nurse.post(f"/patients/{pid(app)}/sessions",
                   data={"csrf_token": csrf(nurse), "compound": "racemic"})
    sid = int(r.headers["location"].rsplit("/", 1)[1])

    def items(page: str) -> dict[str, str]:
        return {k: v for v, k in re.findall(r'<li class="(\w+)" data-step="(\w+)"', page)}

    page = nurse.get(f"/sessions/{sid}").text
    assert items(page) == {"predose": "now", "dose": "blocked", "bp40": "blocked",
                           "discharge": "blocked"}
    assert page.index("Due now") < page.index('id="step-predose"')
    assert step(nurse, sid, "predose", **VITALS, contraindications_confirmed="yes"
                ).status_code == 303
    assert items(nurse.get(f"/sessions/{sid}").text)["dose"] == "now"
    clock.t += timedelta(minutes=5)  # the dose at 10:05 CET
    assert step(nurse, sid, "dose", **DOSE, weight_date="2026-01-15").status_code == 303
    clock.t += timedelta(minutes=15)
    page = nurse.get(f"/sessions/{sid}").text
    it = items(page)
    assert it["predose"] == it["dose"] == "done" and it["bp40"] == "next"
    assert "<strong>Next:</strong> BP ~40 min after the dose (30–60 min) from " \
           "<strong>10:35 CET</strong> to 11:05 CET." in page
    assert "by the rules: <strong>12:05 CET</strong>" in page  # 2 h after the dose
    assert re.search(r"forecast ready: median \d\d:\d\d CET, 95 % by \d\d:\d\d CET", page)
    clock.t += timedelta(minutes=20)  # 40 min after the dose: due now, with an alert
    assert items(nurse.get(f"/sessions/{sid}").text)["bp40"] == "now"
    assert step(nurse, sid, "vitals", sbp="172", dbp="100", hr="80", spo2="97"
                ).status_code == 303
    page = nurse.get(f"/sessions/{sid}").text
    it = items(page)
    assert it["bp40"] == "done" and it["alerts"] == "now" and it["bp_end"] == "next"
    assert page.index('<section class="alerts"') < page.index("Due now") < page.index(
        "Checklist")  # open alerts at the very top
    assert "still needs: 120 min after the first dose, a BP within 30 min, open alerts " \
           "acknowledged; and effects resolved" in page
    assert step(nurse, sid, "ack", alert="0").status_code == 303
    clock.t += timedelta(minutes=90)  # 130 min after the dose, no recent BP
    it = items(nurse.get(f"/sessions/{sid}").text)
    assert it["bp_end"] == "now" and it["discharge"] == "next"
    assert step(nurse, sid, "vitals", **VITALS).status_code == 303
    page = nurse.get(f"/sessions/{sid}").text
    it = items(page)
    assert it["bp_end"] == "done" and it["discharge"] == "now"
    assert "possible now, once effects have resolved" in page
    # big touch targets: the step buttons are the large kind
    assert '<button class="big">Record observations</button>' in page
    assert '<button class="big">Discharge now</button>' in page


# ---- charts a clinician can read ------------------------------------------------------------

def test_the_phq9_chart_has_axes_legend_thresholds_and_a_table(app, clock) -> None:  # noqa: F811
    p = pid(app)

    def phq9(*scores: tuple[int, int]) -> None:
        with app.state.sessions() as db:
            nurse_id = db.scalar(text("SELECT id FROM users WHERE username = 'nurse'"))
            for days, total in scores:
                db.add(QuestionnaireResponse(
                    patient_id=p, instrument="phq9", items=[2] * 9, total=total, band="x",
                    submitted_by=nurse_id, submitted_at=WINTER + timedelta(days=days, hours=1),
                    entered_as="clinician_for_patient"))
            db.commit()

    phq9((0, 18))  # the baseline of the plan
    set_zone(app, "Europe/Oslo")
    pr = client(app)
    login(pr, "prescriber")
    r = pr.post(f"/patients/{p}/plans", data={"csrf_token": csrf(pr), "protocol": "iv_induction",
                                             "indication": "trd", "weight_kg": "72"})
    assert r.status_code == 303
    phq9((7, 12), (14, 9))
    with app.state.sessions() as db:  # the plan started with the first PHQ-9
        db.scalar(select(TreatmentPlan)).created_at = WINTER
        db.commit()
    page = pr.get(f"/patients/{p}").text
    svg = re.search(r"<svg[^>]*class=\"trend\".*?</svg>", page, re.S).group(0)
    assert 'aria-label="Patient Health Questionnaire-9 over time: 3 measured scores against ' \
           'the forecast (table below)"' in svg
    assert svg.count('<circle class="measured"') == 3 and "<title>measured " in svg
    for tick in (">0<", ">5<", ">10<", ">15<", ">20<", ">25<", ">27<"):  # values
        assert tick in svg, tick
    for date in (">15 Jan<", ">22 Jan<", ">29 Jan<", ">day 0<", ">day 7<"):  # dates and days
        assert date in svg, date
    assert ">response: ≤ 9<" in svg and ">remission: ≤ 4<" in svg  # thresholds, labelled
    for key in ("forecast 5–95 %", "forecast median", "measured", "threshold"):  # legend
        assert f">{key}</text>" in svg
    # measured drawn after (over) the band and the median
    assert svg.index("<polygon") < svg.index("<polyline") < svg.index('class="measured"')
    table = page[page.index('<table class="trend-table">'):]
    table = table[:table.index("</table>")]
    assert "<caption" in table and table.count("<tr") >= 4
    assert re.search(r"<td>2026-01-22</td><td>7</td><td class=\"num\"><strong>12</strong>", table)
    check_structure("patient with trend", page)


def test_vital_signs_before_the_dose_have_a_legend_and_a_table(app, clock) -> None:  # noqa: F811
    nurse = client(app)
    login(nurse, "nurse")
    r = nurse.post(f"/patients/{pid(app)}/sessions",
                   data={"csrf_token": csrf(nurse), "compound": "racemic"})
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    assert step(nurse, sid, "predose", **VITALS, contraindications_confirmed="yes"
                ).status_code == 303
    page = nurse.get(f"/sessions/{sid}").text
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    for name in ("SBP", "DBP", "HR", "SpO₂"):
        assert f">{name}</text>" in svg  # legend, in dark text beside its line style
    assert 'fill="#1b1f24">SBP' in svg
    assert '<table class="readings">' in page and "<td>pre-dose</td>" in page


# ---- public pages: plain language, papers not working notes ----------------------------------

def test_public_pages_cite_papers_and_no_working_notes(app) -> None:  # noqa: F811
    anon = client(app)
    page = anon.get("/consult").text
    assert not has_working_notes(page)
    crisis = page.index('class="crisis"')
    assert crisis < page.index("<form") and "988" in page[crisis:crisis + 600]
    assert "Little interest or pleasure in doing things" in page  # the questions in words
    assert "More than half the days" in page
    from fastapi.testclient import TestClient
    for k, condition in enumerate(CONDITIONS):  # one address each (10 requests/h/address)
        anon = TestClient(app, base_url="https://testserver", follow_redirects=False,
                          client=(f"198.51.100.{k + 1}", 4000))
        tok = re.search(r'name="csrf_token" value="([^"]+)"', anon.get("/consult").text
                        ).group(1)
        r = anon.post("/consult", data={
            "csrf_token": tok, "condition": condition, "caution": list(
                ("hypertension", "pregnancy", "sedatives")),
            "name": "Pat", "contact": "555-0100", "consent": "yes",
            **{f"phq9_{k}": "1" for k in range(1, 10)},
            **{f"gad7_{k}": "1" for k in range(1, 8)}})
        assert r.status_code == 200, condition
        main = r.text.split("<main", 1)[1]
        assert not has_working_notes(main), (condition, re.findall(
            r".{30}(?:PDC|\.md|§|\[[VMU]\]).{10}", main))
        assert "ketamine-pd-clinical" not in main and "(PDC" not in main
        assert "988" in main[:800]  # item 9 answered 1: the crisis message first
        if CONDITIONS[condition][1] is not None:
            assert "https://doi.org/10." in main or condition in ("bipolar_depression",), \
                condition
            assert "et al. (" in main, condition


# ---- migration 0009 -------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_0009_up_and_down(backend: str, tmp_path: Path) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config
    url = database_url(backend, tmp_path)
    cfg = Config()
    cfg.set_main_option("script_location",
                        str(resources.files("ketasim.storage").joinpath("migrations")))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0008")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO clinics (name, require_mfa) VALUES ('Old', false)"))
            conn.execute(text("INSERT INTO patients (clinic_id, display_name) "
                              "SELECT id, 'Old Patient' FROM clinics"))
        command.upgrade(cfg, "head")
        cols = {c["name"] for c in inspect(engine).get_columns("clinics")}
        assert "timezone" in cols
        assert "birth_year" in {c["name"] for c in inspect(engine).get_columns("patients")}
        with engine.begin() as conn:
            assert conn.execute(text("SELECT timezone FROM clinics")).scalar() == "UTC"
            assert conn.execute(text("SELECT birth_year FROM patients")).scalar() is None
            conn.execute(text("UPDATE patients SET birth_year = 1974"))
            conn.execute(text("UPDATE clinics SET timezone = 'Europe/Oslo'"))
        command.downgrade(cfg, "0008")
        engine.dispose()
        assert "timezone" not in {c["name"] for c in inspect(engine).get_columns("clinics")}
        assert "birth_year" not in {c["name"] for c in inspect(engine).get_columns("patients")}
        with engine.begin() as conn:
            assert conn.execute(text("SELECT display_name FROM patients")).scalar() \
                == "Old Patient"
        command.upgrade(cfg, "head")
        engine.dispose()
        with engine.begin() as conn:
            assert conn.execute(text("SELECT timezone FROM clinics")).scalar() == "UTC"
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
                == "0011"
    finally:
        engine.dispose()
