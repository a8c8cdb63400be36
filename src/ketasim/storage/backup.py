"""Backing up and restoring the clinic database.

SQLite: the sqlite3 online backup API copies a consistent snapshot page by page while the
server keeps running (WAL mode included: committed transactions still in the WAL are part of the
copy); the copy is written to a temporary file next to the target and renamed into place.
PostgreSQL: ``pg_dump -Fc`` (one consistent snapshot) and ``pg_restore`` in one transaction;
the client programs are looked up on ``PATH`` and under ``/usr/lib/postgresql/*/bin``, and the
password travels in the environment (``PGPASSWORD``), never on the command line.

:func:`restore` refuses a target that already has tables unless ``force=True``; afterwards it
runs the migrations and, given the audit key, verifies the audit trail of the restored copy.
:func:`table_fingerprints` gives each table's row count and a checksum of its rows, to compare
a restored copy with its original (a restore drill).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> import sqlite3; c = sqlite3.connect(d / "a.db"); _ = c.execute("create table t(x)")
>>> _ = c.execute("insert into t values (1)"); c.commit(); c.close()
>>> backup(f"sqlite:///{d / 'a.db'}", d / "a.bak").kind
'sqlite'
>>> restore(d / "a.bak", f"sqlite:///{d / 'b.db'}", migrate_after=False).tables
1
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, MetaData, inspect, select
from sqlalchemy.engine import URL, make_url

from ketasim.errors import KetasimError
from ketasim.storage.audit_store import (
    DatabaseReport,
    open_existing,
    read_key,
    sqlite_path,
    verify_database,
)
from ketasim.storage.db import make_engine, migrate, session_factory

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


class BackupError(KetasimError):
    """A backup or restore that cannot be done as asked."""


@dataclass(frozen=True)
class BackupResult:
    """What :func:`backup` wrote."""

    kind: str  # "sqlite" or "postgresql"
    path: Path
    size_bytes: int


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore` did: the tables now in the target and, when a key was given, the
    audit verdict on the restored copy."""

    kind: str
    tables: int
    audit: DatabaseReport | None


def _kind(url: str) -> str:
    try:
        backend = make_url(url).get_backend_name()
    except Exception as exc:
        raise BackupError("database", f"{url!r} is not a database URL",
                          "use sqlite:///ketasim.db or postgresql+psycopg://user@host/db"
                          ) from exc
    if backend not in ("sqlite", "postgresql"):
        raise BackupError("database", f"{backend} databases are not supported",
                          "use SQLite or PostgreSQL")
    return backend


def _sqlite_file(url: str) -> Path:
    path = sqlite_path(url)
    if path is None:
        raise BackupError("database", f"{url!r} is not an SQLite database file",
                          "give a file URL, e.g. sqlite:///ketasim.db")
    return path


def find_pg_tool(name: str) -> str:
    """The path of PostgreSQL client program ``name`` (``pg_dump``, ``pg_restore``): on PATH,
    else the newest under /usr/lib/postgresql/*/bin; :class:`BackupError` when absent."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")

    def version(p: str) -> float:
        try:
            return float(Path(p).parent.parent.name)
        except ValueError:
            return 0.0
    candidates.sort(key=version)
    if candidates:
        return candidates[-1]
    raise BackupError("database", f"{name} is not installed",
                      "install the PostgreSQL client programs (e.g. apt install "
                      "postgresql-client) matching the server's major version")


def _pg_env(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    for var, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):
        if value is not None:
            env[var] = str(value)
    for k, v in url.query.items():  # e.g. sslmode=require
        if isinstance(v, str) and k in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
            env["PG" + k.upper()] = v
    return env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BackupError("database", f"cannot run {args[0]}: {exc.strerror}",
                          "install the PostgreSQL client programs") from exc
    if proc.returncode != 0:
        detail = " ".join(proc.stderr.strip().splitlines()[-3:]) or f"exit {proc.returncode}"
        raise BackupError("database", f"{what} failed: {detail}",
                          "check the database URL, the server and the permissions")


def backup(database_url: str, out: Path) -> BackupResult:
    """Write a consistent copy of the database at ``database_url`` to ``out`` (an SQLite
    database file, or a ``pg_dump`` custom-format archive), safe while the server runs.
    Replaces ``out`` only once the copy is complete."""
    kind = _kind(database_url)
    out = Path(out)
    if not out.parent.is_dir():
        raise BackupError("out", f"folder {out.parent} does not exist", "create it first")
    tmp = out.with_name(out.name + ".partial")
    try:
        if kind == "sqlite":
            src_path = _sqlite_file(database_url)
            if not src_path.is_file():
                raise BackupError("database", f"{src_path} does not exist",
                                  "give the database URL the server uses")
            tmp.unlink(missing_ok=True)
            src = sqlite3.connect(src_path, timeout=30)
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                dst.commit()
            except sqlite3.Error as exc:
                raise BackupError("database", f"SQLite backup failed: {exc}",
                                  "check that the file is an SQLite database") from exc
            finally:
                dst.close()
                src.close()
        else:
            open_existing(database_url).dispose()  # a typed error when unreachable
            _run([find_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-acl",
                  "--file", str(tmp)], _pg_env(make_url(database_url)), "pg_dump")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return BackupResult(kind, out, out.stat().st_size)


def _tables(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


def restore(archive: Path, database_url: str, *, force: bool = False,
            key_file: Path | None = None, migrate_after: bool = True) -> RestoreResult:
    """Restore ``archive`` (made by :func:`backup`) into ``database_url``. Refuses a target
    with tables unless ``force``; then runs the migrations (``migrate_after``) and, given
    ``key_file``, verifies the restored audit trail (the result's ``audit``)."""
    kind = _kind(database_url)
    archive = Path(archive)
    if not archive.is_file():
        raise BackupError("archive", f"{archive} does not exist", "give a backup file")
    with archive.open("rb") as f:
        magic = f.read(16)
    want = SQLITE_MAGIC if kind == "sqlite" else PGDUMP_MAGIC
    if not magic.startswith(want):
        raise BackupError("archive", f"{archive} is not a {kind} backup made by ketasim backup",
                          "restore an SQLite backup into sqlite:///…, a pg_dump archive into "
                          "postgresql://…")
    key = read_key(key_file) if key_file is not None else None  # fail before writing
    if kind == "sqlite":
        target = _sqlite_file(database_url)
        if not target.parent.is_dir():
            raise BackupError("database", f"folder {target.parent} does not exist",
                              "create it first")
        if target.is_file():
            with sqlite3.connect(target) as c:
                n = c.execute("SELECT count(*) FROM sqlite_master WHERE type='table'"
                              ).fetchone()[0]
            c.close()
            if n and not force:
                raise BackupError("database", f"{target} already has {n} tables",
                                  "restore into a new file, or pass --force to replace it")
        src = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
        except sqlite3.Error as exc:
            raise BackupError("archive", f"SQLite restore failed: {exc}",
                              "check the backup file and that nothing else writes the target"
                              ) from exc
        finally:
            dst.close()
            src.close()
    else:
        engine = open_existing(database_url)
        try:
            existing = _tables(engine)
        finally:
            engine.dispose()
        if existing and not force:
            raise BackupError("database", f"the database already has {len(existing)} tables",
                              "restore into an empty database, or pass --force to replace "
                              "its tables")
        args = [find_pg_tool("pg_restore"), "--no-owner", "--no-acl", "--single-transaction",
                "--exit-on-error"]
        if existing:
            args += ["--clean", "--if-exists"]
        url = make_url(database_url)
        _run([*args, "--dbname", str(url.database), str(archive)], _pg_env(url), "pg_restore")
    if migrate_after:
        migrate(database_url)
    engine = make_engine(database_url)
    try:
        n_tables = len(_tables(engine))
        report = None
        if key is not None:
            with session_factory(engine)() as db:
                report = verify_database(db, key)
    finally:
        engine.dispose()
    return RestoreResult(kind, n_tables, report)


def table_fingerprints(database_url: str) -> dict[str, tuple[int, str]]:
    """Per table: the row count and a SHA-256 over its rows in primary-key order (for comparing
    a restored copy with its original on the same kind of database)."""
    engine = open_existing(database_url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        out: dict[str, tuple[int, str]] = {}
        with engine.connect() as conn:
            for name, table in sorted(meta.tables.items()):
                order = list(table.primary_key.columns) or list(table.columns)
                h = hashlib.sha256()
                n = 0
                for row in conn.execute(select(table).order_by(*order)):
                    h.update(repr(tuple(row)).encode())
                    n += 1
                out[name] = (n, h.hexdigest())
        return out
    finally:
        engine.dispose()


__all__ = ["BackupError", "BackupResult", "RestoreResult", "backup", "find_pg_tool", "restore",
           "table_fingerprints"]
