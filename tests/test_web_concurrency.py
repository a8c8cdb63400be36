"""Concurrent requests against a real server keep the audit chain whole (a regression test
for duplicate chain positions under SQLite's implicit transactions)."""

from __future__ import annotations

import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from tests.test_web import BACKENDS, KEY, PASSWORDS, database_url

from ketasim.clinic.audit import AuditEntry, verify
from ketasim.storage.models import AuditRow, Patient
from ketasim.web.app import create_app, seed_demo


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_reads_extend_one_valid_chain(backend: str, tmp_path: Path) -> None:
    app = create_app(database_url(backend, tmp_path), audit_key=KEY)
    seed_demo(app.state.sessions, PASSWORDS)
    with app.state.sessions() as db:
        pid = db.scalar(select(Patient.id).where(Patient.display_name == "Demo Patient A"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"

    def logged_in(role: str) -> httpx.Client:
        c = httpx.Client(base_url=base, timeout=30)
        tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
        r = c.post("/login", data={"username": role, "password": PASSWORDS[role],
                                   "csrf_token": tok},
                   cookies={"ketasim_precsrf": c.cookies["ketasim_precsrf"]})
        assert r.status_code == 303
        c.cookies.set("ketasim_session", r.cookies["ketasim_session"])
        return c

    clients = [logged_in(r) for r in ("nurse", "prescriber", "administrator", "front_desk")]

    def hammer(c: httpx.Client) -> list[int]:
        return [c.get(f"/patients/{pid}").status_code for _ in range(15)]

    with ThreadPoolExecutor(8) as pool:
        codes = [x for xs in pool.map(hammer, clients * 2) for x in xs]
    srv.should_exit = True
    app.state.engine.dispose()
    assert codes == [200] * 120
    with app.state.sessions() as db:
        rows = db.scalars(select(AuditRow).order_by(AuditRow.seq)).all()
        entries = [AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, r.detail, r.prev,
                              r.mac) for r in rows]
    assert verify(entries, KEY).ok
    assert sum(e.action == "read" and e.subject == f"patient:{pid}" for e in entries) == 120
