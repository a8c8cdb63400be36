"""Durability under ``kill -9``: the real server (``ketasim serve``) is killed at a random moment
while a patient submits PHQ-9s and a nurse starts a session, records the pre-dose check, the
dose and vitals; after each kill the database must hold every write the server acknowledged (a 303
redirect received before the kill), no half-written rows (a questionnaire without its safety
alert or audit entry, a session or session event without its audit entry), and
``ketasim audit verify`` must pass. The next round restarts the server on the same database
and first checks that the last round's session page still renders. The nurse and the patient
log in once (Argon2 is slow); their browser sessions are rows in the database and must outlive
every restart too.

50 rounds on SQLite; 10 on PostgreSQL when ``KETASIM_TEST_POSTGRES_URL`` is set (its
``public`` schema is dropped and re-created first, as in ``tests/test_web.py``).

Restart cost: a server process is started with ``python -c`` that imports ketasim, the web app
and uvicorn *while the previous round runs* and then waits on stdin; after the kill it is told
to run ``ketasim.cli.app.main()`` with ``serve`` arguments, so each restart is a fresh process
running the real CLI code (it opens the database, migrates, serves), without paying the 3 s of
imports on the critical path. ``ketasim audit verify`` runs in-process (typer's CliRunner:
same command code) after every round and as the real ``.venv/bin/ketasim`` executable every
10th round and at the end.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from ketasim.clinic.audit import AuditEntry, verify
from ketasim.scales.instruments import score
from ketasim.storage.db import migrate
from ketasim.storage.models import (
    AuditRow,
    Clinic,
    MonitoredSessionRow,
    Patient,
    QuestionnaireResponse,
    SafetyAlert,
    SessionEvent,
    User,
)
from ketasim.web.app import ROLES, seed_demo

pytestmark = pytest.mark.slow

KEY = b"c" * 32
PASSWORDS = {r: f"crash-{r}-password" for r in ROLES}
SQLITE_ROUNDS = 50
POSTGRES_ROUNDS = 10
MAX_WRITES = 12          # per writer per round (small: the kill lands within ~1 s)
KILL_AFTER = (0.0, 0.9)  # seconds after the writers start, uniform
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')
FORM_TOKEN_RE = re.compile(r'name="form_token" value="([^"]*)"')
VITALS = {"sbp": "124", "dbp": "78", "spo2": "98"}
DOSE = {"product": "ketamine 10 mg/mL", "lot": "CRASH-1", "route": "iv_infusion",
        "duration_min": "40", "amount": "0.5", "unit": "mg/kg", "weight_kg": "70"}
KETASIM = Path(sys.executable).with_name("ketasim")

# A server process whose imports are done before it is needed; it touches nothing until it
# reads its command line (JSON) from stdin, and exits quietly on EOF.
PRELOADED = r"""
import json, sys
import uvicorn
import ketasim.cli.app as cli
import ketasim.web.app
line = sys.stdin.readline()
if not line.strip():
    sys.exit(0)
sys.argv = ["ketasim", *json.loads(line)]
cli.main()
"""


# ------------------------------------------------------------------------------ the server
class Preloaded:
    """A ``ketasim`` process waiting, imports done, for its arguments."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-c", PRELOADED], stdin=subprocess.PIPE,
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def run(self, *args: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(list(args)) + "\n").encode())
        self.proc.stdin.flush()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # EOF: a process still waiting exits by itself
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._out.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(srv: Preloaded, url: str, key: Path) -> str:
    """Start ``srv`` on ``url``; the base URL once it answers ``/login``."""
    port = free_port()
    srv.run("serve", "--database", url, "--audit-key-file", str(key), "--host", "127.0.0.1",
            "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            pytest.fail(f"server exited with {srv.proc.returncode}:\n{srv.tail()}")
        try:
            if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                return base
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"server did not answer within 90 s:\n{srv.tail()}")


# ------------------------------------------------------------------------------ clients
def log_in(base: str, username: str) -> str:
    """Log in; the session cookie (stored server-side as a hash, so it outlives restarts)."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=15) as c:
        page = c.get("/login")
        # the cookies are Secure; on loopback http they are carried by hand
        c.cookies.set("ketasim_precsrf", page.cookies["ketasim_precsrf"])
        r = c.post("/login", data={"username": username, "password": PASSWORDS[username],
                                   "csrf_token": CSRF_RE.search(page.text).group(1)})
    assert r.status_code == 303, (username, r.status_code, r.text[:500])
    return str(r.cookies["ketasim_session"])


def client(base: str, cookie: str) -> httpx.Client:
    c = httpx.Client(base_url=base, follow_redirects=False, timeout=15)
    c.cookies.set("ketasim_session", cookie)
    return c


def form_fields(html: str, action: str) -> dict[str, str]:
    """The hidden CSRF token and, when the form carries one, its one-use form token."""
    m = re.search(r'<form[^>]*action="' + re.escape(action) + r'"[^>]*>(.*?)</form>', html,
                  re.S)
    assert m is not None, f"no form posting to {action}:\n{html[:2000]}"
    out = {"csrf_token": (CSRF_RE.search(m.group(1)) or CSRF_RE.search(html)).group(1)}
    if (f := FORM_TOKEN_RE.search(m.group(1))) is not None:
        out["form_token"] = f.group(1)
    return out


@dataclass
class Acks:
    """What the server acknowledged (303 received), and every write attempted."""

    phq9: set[tuple[int, ...]] = field(default_factory=set)
    phq9_tried: set[tuple[int, ...]] = field(default_factory=set)
    sessions: set[int] = field(default_factory=set)
    predose: set[int] = field(default_factory=set)
    dose: set[int] = field(default_factory=set)
    vitals: set[tuple[int, int]] = field(default_factory=set)   # (session, hr)
    vitals_tried: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # responses that were not a 303
    lock: threading.Lock = field(default_factory=threading.Lock)


class Killed(Exception):
    """The server is gone (expected only after the kill)."""


def post_303(c: httpx.Client, path: str, data: dict, killed: threading.Event,
             acks: Acks) -> httpx.Response | None:
    """POST; the response if it is the 303 of a saved write, None when the server went away
    after the kill (raises Killed to stop the writer). Anything else is recorded as an error."""
    try:
        r = c.post(path, data=data)
    except httpx.TransportError as exc:
        if not killed.is_set():
            acks.errors.append(f"POST {path}: {type(exc).__name__}: {exc} (before the kill)")
        raise Killed from exc
    if r.status_code != 303:
        acks.errors.append(f"POST {path} -> {r.status_code}: {r.text[:300]}")
        raise Killed
    return r


def get_200(c: httpx.Client, path: str, killed: threading.Event, acks: Acks) -> str:
    try:
        r = c.get(path)
    except httpx.TransportError as exc:
        if not killed.is_set():
            acks.errors.append(f"GET {path}: {type(exc).__name__}: {exc} (before the kill)")
        raise Killed from exc
    if r.status_code != 200:
        acks.errors.append(f"GET {path} -> {r.status_code}: {r.text[:300]}")
        raise Killed
    return r.text


def phq9_items(n: int) -> tuple[int, ...]:
    """Unique answers for submission ``n`` (items 1-8 spell n in base 4); every fourth has
    item 9 = 1, which raises a safety alert that must be stored with it."""
    return (*((n >> (2 * k)) & 3 for k in range(8)), 1 if n % 4 == 1 else 0)


def patient_writer(c: httpx.Client, pid: int, first: int, acks: Acks,
                   killed: threading.Event) -> None:
    path = f"/patients/{pid}/questionnaires/phq9"
    try:
        for n in range(first, first + MAX_WRITES):
            data = form_fields(get_200(c, path, killed, acks), path)
            items = phq9_items(n)
            data.update({f"item_{k}": str(v) for k, v in enumerate(items, 1)})
            with acks.lock:
                acks.phq9_tried.add(items)
            post_303(c, path, data, killed, acks)
            with acks.lock:
                acks.phq9.add(items)
    except Killed:
        pass
    except Exception as exc:
        acks.errors.append(f"patient: {type(exc).__name__}: {str(exc)[:1500]}")


def nurse_writer(c: httpx.Client, pid: int, acks: Acks, killed: threading.Event) -> None:
    try:
        start = f"/patients/{pid}/sessions"
        data = form_fields(get_200(c, f"/patients/{pid}", killed, acks), start)
        r = post_303(c, start, {**data, "compound": "racemic"}, killed, acks)
        sid = int(re.fullmatch(r".*/sessions/(\d+)", r.headers["location"]).group(1))
        with acks.lock:
            acks.sessions.add(sid)
        page = f"/sessions/{sid}"
        data = form_fields(get_200(c, page, killed, acks), f"{page}/predose")
        post_303(c, f"{page}/predose", {**data, **VITALS, "hr": "70",
                                        "contraindications_confirmed": "yes"}, killed, acks)
        with acks.lock:
            acks.predose.add(sid)
        data = form_fields(get_200(c, page, killed, acks), f"{page}/dose")
        post_303(c, f"{page}/dose", {**data, **DOSE, "weight_date": date.today().isoformat()},
                 killed, acks)
        with acks.lock:
            acks.dose.add(sid)
        for k in range(MAX_WRITES - 3):
            hr = 40 + k  # identifies this observation
            data = form_fields(get_200(c, page, killed, acks), f"{page}/vitals")
            with acks.lock:
                acks.vitals_tried[(sid, hr)] += 1
            post_303(c, f"{page}/vitals", {**data, **VITALS, "hr": str(hr), "moaas": "5"},
                     killed, acks)
            with acks.lock:
                acks.vitals.add((sid, hr))
    except Killed:
        pass
    except Exception as exc:  # a page without its form, etc.: fails the test
        acks.errors.append(f"nurse: {type(exc).__name__}: {str(exc)[:1500]}")


# ------------------------------------------------------------------------------ the checks
def problems(url: str, acks: Acks, patient_id: int) -> list[str]:
    """Every acknowledged write present exactly once, every stored row whole (its safety
    alerts and audit entry), the chain's MACs intact. Empty when all is well."""
    out: list[str] = []
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            audit = db.scalars(select(AuditRow).order_by(AuditRow.seq)).all()
            qs = db.scalars(select(QuestionnaireResponse).where(
                QuestionnaireResponse.patient_id == patient_id)).all()
            all_qs = set(db.scalars(select(QuestionnaireResponse.id)))
            alerts = Counter(db.scalars(select(SafetyAlert.response_id)))
            sessions = {s.id: s for s in db.scalars(select(MonitoredSessionRow))}
            events = db.scalars(select(SessionEvent).order_by(SessionEvent.id)).all()
    finally:
        engine.dispose()
    report = verify([AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, r.detail, r.prev,
                                r.mac) for r in audit], KEY)
    if not report.ok:
        out.append(f"audit chain broken at entry {report.first_bad}: {report.problem}")
    details = [r.detail if isinstance(r.detail, dict) else {} for r in audit]
    named = Counter(str(d["row"]) for d in details if "row" in d)
    by_row = bool(named)  # entries name their rows ("questionnaire:<id>"); else count them

    # questionnaires: acknowledged -> stored once; stored -> alerts and audit entry
    stored = Counter(tuple(q.items) for q in qs)
    out += [f"acknowledged PHQ-9 {list(i)} lost" for i in acks.phq9 if stored[i] == 0]
    out += [f"PHQ-9 {list(i)} stored {n} times" for i, n in stored.items() if n > 1]
    out += [f"PHQ-9 {list(i)} stored but never submitted" for i in stored
            if i not in acks.phq9_tried]
    for q in qs:
        want = len(score("phq9", list(q.items)).flags)
        if alerts[q.id] != want:
            out.append(f"questionnaire {q.id} has {alerts[q.id]} safety alerts, not {want}")
        if by_row and named[f"questionnaire:{q.id}"] != 1:
            out.append(f"questionnaire {q.id} has {named[f'questionnaire:{q.id}']} audit "
                       "entries naming it, not 1")
    if not by_row:
        n_audit = sum(d.get("questionnaire") == "phq9" and a.subject == f"patient:{patient_id}"
                      for a, d in zip(audit, details, strict=True))
        if n_audit != len(qs):
            out.append(f"{len(qs)} PHQ-9 rows but {n_audit} audit entries for them")

    # sessions: acknowledged -> stored; stored -> audit entries
    out += [f"acknowledged session {s} lost" for s in acks.sessions if s not in sessions]
    started = Counter(d.get("session") for d in details if d.get("step") == "start")
    out += [f"session {s} has {started[s]} start audit entries, not 1" for s in sessions
            if started[s] != 1]
    out += [f"start audit entry for session {s}, which does not exist" for s in started
            if s not in sessions]
    kinds = Counter((e.session_id, e.kind) for e in events)
    out += [f"acknowledged pre-dose check of session {s} lost" for s in acks.predose
            if kinds[(s, "predose")] == 0]
    out += [f"acknowledged dose of session {s} lost" for s in acks.dose
            if kinds[(s, "dose")] == 0]
    out += [f"session {s}: {n} {k} events" for (s, k), n in kinds.items()
            if k in ("predose", "dose") and n > 1]
    vit = Counter((e.session_id, int(e.data["hr"])) for e in events if e.kind == "vitals")
    out += [f"acknowledged vitals (session {s}, HR {hr}) lost" for s, hr in acks.vitals
            if vit[(s, hr)] == 0]
    out += [f"vitals (session {s}, HR {hr}) stored {n} times, tried {acks.vitals_tried[(s, hr)]}"
            for (s, hr), n in vit.items()
            if s in acks.sessions and n > max(1, acks.vitals_tried[(s, hr)])]
    if by_row:
        out += [f"session event {e.id} ({e.kind}, session {e.session_id}) has "
                f"{named[f'session_event:{e.id}']} audit entries naming it, not 1"
                for e in events if named[f"session_event:{e.id}"] != 1]
        present = {f"session_event:{e.id}" for e in events} | {f"questionnaire:{q}"
                                                                for q in all_qs}
        out += [f"audit entry names {k}, which does not exist" for k in named
                if k.startswith(("session_event:", "questionnaire:")) and k not in present]
    else:
        audited = Counter((d.get("session"), d.get("step")) for d in details
                          if d.get("step") in ("predose", "dose", "vitals", "ack", "discharge"))
        for key in set(kinds) | set(audited):
            if kinds[key] != audited[key]:
                out.append(f"session {key[0]}: {kinds[key]} {key[1]} events but "
                           f"{audited[key]} audit entries")
    return out


def cli_verify(url: str, key: Path) -> tuple[int, str]:
    """``ketasim audit verify`` in-process (the same command code as the executable)."""
    from typer.testing import CliRunner

    from ketasim.cli.app import app as cli
    r = CliRunner().invoke(cli, ["audit", "verify", "--database", url, "--audit-key-file",
                                 str(key)])
    return r.exit_code, r.output + (f"\n{r.exception!r}" if r.exception else "")


def exe_verify(url: str, key: Path) -> subprocess.CompletedProcess:
    cmd = [str(KETASIM)] if KETASIM.exists() else [sys.executable, "-m", "ketasim"]
    return subprocess.run([*cmd, "audit", "verify", "--database", url, "--audit-key-file",
                           str(key)], capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------ the test
def seed(url: str, n_patients: int) -> tuple[int, list[int]]:
    """The demo clinic (users with known passwords) and ``n_patients`` more patients for the
    nurse's sessions. Returns (the portal patient's id, the session patients' ids)."""
    migrate(url)
    engine = create_engine(url)
    try:
        seed_demo(sessionmaker(engine), PASSWORDS)
        with Session(engine) as db:
            clinic = db.scalar(select(Clinic).where(Clinic.name == "Demo Clinic"))
            db.add_all([Patient(clinic_id=clinic.id, display_name=f"Crash Patient {i}")
                        for i in range(n_patients)])
            db.commit()
            portal = db.scalar(select(User.patient_id).where(User.username == "patient"))
            pids = list(db.scalars(select(Patient.id).where(
                Patient.display_name.like("Crash Patient %")).order_by(Patient.id)))
    finally:
        engine.dispose()
    return portal, pids


def crash_rounds(url: str, tmp: Path, rounds: int, seed_: int) -> None:
    key = tmp / "audit.key"
    key.write_bytes(KEY)
    portal, pids = seed(url, rounds + 1)
    rng = random.Random(seed_)
    acks = Acks()
    spare = Preloaded(tmp / "server-0.log")
    srv = None
    last_sid: int | None = None
    cookies: dict[str, str] = {}
    try:
        for rnd in range(rounds + 1):
            srv, spare = spare, Preloaded(tmp / f"server-{rnd + 1}.log")
            base = serve(srv, url, key)
            if not cookies:  # Argon2 is slow: log in once; the sessions survive restarts
                cookies = {u: log_in(base, u) for u in ("nurse", "patient")}
            nurse, patient = client(base, cookies["nurse"]), client(base, cookies["patient"])
            if last_sid is not None:  # the restarted server replays what survived
                r = nurse.get(f"/sessions/{last_sid}")
                assert r.status_code == 200, (rnd, r.status_code, r.text[:500], srv.tail())
            if rnd == rounds:  # the final restart: one more write must work, then stop
                path = f"/patients/{portal}/questionnaires/phq9"
                data = form_fields(patient.get(path).text, path)
                items = phq9_items(10_000)
                acks.phq9_tried.add(items)
                r = patient.post(path, data={**data, **{f"item_{k}": str(v)
                                                        for k, v in enumerate(items, 1)}})
                assert r.status_code == 303, (r.status_code, r.text[:500])
                acks.phq9.add(items)
                nurse.close()
                patient.close()
                srv.kill9()
                break
            killed = threading.Event()
            writers = [threading.Thread(target=patient_writer, daemon=True,
                                        args=(patient, portal, rnd * MAX_WRITES, acks, killed)),
                       threading.Thread(target=nurse_writer, daemon=True,
                                        args=(nurse, pids[rnd], acks, killed))]
            for w in writers:
                w.start()
            time.sleep(rng.uniform(*KILL_AFTER))
            killed.set()
            srv.kill9()
            for w in writers:
                w.join(timeout=30)
            nurse.close()
            patient.close()
            assert not any(w.is_alive() for w in writers), "a writer hung after the kill"
            assert not acks.errors, f"round {rnd}: server errors before the kill:\n" + \
                "\n".join(acks.errors) + "\n" + srv.tail()
            found = problems(url, acks, portal)
            assert not found, f"after the kill in round {rnd}:\n" + "\n".join(found)
            rc, output = cli_verify(url, key)
            assert rc == 0, f"round {rnd}: ketasim audit verify exited {rc}:\n{output}"
            if rnd % 10 == 9:
                p = exe_verify(url, key)
                assert p.returncode == 0, (rnd, p.stdout, p.stderr)
            last_sid = max(acks.sessions, default=None)
        found = problems(url, acks, portal)
        assert not found, "after the final restart:\n" + "\n".join(found)
        p = exe_verify(url, key)
        assert p.returncode == 0, (p.stdout, p.stderr)
        # the rounds did write, and kills landed in the middle of the work
        assert len(acks.phq9) >= rounds and len(acks.sessions) >= rounds // 2, \
            (len(acks.phq9), len(acks.sessions))
    finally:
        for s in (srv, spare):
            if s is not None:
                s.stop()


def test_kill_9_loses_no_acknowledged_write_sqlite(tmp_path: Path) -> None:
    crash_rounds(f"sqlite:///{tmp_path / 'c.db'}", tmp_path, SQLITE_ROUNDS, 20260302)


@pytest.mark.skipif(not os.environ.get("KETASIM_TEST_POSTGRES_URL"),
                    reason="KETASIM_TEST_POSTGRES_URL is not set")
def test_kill_9_loses_no_acknowledged_write_postgresql(tmp_path: Path) -> None:
    from tests.test_web import database_url
    url = database_url("postgresql", tmp_path)  # the test database, emptied
    crash_rounds(url, tmp_path, POSTGRES_ROUNDS, 20260303)


def test_the_check_reports_a_lost_or_half_written_write(tmp_path: Path) -> None:
    """The checker itself can fail: an acknowledged write that is not in the database, and a
    questionnaire row without its audit entry or safety alert, are both reported."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    portal, _ = seed(url, 1)
    assert problems(url, Acks(), portal) == []
    lost = Acks(phq9={phq9_items(1)}, phq9_tried={phq9_items(1)}, sessions={99},
                vitals={(99, 40)})
    found = problems(url, lost, portal)
    assert any("acknowledged PHQ-9" in f and "lost" in f for f in found), found
    assert any("acknowledged session 99 lost" in f for f in found), found
    assert any("acknowledged vitals" in f for f in found), found
    engine = create_engine(url)
    with Session(engine) as db:
        nurse = db.scalar(select(User.id).where(User.username == "nurse"))
        from datetime import UTC, datetime
        db.add(QuestionnaireResponse(patient_id=portal, instrument="phq9",
                                     items=list(phq9_items(1)), total=1, band="minimal",
                                     submitted_by=nurse, submitted_at=datetime.now(UTC)))
        db.commit()
    engine.dispose()
    found = problems(url, Acks(phq9_tried={phq9_items(1)}), portal)
    assert any("safety alerts" in f for f in found), found
    assert any("audit entries" in f for f in found), found
