"""Operations commands through the installed ``ketasim`` entry point: exit codes reach the
shell (0 intact, 1 broken, 2 bad input), ``serve`` refuses to replace a lost audit key,
``--trusted-proxy`` decides whether forwarded headers are believed, and backup/restore drills
on SQLite (and PostgreSQL when KETASIM_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner

from ketasim.storage.backup import BackupError, backup, restore, table_fingerprints
from ketasim.storage.models import AuditRow, SessionEvent
from test_audit_store import KEY, check, empty_database, fill, sql

KETASIM = Path(sys.executable).with_name("ketasim")
PG = os.environ.get("KETASIM_TEST_POSTGRES_URL")


def ketasim(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    assert KETASIM.exists(), f"the entry point is not installed at {KETASIM}"
    return subprocess.run([str(KETASIM), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """``main()`` in this process (the entry point's code path, without a process start):
    exit code, stdout, stderr."""
    from ketasim.cli.app import main
    old = sys.argv
    sys.argv = ["ketasim", *args]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = old
    out = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


@pytest.fixture()
def keyfile(tmp_path: Path) -> Path:
    k = tmp_path / "audit.key"
    k.write_bytes(KEY)
    return k


def test_audit_verify_exit_codes_reach_the_shell(tmp_path: Path, keyfile: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    fill(url)
    verify = ["audit", "verify", "--database", url, "--audit-key-file", str(keyfile)]
    r = ketasim(*verify, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "intact" in r.stdout and "10 entries" in r.stdout and "6 session events" in r.stdout
    # the last two entries deleted: caught by the sealed head, no --head needed
    sql(url, delete(AuditRow).where(AuditRow.seq > 8))
    r = ketasim(*verify, cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "audit head" in r.stdout and "ends at entry 8" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_audit_verify_reports_an_edited_row(tmp_path: Path, keyfile: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    fill(url)
    sql(url, update(SessionEvent).where(SessionEvent.id == 1).values(kind="dose"))
    code, out, _ = run_main(capsys, "audit", "verify", "--database", url, "--audit-key-file",
                            str(keyfile))
    assert code == 1 and "session_event:1" in out and "altered" in out


def test_audit_verify_missing_database_is_exit_2_and_creates_nothing(tmp_path: Path,
                                                                     keyfile: Path) -> None:
    db = tmp_path / "nope.db"
    r = ketasim("audit", "verify", "--database", f"sqlite:///{db}", "--audit-key-file",
                str(keyfile), cwd=tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    assert not db.exists() and not Path(f"{db}-wal").exists()


def test_unreachable_postgresql_and_usage_errors_exit_2(tmp_path: Path, keyfile: Path,
                                                        capsys) -> None:
    port = free_port()
    code, _, err = run_main(capsys, "audit", "verify", "--database",
                            f"postgresql+psycopg://u:p@127.0.0.1:{port}/x", "--audit-key-file",
                            str(keyfile))
    assert code == 2 and "cannot connect" in err and "Traceback" not in err
    assert "u:p@" not in err  # the password is not printed
    code, _, err = run_main(capsys, "audit", "verify", "--database",
                            f"sqlite:///{tmp_path / 'x.db'}", "--audit-key-file",
                            str(tmp_path / "none.key"))
    assert code == 2 and "none.key does not exist" in err
    code, _, err = run_main(capsys, "no-such-command")
    assert code == 2 and "No such command" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_refuses_a_missing_key_with_a_non_empty_trail(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    fill(url)
    missing = tmp_path / "missing.key"
    r = ketasim("serve", "--database", url, "--audit-key-file", str(missing), "--port",
                str(free_port()), cwd=tmp_path, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "missing.key" in r.stderr and "restore the key file" in r.stderr
    assert not missing.exists()
    assert check(url).ok  # nothing was appended or broken


def test_serve_trusts_forwarded_headers_only_from_named_proxies(tmp_path: Path,
                                                                 monkeypatch) -> None:
    import uvicorn

    import ketasim.cli.clinic
    from ketasim.cli.app import app
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: calls.append(kw))
    monkeypatch.setattr(ketasim.cli.clinic, "WARM_KERNELS", "pass")  # no kernel warm-up here
    base = ["serve", "--database", f"sqlite:///{tmp_path / 'c.db'}", "--audit-key-file",
            str(tmp_path / "k.key"), "--port", "8123"]
    r = CliRunner().invoke(app, base)
    assert r.exit_code == 0, r.output
    assert calls[-1]["proxy_headers"] is False
    r = CliRunner().invoke(app, [*base, "--trusted-proxy", "10.0.0.5", "--trusted-proxy",
                                 "127.0.0.1"])
    assert r.exit_code == 0, r.output
    assert calls[-1]["proxy_headers"] is True
    assert calls[-1]["forwarded_allow_ips"] == ["10.0.0.5", "127.0.0.1"]
    # a key was created for the empty trail, private to the owner
    assert (tmp_path / "k.key").stat().st_mode & 0o077 == 0


def test_sqlite_backup_restore_drill_through_the_cli(tmp_path: Path, keyfile: Path) -> None:
    """The drill with the installed commands: back up, restore into a new file, compare every
    table's rows, verify the audit trail."""
    src = f"sqlite:///{tmp_path / 'clinic.db'}"
    fill(src)
    out = tmp_path / "clinic.bak"
    r = ketasim("backup", "--database", src, str(out), cwd=tmp_path)
    assert r.returncode == 0 and out.is_file(), r.stdout + r.stderr
    dst = f"sqlite:///{tmp_path / 'restored.db'}"
    r = ketasim("restore", str(out), "--database", dst, "--audit-key-file", str(keyfile),
                cwd=tmp_path)
    assert r.returncode == 0 and "intact" in r.stdout, r.stdout + r.stderr
    before, after = table_fingerprints(src), table_fingerprints(dst)
    assert after == before and before["session_events"][0] == 3
    assert check(dst).ok


def test_restore_refuses_a_non_empty_target_unless_forced(tmp_path: Path, keyfile: Path,
                                                          capsys) -> None:
    src = f"sqlite:///{tmp_path / 'clinic.db'}"
    fill(src)
    out = tmp_path / "clinic.bak"
    assert run_main(capsys, "backup", "--database", src, str(out))[0] == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    fill(other, n=1)
    code, _, err = run_main(capsys, "restore", str(out), "--database", other)
    assert code == 2 and "--force" in err
    code, out_, _ = run_main(capsys, "restore", str(out), "--database", other, "--force",
                             "--audit-key-file", str(keyfile))
    assert code == 0 and "intact" in out_
    assert table_fingerprints(other) == table_fingerprints(src)


def test_restore_of_a_tampered_backup_exits_1(tmp_path: Path, keyfile: Path, capsys) -> None:
    src = f"sqlite:///{tmp_path / 'clinic.db'}"
    fill(src)
    sql(src, update(SessionEvent).where(SessionEvent.id == 2).values(data={}))
    backup(src, tmp_path / "b.bak")
    code, out, _ = run_main(capsys, "restore", str(tmp_path / "b.bak"), "--database",
                            f"sqlite:///{tmp_path / 'r.db'}", "--audit-key-file", str(keyfile))
    assert code == 1 and "session_event:2" in out


def test_sqlite_backup_includes_committed_wal_content(tmp_path: Path) -> None:
    """A write still in the WAL (not checkpointed, writer connection open) is in the copy."""
    src = f"sqlite:///{tmp_path / 'clinic.db'}"
    fill(src)
    writer = sqlite3.connect(tmp_path / "clinic.db")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE patients SET display_name='after' WHERE id=1")
    writer.commit()
    assert (tmp_path / "clinic.db-wal").stat().st_size > 0
    try:
        backup(src, tmp_path / "b.bak")
    finally:
        writer.close()
    with sqlite3.connect(tmp_path / "b.bak") as c:
        assert c.execute("SELECT display_name FROM patients WHERE id=1").fetchone() == ("after",)


def test_backup_and_restore_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="does not exist"):
        backup(f"sqlite:///{tmp_path / 'none.db'}", tmp_path / "x.bak")
    assert not (tmp_path / "none.db").exists()
    junk = tmp_path / "junk.bak"
    junk.write_bytes(b"not a backup")
    with pytest.raises(BackupError, match="not a sqlite backup"):
        restore(junk, f"sqlite:///{tmp_path / 'r.db'}")
    with pytest.raises(BackupError, match="not supported"):
        backup("mysql://h/db", tmp_path / "x.bak")


@pytest.mark.skipif(not PG, reason="KETASIM_TEST_POSTGRES_URL is not set")
def test_postgresql_backup_restore_drill(tmp_path: Path, keyfile: Path, capsys) -> None:
    url = empty_database("postgresql", tmp_path)
    fill(url)
    before = table_fingerprints(url)
    assert before["session_events"][0] == 3 and before["audit_entries"][0] == 10
    out = tmp_path / "clinic.dump"
    r = ketasim("backup", "--database", url, str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_bytes().startswith(b"PGDMP")
    code, _, err = run_main(capsys, "restore", str(out), "--database", url)
    assert code == 2 and "--force" in err  # not empty
    empty_database("postgresql", tmp_path)  # a fresh, empty database
    code, stdout, err = run_main(capsys, "restore", str(out), "--database", url,
                                 "--audit-key-file", str(keyfile))
    assert code == 0 and "intact" in stdout, stdout + err
    assert table_fingerprints(url) == before
    assert check(url).ok
    # --force replaces a database that has tables
    sql(url, delete(AuditRow).where(AuditRow.seq == 10))
    code, stdout, err = run_main(capsys, "restore", str(out), "--database", url, "--force",
                                 "--audit-key-file", str(keyfile))
    assert code == 0 and "intact" in stdout, stdout + err
    assert table_fingerprints(url) == before
