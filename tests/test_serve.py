"""The README's run command: `ketasim serve --demo` migrates an embedded database, seeds the
demo clinic, prints the log-ins, and serves the app (twice on the same database too)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _serve_once(tmp_path: Path) -> dict[str, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from ketasim.cli.app import main; main()", "serve", "--demo",
         "--port", str(port), "--database", f"sqlite:///{tmp_path / 'k.db'}",
         "--audit-key-file", str(tmp_path / "k.key")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        lines = []
        assert proc.stdout is not None
        while not any("ketasim clinic on" in x for x in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        out = "".join(lines)
        logins = dict(re.findall(r"^\s+(\w+)\s+password (\S+)$", out, flags=re.M))
        assert f"http://localhost:{port}/" in out
        for _ in range(100):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert r.status_code == 200 and "Log in" in r.text
        assert r.headers["content-security-policy"]
        return logins
    finally:
        proc.terminate()
        proc.wait(10)


def _demo_activity(tmp_path: Path) -> tuple[int, int, int]:
    from sqlalchemy import func, select

    from ketasim.storage.db import make_engine, session_factory
    from ketasim.storage.models import ConsultationRequest, QuestionnaireResponse, SessionEvent
    with session_factory(make_engine(f"sqlite:///{tmp_path / 'k.db'}"))() as db:
        c, q, e = (int(db.scalar(select(func.count()).select_from(t)))
                   for t in (ConsultationRequest, QuestionnaireResponse, SessionEvent))
    return c, q, e


def test_serve_demo_prints_logins_and_serves(tmp_path: Path) -> None:
    first = _serve_once(tmp_path)
    assert set(first) == {"administrator", "prescriber", "nurse", "front_desk", "patient",
                          "researcher"}
    activity = _demo_activity(tmp_path)
    assert activity == (1, 3, 5)  # a queued request, PHQ-9 history, a finished session
    second = _serve_once(tmp_path)  # same database: new passwords, still printed
    assert set(second) == set(first) and second != first
    assert _demo_activity(tmp_path) == activity  # example activity is added once


def _children(pid: int) -> dict[int, str]:
    """Child processes of ``pid`` and their command lines (the load benchmark's helper)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from clinic_load import children
    return children(pid)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; PR_SET_PDEATHSIG is Linux's")
def test_serve_warms_the_forecast_kernels_in_a_process_that_ends_with_it(tmp_path: Path
                                                                         ) -> None:
    """The warm-up runs beside the server, at low priority, and stops with it, also when the
    server is killed outright."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from ketasim.cli.app import main; main()", "serve",
         "--port", str(port), "--database", f"sqlite:///{tmp_path / 'k.db'}",
         "--audit-key-file", str(tmp_path / "k.key")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        while "ketasim clinic on" not in (line := proc.stdout.readline()):
            assert line
        warm = [p for p, cmd in _children(proc.pid).items() if "warm_forecast_kernels" in cmd]
        assert len(warm) == 1
        stat = Path(f"/proc/{warm[0]}/stat")
        for _ in range(100):  # its first statement lowers its priority
            if int(stat.read_text().rsplit(")", 1)[1].split()[16]) == 10:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the warm-up runs at the server's priority")
    finally:
        proc.kill()  # SIGKILL: no clean-up runs in the server
        proc.wait(10)
    for _ in range(100):
        if not Path(f"/proc/{warm[0]}").exists() or "Z" in Path(
                f"/proc/{warm[0]}/stat").read_text().rsplit(")", 1)[1].split()[0]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the warm-up outlived the server")
