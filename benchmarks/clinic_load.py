"""Benchmark: chart and session page latency with a clinic-scale database.

Seeds 10,000 patients, 100,000 monitored sessions (each with a pre-dose check, a dose and two
sets of observations) and 40,000 questionnaires into an embedded SQLite database (migrated
as the app does), serves the app with uvicorn on loopback, logs in 20 clinicians and has them
request random chart (``/patients/{id}``) and session (``/sessions/{id}``) pages
concurrently. Prints p50/p95/max latency per page (target: p95 < 300 ms on 2 cores).
``--quick``: 500 patients, 5,000 sessions, 5 users (CI smoke). ``--database URL`` to run
against PostgreSQL instead (the schema is emptied first).

Every request is a real one: session cookie checked, clinic scope checked, an audit entry
appended to the HMAC chain and committed (SQLite synchronous=FULL).
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
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


def seed(app, n_patients: int, n_sessions: int, n_users: int) -> tuple[list[int], list[int]]:
    rng = random.Random(1)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    with app.state.sessions() as db:
        clinic = Clinic(name="Load Clinic", spo2_min=92.0, moaas_alert_max=2)
        db.add(clinic)
        db.flush()
        pw = hash_password("load-test-password")
        db.execute(insert(User), [dict(clinic_id=clinic.id, username=f"nurse{i}", role="nurse",
                                       password_hash=pw, active=True, failed_logins=0)
                                  for i in range(n_users)])
        db.execute(insert(Patient), [dict(clinic_id=clinic.id, display_name=f"Patient {i}")
                                     for i in range(n_patients)])
        pids = list(db.scalars(select(Patient.id)))
        uid = db.scalar(select(User.id).limit(1))
        db.execute(insert(QuestionnaireResponse), [dict(
            patient_id=rng.choice(pids), instrument="phq9", items=[1] * 9, total=9,
            band="mild", submitted_by=uid, submitted_at=t0 + timedelta(hours=i))
            for i in range(4 * n_patients)])
        sessions = [dict(patient_id=pids[i % len(pids)], compound="racemic",
                         rems_enrolled=False, started_by=uid,
                         started_at=t0 + timedelta(hours=i), discharged_at=None)
                    for i in range(n_sessions)]
        for chunk in range(0, n_sessions, 20_000):
            db.execute(insert(MonitoredSessionRow), sessions[chunk:chunk + 20_000])
        sids = list(db.scalars(select(MonitoredSessionRow.id)))
        vit = {"sbp": 128.0, "dbp": 80.0, "hr": 70.0, "spo2": 98.0}
        for chunk in range(0, len(sids), 10_000):
            rows = []
            for k, sid in enumerate(sids[chunk:chunk + 10_000]):
                t = t0 + timedelta(hours=chunk + k)
                rows += [dict(session_id=sid, kind="predose", at=t, data=vit, recorded_by=uid,
                              recorded_at=t),
                         dict(session_id=sid, kind="dose", at=t + timedelta(minutes=5),
                              data={"dose_mg": 35.0, "route": "iv_infusion",
                                    "duration_min": 40.0, "weight_kg": 70.0},
                              recorded_by=uid, recorded_at=t),
                         dict(session_id=sid, kind="vitals", at=t + timedelta(minutes=45),
                              data=vit, recorded_by=uid, recorded_at=t),
                         dict(session_id=sid, kind="vitals", at=t + timedelta(minutes=125),
                              data=vit, recorded_by=uid, recorded_at=t)]
            db.execute(insert(SessionEvent), rows)
        db.commit()
    return pids, sids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--database", default=None)
    args = ap.parse_args()
    n_p, n_s, n_u, n_req = (500, 5_000, 5, 40) if args.quick else (10_000, 100_000, 20, 60)
    tmp = tempfile.mkdtemp()
    url = args.database or f"sqlite:///{Path(tmp) / 'load.db'}"
    if args.database:
        from sqlalchemy import create_engine, text
        eng = create_engine(url)
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
    app = create_app(url, audit_key=KEY)
    t = time.perf_counter()
    pids, sids = seed(app, n_p, n_s, n_u)
    print(f"seeded {n_p:,} patients, {n_s:,} sessions ({4 * n_s:,} events), "
          f"{4 * n_p:,} questionnaires in {time.perf_counter() - t:.1f} s ({url.split(':')[0]})")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"

    def client(i: int) -> httpx.Client:
        c = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
        page = c.get("/login").text
        tok = page.split('name="csrf_token" value="')[1].split('"')[0]
        # cookies are Secure; loopback http: carry them by hand
        pre = c.cookies.get("ketasim_precsrf")
        r = c.post("/login", data={"username": f"nurse{i}", "password": "load-test-password",
                                   "csrf_token": tok}, cookies={"ketasim_precsrf": pre})
        assert r.status_code == 303, r.text
        c.cookies.set("ketasim_session", r.cookies["ketasim_session"])
        return c

    clients = [client(i) for i in range(n_u)]
    lat: dict[str, list[float]] = {"chart": [], "session": []}

    def user(k: int) -> None:
        rng = random.Random(k)
        c = clients[k]
        for j in range(n_req):
            kind = "chart" if j % 2 == 0 else "session"
            path = f"/patients/{rng.choice(pids)}" if kind == "chart" else \
                f"/sessions/{rng.choice(sids)}"
            t0 = time.perf_counter()
            r = c.get(path)
            lat[kind].append(time.perf_counter() - t0)
            assert r.status_code == 200, (path, r.status_code)

    t = time.perf_counter()
    with ThreadPoolExecutor(n_u) as pool:
        list(pool.map(user, range(n_u)))
    wall = time.perf_counter() - t
    total = sum(len(v) for v in lat.values())
    print(f"{n_u} concurrent users, {total} requests in {wall:.1f} s ({total / wall:.0f}/s)")
    for kind, xs in lat.items():
        xs.sort()
        p95 = xs[int(0.95 * (len(xs) - 1))]
        print(f"  {kind:8s} p50 {statistics.median(xs) * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms"
              f"   max {xs[-1] * 1000:6.1f} ms   (target p95 < 300 ms)")
    srv.should_exit = True


if __name__ == "__main__":
    main()
