"""What people see, checked in a real browser (Playwright driving the distribution's Chromium,
headless) on SQLite and PostgreSQL (issue #17):

- every page — public screening and its summary, log-in, patient list, patient chart with the
  PHQ-9 trend and plan, session page with the forecast band, monitoring form, questionnaire,
  consultation queue, clinic settings, second-factor page, an error page — is checked with
  axe-core (``axe-playwright-python``, WCAG 2.0/2.1 A and AA rules and best practices): no
  serious or critical violations; the browser reports no Content-Security-Policy violation
  (no inline style or script slipped in), the page does not scroll sideways on a tablet
  (800 px) or a phone (390 px), and every button is a touch target at least 44 px high;
- screenshots of each page at 1280×800 and 800×1280 go to ``$KETASIM_ARTEFACTS`` (default
  ``tests/artefacts/``, git-ignored), with axe's full results as JSON;
- the public screening and a nurse's session (log-in to discharge) are completed with the
  keyboard alone: Tab, Shift+Tab, Space and Enter, and typing into fields; focus is visible
  at every stop and the skip link comes first.

``.ci/run`` installs Chromium and sets ``KETASIM_CHROMIUM``; without a browser the tests are
skipped locally, never in CI.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.test_e2e import CHROMIUM
from tests.test_web import BACKENDS, KEY, PASSWORDS, database_url

from ketasim.storage.models import (
    Clinic,
    MonitoredSessionRow,
    Patient,
    TreatmentPlan,
)
from ketasim.web.app import create_app, seed_demo, seed_demo_activity

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="no Chromium here (.ci/run installs it)")
ARTEFACTS = Path(os.environ.get("KETASIM_ARTEFACTS")
                 or Path(__file__).resolve().parent / "artefacts")
SIZES = ((1280, 800), (800, 1280))
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


class Clock:
    """The server clock, moved by the tests."""

    def __init__(self) -> None:
        self.t = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.t


@dataclass
class Clinic_:
    """A running clinic server: its URL, app and clock."""

    url: str
    app: Any
    clock: Clock
    backend: str

    def ids(self) -> dict[str, int]:
        with self.app.state.sessions() as db:
            return {p.display_name: p.id for p in db.scalars(select(Patient))}


@pytest.fixture(params=BACKENDS)
def clinic(request, tmp_path: Path) -> Iterator[Clinic_]:
    """A demo clinic in Europe/Oslo (with the demo's activity) served on a free port."""
    import uvicorn

    from ketasim.web.deps import Settings
    app = create_app(database_url(request.param, tmp_path), audit_key=KEY)
    seed_demo(app.state.sessions, PASSWORDS)
    seed_demo_activity(app.state.sessions, app.state.auditor)
    with app.state.sessions() as db:
        c = db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic"))
        c.timezone = "Europe/Oslo"
        db.scalar(select(Patient).where(Patient.display_name == "Demo Patient B")
                  ).birth_year = 1974
        db.commit()
    clock = Clock()
    app.state.ctx.clock = clock
    app.state.ctx.settings = Settings(idle_timeout=timedelta(days=60),
                                      absolute_timeout=timedelta(days=90))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield Clinic_(f"http://localhost:{port}", app, clock, request.param)
    srv.should_exit = True
    thread.join(5)
    app.state.engine.dispose()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


class Page:
    """A browser page that records Content-Security-Policy violations."""

    def __init__(self, browser: Any, base: str, **context: Any) -> None:
        self.context = browser.new_context(locale="en-US", **context)
        self.page = self.context.new_page()
        self.base = base
        self.csp: list[str] = []
        self.page.on("console", lambda m: self.csp.append(m.text)
                     if "Content Security Policy" in m.text else None)

    def login(self, role: str) -> Page:
        self.page.goto(f"{self.base}/login")
        self.page.fill("input[name=username]", role)
        self.page.fill("input[name=password]", PASSWORDS[role])
        self.page.click("button:has-text('Log in')")
        self.page.wait_for_selector("header .who")
        return self


def submit(page: Any, selector: str) -> None:
    """Click a form's button and wait for the page it leads to (POST, redirect, GET)."""
    with page.expect_navigation():
        page.click(selector)


def audit_page(p: Page, name: str, shots: Path, report: dict[str, Any]) -> None:
    """axe-core on the page as it is; screenshots at both sizes; sideways scrolling and touch
    targets at tablet and phone widths. Findings go into ``report``."""
    from axe_playwright_python.sync_playwright import Axe
    page = p.page
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS},
                                       "resultTypes": ["violations"]})
    violations = results.response["violations"]
    (shots / f"{name}.axe.json").write_text(json.dumps(violations, indent=1))
    bad = [f"{v['id']} ({v['impact']}): {v['help']} — "
           + "; ".join(n["html"][:120] for n in v["nodes"][:3])
           for v in violations if v["impact"] in ("serious", "critical")]
    if bad:
        report.setdefault("serious", []).append((name, bad))
    report.setdefault("all", []).append((name, [f"{v['id']} ({v['impact']})"
                                                for v in violations]))
    for w, h in SIZES:
        page.set_viewport_size({"width": w, "height": h})
        page.screenshot(path=shots / f"{name}-{w}x{h}.png", full_page=True)
        if w == 800:
            sideways(page, name, report)
    page.set_viewport_size({"width": 390, "height": 844})
    sideways(page, name + " (phone)", report)
    small = page.evaluate("""() => [...document.querySelectorAll(`button, select,
        input:not([type=hidden]):not([type=checkbox]):not([type=radio])`)]
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 43.5)
        .map(e => e.outerHTML.slice(0, 100))""")
    if small:
        report.setdefault("small", []).append((name, small))
    page.set_viewport_size({"width": 1280, "height": 800})


def sideways(page: Any, name: str, report: dict[str, Any]) -> None:
    over = page.evaluate("() => document.documentElement.scrollWidth - "
                         "document.documentElement.clientWidth")
    if over > 1:
        report.setdefault("sideways", []).append((name, over))


def test_every_page_is_accessible_and_styled(clinic: Clinic_, browser: Any) -> None:
    """axe-core finds no serious or critical violation on any page; nothing breaks the CSP;
    nothing scrolls sideways on a tablet or a phone; buttons and fields are ≥ 44 px high."""
    shots = ARTEFACTS / "pages" / clinic.backend
    shots.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    ids = clinic.ids()
    pid = ids["Demo Patient B"]
    base = clinic.url
    clock = clinic.clock

    # the public: the screening form, a refused submission and the summary
    pub = Page(browser, base)
    pub.page.goto(f"{base}/consult")
    audit_page(pub, "01-consult-form", shots, report)
    pub.page.check("input[name=condition][value=depression]")
    submit(pub.page, "button:has-text('Send and request a consultation')")
    pub.page.wait_for_selector("[role=alert]")
    audit_page(pub, "02-consult-form-error", shots, report)
    pub.page.check("input[name=prior][value=antidepressants_2]")
    pub.page.check("input[name=caution][value=hypertension]")
    for k in range(1, 10):
        pub.page.check(f"input[name=phq9_{k}][value='{2 if k < 9 else 1}']")
    for k in range(1, 8):
        pub.page.check(f"input[name=gad7_{k}][value='1']")
    pub.page.fill("input[name=name]", "Robin Screening")
    pub.page.fill("input[name=contact]", "robin@example.org")
    pub.page.check("input[name=consent]")
    submit(pub.page, "button:has-text('Send and request a consultation')")
    pub.page.wait_for_selector("h1:has-text('request has been sent')")
    audit_page(pub, "03-consult-summary", shots, report)
    pub.page.goto(f"{base}/login")
    audit_page(pub, "04-login", shots, report)
    pub.page.goto(f"{base}/no-such-page")
    audit_page(pub, "05-not-found", shots, report)

    # staff: the queue, the list, settings, the second factor
    fd = Page(browser, base).login("front_desk")
    fd.page.goto(f"{base}/consultations")
    audit_page(fd, "06-consultations", shots, report)
    nurse = Page(browser, base).login("nurse")
    audit_page(nurse, "07-patients", shots, report)
    admin = Page(browser, base).login("administrator")
    admin.page.goto(f"{base}/admin")
    audit_page(admin, "08-admin", shots, report)
    admin.page.goto(f"{base}/account/mfa")
    audit_page(admin, "09-account-mfa", shots, report)

    # a prescriber's plan; its start moved three weeks back so the PHQ-9 history lies on it.
    # Its forecast runs a population kernel: compiled here first, so that a cold kernel
    # cache (~30 s to compile on 2 cores) does not run into the click's 30-s timeout
    from ketasim.clinic.forecast import plan_forecast
    from ketasim.clinic.protocols import PROTOCOLS
    plan_forecast(PROTOCOLS["iv_induction"].regimen, "trd", weight_kg=72.0)
    pr = Page(browser, base).login("prescriber")
    pr.page.goto(f"{base}/patients/{pid}")
    pr.page.select_option("select[name=protocol]", "iv_induction")
    pr.page.select_option("select[name=indication]", "trd")
    pr.page.fill("input[name=weight_kg]", "72")
    submit(pr.page, "button:has-text('Create plan with forecast')")
    pr.page.wait_for_selector("svg.trend")
    with clinic.app.state.sessions() as db:
        plan = db.scalar(select(TreatmentPlan).where(TreatmentPlan.patient_id == pid))
        plan.created_at = clock.t - timedelta(days=22)
        db.commit()
    pt = Page(browser, base).login("patient")
    pt.page.goto(f"{base}/patients/{ids['Demo Patient A']}/questionnaires/phq9")
    audit_page(pt, "10-questionnaire", shots, report)

    # a nurse's session on the same patient, 50 min after the dose
    s = nurse.page
    s.goto(f"{base}/patients/{pid}")
    submit(s, "button:has-text('Start session')")
    for k, v in {"sbp": "126", "dbp": "80", "hr": "70", "spo2": "98"}.items():
        s.fill(f"input[name={k}]", v)
    s.check("input[name=contraindications_confirmed]")
    submit(s, "button:has-text('Record pre-dose check')")
    s.fill("input[name=product]", "ketamine 10 mg/mL")
    s.fill("input[name=lot]", "L2026-11")
    s.fill("input[name=amount]", "0.5")
    s.select_option("select[name=unit]", "mg/kg")
    s.fill("input[name=weight_kg]", "72")
    s.fill("input[name=weight_date]", clock.t.date().isoformat())
    clock.t += timedelta(minutes=5)
    submit(s, "button:has-text('Record dose')")
    for minutes, values in ((20, {"sbp": "150", "dbp": "90", "hr": "80", "spo2": "97",
                                  "moaas": "4", "cadss": "12"}),
                            (40, {"sbp": "176", "dbp": "100", "hr": "84", "spo2": "97",
                                  "moaas": "4", "cadss": "8"})):
        clock.t += timedelta(minutes=minutes - (0 if minutes == 20 else 20))
        for k, v in values.items():
            s.fill(f"form[action$=vitals] input[name={k}]", v)
        submit(s, "button:has-text('Record observations')")
    clock.t += timedelta(minutes=10)
    s.reload()
    audit_page(nurse, "11-session", shots, report)
    nurse.page.goto(f"{base}/patients/{pid}")
    audit_page(nurse, "12-patient-chart", shots, report)
    with clinic.app.state.sessions() as db:
        sid = db.scalar(select(MonitoredSessionRow.id).where(
            MonitoredSessionRow.patient_id == pid, MonitoredSessionRow.discharged_at.is_(None)))
    nurse.page.goto(f"{base}/sessions/{sid}/form")
    audit_page(nurse, "13-monitoring-form", shots, report)
    nurse.page.goto(f"{base}/sessions/{sid}")
    submit(nurse.page, "button:has-text('Discharge now')")  # refused: the error at its field
    nurse.page.wait_for_selector("[role=alert]")
    audit_page(nurse, "14-session-error", shots, report)

    pages = (pub, fd, nurse, admin, pr, pt)
    csp = [m for p in pages for m in p.csp]
    (shots / "report.json").write_text(json.dumps(report, indent=1))
    assert not report.get("serious"), json.dumps(report["serious"], indent=1)
    assert not csp, csp
    assert not report.get("sideways"), report["sideways"]
    assert not report.get("small"), report["small"]
    assert len(list(shots.glob("*-1280x800.png"))) == len(list(shots.glob("*-800x1280.png"))) \
        == 14


# ---- keyboard only ---------------------------------------------------------------------------

FOCUS = """() => { const e = document.activeElement; if (!e || e === document.body) return null;
  const shows = s => s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0
    || s.boxShadow !== 'none';
  const l = e.closest('label');
  const ring = shows(getComputedStyle(e)) || (!!l && shows(getComputedStyle(l)));
  return {tag: e.tagName.toLowerCase(), type: e.type || '', name: e.name || '',
          value: e.value || '', text: (e.innerText || '').trim().slice(0, 60),
          href: e.getAttribute('href') || '', checked: !!e.checked, ring: ring}; }"""


class Keyboard:
    """Drives a page with Tab, Shift+Tab, Space and Enter (and typing into text fields),
    recording that focus is always visible."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.unseen: list[str] = []
        self.stops = 0

    def focused(self) -> dict[str, Any] | None:
        return self.page.evaluate(FOCUS)

    def tab(self, back: bool = False) -> dict[str, Any]:
        self.page.keyboard.press("Shift+Tab" if back else "Tab")
        self.stops += 1
        f = self.focused()
        assert f is not None, "Tab left the page"
        if not f["ring"]:
            self.unseen.append(json.dumps(f))
        return f

    def tab_to(self, match: Any, limit: int = 400) -> dict[str, Any]:
        for _ in range(limit):
            f = self.tab()
            if match(f):
                return f
        raise AssertionError("never reached by Tab")

    def field(self, name: str, text: str) -> None:
        self.tab_to(lambda f: f["name"] == name)
        self.page.keyboard.type(text)

    def press(self, key: str, *, navigates: bool = False) -> None:
        """Space or Enter; ``navigates``: wait for the page it leads to."""
        assert key in ("Enter", "Space"), key
        if navigates:
            with self.page.expect_navigation():
                self.page.keyboard.press(key)
        else:
            self.page.keyboard.press(key)


def test_keyboard_only_public_screening(clinic: Clinic_, browser: Any) -> None:
    """A person completes the screening with Tab, Space and Enter only (radio groups take the
    answer Space selects; the text fields are typed)."""
    p = Page(browser, clinic.url)
    page = p.page
    page.goto(f"{clinic.url}/consult")
    kb = Keyboard(page)
    first = kb.tab()
    assert first["href"] == "#main" and "Skip" in first["text"]  # the skip link comes first
    kb.press("Enter")
    answered: set[str] = set()
    wanted = {"prior": {"antidepressants_2", "psychotherapy"}, "caution": {"hypertension"},
              "consent": {"yes"}}
    while True:
        f = kb.tab()
        if f["tag"] == "button":
            assert "Send" in f["text"]
            break
        if f["type"] == "radio" and f["name"] not in answered:
            kb.press("Space")  # the first choice: depression, and "not at all" (0)
            answered.add(f["name"])
        elif f["type"] == "checkbox" and f["value"] in wanted.get(f["name"], ()):
            kb.press("Space")
        elif f["name"] == "name":
            page.keyboard.type("Kim Keyboard")
        elif f["name"] == "contact":
            page.keyboard.type("kim@example.org")
    assert answered >= {"condition", *(f"phq9_{k}" for k in range(1, 10)),
                        *(f"gad7_{k}" for k in range(1, 8))}
    kb.press("Enter", navigates=True)
    page.wait_for_selector("h1:has-text('request has been sent')")
    assert "PHQ-9 score (how you have been feeling) is 0" in page.inner_text("main")
    assert not kb.unseen, kb.unseen[:5]
    assert not p.csp, p.csp
    shots = ARTEFACTS / "keyboard" / clinic.backend
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=shots / "screening-done.png", full_page=True)


def test_keyboard_only_nurse_session(clinic: Clinic_, browser: Any) -> None:
    """A nurse logs in, starts a session, records the pre-dose check, the dose and the
    observations, acknowledges the alert and discharges — keyboard only."""
    p = Page(browser, clinic.url)
    page = p.page
    clock = clinic.clock
    page.goto(f"{clinic.url}/login")
    kb = Keyboard(page)
    kb.field("username", "nurse")
    kb.field("password", PASSWORDS["nurse"])
    kb.press("Enter", navigates=True)
    page.wait_for_selector("h1:has-text('Patients')")
    kb.tab_to(lambda f: f["text"] == "Demo Patient A")
    kb.press("Enter", navigates=True)
    page.wait_for_selector("h1:has-text('Demo Patient A')")
    kb.tab_to(lambda f: f["tag"] == "button" and f["text"] == "Start session")
    kb.press("Enter", navigates=True)
    page.wait_for_selector("h1:has-text('Monitored session')")
    for name, value in (("sbp", "128"), ("dbp", "80"), ("hr", "70"), ("spo2", "98")):
        kb.field(name, value)
    kb.tab_to(lambda f: f["name"] == "contraindications_confirmed")
    kb.press("Space")
    kb.tab_to(lambda f: f["text"] == "Record pre-dose check")
    kb.press("Enter", navigates=True)
    page.wait_for_selector("h2:has-text('Dose')")
    for name, value in (("product", "ketamine 10 mg/mL"), ("lot", "L2026-11"), ("amount", "35"),
                        ("weight_kg", "70")):
        kb.field(name, value)  # route IV infusion over 40 min and unit mg: as offered
    kb.tab_to(lambda f: f["name"] == "weight_date")
    page.keyboard.type(clock.t.strftime("%m%d%Y"))  # the date field, typed in its order
    clock.t += timedelta(minutes=5)
    kb.tab_to(lambda f: f["text"] == "Record dose")
    kb.press("Enter", navigates=True)
    page.wait_for_selector("h2:has-text('Observations')")
    for minutes, values in ((40, (("sbp", "172"), ("dbp", "104"), ("hr", "90"), ("spo2", "97"),
                                  ("moaas", "4"), ("cadss", "15"))),
                            (119, (("sbp", "130"), ("dbp", "82"), ("hr", "72"),
                                   ("spo2", "98")))):
        clock.t += timedelta(minutes=minutes - (0 if minutes == 40 else 40))
        for name, value in values:
            kb.field(name, value)
        kb.press("Enter", navigates=True)  # Enter in a text field submits its form
        page.wait_for_selector("ol.checklist")
    assert "rise of 44/24" in page.inner_text("section.alerts")
    kb.tab_to(lambda f: f["text"] == "Acknowledge")
    kb.press("Enter", navigates=True)
    page.wait_for_selector("section.alerts", state="detached")
    clock.t += timedelta(minutes=2)
    page.reload()
    kb.tab_to(lambda f: f["name"] == "effects_resolved")
    kb.press("Space")
    kb.tab_to(lambda f: f["text"] == "Discharge now")
    kb.press("Enter", navigates=True)
    page.wait_for_selector("#status strong:has-text('Discharged')")
    assert not kb.unseen, kb.unseen[:5]
    assert not p.csp, p.csp
    shots = ARTEFACTS / "keyboard" / clinic.backend
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=shots / "session-discharged.png", full_page=True)
