"""End-to-end in a real browser (Playwright driving the distribution's Chromium, headless).

The clinic's day: a person requests a consultation and completes screening; the front desk
schedules; a prescriber assesses and creates a plan; a nurse runs a session with vitals, sees
an alert and discharges after the minimum time; the patient completes a PHQ-9 with item 9
positive and a clinician acknowledges the alert; the chart shows the trend against the
forecast. Screenshots of the key pages go to ``$KETASIM_E2E_ARTIFACTS`` (default
``e2e-artifacts/``). ``.ci/run`` installs Chromium and sets ``KETASIM_CHROMIUM``; without a
browser the test is skipped locally, never in CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.test_web import BACKENDS, KEY, PASSWORDS, database_url

from ketasim.web.app import create_app, seed_demo

CHROMIUM = os.environ.get("KETASIM_CHROMIUM") or shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="no Chromium here (.ci/run installs it)")
ARTIFACTS = Path(os.environ.get("KETASIM_E2E_ARTIFACTS", "e2e-artifacts"))


@pytest.fixture(params=BACKENDS)
def server(request, tmp_path: Path) -> Iterator[str]:
    import uvicorn

    from ketasim.web.deps import Settings
    app = create_app(database_url(request.param, tmp_path), audit_key=KEY)
    seed_demo(app.state.sessions, PASSWORDS)
    # the session is run over two hours of server time: the test moves the server clock
    # (and keeps the log-ins alive across the jumps)
    app.state.ctx.clock = CLOCK
    app.state.ctx.settings = Settings(idle_timeout=timedelta(days=1),
                                      absolute_timeout=timedelta(days=2))
    CLOCK.t = datetime.now(UTC)
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
    yield f"http://localhost:{port}"  # a secure context: Secure cookies work without TLS
    srv.should_exit = True
    thread.join(5)
    app.state.engine.dispose()


class Clock:
    """The server clock, moved by the test."""

    t = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.t


CLOCK = Clock()


def test_the_clinic_day_in_a_browser(server: str, request) -> None:
    from playwright.sync_api import expect, sync_playwright
    shots = ARTIFACTS / request.node.callspec.id
    shots.mkdir(parents=True, exist_ok=True)
    t0 = CLOCK.t + timedelta(minutes=1)

    def at(minutes: float) -> None:
        """Move the server clock: the step is entered as it happens (time left empty)."""
        CLOCK.t = t0 + timedelta(minutes=minutes)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])

        def login(role: str):
            ctx = browser.new_context()
            page = ctx.new_page()
            page.goto(f"{server}/login")
            page.fill("input[name=username]", role)
            page.fill("input[name=password]", PASSWORDS[role])
            page.click("button:has-text('Log in')")
            expect(page.locator("header")).to_contain_text(role)
            return page

        # 1. a person asks whether ketamine could help, and is screened
        page = browser.new_context().new_page()

        def fill_consult(consent: bool) -> None:
            page.goto(f"{server}/consult")
            page.check("input[name=condition][value=depression]")
            page.check("input[name=prior][value=antidepressants_2]")
            page.check("input[name=caution][value=hypertension]")
            for k in range(1, 10):
                page.check(f"input[name=phq9_{k}][value='{2 if k < 9 else 0}']")
            for k in range(1, 8):
                page.check(f"input[name=gad7_{k}][value='1']")
            page.fill("input[name=name]", "Robin Screening")
            page.fill("input[name=contact]", "robin@example.org")
            if consent:
                page.check("input[name=consent]")

        fill_consult(consent=False)
        page.screenshot(path=shots / "01-consult-form.png", full_page=True)
        page.click("button:has-text('Send and request a consultation')")
        expect(page.locator("[role=alert]")).to_contain_text("consent")
        fill_consult(consent=True)
        page.click("button:has-text('Send and request a consultation')")
        expect(page.locator("h1")).to_contain_text("request has been sent")
        expect(page.locator("main")).to_contain_text("graded A")
        page.screenshot(path=shots / "01b-consult-summary.png", full_page=True)

        # 2. front desk schedules
        fd = login("front_desk")
        fd.goto(f"{server}/consultations")
        expect(fd.locator("table")).to_contain_text("Robin Screening")
        fd.fill("input[name=when]", "2026-12-01T10:00")
        fd.click("button:has-text('Schedule')")
        expect(fd.locator("table")).to_contain_text("scheduled")
        fd.screenshot(path=shots / "02-queue-scheduled.png", full_page=True)

        # 3. a prescriber assesses and creates a plan
        pr = login("prescriber")
        pr.goto(f"{server}/consultations")
        pr.select_option("select[name=decision]", "plan")
        pr.fill("input[name=note]", "TRD after two adequate trials; BP 128/80 today")
        pr.click("button:has-text('Record assessment')")
        expect(pr.locator("h1")).to_contain_text("Robin Screening")
        patient_url = pr.url
        pr.select_option("select[name=protocol]", "iv_induction")
        pr.select_option("select[name=indication]", "trd")
        pr.fill("input[name=weight_kg]", "72")
        pr.click("button:has-text('Create plan with forecast')")
        expect(pr.locator("figure svg")).to_be_visible()
        pr.screenshot(path=shots / "03-chart-plan-forecast.png", full_page=True)

        # 4. a nurse runs the session
        nu = login("nurse")
        nu.goto(patient_url)
        nu.click("button:has-text('Start session')")
        nu.fill("input[name=sbp]", "128")
        nu.fill("input[name=dbp]", "80")
        nu.fill("input[name=hr]", "70")
        nu.fill("input[name=spo2]", "98")
        nu.check("input[name=contraindications_confirmed]")
        at(0)
        nu.click("button:has-text('Record pre-dose check')")
        nu.fill("input[name=product]", "ketamine 10 mg/mL")
        nu.fill("input[name=lot]", "L2026-11")
        nu.fill("input[name=amount]", "0.5")
        nu.select_option("select[name=unit]", "mg/kg")
        nu.fill("input[name=weight_kg]", "72")
        nu.fill("input[name=weight_date]", t0.date().isoformat())
        at(5)
        nu.click("button:has-text('Record dose')")
        for values, minutes in (({"sbp": "172", "dbp": "104", "hr": "90", "spo2": "97",
                                  "moaas": "4", "cadss": "15"}, 45),
                                ({"sbp": "130", "dbp": "82", "hr": "72", "spo2": "98"}, 124)):
            for k, v in values.items():
                nu.fill(f"form[action$=vitals] input[name={k}]", v)
            at(minutes)
            nu.click("button:has-text('Record observations')")
        expect(nu.locator("li.error")).to_contain_text("rise of 44/24")
        nu.screenshot(path=shots / "04-session-alert.png", full_page=True)
        # discharge too early is refused, on the page
        nu.check("input[name=effects_resolved]")
        at(100)
        nu.click("button:has-text('Discharge')")
        expect(nu.locator("[role=alert]")).to_contain_text("before the end of the 120-min")
        nu.click("button:has-text('Acknowledge')")
        nu.check("input[name=effects_resolved]")
        at(126)
        nu.click("button:has-text('Discharge')")
        expect(nu.locator("#status")).to_contain_text("Discharged")
        nu.click("a:has-text('Monitoring form')")
        expect(nu.locator("table")).to_contain_text("172/104")
        nu.screenshot(path=shots / "05-monitoring-form.png", full_page=True)

        # 5. the demo patient's PHQ-9 with item 9 positive; a clinician acknowledges
        pa = login("patient")
        pa.click("a:has-text('Demo Patient A')")
        pa.click("a:has-text('PHQ-9')")
        for k in range(1, 10):
            pa.check(f"input[name=item_{k}][value='{1 if k != 9 else 2}']")
        pa.click("button:has-text('Submit')")
        pr.goto(f"{server}/patients")
        pr.click("a:has-text('Demo Patient A')")
        expect(pr.locator("li.error")).to_contain_text("phq9_item9_positive")
        pr.select_option("select[name=protocol]", "iv_induction")
        pr.select_option("select[name=indication]", "trd")
        pr.fill("input[name=weight_kg]", "70")
        pr.click("button:has-text('Create plan with forecast')")
        pr.click("li.error >> button:has-text('Acknowledge')")
        expect(pr.locator("li.error")).to_have_count(0)
        # 6. the chart: the measured PHQ-9 against the forecast band
        expect(pr.locator("figure svg circle.measured")).to_have_count(1)
        pr.screenshot(path=shots / "06-chart-trend.png", full_page=True)
        browser.close()
    assert len(list(shots.glob("*.png"))) >= 7
