"""Schema-driven fuzz of every route and every role of the clinic web app (security review:
"a schema-driven fuzz of every route and role: 0 responses >= 500, and nothing partial
stored").

The app serves no OpenAPI schema, so the "schema" is the app's own route table
(``app.routes``: every ``APIRoute`` path, method, path and query parameter with its type)
and the forms the app itself renders (every ``<form>`` of every page a logged-in user can
reach, its fields, hidden values and the options of its selects), plus the field names the
handlers read (``form.get("…")``). New routes, parameters and fields are picked up
automatically.

Every example picks one route, one role (or no log-in), path and query parameters from a
mix of valid ids of existing objects, other-clinic ids and hostile values (0, negatives,
2**63, 10**30, full-width and Arabic-Indic digits, ``²``, RTL marks, NUL, huge strings),
and for a POST a form built from the route's fields with valid values, a few of them
replaced by hostile ones (``.5``, ``Infinity``, ``NaN``, ``1e300``, ``０.５``, ``٠٫٥``,
100,000-character strings, 100,000-deep JSON …), with the right CSRF token most of the
time. For every response: the status is below 500 (an unhandled exception is a failure
with its traceback chained), and a 4xx leaves the row count of every table unchanged
(except the audit chain, web sessions and the log-in throttle, which a refusal may write).

Reproducible: Hypothesis runs derandomized without an example database. Run with::

    .venv/bin/pytest tests/test_web_fuzz.py -q -p no:randomly
    KETASIM_TEST_POSTGRES_URL=postgresql+psycopg://… .venv/bin/pytest tests/test_web_fuzz.py

``KETASIM_FUZZ_EXAMPLES`` sets the examples per route and role (default 6 on SQLite, 3 on
PostgreSQL).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select, text
from tests.test_web import BACKENDS, database_url

from ketasim.web.app import ROLES, create_app, seed_demo, seed_demo_activity

KEY = b"k" * 32
PASSWORDS = {r: f"fuzz-{r}-pass-{i}" for i, r in enumerate(ROLES)}
COOKIE = "ketasim_session"
PRE_CSRF = "ketasim_precsrf"          # the log-in form's double-submit cookie
PUBLIC_CSRF = "ketasim_consult_csrf"  # the public consultation form's double-submit cookie
# a refusal may write these (audit entries, throttling, session bookkeeping)
UNCHECKED_TABLES = {"audit_entries", "audit_head", "web_sessions", "login_throttle",
                    "alembic_version"}
CLINICAL_TABLES = ("questionnaire_responses", "safety_alerts", "session_events",
                   "monitored_sessions", "treatment_plans", "dose_limits_versions",
                   "consultation_requests", "patients", "users")
WHO = (None, *ROLES)  # None: not logged in
ON_PG = bool(os.environ.get("KETASIM_TEST_POSTGRES_URL"))
EXAMPLES_SQLITE = int(os.environ.get("KETASIM_FUZZ_EXAMPLES", "6"))
EXAMPLES_PG = int(os.environ.get("KETASIM_FUZZ_EXAMPLES", "3"))
# shrinking every failing route x role takes minutes while the known bugs are open; the
# failure message already names the whole input (set KETASIM_FUZZ_SHRINK=1 to minimise)
PHASES = (Phase.explicit, Phase.reuse, Phase.generate) + (
    (Phase.shrink,) if os.environ.get("KETASIM_FUZZ_SHRINK") else ())

# ---------------------------------------------------------------------------------------
# the route table (collected from a throwaway app, so the test ids exist at collection time)


def _route_table() -> list[tuple[str, str]]:
    probe = create_app("sqlite://", audit_key=KEY, migrate_first=False)
    out = {(m, r.path) for r in probe.routes if isinstance(r, APIRoute)
           for m in (r.methods or ())}
    return sorted(out, key=lambda mp: (mp[1], mp[0]))


ROUTES = _route_table()


def _who_name(role: str | None) -> str:
    return role or "anonymous"


# ---------------------------------------------------------------------------------------
# hostile and valid values

HUGE = "x" * 100_000
HUGE_DIGITS = "9" * 100_000
DEEP_LIST = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 20_000 + "1" + "}" * 20_000

FUZZ_TEXT = [
    ".5", "0.50", "5e-1", "Infinity", "-Infinity", "inf", "NaN", "nan", "1e300", "-1e300",
    "1e-300", "1e309", "-1", "-0", "0", "00", "0x10", "1_000", "+5", "5 ", " 5", "5\n",
    "０.５", "٠٫٥", "５", "٥", "۵", "²", "³", "½", "Ⅻ", "𝟓", "\u200f5", "\u202e5", "\u200b",
    "5\x00", "\x00", "%00", "", " ", "\t", "\ud7ff", "🙂", "<script>", "' OR 1=1 --",
    "../../etc/passwd", "%", "_", "null", "true", "[]", "{}", "{", '"', "\\",
    str(2**31), str(2**63 - 1), str(2**63), str(2**64), str(10**30), "1" * 5000,
    "9999-12-31T23:59:59", "0001-01-01T00:00", "2026-02-30", "2026-13-01",
    "2026-03-02T09:00+14:00", "2026-03-02T09:00-23:59", "+12026-01-01", "2026-03-02 09:00Z",
    "1970-01-01", "0000-00-00",
    HUGE, HUGE_DIGITS, DEEP_LIST, DEEP_OBJECT,
]
ID_SPECIALS = [0, -1, -(2**31), -(2**63), -(2**63) - 1, 2**31 - 1, 2**31, 2**32, 2**53 + 1,
               2**63 - 1, 2**63, 2**64, 10**30, 10**100]
ID_TEXT = ["１", "١", "۱", "²", "\u200f1", "1\u200f", "1\x00", "\x00", "1.0", "1e3", " 1",
           "+1", "0x1", "1_0", "-0", "", "a", "9" * 5000, HUGE_DIGITS[:20_000], "٠", "𝟏"]


def fuzz_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(FUZZ_TEXT), st.text(max_size=30),
                     st.integers().map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))


def _today() -> str:
    return date.today().isoformat()


def _limits_json(version: str, **changes: Any) -> str:
    from ketasim.clinic.dose_check import DoseLimits
    base = DoseLimits().model_dump(mode="json")
    base.update(version=version, **changes)
    return json.dumps(base)


FRESH = "\x01fresh-form-token"   # replaced by a token never sent before
REUSED = "\x01reused-form-token"  # replaced by the token sent last
_sent_tokens: list[str] = ["fuzz-form-token-0"]


def _tokens(value: Any) -> Any:
    if isinstance(value, list):
        return [_tokens(v) for v in value]
    if value == FRESH:
        _sent_tokens.append(f"fuzz-form-token-{len(_sent_tokens)}")
        return _sent_tokens[-1]
    return _sent_tokens[-1] if value == REUSED else value


# the valid value(s) of every field the app's forms use; fields learnt from the pages get
# their hidden value or select/checkbox/radio options; anything else gets "1"
def valid_values(world: World) -> dict[str, st.SearchStrategy[Any]]:
    from ketasim.clinic.protocols import PROTOCOLS
    from ketasim.web.plans import plan_indications
    v: dict[str, st.SearchStrategy[Any]] = {
        "time": st.sampled_from(["", ""]),
        "sbp": st.sampled_from(["120", "118", "125.5"]),
        "dbp": st.sampled_from(["80", "75"]),
        "hr": st.sampled_from(["70", "66"]),
        "spo2": st.sampled_from(["98", "97"]),
        "moaas": st.sampled_from(["5", "", "4"]),
        "cadss": st.sampled_from(["0", "", "3"]),
        "contraindications_confirmed": st.just("yes"),
        "override_reason": st.sampled_from(["", "", "clinically justified, discussed"]),
        "amount": st.sampled_from(["0.5", "0.5", "36", "56"]),
        "unit": st.sampled_from(["mg/kg", "mg"]),
        "weight_kg": st.sampled_from(["72", "80.5"]),
        "weight_date": st.just(_today()),
        "duration_min": st.sampled_from(["40", "45"]),
        "route": st.sampled_from(["iv_infusion", "im", "sc"]),
        "product": st.just("ketamine HCl 10 mg/mL"),
        "lot": st.just("LOT-1"),
        "second_clinician": st.sampled_from(["", "prescriber"]),
        "second_password": st.sampled_from(["", PASSWORDS["prescriber"]]),
        "alert": st.sampled_from(["0", "1"]),
        "effects_resolved": st.just("yes"),
        "compound": st.sampled_from(["racemic", "esketamine"]),
        "rems_enrolled": st.sampled_from(["yes", "no"]),
        "protocol": st.sampled_from(sorted(PROTOCOLS)),
        "indication": st.sampled_from(sorted(plan_indications())),
        "when": st.sampled_from(["2030-01-02T10:00", "2030-01-02T10:00+01:00"]),
        "decision": st.sampled_from(["more_information", "not_suitable", "plan"]),
        "note": st.just("assessed in clinic; reasoning recorded"),
        "spo2_min": st.sampled_from(["92", "90"]),
        "moaas_alert_max": st.sampled_from(["2", "3"]),
        "limits": st.integers(0, 10**9).map(lambda n: _limits_json(f"fuzz-{n}")),
        "name": st.just("Fuzz Person"),
        "contact": st.just("fuzz@example.org"),
        "consent": st.just("yes"),
        "condition": st.sampled_from(["depression", "ptsd", "other"]),
        "prior": st.sampled_from([["antidepressants_2"], ["psychotherapy", "ect"], []]),
        "caution": st.sampled_from([[], ["hypertension"]]),
        "clinic_id": st.sampled_from(["", str(world.ids["clinic"][0])]),
        "username": st.sampled_from([*ROLES, "nobody"]),
        "password": st.sampled_from([*PASSWORDS.values(), "wrong"]),
        "q": st.sampled_from(["Demo", "", "Patient B"]),
        # one-use form tokens: a fresh one (made when the request is sent), or the last one
        # sent again (a double submission)
        "form_token": st.sampled_from([FRESH, FRESH, FRESH, REUSED]),
        "late_reason": st.just("entered late after the monitoring round"),
        "page": st.sampled_from(["1", "2"]),
    }
    for k in range(1, 31):
        v[f"item_{k}"] = st.sampled_from(["0", "1", "2"])
    for inst, n in (("phq9", 9), ("gad7", 7)):
        for k in range(1, n + 1):
            v[f"{inst}_{k}"] = st.sampled_from(["0", "1", "2", "3"])
    for name, opts in world.options.items():
        if name not in v and name != "csrf_token" and opts:
            v[name] = st.sampled_from(sorted(opts))
    return v


# ---------------------------------------------------------------------------------------
# what the app renders: forms, their fields, hidden values and options


class FormScraper(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, set[str]]] = []  # (method, action, fields)
        self.options: dict[str, set[str]] = {}
        self._form: tuple[str, str, set[str]] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = (a.get("method", "get").upper(), a.get("action", ""), set())
            self.forms.append(self._form)
        elif tag in ("input", "select", "textarea", "button") and a.get("name"):
            name = a["name"]
            if self._form is not None:
                self._form[2].add(name)
            if tag == "select":
                self._select = name
            if tag == "input" and a.get("type") in ("hidden", "checkbox", "radio") \
                    and name != "csrf_token":
                self.options.setdefault(name, set()).add(a.get("value", "on"))
        elif tag == "option" and self._select:
            self.options.setdefault(self._select, set()).add(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def _route_regex(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


def _handler_fields() -> set[str]:
    """Every literal field name a web handler reads from a form."""
    import ketasim.web as web
    names: set[str] = set()
    for f in Path(web.__file__).parent.glob("*.py"):
        src = f.read_text()
        names |= set(re.findall(r"form\.get(?:list)?\(\s*[\"']([^\"']+)[\"']", src))
        names |= set(re.findall(r"(\w+): str = Form\(", src))
    return names


# ---------------------------------------------------------------------------------------
# the world: one seeded app, a logged-in client per role, the ids of what exists


@dataclass
class World:
    app: Any
    backend: str
    clients: dict[str | None, TestClient]
    tokens: dict[str, str] = field(default_factory=dict)     # role -> session cookie
    csrf: dict[str, str] = field(default_factory=dict)       # role -> session CSRF token
    anon_cookies: dict[str, str] = field(default_factory=dict)
    ids: dict[str, list[int]] = field(default_factory=dict)  # kind -> ids (own clinic)
    other_ids: list[int] = field(default_factory=list)       # other clinic's objects
    tables: list[str] = field(default_factory=list)
    route_fields: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    all_fields: set[str] = field(default_factory=set)
    options: dict[str, set[str]] = field(default_factory=dict)
    valid: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict)

    # -- clients --------------------------------------------------------------------------
    def login(self, role: str) -> None:
        from sqlalchemy import delete

        from ketasim.storage.models import LoginThrottle, User
        with self.app.state.sessions() as db:  # fuzzed log-ins may have slowed this address
            u = db.scalar(select(User).where(User.username == role))
            u.locked_until, u.failed_logins, u.active = None, 0, True
            db.execute(delete(LoginThrottle))
            db.commit()
        c = self.clients[role]
        c.cookies.clear()
        page = c.get("/login")
        tok = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = c.post("/login", data={"username": role, "password": PASSWORDS[role],
                                   "csrf_token": tok})
        assert r.status_code == 303, (role, r.status_code, r.text[:300])
        self.tokens[role] = c.cookies[COOKIE]
        self.csrf[role] = re.search(r'name="csrf_token" value="([^"]+)"',
                                    c.get("/patients").text).group(1)

    def client(self, role: str | None) -> TestClient:
        """The role's client with exactly its own cookies (a fuzzed log-in or log-out of the
        previous example is undone)."""
        from ketasim.storage.models import WebSession
        from ketasim.web.security import token_hash
        if role is not None:
            with self.app.state.sessions() as db:
                ws = db.scalar(select(WebSession).where(
                    WebSession.token_hash == token_hash(self.tokens[role])))
                stale = ws is None or datetime.now(UTC) - _utc(ws.last_seen) > \
                    timedelta(minutes=10) or datetime.now(UTC) - _utc(ws.created_at) > \
                    timedelta(hours=7)
            if stale:
                self.login(role)
        c = self.clients[role]
        c.cookies.clear()
        for k, v in self.anon_cookies.items():
            c.cookies.set(k, v)
        if role is not None:
            c.cookies.set(COOKIE, self.tokens[role])
        return c

    def right_csrf(self, role: str | None, path: str) -> str:
        if path == "/login":
            return self.anon_cookies[PRE_CSRF]
        if path == "/consult":
            return self.anon_cookies[PUBLIC_CSRF]
        return self.csrf.get(role or "", "")

    # -- "nothing partial stored" ---------------------------------------------------------
    def counts(self) -> dict[str, int]:
        sql = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in self.tables)
        with self.app.state.sessions() as db:
            row = db.execute(text(sql)).one()
        return dict(zip(self.tables, row, strict=True))


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _seed_more(app: Any, nurse: TestClient, nurse_csrf: str, patient: TestClient,
               prescriber: TestClient, prescriber_csrf: str) -> None:
    """Objects of every kind, in this clinic (made through the app) and in the other clinic
    (written directly: the other clinic has no users)."""
    from ketasim.storage.models import (
        Clinic,
        ConsultationRequest,
        MonitoredSessionRow,
        Patient,
        QuestionnaireResponse,
        SafetyAlert,
        SessionEvent,
        TreatmentPlan,
        User,
    )
    with app.state.sessions() as db:
        a = db.scalar(select(Patient).where(Patient.display_name == "Demo Patient A"))
        other = db.scalar(select(Patient).where(Patient.display_name == "Other Clinic Patient"))
        a_id, other_id, other_clinic = a.id, other.id, other.clinic_id
    # an open session with a pre-dose check and a dose, a PHQ-9 with item 9 > 0 (an alert),
    # and a plan, for Demo Patient A
    r = nurse.post(f"/patients/{a_id}/sessions", data={"csrf_token": nurse_csrf,
                                                       "compound": "racemic"})
    assert r.status_code == 303, r.text[:500]
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    r = nurse.post(f"/sessions/{sid}/predose", data={
        "csrf_token": nurse_csrf, "sbp": "120", "dbp": "80", "hr": "70", "spo2": "98",
        "contraindications_confirmed": "yes", "form_token": "seed-predose"})
    assert r.status_code == 303, r.text[:500]
    r = nurse.post(f"/sessions/{sid}/dose", data={
        "csrf_token": nurse_csrf, "amount": "0.5", "unit": "mg/kg", "weight_kg": "72",
        "weight_date": _today(), "duration_min": "40", "route": "iv_infusion",
        "product": "ketamine", "lot": "L-1", "form_token": "seed-dose"})
    assert r.status_code == 303, r.text[:500]
    pcsrf = re.search(r'name="csrf_token" value="([^"]+)"', patient.get("/patients").text)
    r = patient.post(f"/patients/{a_id}/questionnaires/phq9", data={
        "csrf_token": pcsrf.group(1), "form_token": "seed-phq9",
        **{f"item_{k}": "1" for k in range(1, 10)}})
    assert r.status_code == 303, r.text[:500]
    r = prescriber.post(f"/patients/{a_id}/plans", data={
        "csrf_token": prescriber_csrf, "protocol": "iv_induction", "indication": "trd",
        "weight_kg": "72"})
    assert r.status_code == 303, r.text[:500]
    now = datetime.now(UTC)
    with app.state.sessions() as db:
        nurse_id = db.scalar(select(User.id).where(User.username == "nurse"))
        plan = db.scalars(select(TreatmentPlan)).first()
        answers = db.scalars(select(ConsultationRequest)).first().answers
        row = MonitoredSessionRow(patient_id=other_id, compound="racemic", rems_enrolled=False,
                                  started_by=nurse_id, started_at=now - timedelta(minutes=30))
        q = QuestionnaireResponse(patient_id=other_id, instrument="phq9", items=[1] * 9,
                                  total=9, band="mild", submitted_by=nurse_id,
                                  submitted_at=now - timedelta(days=1))
        db.add_all([row, q])
        db.flush()
        db.add_all([
            SessionEvent(session_id=row.id, kind="predose", at=now - timedelta(minutes=29),
                         data={"sbp": 120.0, "dbp": 80.0, "hr": 70.0, "spo2": 98.0},
                         recorded_by=nurse_id, recorded_at=now),
            SafetyAlert(patient_id=other_id, kind="phq9_item9_positive", response_id=q.id,
                        created_at=now),
            TreatmentPlan(patient_id=other_id, protocol=plan.protocol, regimen=plan.regimen,
                          indication=plan.indication, weight_kg=70.0, created_by=nurse_id,
                          created_at=now, forecast=plan.forecast),
            ConsultationRequest(clinic_id=other_clinic, created_at=now, name="Other Person",
                                contact="other@example.org", condition="depression",
                                answers=answers, phq9_total=5, gad7_total=5, status="scheduled"),
        ])
        # a scheduled request of this clinic too (so "assess" has something to act on)
        demo = db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic"))
        db.add(ConsultationRequest(clinic_id=demo.id, created_at=now, name="Pat Scheduled",
                                   contact="pat@example.org", condition="ptsd", answers=answers,
                                   phq9_total=10, gad7_total=8, status="scheduled",
                                   scheduled_for=now + timedelta(days=1)))
        db.commit()


def _collect_ids(world: World) -> None:
    from ketasim.storage.models import (
        Clinic,
        ConsultationRequest,
        MonitoredSessionRow,
        Patient,
        QuestionnaireResponse,
        SafetyAlert,
        TreatmentPlan,
        User,
    )
    with world.app.state.sessions() as db:
        demo = db.scalar(select(Clinic.id).where(Clinic.name == "Demo Clinic"))
        other_pts = set(db.scalars(select(Patient.id).where(Patient.clinic_id != demo)))
        kinds = {
            "patient": [(p.id, p.clinic_id == demo) for p in db.scalars(select(Patient))],
            "session": [(s.id, s.patient_id not in other_pts)
                        for s in db.scalars(select(MonitoredSessionRow))],
            "alert": [(a.id, a.patient_id not in other_pts)
                      for a in db.scalars(select(SafetyAlert))],
            "consultation": [(c.id, c.clinic_id == demo)
                             for c in db.scalars(select(ConsultationRequest))],
            "plan": [(t.id, t.patient_id not in other_pts)
                     for t in db.scalars(select(TreatmentPlan))],
            "response": [(q.id, q.patient_id not in other_pts)
                         for q in db.scalars(select(QuestionnaireResponse))],
            "user": [(u.id, True) for u in db.scalars(select(User))],
            "clinic": [(c.id, c.id == demo) for c in db.scalars(select(Clinic))],
        }
    for kind, rows in kinds.items():
        world.ids[kind] = sorted(i for i, own in rows if own)
        world.other_ids += [i for i, own in rows if not own]
    world.other_ids = sorted(set(world.other_ids))


STR_PARAM_VALUES = {
    "step": ["predose", "dose", "vitals", "ack", "discharge", "form", "cancel"],
    "instrument": ["phq9", "gad7", "qids_sr16", "pcl5", "cssrs_ideation", "madrs"],
    "action": ["schedule", "assess", "setup", "confirm", "disable"],
    "what": ["thresholds", "dose-limits"],
}


def _scrape(world: World) -> None:
    """Render every GET page a user can reach, for every role, and learn its forms."""
    scraper = FormScraper()
    gets = [p for m, p in ROUTES if m == "GET"]
    for role in ROLES:
        c = world.client(role)
        for path in gets:
            for url in _concrete(path, world):
                r = c.get(url)
                if r.status_code == 200 and "html" in r.headers.get("content-type", ""):
                    scraper.feed(r.text)
    c = world.client(None)
    for url in ("/login", "/consult"):
        scraper.feed(c.get(url).text)
    # the templates themselves (forms a state of the seed data does not show)
    import ketasim.web as web
    for t in (Path(web.__file__).parent / "templates").glob("*.html"):
        src = re.sub(r"\{\{.*?\}\}", "1", re.sub(r"\{%.*?%\}", "", t.read_text()))
        scraper.feed(src)
    posts = [(m, p) for m, p in ROUTES if m != "GET"]
    for method, action, names in scraper.forms:
        action = action.split("?")[0]
        names = {n for n in names if not re.fullmatch(r"[\d_]+", n)}
        for m, p in posts:
            if m == method and _route_regex(p).match(action):
                world.route_fields.setdefault((m, p), set()).update(names)
    world.options = scraper.options
    world.all_fields = set().union(*world.route_fields.values(), _handler_fields())
    for k in range(1, 31):
        world.all_fields.add(f"item_{k}")
    world.all_fields |= {f"phq9_{k}" for k in range(1, 10)} | {f"gad7_{k}" for k in
                                                                 range(1, 8)}
    # the fields a handler reads that no form shows (e.g. a field being added)
    probe = world.app
    for r in probe.routes:
        if isinstance(r, APIRoute):
            src = _endpoint_source(r.endpoint)
            got = set(re.findall(r"form\.get(?:list)?\(\s*[\"']([^\"']+)[\"']", src))
            for m in r.methods or ():
                if m != "GET":
                    world.route_fields.setdefault((m, r.path), set()).update(got)
                    world.route_fields[(m, r.path)].add("csrf_token")


def _endpoint_source(fn: Any) -> str:
    with contextlib.suppress(OSError, TypeError):
        return inspect.getsource(fn)
    return ""


def _concrete(path: str, world: World) -> Iterator[str]:
    """``path`` with its parameters filled with every valid value (for scraping)."""
    params = re.findall(r"\{(\w+)\}", path)
    if not params:
        yield path
        return
    options: list[list[str]] = []
    for name in params:
        if name.endswith("_id"):
            kind = {"patient_id": "patient", "session_id": "session", "alert_id": "alert",
                    "request_id": "consultation"}.get(name, "patient")
            options.append([str(i) for i in world.ids.get(kind, [1])])
        else:
            options.append(STR_PARAM_VALUES.get(name, ["x"]))
    import itertools
    for combo in itertools.product(*options):
        url = path
        for name, value in zip(params, combo, strict=True):
            url = url.replace("{" + name + "}", value)
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    url = database_url(request.param, tmp_path_factory.mktemp("fuzz"))
    app = create_app(url, audit_key=KEY)
    seed_demo(app.state.sessions, PASSWORDS)
    seed_demo_activity(app.state.sessions, app.state.auditor)
    with contextlib.ExitStack() as stack:
        clients = {r: stack.enter_context(TestClient(app, base_url="https://testserver",
                                                     follow_redirects=False))
                   for r in WHO}
        w = World(app=app, backend=request.param, clients=clients)
        anon = clients[None]
        anon.get("/login")
        anon.get("/consult")
        w.anon_cookies = {PRE_CSRF: anon.cookies[PRE_CSRF],
                          PUBLIC_CSRF: anon.cookies[PUBLIC_CSRF]}
        for role in ROLES:
            w.login(role)
        _seed_more(app, w.client("nurse"), w.csrf["nurse"], w.client("patient"),
                   w.client("prescriber"), w.csrf["prescriber"])
        _collect_ids(w)
        with app.state.sessions() as db:
            names = sa_inspect(db.get_bind()).get_table_names()
        w.tables = sorted(t for t in names if t not in UNCHECKED_TABLES)
        _scrape(w)
        w.valid = valid_values(w)
        yield w
    app.state.engine.dispose()


# ---------------------------------------------------------------------------------------
# one request, checked


class ServerError(AssertionError):
    """The app answered >= 500 or raised."""


@dataclass(frozen=True)
class Req:
    method: str
    route: str
    url: str
    params: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, Any], ...] | None = None
    encoding: str = "urlencoded"  # or "multipart", "raw"
    raw: bytes = b""

    def __repr__(self) -> str:
        return f"Req<{self.describe()}>"

    def describe(self) -> str:
        def short(v: Any) -> str:
            s = repr(v)
            return s if len(s) <= 60 else f"{s[:40]}…({len(s)} chars, sha1 " \
                f"{hashlib.sha1(s.encode('utf-8', 'surrogatepass')).hexdigest()[:8]})"
        bits = [f"{self.method} {short(self.url)[1:-1]}"]
        if self.params:
            bits.append("query " + ", ".join(f"{k}={short(v)}" for k, v in self.params))
        if self.form is not None:
            bits.append(f"{self.encoding} form " + ", ".join(f"{k}={short(v)}"
                                                             for k, v in self.form))
        if self.encoding == "raw":
            bits.append(f"raw body {short(self.raw)}")
        return "; ".join(bits)


def fire(world: World, role: str | None, req: Req) -> int:
    """Send ``req`` as ``role``: no status >= 500, and a 4xx stores nothing."""
    c = world.client(role)
    before = world.counts()
    kwargs: dict[str, Any] = {"params": list(req.params)}
    if req.form is not None:
        form = [(k, _tokens(v)) for k, v in req.form]
        if req.encoding == "multipart":
            kwargs["files"] = [(k, (None, v if isinstance(v, str) else str(v)))
                               for k, v in form for v in (v if isinstance(v, list)
                                                          else [v])]
        else:
            kwargs["data"] = dict(form)
    elif req.encoding == "raw":
        kwargs["content"] = req.raw
        kwargs["headers"] = {"content-type": "application/x-www-form-urlencoded"}
    where = f"{req.describe()} as {_who_name(role)} ({world.backend})"
    try:
        r = c.request(req.method, req.url, **kwargs)
    except Exception as exc:
        after = world.counts()
        changed = {t: (before[t], after[t]) for t in world.tables if before[t] != after[t]}
        raise ServerError(f"unhandled {type(exc).__name__}: {str(exc)[:300]} <- {where}"
                          + (f"; rows changed: {changed}" if changed else "")) from exc
    if r.status_code >= 500:
        raise ServerError(f"HTTP {r.status_code} <- {where}: {r.text[:300]}")
    if 400 <= r.status_code < 500:
        after = world.counts()
        changed = {t: (before[t], after[t]) for t in world.tables if before[t] != after[t]}
        assert not changed, f"HTTP {r.status_code} stored rows {changed} <- {where}"
    return r.status_code


# ---------------------------------------------------------------------------------------
# strategies built from the route table and the forms


def id_values(world: World) -> st.SearchStrategy[str]:
    # mostly ids that exist (so the handlers run deep), then hostile ones
    own = st.sampled_from(sorted({i for ids in world.ids.values() for i in ids})).map(str)
    other = st.sampled_from(world.other_ids or [0]).map(str)
    return st.one_of(
        own, own, own, other, other,
        st.sampled_from(ID_SPECIALS).map(str),
        st.integers(-(2**70), 2**70).map(str),
        st.sampled_from(ID_TEXT),
        st.text(max_size=8),
    )


def _flat_params(dependant: Any, kind: str) -> list[Any]:
    """The route's ``path_params`` or ``query_params``, its dependencies' included."""
    out = list(getattr(dependant, kind, []))
    for sub in getattr(dependant, "dependencies", []):
        out += [p for p in _flat_params(sub, kind) if p.name not in {q.name for q in out}]
    return out


def _param_kind(route: APIRoute, name: str) -> str:
    for p in _flat_params(route.dependant, "path_params") + \
            _flat_params(route.dependant, "query_params"):
        if p.name == name or getattr(p, "alias", None) == name:
            ann = str(getattr(p.field_info, "annotation", ""))
            return "int" if "int" in ann else "str"
    return "int" if name.endswith("_id") else "str"


def path_value(world: World, route: APIRoute, name: str) -> st.SearchStrategy[str]:
    if _param_kind(route, name) == "int":
        return id_values(world)
    known = STR_PARAM_VALUES.get(name, [])
    return st.one_of(st.sampled_from(known or ["x"]), st.sampled_from(known or ["x"]),
                     fuzz_text()) if known else fuzz_text()


def query_values(world: World, route: APIRoute) -> st.SearchStrategy[tuple[tuple[str, str],
                                                                        ...]]:
    qs = _flat_params(route.dependant, "query_params")
    if not qs:
        return st.just(())
    parts = []
    for p in qs:
        name = getattr(p, "alias", None) or p.name
        value = id_values(world) if _param_kind(route, name) == "int" else st.one_of(
            world.valid.get(name, st.just("")), fuzz_text())
        parts.append(st.one_of(st.none(), value.map(lambda v, n=name: (n, v))))
    return st.tuples(*parts).map(lambda t: tuple(x for x in t if x is not None))


@st.composite
def form_values(draw: st.DrawFn, world: World, role: str | None, method: str, path: str
                ) -> tuple[tuple[tuple[str, Any], ...], str, bytes]:
    fields = sorted(world.route_fields.get((method, path)) or world.all_fields)
    form: dict[str, Any] = {}
    for f in fields:
        if f != "csrf_token":
            form[f] = draw(world.valid.get(f, st.just("1")), label=f"valid {f}")
    # a few fields get hostile values, are dropped, or are repeated; sometimes a stray one
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3, 6]), label="mutations")):
        f = draw(st.one_of(st.sampled_from(fields), st.sampled_from(sorted(world.all_fields))),
                 label="mutated field")
        how = draw(st.sampled_from(["fuzz", "fuzz", "fuzz", "drop", "repeat"]))
        if how == "fuzz":
            form[f] = draw(fuzz_text(), label=f"hostile {f}")
        elif how == "drop":
            form.pop(f, None)
        else:
            form[f] = [form.get(f, "1") if isinstance(form.get(f, "1"), str) else "1",
                       draw(fuzz_text())]
    csrf = draw(st.sampled_from(["right"] * 9 + ["wrong", "missing", "other-role"]),
                label="csrf")
    if csrf == "right":
        form["csrf_token"] = world.right_csrf(role, path)
    elif csrf == "wrong":
        form["csrf_token"] = draw(fuzz_text())
    elif csrf == "other-role":
        form["csrf_token"] = world.csrf[draw(st.sampled_from(ROLES))]
    encoding = draw(st.sampled_from(["urlencoded"] * 6 + ["multipart", "raw"]),
                    label="encoding")
    raw = b""
    if encoding == "raw":
        raw = draw(st.one_of(
            st.binary(max_size=200),
            st.just(b"csrf_token=" + world.right_csrf(role, path).encode() + b"&%ff%fe=%c3"),
            st.just(b"csrf_token=" + world.right_csrf(role, path).encode()
                    + b"&" + b"&".join(b"f%d=1" % k for k in range(5000))),
            st.just(b"=&==&&&=" * 1000)), label="raw body")
    return tuple(sorted(form.items())), encoding, raw


@st.composite
def requests_for(draw: st.DrawFn, world: World, role: str | None, method: str,
                 path: str) -> Req:
    route = next(r for r in world.app.routes if isinstance(r, APIRoute) and r.path == path)
    url = path
    for name in re.findall(r"\{(\w+)\}", path):
        # at most 8000 characters: longer URLs are refused by the HTTP client itself
        v = draw(path_value(world, route, name), label=name)[:8000]
        url = url.replace("{" + name + "}", quote(v, safe="") or "%20")
    params = tuple((k, v[:8000]) for k, v in draw(query_values(world, route), label="query"))
    if method == "GET":
        return Req(method, path, url, params)
    form, encoding, raw = draw(form_values(world, role, method, path), label="form")
    return Req(method, path, url, params, None if encoding == "raw" else form, encoding, raw)


# ---------------------------------------------------------------------------------------
# the fuzz: every route x every role


CASES = [pytest.param(m, p, role, id=f"{m} {p} as {_who_name(role)}")
         for m, p in ROUTES for role in WHO]


@pytest.mark.parametrize(("method", "path", "role"), CASES)
def test_fuzz_route_and_role(world: World, method: str, path: str, role: str | None) -> None:
    n = EXAMPLES_PG if world.backend == "postgresql" else EXAMPLES_SQLITE

    @settings(max_examples=n, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False, phases=PHASES)
    @given(req=requests_for(world, role, method, path))
    def run(req: Req) -> None:
        fire(world, role, req)

    run()


# ---------------------------------------------------------------------------------------
# known-bad inputs from the review, checked explicitly


def _id_routes() -> list[tuple[str, str, str]]:
    return [(m, p, name) for m, p in ROUTES for name in re.findall(r"\{(\w+)\}", p)
            if name.endswith("_id")]


def _fill(path: str, world: World, **given: str) -> str:
    """``path`` with the named parameters given and the rest valid."""
    url = path
    for name in re.findall(r"\{(\w+)\}", path):
        if name in given:
            v = given[name]
        elif name.endswith("_id"):
            v = str(world.ids["patient"][0])
        else:
            v = STR_PARAM_VALUES.get(name, ["x"])[0]
        url = url.replace("{" + name + "}", quote(v, safe=""))
    return url


def _check_all(world: World, cases: list[tuple[str | None, Req]]) -> None:
    failures = []
    for role, req in cases:
        try:
            fire(world, role, req)
        except AssertionError as exc:
            failures.append(f"{type(exc).__name__}: {exc}"
                            + (f" [{type(exc.__cause__).__name__}]" if exc.__cause__ else ""))
    assert not failures, f"{len(failures)} of {len(cases)} failed:\n" + "\n".join(failures)


BIG_IDS = [2**31, 2**63 - 1, 2**63, 2**64, 10**30]  # ids are 32-bit on PostgreSQL


@pytest.mark.parametrize(("method", "path", "param"),
                         [pytest.param(*x, id=f"{x[0]} {x[1]}") for x in _id_routes()])
def test_huge_ids_on_every_id_route_and_role(world: World, method: str, path: str,
                                             param: str) -> None:
    cases = []
    for role in WHO:
        for big in BIG_IDS:
            url = _fill(path, world, **{param: str(big)})
            form = None if method == "GET" else (
                ("csrf_token", world.right_csrf(role, path)),)
            cases.append((role, Req(method, path, url, (), form)))
    _check_all(world, cases)


def test_huge_ids_in_query_and_form_fields(world: World) -> None:
    cases: list[tuple[str | None, Req]] = []
    for role in WHO:
        for big in BIG_IDS:
            cases.append((role, Req("GET", "/consult", "/consult", (("clinic", str(big)),))))
            cases.append((role, Req("GET", "/patients", "/patients", (("page", str(big)),))))
            cases.append((role, Req("POST", "/consult", "/consult", (), tuple(sorted(
                _consult_form(world, clinic_id=str(big)).items())))))
    _check_all(world, cases)


def _consult_form(world: World, **changes: str) -> dict[str, Any]:
    form: dict[str, Any] = {"csrf_token": world.anon_cookies[PUBLIC_CSRF],
                            "name": "Fuzz Person", "contact": "fuzz@example.org",
                            "consent": "yes", "condition": "depression",
                            "prior": ["antidepressants_2"], "clinic_id": ""}
    form.update({f"phq9_{k}": "1" for k in range(1, 10)})
    form.update({f"gad7_{k}": "1" for k in range(1, 8)})
    form.update(changes)
    return form


@pytest.mark.parametrize("token", ["é", "\x02ìVøa", "токен", "١٢٣"])
def test_non_ascii_csrf_token_on_every_post_route(world: World, token: str) -> None:
    cases: list[tuple[str | None, Req]] = []
    for method, path in ROUTES:
        if method == "POST":
            for role in WHO:
                cases.append((role, Req(method, path, _fill(path, world), (),
                                        (("csrf_token", token),))))
    _check_all(world, cases)


@pytest.mark.parametrize("answer", ["²", "³", "１", "١", "۱", "𝟏", "½", "\u200f1", "1\x00"])
def test_unicode_digit_answers(world: World, answer: str) -> None:
    a = str(world.ids["patient"][0])
    cases: list[tuple[str | None, Req]] = []
    for field_ in ("phq9_1", "gad7_7", "phq9_9"):
        cases.append((None, Req("POST", "/consult", "/consult", (), tuple(sorted(
            _consult_form(world, **{field_: answer}).items())))))
    for role in ("patient", "nurse", "prescriber"):
        for inst, n in (("phq9", 9), ("gad7", 7), ("madrs", 10)):
            form = {f"item_{k}": "1" for k in range(1, n + 1)}
            form["item_1"] = answer
            form["csrf_token"] = world.csrf[role]
            path = "/patients/{patient_id}/questionnaires/{instrument}"
            cases.append((role, Req("POST", path, f"/patients/{a}/questionnaires/{inst}", (),
                                    tuple(sorted(form.items())))))
    _check_all(world, cases)


@pytest.mark.parametrize("limits", [
    pytest.param(DEEP_LIST, id="100000-deep-list"),
    pytest.param(DEEP_OBJECT, id="20000-deep-object"),
    pytest.param(_limits_json("fuzz-inf").replace('"racemic_iv_mg_per_kg_hard": 1.0',
                                                  '"racemic_iv_mg_per_kg_hard": Infinity'),
                 id="Infinity-hard-limit"),
    pytest.param(_limits_json("fuzz-ninf").replace('"racemic_iv_mg_per_kg_soft": 0.75',
                                                   '"racemic_iv_mg_per_kg_soft": -Infinity'),
                 id="minus-Infinity-soft-limit"),
    pytest.param(_limits_json("fuzz-nan").replace('"esketamine_max_mg": 84.0',
                                                  '"esketamine_max_mg": NaN'),
                 id="NaN-esketamine-max"),
    pytest.param(_limits_json("fuzz-1e400").replace('"protocol_multiple_hard": 10.0',
                                                    '"protocol_multiple_hard": 1e400'),
                 id="1e400-overflow"),
    pytest.param(_limits_json("x" * 100_000), id="100000-char-version"),
    pytest.param(_limits_json("fuzz-big-int", esketamine_max_sessions_7d=2**64),
                 id="2**64-sessions"),
])
def test_hostile_dose_limits(world: World, limits: str) -> None:
    path = "/admin/{what}"
    cases: list[tuple[str | None, Req]] = [
        ("administrator", Req("POST", path, "/admin/dose-limits", (),
                              (("csrf_token", world.csrf["administrator"]),
                               ("limits", limits))))]
    # whatever was accepted, the pages that read the limits still work
    sid = world.ids["session"]
    cases += [("administrator", Req("GET", "/admin", "/admin")),
              ("nurse", Req("GET", "/sessions/{session_id}", f"/sessions/{sid[-1]}"))]
    _check_all(world, cases)


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
@pytest.mark.parametrize("field_", ["name", "contact", "phq9_1", "stray"])
def test_one_megabyte_anonymous_consult_post(world: World, encoding: str,
                                             field_: str) -> None:
    form = _consult_form(world, **{field_: "y" * 1_000_000})
    req = Req("POST", "/consult", "/consult", (), tuple(sorted(form.items())), encoding)
    status = fire(world, None, req)
    assert status in (400, 413), f"1 MB {field_} ({encoding}) to /consult gave {status}"
