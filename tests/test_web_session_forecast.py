"""The session forecast in the clinic (issue #12 item 5): bands behind the readings on the
session page, readings outside the band flagged, individual forecasts from the patient's
earlier sessions, the expected course on the plan, and a note (never an error) when a dose
cannot be forecast. HTTP tests on SQLite and PostgreSQL, and one in a real browser.

The numbers the page shows are checked against :func:`forecast_session` called directly
with the same inputs, so the tests fail when the page and the library part ways."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser

import pytest
from tests.test_e2e import CHROMIUM, server  # noqa: F401  (the browser tests' server)
from tests.test_web import app, client, login  # noqa: F401  (fixture and helpers)
from tests.test_web_sessions import (
    T0,
    VITALS_OK,
    Clock,
    at,
    dosed_session,
    ids,
    post,
    set_clock,
    start,
    token,
)

from ketasim.clinic.acute_forecast import (
    ASSUMED_AGE,
    PastSession,
    history,
    outside_band,
    session_regimen,
)
from ketasim.dosing.language import parse_regimen
from ketasim.pd.session_forecast import DISCLAIMER, AcutePatient, forecast_session

IV = "0.5 mg/kg ketamine IV over 40 min"  # what dosed_session records, as regimen text
PATIENT = AcutePatient(70, ASSUMED_AGE, 128, 80, 70)  # its weight and pre-dose check


class Flags(HTMLParser):
    """The page's flagged readings (``li.outside-band``: attributes and text), the table's
    rows and the number of outside-band markers in the charts."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.flags: list[dict[str, str]] = []
        self.rows: list[list[str]] = []
        self.markers = 0
        self._li: dict[str, str] | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "li" and "outside-band" in a.get("class", "").split():
            self._li = {**a, "text": ""}
        if tag == "circle" and a.get("class") == "outside-band-point":
            self.markers += 1
        if tag == "tr" and "data-status" in a:
            self._row = [a["data-status"]]
        if tag == "td" and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._li is not None:
            self._li["text"] += data
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "li" and self._li is not None:
            self.flags.append(self._li)
            self._li = None
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None


@pytest.fixture
def clinic(app):  # noqa: F811
    """The app with the server clock the tests move (as in test_web_sessions)."""
    from ketasim.web.deps import Settings
    app.state.ctx.clock = Clock()
    app.state.ctx.settings = Settings(idle_timeout=timedelta(days=20),
                                      absolute_timeout=timedelta(days=30))
    return app


def row_of(parsed: Flags, output: str, minute: str) -> list[str]:
    """The table row [status, minute, output, observed, p5, p50, p95, text]."""
    return next(r for r in parsed.rows if r[2] == output and r[1] == minute)


# ---- the domain mapping (pure) --------------------------------------------------------------

def test_recorded_doses_become_regimen_text_the_library_reads() -> None:
    t = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    iv = {"dose_mg": 35.0, "amount": 0.5, "unit": "mg/kg", "route": "iv_infusion",
          "duration_min": 40.0, "weight_kg": 70.0}
    assert session_regimen("racemic", [(t, iv)]) == IV
    ml = {"dose_mg": 35.0, "amount": 3.5, "unit": "mL", "route": "im"}
    assert session_regimen("racemic", [(t, ml)]) == "35 mg ketamine IM"  # mL: its mg dose
    # a session with a top-up dose: the second at its minute after the first, read back whole
    two = session_regimen("esketamine", [(t, {"dose_mg": 56.0, "route": "intranasal"}),
                                         (t + timedelta(minutes=15),
                                          {"dose_mg": 28.0, "route": "intranasal"})])
    assert two == "56 mg esketamine intranasal then 28 mg esketamine intranasal at 15 min"
    reg = parse_regimen(two)
    assert [(d.amount, round(d.time * 60)) for d in reg.doses] == [(56.0, 0), (28.0, 15)]
    assert forecast_session(two, PATIENT, n=200).regimen == reg.to_text()


def test_earlier_readings_and_band_edges() -> None:
    t = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    s = PastSession(1, IV, t, 128.0, 80.0, [
        (t + timedelta(minutes=40), 170.0, 100.0, 30.0),
        (t - timedelta(minutes=1), 128.0, 80.0, None),  # before the dose: not a reading
        (t + timedelta(minutes=45), 300.0, 80.0, None)])  # SBP beyond the model's range
    obs, skipped = history([s])
    assert [(round(o.t_h * 60, 6), o.cadss, o.sbp, o.dbp) for o in obs] == [
        (40, 30, None, None), (40, None, 170, None), (40, None, None, 100),
        (45, None, None, 80)]
    assert skipped == 1
    assert all(o.baseline_sbp in (None, 128.0) for o in obs)
    assert outside_band(159, (110.2, 135.0, 158.6)) is None  # 159 is the displayed p95
    assert outside_band(160, (110.2, 135.0, 158.6)) == ("above", 159)
    assert outside_band(109, (110.2, 135.0, 158.6)) == ("below", 110)


# ---- the session page -----------------------------------------------------------------------

def test_the_band_appears_once_a_dose_is_recorded(clinic) -> None:
    c = client(clinic)
    login(c, "nurse")
    r = start(c, ids(clinic)["Demo Patient A"])
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    assert post(c, sid, "predose", **VITALS_OK, contraindications_confirmed="yes",
                time=at(0)).status_code == 303
    page = c.get(f"/sessions/{sid}").text
    assert 'class="forecast"' not in page and "appears once the dose is recorded" in page
    r = post(c, sid, "dose", product="ketamine 10 mg/mL", lot="L123", route="iv_infusion",
             duration_min="40", amount="0.5", unit="mg/kg", weight_kg="70",
             weight_date=T0.date().isoformat(), time=at(5))
    assert r.status_code == 303, r.text
    page = c.get(f"/sessions/{sid}").text
    assert 'class="forecast"' in page and "Forecast for this session (population)" in page
    # a band and a median behind the readings in each panel: SBP, DBP, HR, CADSS, MOAA/S
    assert page.count("<polygon") == 5 and page.count('aria-label="SpO₂') == 1
    assert page.count("forecast 5-95 %") == 5 and "minutes after the dose" in page
    f = forecast_session(IV, PATIENT)
    ready = (T0 + timedelta(minutes=5) + timedelta(hours=f.discharge_ready_h.p50))
    assert f"median <strong>{ready:%H:%M} UTC</strong> " \
           f"({round(f.discharge_ready_h.p50 * 60)} min after the dose)" in page
    assert f"P(ready by 120 min) {round(100 * f.p_ready_by_rems)} %" in page
    assert f"ends at <strong>{T0 + timedelta(minutes=125):%H:%M} UTC</strong>" in page
    assert "How this forecast was made" in page and "no earlier completed sessions" in page
    assert "calibrated to published trial data (" in page and "c100_nk" in page
    assert "age 45 years (assumed" in page and unescape(page).count(DISCLAIMER) == 1
    assert 'class="outside-band"' not in page  # no readings after the dose yet


def test_a_reading_far_above_the_band_is_flagged_and_one_inside_is_not(clinic) -> None:
    c = client(clinic)
    login(c, "nurse")
    sid = dosed_session(clinic, c)  # pre-dose 128/80, HR 70; 0.5 mg/kg IV at 5 min
    f = forecast_session(IV, PATIENT)
    sbp40 = f.band_at("sbp", 40 / 60)
    inside = {k: str(round(f.band_at(k, 40 / 60)[1])) for k in ("dbp", "hr", "cadss")}
    assert post(c, sid, "vitals", sbp="200", dbp=inside["dbp"], hr=inside["hr"], spo2="97",
                cadss=inside["cadss"], moaas="5", time=at(45)).status_code == 303
    sbp70 = str(round(f.band_at("sbp", 70 / 60)[2]) - 3)  # high, but inside the band
    assert post(c, sid, "vitals", sbp=sbp70, dbp="82", hr="71", spo2="98",
                time=at(75)).status_code == 303
    page = c.get(f"/sessions/{sid}").text
    parsed = Flags(page)
    assert len(parsed.flags) == 1, parsed.flags  # only the SBP of 200
    flag = parsed.flags[0]
    assert (flag["data-output"], flag["data-minute"], flag["data-side"]) == ("sbp", "40",
                                                                            "above")
    assert flag["text"] == (f"SBP 200 at 40 min is above the forecast band "
                            f"(p95 {round(sbp40[2])})")
    assert parsed.markers == 1  # and one red ring in the SBP chart
    # the text alternative: the in-band SBP at 70 min is "within", with the library's band
    assert row_of(parsed, "SBP", "40")[0] == "above"
    r70 = row_of(parsed, "SBP", "70")
    lo, mid, hi = f.band_at("sbp", 70 / 60)
    assert r70[0] == "within" and r70[3:7] == [sbp70, str(round(lo)), str(round(mid)),
                                               str(round(hi))]
    assert all(row_of(parsed, k, "40")[0] == "within" for k in ("DBP", "HR", "CADSS",
                                                                 "MOAA/S"))
    # the clinic's own alert (a rise of 72 mmHg) is still there, separately
    assert "rise of 72/" in page


def run_first_session(app, c, start_at: datetime) -> None:  # noqa: F811
    """A completed esketamine session for Demo Patient A, dissociating strongly and with BP
    well above the population's (so the patient's own forecast must differ)."""
    def when(minutes: float) -> str:
        return (start_at + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S")

    set_clock(app, start_at - timedelta(minutes=2))
    r = start(c, ids(app)["Demo Patient A"], "esketamine", rems=True)
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    step(c, sid, "predose", start_at, 0, sbp="128", dbp="80", hr="70", spo2="98",
         contraindications_confirmed="yes", time=when(0))
    r = step(c, sid, "dose", start_at, 5, product="Spravato", lot="E1", route="intranasal",
             amount="84", unit="mg", weight_kg="70", weight_date=start_at.date().isoformat(),
             time=when(5))
    assert r.status_code == 303, r.text
    for minutes, sbp, dbp, cadss in ((25, 165, 100, 40), (45, 170, 104, 44),
                                     (85, 150, 95, 20), (124, 132, 84, 4)):
        r = step(c, sid, "vitals", start_at, minutes, sbp=str(sbp), dbp=str(dbp), hr="80",
                 spo2="97", cadss=str(cadss), moaas="5", time=when(minutes))
        assert r.status_code == 303, r.text
    page = c.get(f"/sessions/{sid}").text
    n_alerts = page.count(f'action="/sessions/{sid}/ack"')
    for k in range(n_alerts):
        assert step(c, sid, "ack", start_at, 125, alert=str(k)).status_code == 303
    r = step(c, sid, "discharge", start_at, 126, effects_resolved="yes")
    assert r.status_code == 303, r.text


def step(c, sid: int, name: str, start_at: datetime, minutes: float, **fields):
    """Post a step with the server clock at ``minutes`` after ``start_at`` (+30 s)."""
    c.app.state.ctx.clock.t = start_at + timedelta(minutes=minutes, seconds=30)
    page = c.get(f"/sessions/{sid}").text
    data = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1),
            **fields}
    ft = re.search(r'name="form_token" value="([^"]+)"', page)
    if ft:
        data["form_token"] = ft.group(1)
    return c.post(f"/sessions/{sid}/{name}", data=data)


def test_the_forecast_is_individual_once_earlier_sessions_have_readings(clinic) -> None:
    c = client(clinic)
    login(c, "nurse")
    first = T0 - timedelta(days=3)
    run_first_session(clinic, c, first)
    set_clock(clinic, T0 - timedelta(minutes=2))
    r = start(c, ids(clinic)["Demo Patient A"], "esketamine", rems=True)
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    assert step(c, sid, "predose", T0, 0, sbp="128", dbp="80", hr="70", spo2="98",
                contraindications_confirmed="yes", time=at(0)).status_code == 303
    r = step(c, sid, "dose", T0, 5, product="Spravato", lot="E2", route="intranasal",
             amount="84", unit="mg", weight_kg="70", weight_date=T0.date().isoformat(),
             time=at(5))
    assert r.status_code == 303, r.text
    assert step(c, sid, "vitals", T0, 45, sbp="150", dbp="92", hr="75", spo2="98",
                cadss="20", time=at(45)).status_code == 303
    page = c.get(f"/sessions/{sid}").text
    assert "Forecast for this session (individual)" in page
    assert "readings (4) from 1 earlier session" in page and "session 2 of this patient" in page
    # the page's band is the library's individual forecast, and it sits above the
    # population's for this patient, whose first session ran high
    patient = AcutePatient(70, ASSUMED_AGE, 128, 80, 70, prior_sessions=1)
    first_dose = first + timedelta(minutes=5)
    past = PastSession(1, "84 mg esketamine intranasal", first_dose, 128.0, 80.0, [
        (first_dose + timedelta(minutes=m), s, d, cd)
        for m, s, d, cd in ((20, 165, 100, 40), (40, 170, 104, 44), (80, 150, 95, 20),
                            (119, 132, 84, 4))])
    mine = forecast_session("84 mg esketamine intranasal", patient, history=history([past])[0])
    everyone = forecast_session("84 mg esketamine intranasal", patient)
    assert mine.individual and mine.n_history_sessions == 1
    row = row_of(Flags(page), "SBP", "40")
    assert row[5] == str(round(mine.band_at("sbp", 40 / 60)[1]))
    assert mine.band_at("sbp", 40 / 60)[1] > everyone.band_at("sbp", 40 / 60)[1] + 5
    assert row_of(Flags(page), "CADSS", "40")[5] == str(round(mine.band_at("cadss",
                                                                          40 / 60)[1]))
    # the chart's plan section uses the same history
    pr = client(clinic)
    login(pr, "prescriber")
    t = token(pr, f"/patients/{ids(clinic)['Demo Patient A']}")
    assert pr.post(f"/patients/{ids(clinic)['Demo Patient A']}/plans",
                   data={"csrf_token": t, "protocol": "esketamine_rems", "indication": "trd",
                         "weight_kg": "70"}).status_code == 303
    chart = pr.get(f"/patients/{ids(clinic)['Demo Patient A']}").text
    assert "Individual forecast" in chart and "from 1 earlier session" in chart
    assert "the latest pre-dose check" in chart


def test_the_plan_shows_the_expected_course_of_a_session(clinic) -> None:
    pid = ids(clinic)["Demo Patient A"]
    pr = client(clinic)
    login(pr, "prescriber")
    t = token(pr, f"/patients/{pid}")
    r = pr.post(f"/patients/{pid}/plans", data={"csrf_token": t, "protocol": "esketamine_rems",
                                               "indication": "trd", "weight_kg": "72"})
    assert r.status_code == 303, r.text
    page = pr.get(f"/patients/{pid}").text
    i = page.index('<section class="session-course"')
    course = page[i:page.index("</section>", i)]
    assert "Expected course of one session" in course and "<circle" not in course
    typical = {"sbp": 125.0, "dbp": 78.0, "hr": 75.0}
    for dose, session in (("56 mg esketamine intranasal", 1), ("84 mg esketamine intranasal",
                                                               2)):
        f = forecast_session(dose, AcutePatient(72, ASSUMED_AGE, **typical,
                                                prior_sessions=session - 1))
        cells = (f"<tr><td>{dose}</td><td>{session}</td><td>{round(f.cadss_peak.p50)} "
                 f"({round(f.cadss_peak.p5)}–{round(f.cadss_peak.p95)})</td>"
                 f"<td>{round(100 * f.p_sbp_rise_ge_40)} %</td>"
                 f"<td>{round(100 * f.p_dbp_rise_ge_25)} %</td>"
                 f"<td>{round(100 * f.p_moaas_any_fall)} %</td>")
        assert cells in course, cells
        assert (f"<td>{round(f.discharge_ready_h.p50 * 60)} / "
                f"{round(f.discharge_ready_h.p95 * 60)}</td><td>"
                f"{round(100 * f.p_ready_by_rems)} %</td>") in course
    assert "120-min minimum observation" in course and "Population forecast" in course
    assert "typical values: no BP recorded" in course and DISCLAIMER in unescape(course)


def test_a_dose_that_cannot_be_forecast_gives_a_note_not_an_error(clinic) -> None:
    c = client(clinic)
    login(c, "nurse")
    r = start(c, ids(clinic)["Demo Patient A"])
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    assert post(c, sid, "predose", **VITALS_OK, contraindications_confirmed="yes",
                time=at(0)).status_code == 303
    r = post(c, sid, "dose", product="ketamine 50 mg/mL", lot="L9", route="inhaled",
             amount="0.5", unit="mg/kg", weight_kg="70", weight_date=T0.date().isoformat(),
             time=at(5))
    assert r.status_code == 303, r.text  # the clinic's limits allow nebulised ketamine
    assert post(c, sid, "vitals", sbp="200", dbp="100", hr="90", spo2="97",
                time=at(45)).status_code == 303
    r = c.get(f"/sessions/{sid}")
    assert r.status_code == 200
    assert "No forecast for this session:" in r.text and "inhaled" in r.text
    assert 'class="forecast"' not in r.text and 'class="outside-band"' not in r.text
    assert "<svg" in r.text and "SBP 200 at 40" in r.text  # the readings are still drawn
    # a pre-dose value the clinic accepts but the model does not cover: a note again
    r = start(c, ids(clinic)["Demo Patient B"])
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    assert post(c, sid, "predose", sbp="128", dbp="80", hr="210", spo2="98",
                contraindications_confirmed="yes", time=at(50)).status_code == 303
    r = post(c, sid, "dose", product="ketamine 10 mg/mL", lot="L9", route="iv_infusion",
             duration_min="40", amount="0.5", unit="mg/kg", weight_kg="70",
             weight_date=T0.date().isoformat(), time=at(52))
    assert r.status_code == 303, r.text
    r = c.get(f"/sessions/{sid}")
    assert r.status_code == 200 and "No forecast for this session: hr:" in r.text


def test_a_failing_forecast_never_breaks_the_page(clinic, monkeypatch) -> None:
    import ketasim.web.forecast_panel as panel

    def broken(*args, **kwargs):
        raise FloatingPointError("simulated failure")

    monkeypatch.setattr(panel, "cached_forecast", broken)
    c = client(clinic)
    login(c, "nurse")
    sid = dosed_session(clinic, c)
    r = c.get(f"/sessions/{sid}")
    assert r.status_code == 200 and "the forecast could not be computed" in r.text
    assert post(c, sid, "vitals", **VITALS_OK, time=at(45)).status_code == 303
    pr = client(clinic)
    login(pr, "prescriber")
    pid = ids(clinic)["Demo Patient A"]
    t = token(pr, f"/patients/{pid}")
    assert pr.post(f"/patients/{pid}/plans", data={
        "csrf_token": t, "protocol": "iv_induction", "indication": "trd",
        "weight_kg": "70"}).status_code == 303
    r = pr.get(f"/patients/{pid}")
    assert r.status_code == 200 and "No session forecast for this plan" in r.text


# ---- in a browser ---------------------------------------------------------------------------

@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="no Chromium here (.ci/run installs it)")
def test_a_nurse_sees_a_reading_above_the_band_flagged_in_the_browser(server, request  # noqa: F811
                                                                       ) -> None:
    """A nurse records a session whose SBP runs far above the band: the flag is on the page
    (visible, in words, and as a red ring); the in-band reading later is not flagged."""
    from playwright.sync_api import expect, sync_playwright
    from tests.test_e2e import ARTIFACTS, CLOCK, PASSWORDS
    shots = ARTIFACTS / request.node.callspec.id
    shots.mkdir(parents=True, exist_ok=True)
    t0 = CLOCK.t + timedelta(minutes=1)

    def at_minute(minutes: float) -> None:
        CLOCK.t = t0 + timedelta(minutes=minutes)

    f = forecast_session(IV, PATIENT)
    sbp70 = str(round(f.band_at("sbp", 70 / 60)[2]) - 3)  # high, but inside the band
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])
        page = browser.new_context().new_page()
        page.goto(f"{server}/login")
        page.fill("input[name=username]", "nurse")
        page.fill("input[name=password]", PASSWORDS["nurse"])
        page.click("button:has-text('Log in')")
        page.click("a:has-text('Demo Patient A')")
        at_minute(-1)
        page.click("button:has-text('Start session')")
        for k, v in {"sbp": "128", "dbp": "80", "hr": "70", "spo2": "98"}.items():
            page.fill(f"input[name={k}]", v)
        page.check("input[name=contraindications_confirmed]")
        at_minute(0)
        page.click("button:has-text('Record pre-dose check')")
        page.fill("input[name=product]", "ketamine 10 mg/mL")
        page.fill("input[name=lot]", "L2026-12")
        page.fill("input[name=amount]", "0.5")
        page.select_option("select[name=unit]", "mg/kg")
        page.fill("input[name=weight_kg]", "70")
        page.fill("input[name=weight_date]", t0.date().isoformat())
        at_minute(5)
        page.click("button:has-text('Record dose')")
        expect(page.locator("section.forecast h2")).to_contain_text("population")
        for values, minutes in (({"sbp": "196", "dbp": "88", "hr": "71", "spo2": "97",
                                  "moaas": "5", "cadss": "3"}, 45),
                                ({"sbp": sbp70, "dbp": "82", "hr": "71", "spo2": "98"}, 75)):
            for k, v in values.items():
                page.fill(f"form[action$=vitals] input[name={k}]", v)
            at_minute(minutes)
            page.click("button:has-text('Record observations')")
        flag = page.locator("li.outside-band")
        expect(flag).to_have_count(1)
        expect(flag).to_be_visible()
        expect(flag).to_have_attribute("data-output", "sbp")
        p95 = round(f.band_at("sbp", 40 / 60)[2])
        expect(flag).to_contain_text(f"SBP 196 at 40 min is above the forecast band (p95 {p95})")
        expect(page.locator("li.outside-band[data-minute='70']")).to_have_count(0)
        expect(page.locator("circle.outside-band-point")).to_have_count(1)
        expect(page.locator("section.forecast .charts svg")).to_have_count(6)
        expect(page.locator("p.readiness")).to_contain_text("min after the dose")
        page.screenshot(path=shots / "07-session-forecast-flag.png", full_page=True)
        browser.close()
