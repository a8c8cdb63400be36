"""``ketasim serve``, ``audit verify``, ``backup`` and ``restore``: running the clinic web
application and looking after its database.

JSON shapes (``--format json``): ``audit verify`` → ``{entries, last_mac, head_ok,
rows_checked, ok, problems, notes}``; ``backup`` → ``{path, kind, size_bytes}``; ``restore`` →
``{archive, database, tables, audit: {ok, entries, rows_checked, problems} | null}``. Exit codes
are the same in every format (1: the audit trail is broken).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ketasim.cli.output import FormatOption, Output, console


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    database: Annotated[str, typer.Option(help="database URL")] = "sqlite:///ketasim.db",
    demo: Annotated[bool, typer.Option(help="seed demonstration data and print log-ins")] = False,
    audit_key_file: Annotated[Path, typer.Option(help="HMAC key for the audit chain, kept "
                                                 "outside the database (created only while "
                                                 "the audit trail is empty)")]
    = Path("ketasim-audit.key"),
    trusted_proxy: Annotated[list[str] | None, typer.Option(
        "--trusted-proxy", help="address of a reverse proxy whose X-Forwarded-For/-Proto "
        "headers are believed (repeatable); without it those headers are ignored")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="server processes (one per CPU "
                                         "core serves the most requests)")] = 1,
) -> None:
    """Start the clinic web application (migrating the database first); --demo seeds a
    demonstration clinic and prints its log-ins."""
    import atexit
    import os
    import secrets
    import subprocess
    import sys

    import uvicorn

    from ketasim.storage.audit_store import load_or_create_key
    from ketasim.web.app import (
        ROLES,
        create_app,
        reset_demo_passwords,
        seed_demo,
        seed_demo_activity,
    )
    key = load_or_create_key(audit_key_file, database)
    application = create_app(database, audit_key=key)
    if demo:
        passwords = {r: secrets.token_urlsafe(9) for r in ROLES}
        if not seed_demo(application.state.sessions, passwords):
            reset_demo_passwords(application.state.sessions, passwords)
        seed_demo_activity(application.state.sessions, application.state.auditor)
        console.print("[bold]demo log-ins[/bold] (user name = role; new passwords each start):")
        for r in ROLES:
            console.print(f"  {r:<14} password {passwords[r]}")
    # compile the forecasts' kernels into the kernel cache while the first users log in: in a
    # process of its own at low priority, so the server's requests never wait for it
    warm = subprocess.Popen([sys.executable, "-c", WARM_KERNELS], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    atexit.register(warm.terminate)  # the server stopped: so does the warm-up
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    console.print(f"ketasim clinic on http://{shown}:{port}/  (database {database}); the "
                  "public screening form is at /consult", soft_wrap=True)
    proxies = list(trusted_proxy or [])
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "warning",
                               "proxy_headers": bool(proxies),
                               "forwarded_allow_ips": proxies or None}
    if workers == 1:
        uvicorn.run(application, **options)
        return
    # several processes: each builds the app from the environment (the database is migrated
    # and seeded above, once); the audit chain stays one chain across them (see docs/clinic.md)
    os.environ["KETASIM_DATABASE"] = database
    os.environ["KETASIM_AUDIT_KEY_FILE"] = str(audit_key_file.resolve())
    uvicorn.run("ketasim.web.app:app_from_environment", factory=True, workers=workers,
                **options)


#: what ``serve`` runs in the background: one forecast per protocol, so that the kernels they use
#: are compiled into the kernel cache (``ketasim.clinic.forecast.warm_forecast_kernels``)
WARM_KERNELS = """
import os, signal, sys
if hasattr(os, "nice"):
    os.nice(10)
if sys.platform == "linux":  # end with the server even when it is killed (SIGKILL)
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        sys.exit(0)
from ketasim.clinic.forecast import warm_forecast_kernels
warm_forecast_kernels()
"""


audit_app = typer.Typer(help="The clinic's audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    database: Annotated[str, typer.Option(help="database URL")] = "sqlite:///ketasim.db",
    audit_key_file: Annotated[Path, typer.Option(help="the HMAC key the server uses")]
    = Path("ketasim-audit.key"),
    head: Annotated[str | None, typer.Option(help="an anchored chain head (MAC of the last "
                                             "entry kept outside the database): also detects "
                                             "a database rolled back as a whole")]
    = None,
    fmt: FormatOption = "table",
) -> None:
    """Check the audit trail: every entry's MAC, link and sequence number, the sealed head, and
    that every session event and questionnaire response matches its audit entry (exit 1 when
    anything is broken, 2 when the database or key cannot be read)."""
    from ketasim.storage.audit_store import open_existing, read_key, verify_database
    from ketasim.storage.db import StorageError, session_factory
    out = Output(fmt)
    key = read_key(audit_key_file)
    engine = open_existing(database)
    try:
        from sqlalchemy import inspect
        if "audit_entries" not in inspect(engine).get_table_names():
            raise StorageError("database", f"{database} has no audit_entries table",
                               "give the database URL the clinic server uses")
        with session_factory(engine)() as db:
            report = verify_database(db, key, head=head)
    finally:
        engine.dispose()
    problems = [str(p) for p in report.problems()] if not report.ok else []
    if not out.rich:
        out.table("audit", ["entries", "last_mac", "head_ok", "rows_checked", "ok",
                            "problems", "notes"],
                  [[report.entries, report.last_mac, report.head_problem is None,
                    report.rows_checked, bool(report.ok), " | ".join(problems),
                    " | ".join(report.notes)]])
        out.finish({"entries": report.entries, "last_mac": report.last_mac,
                    "head_ok": report.head_problem is None,
                    "rows_checked": report.rows_checked, "ok": bool(report.ok),
                    "problems": problems, "notes": list(report.notes)})
        if not report.ok:
            raise typer.Exit(1)
        return
    console.print(f"audit chain: {report.entries} entries checked (MACs, links, sequence "
                  "numbers" + (", anchored head" if head else "") + ")"
                  + (f"; last MAC {report.last_mac}" if report.last_mac else ""))
    console.print("sealed head: " + ("matches the last entry" if report.head_problem is None
                                     else "PROBLEM"))
    console.print(f"clinical rows: {report.rows_checked} session events and questionnaire "
                  "responses checked against their audit entries")
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if report.ok:
        console.print("[green]audit chain intact[/green]")
        return
    for problem in problems:
        console.print(f"[red]{problem}[/red]", soft_wrap=True)
    raise typer.Exit(1)


def backup_cmd(
    out: Annotated[Path, typer.Argument(help="the backup file to write")],
    database: Annotated[str, typer.Option(help="database URL")] = "sqlite:///ketasim.db",
    fmt: FormatOption = "table",
) -> None:
    """Back up the database while the server runs (SQLite: online backup API; PostgreSQL:
    pg_dump -Fc)."""
    from ketasim.storage.backup import backup
    o = Output(fmt)
    result = backup(database, out)
    o.print(f"wrote {result.path} ({result.kind}, {result.size_bytes} bytes)")
    if not o.rich:
        o.table("backup", ["path", "kind", "size_bytes"],
                [[str(result.path), result.kind, result.size_bytes]])
    o.finish({"path": str(result.path), "kind": result.kind,
              "size_bytes": result.size_bytes})


def restore_cmd(
    archive: Annotated[Path, typer.Argument(help="a file written by 'ketasim backup'")],
    database: Annotated[str, typer.Option(help="database URL to restore into")]
    = "sqlite:///ketasim.db",
    force: Annotated[bool, typer.Option(help="replace a database that already has tables")]
    = False,
    audit_key_file: Annotated[Path | None, typer.Option(help="verify the restored audit trail "
                                                        "with this key")] = None,
    fmt: FormatOption = "table",
) -> None:
    """Restore a backup into a database (empty unless --force), migrate it, and verify its
    audit trail when a key file is given (exit 1 when broken). Stop the server first."""
    from ketasim.storage.backup import restore
    o = Output(fmt)
    result = restore(archive, database, force=force, key_file=audit_key_file)
    audit = result.audit
    problems = [str(p) for p in audit.problems()] if audit is not None and not audit.ok else []
    if not o.rich:
        o.table("restore", ["archive", "database", "tables", "audit_checked", "audit_ok",
                            "entries", "rows_checked", "problems"],
                [[str(archive), database, result.tables, audit is not None,
                  None if audit is None else bool(audit.ok),
                  None if audit is None else audit.entries,
                  None if audit is None else audit.rows_checked, " | ".join(problems)]])
        o.finish({"archive": str(archive), "database": database, "tables": result.tables,
                  "audit": None if audit is None else {
                      "ok": bool(audit.ok), "entries": audit.entries,
                      "rows_checked": audit.rows_checked, "problems": problems}})
        if audit is not None and not audit.ok:
            raise typer.Exit(1)
        return
    console.print(f"restored {archive} into {database} ({result.tables} tables, migrated)")
    if audit is None:
        console.print("audit trail not checked (give --audit-key-file to verify it)")
        return
    if audit.ok:
        console.print(f"audit chain intact: {audit.entries} entries, "
                      f"{audit.rows_checked} clinical rows covered")
        return
    for problem in problems:
        console.print(f"[red]{problem}[/red]", soft_wrap=True)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``serve``, the ``audit`` group, ``backup`` and ``restore``."""
    app.command("serve")(serve)
    app.add_typer(audit_app, name="audit")
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)


__all__ = ["audit_app", "audit_verify", "backup_cmd", "register", "restore_cmd", "serve"]
