"""Load benchmark: a clinic's working day, compressed, against the real server on 2 cores.

Seeds a clinic-scale database (10,000 patients; 100,000 monitored sessions, each with a
pre-dose check, a dose, two sets of observations and a discharge; 40,000 questionnaires), then
starts the server exactly as a clinic does (``python -m ketasim serve``, a separate process,
uvicorn on loopback) and runs 100 concurrent clients for 60 s:

* 60 nurses (staff): chart pages ``/patients/{id}``, session pages ``/sessions/{id}``, the
  patient list ``/patients?page=N``, and writes: recording vitals on one of the two open
  sessions assigned to them (load the session page, read its CSRF and, when present, one-use
  ``form_token``, post ``/sessions/{id}/vitals``, follow the 303 as a browser does);
* 20 patients (portal users): open the PHQ-9 form of their own chart, submit it
  (``/patients/{id}/questionnaires/phq9``) and follow the 303 to their chart;
* 20 anonymous members of the public: ``GET /consult`` (pre-CSRF cookie and hidden token),
  then ``POST /consult`` with a complete screening; each client is a stream of visitors who
  fill in the form once each. The server caps submissions per client address, so when
  ``ketasim serve`` has ``--trusted-proxy`` it is started with ``--trusted-proxy 127.0.0.1``
  and each visitor sends an address of their own in ``X-Forwarded-For``, as behind a clinic's
  reverse proxy (``--no-proxy``: all from 127.0.0.1, and the cap answers 429).

Each client behaves like a person at a terminal: a think time drawn uniformly from
0.5-1.5 s (``--think``) precedes every request it makes (redirects are followed at once, as a
browser does). Every client logs in (Argon2, deliberately expensive) *before* the clock
starts, with distinct user names, so log-in cost is not part of the timed window.

Prints, per page kind: count, p50/p95/max latency, and counts of 2xx/3xx/4xx/5xx (of which
503) responses, timeouts and connection errors; then a sample of the failures and the
exceptions found in the server's log, and a final line with the total of 5xx and whether the
chart and session p95 are under 300 ms. The figures are printed, not asserted: the exit status
is non-zero only when the benchmark itself crashes (for example the server does not start or
a client cannot log in before the clock starts).

``--quick`` (CI smoke): 500 patients, 5,000 sessions, 20 clients (12 nurses, 4 patients,
4 anonymous), 10 s. ``--database URL`` runs against PostgreSQL instead of a temporary SQLite
file (the ``public`` schema of that database is dropped and re-created first: use a database
of its own). Only 127.0.0.1 is contacted.

Every request is a real one: session cookie checked, clinic scope checked, an audit entry
appended to the HMAC chain and committed (SQLite synchronous=FULL).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, select

from ketasim.storage.models import (
    Clinic,
    MonitoredSessionRow,
    Patient,
    QuestionnaireResponse,
    SessionEvent,
    User,
)
from ketasim.web.app import create_app
from ketasim.web.security import hash_password

KEY = b"k" * 32
PASSWORD = "load-test-password"
KINDS = ("chart", "session", "patients", "consult_get", "consult_post", "phq9_form", "phq9",
         "vitals")
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')
FORM_TOKEN_RE = re.compile(r'name="form_token" value="([^"]*)"')
VIT = {"sbp": 128.0, "dbp": 80.0, "hr": 70.0, "spo2": 98.0}


# ---------------------------------------------------------------------------- seeding


@dataclass
class Seeded:
    pids: list[int]                       # every patient
    closed_sids: list[int]                # discharged sessions (read by nurses)
    nurse_open: dict[int, list[int]]      # nurse index -> open session ids assigned to them
    patient_of: dict[int, int]            # patient-user index -> their patient id
    proxied: bool = False                 # server trusts X-Forwarded-For from 127.0.0.1


def seed(app, n_patients: int, n_sessions: int, n_nurses: int, n_portal: int) -> Seeded:
    """Bulk rows (no audit entries: the chain starts with the benchmark). At most one open
    session per patient: all seeded history is discharged; each nurse gets two open sessions
    on patients of their own, dosed a few minutes ago."""
    rng = random.Random(1)
    now = datetime.now(UTC).replace(microsecond=0)
    first = now - timedelta(minutes=50 * (n_sessions + 10))
    assert n_patients >= n_portal + 2 * n_nurses, "not enough patients for the open sessions"
    with app.state.sessions() as db:
        clinic = Clinic(name="Load Clinic", spo2_min=92.0, moaas_alert_max=2)
        db.add(clinic)
        db.flush()
        db.execute(insert(Patient), [dict(clinic_id=clinic.id, display_name=f"Patient {i:05d}")
                                     for i in range(n_patients)])
        pids = list(db.scalars(select(Patient.id).order_by(Patient.id)))
        pw = hash_password(PASSWORD)  # one hash for all (hashing is what is slow)
        users = [dict(clinic_id=clinic.id, username=f"nurse{i}", role="nurse",
                      password_hash=pw, active=True, failed_logins=0) for i in range(n_nurses)]
        users += [dict(clinic_id=clinic.id, username=f"patient{i}", role="patient",
                       password_hash=pw, active=True, failed_logins=0, patient_id=pids[i])
                  for i in range(n_portal)]
        db.execute(insert(User), users)
        uid = db.scalar(select(User.id).where(User.username == "nurse0"))
        qs = [dict(patient_id=rng.choice(pids), instrument="phq9", items=[1] * 9, total=9,
                   band="mild", submitted_by=uid,
                   submitted_at=first + timedelta(minutes=rng.randrange(50 * n_sessions)))
              for _ in range(4 * n_patients)]
        for c in range(0, len(qs), 20_000):
            db.execute(insert(QuestionnaireResponse), qs[c:c + 20_000])
        sessions = [dict(patient_id=pids[i % len(pids)], compound="racemic",
                         rems_enrolled=False, started_by=uid,
                         started_at=first + timedelta(minutes=50 * i),
                         discharged_at=first + timedelta(minutes=50 * i + 130))
                    for i in range(n_sessions)]
        for c in range(0, n_sessions, 20_000):
            db.execute(insert(MonitoredSessionRow), sessions[c:c + 20_000])
        sids = list(db.scalars(select(MonitoredSessionRow.id).order_by(MonitoredSessionRow.id)))
        dose = {"dose_mg": 35.0, "route": "iv_infusion", "duration_min": 40.0,
                "weight_kg": 70.0}

        def events(sid: int, t: datetime, discharged: bool) -> list[dict]:
            steps = [("predose", 0, VIT), ("dose", 5, dose)]
            if discharged:
                steps += [("vitals", 45, VIT), ("vitals", 125, VIT), ("discharge", 130, {})]
            return [dict(session_id=sid, kind=k, at=t + timedelta(minutes=m), data=d,
                         recorded_by=uid, recorded_at=t + timedelta(minutes=m))
                    for k, m, d in steps]

        for c in range(0, len(sids), 10_000):
            rows: list[dict] = []
            for k, sid in enumerate(sids[c:c + 10_000]):
                rows += events(sid, first + timedelta(minutes=50 * (c + k)), True)
            db.execute(insert(SessionEvent), rows)
        # open sessions: two per nurse, on patients no portal user owns
        open_pids = pids[n_portal:n_portal + 2 * n_nurses]
        t_open = now - timedelta(minutes=10)
        db.execute(insert(MonitoredSessionRow), [dict(
            patient_id=p, compound="racemic", rems_enrolled=False, started_by=uid,
            started_at=t_open, discharged_at=None) for p in open_pids])
        open_rows = db.execute(select(MonitoredSessionRow.id, MonitoredSessionRow.patient_id)
                               .where(MonitoredSessionRow.discharged_at.is_(None))).all()
        by_patient = {p: s for s, p in open_rows}
        open_sids = [by_patient[p] for p in open_pids]
        db.execute(insert(SessionEvent), [e for s in open_sids
                                          for e in events(s, t_open, False)])
        db.commit()
    return Seeded(pids=pids, closed_sids=sids,
                  nurse_open={i: open_sids[2 * i:2 * i + 2] for i in range(n_nurses)},
                  patient_of={i: pids[i] for i in range(n_portal)})


# ---------------------------------------------------------------------------- measuring


@dataclass
class Stats:
    lat: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    failed_lat: list[float] = field(default_factory=list)  # 5xx answers and timeouts
    # 5xx answers by what they said: latencies (a fast refusal and a slow one differ)
    answers: dict[str, list[float]] = field(default_factory=dict)
    codes: dict[str, Counter] = field(default_factory=lambda: {k: Counter() for k in KINDS})
    samples: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float | None, outcome: str, sample: str = "") -> None:
        with self.lock:
            if seconds is not None:
                self.lat[kind].append(seconds)
                if outcome in ("5xx", "503", "timeout"):
                    self.failed_lat.append(seconds)
            self.codes[kind][outcome] += 1
            if sample:
                s = self.samples.setdefault(f"{kind} {outcome}", [])
                if len(s) < 2:
                    s.append(sample)


class Clock:
    """The timed window: requests start only inside it."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.deadline = 0.0

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def request(c: httpx.Client, stats: Stats, clock: Clock, kind: str, method: str, url: str,
            follow: str | None = None, **kw) -> httpx.Response | None:
    """One timed request (and, for a 303, the browser's GET of its Location, counted as
    ``follow``). Timeouts count their full wait as latency; connection errors have none."""
    t = time.perf_counter()
    try:
        r = c.request(method, url, **kw)
    except httpx.TimeoutException as exc:
        stats.add(kind, time.perf_counter() - t, "timeout", f"{url}: {type(exc).__name__}")
        return None
    except httpx.TransportError as exc:
        stats.add(kind, None, "conn_err", f"{url}: {type(exc).__name__}: {exc}"[:200])
        return None
    dt = time.perf_counter() - t
    code = r.status_code
    outcome = "503" if code == 503 else f"{code // 100}xx"
    sample = ""
    if code >= 400:
        body = re.sub(r"<(style|script)[^>]*>.*?</\1>|<[^>]+>|\s+", " ", r.text, flags=re.S)
        sample = f"{method} {url} -> {code}: {body.strip()[:160]}"
    stats.add(kind, dt, outcome, sample)
    if code >= 500:
        said = re.sub(r"<(style|script|title)[^>]*>.*?</\1>|<[^>]+>|\s+", " ", r.text,
                      flags=re.S).strip()
        with stats.lock:
            stats.answers.setdefault(f"{code} {said[:90]}", []).append(dt)
    if code == 303 and follow is not None and clock.left() > 0:
        return request(c, stats, clock, follow, "GET", r.headers["location"])
    return r


def think(rng: random.Random, clock: Clock, lo: float, hi: float) -> bool:
    """Sleep like a person; False when the window closes first."""
    pause = rng.uniform(lo, hi)
    if clock.left() <= pause:
        time.sleep(max(clock.left(), 0.0))
        return False
    time.sleep(pause)
    return True


def form_fields(html: str, action: str) -> dict[str, str]:
    """The hidden CSRF token (and one-use form token, when the page carries one) of the form
    posting to ``action``."""
    m = re.search(r'<form[^>]*action="' + re.escape(action) + r'"[^>]*>(.*?)</form>', html,
                  re.S)
    part = m.group(1) if m else html
    out: dict[str, str] = {}
    if (t := CSRF_RE.search(part) or CSRF_RE.search(html)) is not None:
        out["csrf_token"] = t.group(1)
    if (f := FORM_TOKEN_RE.search(part)) is not None:
        out["form_token"] = f.group(1)
    return out


def log_in(base: str, username: str, timeout: float) -> httpx.Client:
    """A logged-in client. The cookies are Secure and this is loopback http: they are carried
    by hand (set in the jar without the Secure flag)."""
    c = httpx.Client(base_url=base, follow_redirects=False, timeout=timeout)
    for attempt in range(3):
        page = c.get("/login")
        tok = CSRF_RE.search(page.text)
        pre = page.cookies.get("ketasim_precsrf")
        if tok is None or pre is None:
            raise RuntimeError(f"/login gave {page.status_code} without a form token")
        c.cookies.set("ketasim_precsrf", pre)
        r = c.post("/login", data={"username": username, "password": PASSWORD,
                                   "csrf_token": tok.group(1)})
        if r.status_code == 303 and "ketasim_session" in r.cookies:
            c.cookies.delete("ketasim_precsrf")
            c.cookies.set("ketasim_session", r.cookies["ketasim_session"])
            return c
        time.sleep(0.5 * (attempt + 1))
    raise RuntimeError(f"log-in of {username} failed: {r.status_code} {r.text[:200]}")


# ---------------------------------------------------------------------------- clients


def nurse(c: httpx.Client, k: int, s: Seeded, stats: Stats, clock: Clock, lo: float,
          hi: float) -> None:
    rng = random.Random(1000 + k)
    n_pages = max(1, len(s.pids) // 50)
    mine = s.nurse_open[k]
    clock.go.wait()
    while think(rng, clock, lo, hi):
        x = rng.random()
        if x < 0.35:
            request(c, stats, clock, "chart", "GET", f"/patients/{rng.choice(s.pids)}")
        elif x < 0.65:
            request(c, stats, clock, "session", "GET", f"/sessions/{rng.choice(s.closed_sids)}")
        elif x < 0.80:
            request(c, stats, clock, "patients", "GET", f"/patients?page={rng.randint(1, n_pages)}")
        else:  # record vitals on an open session of their own
            sid = rng.choice(mine)
            r = request(c, stats, clock, "session", "GET", f"/sessions/{sid}")
            if r is None or r.status_code != 200 or not think(rng, clock, lo, hi):
                continue
            data = form_fields(r.text, f"/sessions/{sid}/vitals")
            data.update(sbp=str(rng.randint(110, 140)), dbp=str(rng.randint(68, 88)),
                        hr=str(rng.randint(58, 95)), spo2=str(rng.randint(95, 99)),
                        moaas=str(rng.choice((4, 5))), cadss=str(rng.randint(0, 12)), time="")
            request(c, stats, clock, "vitals", "POST", f"/sessions/{sid}/vitals", "session",
                    data=data)


def portal_patient(c: httpx.Client, k: int, s: Seeded, stats: Stats, clock: Clock, lo: float,
                   hi: float) -> None:
    rng = random.Random(2000 + k)
    path = f"/patients/{s.patient_of[k]}/questionnaires/phq9"
    clock.go.wait()
    while think(rng, clock, lo, hi):
        r = request(c, stats, clock, "phq9_form", "GET", path)
        if r is None or r.status_code != 200 or not think(rng, clock, lo, hi):
            continue
        data = form_fields(r.text, path)
        items = [rng.randint(0, 3) for _ in range(8)] + [1 if rng.random() < 0.05 else 0]
        data.update({f"item_{i}": str(v) for i, v in enumerate(items, 1)})
        request(c, stats, clock, "phq9", "POST", path, "chart", data=data)


def anonymous(c: httpx.Client, k: int, s: Seeded, stats: Stats, clock: Clock, lo: float,
              hi: float) -> None:
    """Members of the public, one after another at this terminal: each fills in the form once;
    behind the trusted proxy each has an address of their own (X-Forwarded-For)."""
    rng = random.Random(3000 + k)
    visitor = 0
    clock.go.wait()
    while think(rng, clock, lo, hi):
        visitor += 1
        c.cookies.clear()
        if s.proxied:
            c.headers["X-Forwarded-For"] = \
                f"10.{k % 250}.{visitor // 250 % 250}.{visitor % 250 + 1}"
        r = request(c, stats, clock, "consult_get", "GET", "/consult")
        if r is None or r.status_code != 200 or not think(rng, clock, lo, hi):
            continue
        tok = CSRF_RE.search(r.text)
        pre = r.cookies.get("ketasim_consult_csrf")
        clinic = re.search(r'name="clinic_id" value="([^"]*)"', r.text)
        if tok is None or pre is None:
            stats.add("consult_get", None, "no_form", "consult page without a form token")
            continue
        c.cookies.set("ketasim_consult_csrf", pre)  # Secure cookie, loopback: by hand
        conditions = re.findall(r'name="condition" value="([^"]+)"', r.text) or ["depression"]
        data: dict[str, object] = {
            "csrf_token": tok.group(1), "clinic_id": clinic.group(1) if clinic else "",
            "condition": rng.choice(conditions), "prior": ["antidepressants_2", "psychotherapy"],
            "name": f"Load Visitor {k}", "contact": f"visitor{k}@example.org", "consent": "yes"}
        data.update({f"phq9_{i}": str(rng.randint(0, 3)) for i in range(1, 9)})
        data["phq9_9"] = "0"
        data.update({f"gad7_{i}": str(rng.randint(0, 3)) for i in range(1, 8)})
        request(c, stats, clock, "consult_post", "POST", "/consult", data=data)


# ---------------------------------------------------------------------------- report


def pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))] if xs else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and the live processes of its process group (the
    server's worker processes; Linux /proc; NaN elsewhere)."""
    total = 0.0
    try:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pid or int(entry.name) == pid:  # field 5: process group
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total
    except (OSError, ValueError, IndexError):
        return float("nan")


def report(stats: Stats, wall: float, server_log: Path) -> None:
    cols = ("2xx", "3xx", "4xx", "5xx", "503", "timeout", "conn_err")
    print(f"{'kind':13s}{'count':>7s}{'p50 ms':>9s}{'p95 ms':>9s}{'max ms':>9s}"
          + "".join(f"{c:>9s}" for c in cols))
    total = Counter()
    for kind in KINDS:
        xs = sorted(stats.lat[kind])
        cnt = stats.codes[kind]
        n = sum(cnt.values())
        total.update(cnt)
        # 5xx includes 503; the 503 column repeats them
        row = {"5xx": cnt["5xx"] + cnt["503"], **{c: cnt[c] for c in cols if c != "5xx"}}
        print(f"{kind:13s}{n:7d}{pct(xs, .5) * 1e3:9.0f}{pct(xs, .95) * 1e3:9.0f}"
              f"{(xs[-1] if xs else float('nan')) * 1e3:9.0f}"
              + "".join(f"{row[c]:9d}" for c in cols))
    n_all = sum(total.values())
    print(f"{n_all} requests in {wall:.1f} s ({n_all / wall:.0f}/s); latency includes the "
          "full wait of timed-out requests, connection errors have none")
    if stats.failed_lat:
        xs = sorted(stats.failed_lat)
        print(f"5xx and timed-out requests waited p50 {pct(xs, .5) * 1e3:.0f} ms, "
              f"p95 {pct(xs, .95) * 1e3:.0f} ms, max {xs[-1] * 1e3:.0f} ms before failing")
    for said, xs in sorted(stats.answers.items(), key=lambda kv: -len(kv[1])):
        xs.sort()
        print(f"  {len(xs):5d} x [{said}] after p50 {pct(xs, .5) * 1e3:.0f} ms, "
              f"max {xs[-1] * 1e3:.0f} ms")
    if stats.samples:
        print("failure samples:")
        for key in sorted(stats.samples):
            for s in stats.samples[key]:
                print(f"  [{key}] {s}")
    text = server_log.read_text(errors="replace") if server_log.exists() else ""
    exc = Counter(m.group(1) for m in re.finditer(
        r"^([A-Za-z_][\w.]*(?:Error|Exception|Timeout)\b[^\n]{0,140})", text, re.M))
    tracebacks = text.count("Traceback (most recent call last)")
    print(f"server log: {tracebacks} tracebacks" + (":" if exc else ""))
    for line, n in exc.most_common(6):
        print(f"  {n:5d} x {line}")
    chart = pct(sorted(stats.lat["chart"]), .95)
    sess = pct(sorted(stats.lat["session"]), .95)
    print(f"TOTAL 5xx {total['5xx'] + total['503']} (503: {total['503']}), timeouts "
          f"{total['timeout']}, connection errors {total['conn_err']}; "
          f"chart p95 {chart * 1e3:.0f} ms < 300 ms: {'yes' if chart < 0.3 else 'NO'}; "
          f"session p95 {sess * 1e3:.0f} ms < 300 ms: {'yes' if sess < 0.3 else 'NO'}")


# ---------------------------------------------------------------------------- main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proxy_supported() -> bool:
    """Whether ``ketasim serve`` has ``--trusted-proxy`` (then the public clients come, as in
    production, through a reverse proxy on 127.0.0.1 that names each visitor's address)."""
    import inspect

    from ketasim.cli.app import serve
    return "trusted_proxy" in inspect.signature(serve).parameters


def start_server(url: str, tmp: Path, port: int, proxied: bool, workers: int
                 ) -> subprocess.Popen:
    key = tmp / "audit.key"
    key.write_bytes(KEY)
    log = open(tmp / "server.log", "wb")  # closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "ketasim", "serve", "--database", url, "--audit-key-file",
         str(key), "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        + (["--trusted-proxy", "127.0.0.1"] if proxied else []),
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
    t = time.perf_counter()
    while time.perf_counter() - t < 120:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: "
                               f"{(tmp / 'server.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("server did not start within 120 s")
    # `ketasim serve` warms the forecast kernels in a process of its own as it starts: let it
    # finish first, so that the timed day measures the server alone (Linux /proc; untimed)
    t = time.perf_counter()
    while time.perf_counter() - t < 600 and any(
            "warm_forecast_kernels" in cmd for cmd in children(proc.pid).values()):
        time.sleep(0.2)
    print(f"server up; its kernel warm-up took {time.perf_counter() - t:.1f} s (untimed)",
          flush=True)
    return proc


def children(pid: int) -> dict[int, str]:
    """The child processes of ``pid`` and their command lines (Linux /proc; none elsewhere;
    also used by tests/test_serve.py)."""
    found = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke: small DB, 20 clients, 10 s")
    ap.add_argument("--database", default=None, help="database URL (default: temporary SQLite)")
    ap.add_argument("--clients", type=int, default=None,
                    help="concurrent clients, 60%% nurses, 20%% patients, 20%% anonymous")
    ap.add_argument("--duration", type=float, default=None, help="timed window (s)")
    ap.add_argument("--think", type=float, nargs=2, default=(0.5, 1.5), metavar=("MIN", "MAX"),
                    help="think time before each request, uniform (s)")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="server processes (ketasim serve --workers; default: one per core)")
    ap.add_argument("--no-proxy", action="store_true",
                    help="anonymous visitors all come from 127.0.0.1 (no trusted proxy, no "
                    "X-Forwarded-For): the per-address limit of /consult then applies to all")
    args = ap.parse_args()
    n_p, n_s = (500, 5_000) if args.quick else (10_000, 100_000)
    n_clients = args.clients or (20 if args.quick else 100)
    duration = args.duration or (10.0 if args.quick else 60.0)
    n_portal = n_anon = max(1, n_clients // 5)
    n_nurse = max(1, n_clients - n_portal - n_anon)
    lo, hi = args.think
    tmp = Path(tempfile.mkdtemp(prefix="ketasim-load-"))
    url = args.database or f"sqlite:///{tmp / 'load.db'}"
    if args.database:
        from sqlalchemy import create_engine, text
        eng = create_engine(url)
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
    app = create_app(url, audit_key=KEY)
    t = time.perf_counter()
    s = seed(app, n_p, n_s, n_nurse, n_portal)
    print(f"seeded {n_p:,} patients, {n_s:,} discharged sessions ({5 * n_s:,} events), "
          f"{2 * n_nurse} open sessions, {4 * n_p:,} questionnaires in "
          f"{time.perf_counter() - t:.1f} s ({url.split(':')[0]})", flush=True)
    s.proxied = not args.no_proxy and proxy_supported()
    port = free_port()
    proc = start_server(url, tmp, port, s.proxied, args.workers)
    base = f"http://127.0.0.1:{port}"
    try:
        t = time.perf_counter()
        names = [f"nurse{i}" for i in range(n_nurse)] + [f"patient{i}" for i in range(n_portal)]
        with ThreadPoolExecutor(2) as pool:  # Argon2: 64 MiB and ~0.1 s each; 2 cores
            logged = list(pool.map(lambda u: log_in(base, u, args.timeout), names))
        anon = [httpx.Client(base_url=base, follow_redirects=False, timeout=args.timeout)
                for _ in range(n_anon)]
        print(f"logged in {len(logged)} users in {time.perf_counter() - t:.1f} s (untimed)",
              flush=True)
        stats, clock = Stats(), Clock()
        threads = [threading.Thread(target=nurse, args=(logged[i], i, s, stats, clock, lo, hi),
                                    daemon=True) for i in range(n_nurse)]
        threads += [threading.Thread(target=portal_patient, daemon=True,
                                     args=(logged[n_nurse + i], i, s, stats, clock, lo, hi))
                    for i in range(n_portal)]
        threads += [threading.Thread(target=anonymous, args=(anon[i], i, s, stats, clock, lo, hi),
                                     daemon=True) for i in range(n_anon)]
        for th in threads:
            th.start()
        print(f"server: ketasim serve --workers {args.workers}; "
              f"{n_clients} clients ({n_nurse} nurses, {n_portal} patients, {n_anon} "
              f"anonymous), {duration:g} s, think time uniform {lo:g}-{hi:g} s before each "
              f"request, request timeout {args.timeout:g} s; anonymous visitors "
              + ("each from an address of their own (X-Forwarded-For via --trusted-proxy "
                 "127.0.0.1)" if s.proxied else "all from 127.0.0.1"), flush=True)
        load0, cpu0 = os.getloadavg()[0], cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        clock.deadline = t0 + duration
        clock.go.set()
        # requests start only inside the window; those in flight at its end are waited for
        end = clock.deadline + args.timeout + 10
        for th in threads:
            th.join(timeout=max(0.0, end - time.perf_counter()))
        wall = time.perf_counter() - t0
        stuck = sum(th.is_alive() for th in threads)
        if stuck:
            print(f"{stuck} clients still waiting after {wall:.0f} s (not counted)")
        report(stats, wall, tmp / "server.log")
        print(f"server process CPU {cpu_seconds(proc.pid) - cpu0:.0f} s in {wall:.0f} s on "
              f"{os.cpu_count()} cores; 1-min load average {load0:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end (other work on the machine skews the "
              "figures)")
        for c in [*logged, *anon]:
            c.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
