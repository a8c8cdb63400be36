"""Database engines: SQLite (WAL, synchronous=FULL, foreign keys) by default, PostgreSQL by
URL; migrations run with Alembic before the app starts.

Reads and writes are separate transactions. The driver's own implicit transactions are
switched off (as SQLAlchemy's documentation advises) and ketasim begins its own: a session from
:func:`session_factory` reads (SQLite: deferred ``BEGIN``; in WAL mode it never takes the write
lock and never waits for a writer), one from :func:`write_session_factory` writes (SQLite:
``BEGIN IMMEDIATE``: the write lock is taken at the start, so reading the audit chain's end and
appending to it cannot interleave with another writer — 20 concurrent users gave duplicate
chain positions before). Writes are kept short: compute first, then write.

The connection pool is bounded (``pool_size``, no overflow, ``pool_timeout`` seconds of
waiting) so that load beyond it fails fast (SQLAlchemy's ``TimeoutError``, which the web app
answers with 503 and ``Retry-After``) instead of piling up.

>>> engine = make_engine("sqlite://")
>>> engine.dialect.name
'sqlite'
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import sessionmaker

from ketasim.errors import KetasimError


class StorageError(KetasimError):
    """A database that cannot be opened or migrated."""


WRITE = "ketasim_write"  # execution option marking a write transaction
BUSY_TIMEOUT_S = 10.0  # SQLite: how long a writer waits for the write lock


def make_engine(url: str, *, pool_size: int = 32, pool_timeout: float = 10.0) -> Engine:
    """An engine for ``url`` (``sqlite:///path.db`` or ``postgresql+psycopg://…``) with a
    bounded pool of ``pool_size`` connections."""
    if not url or "://" not in url:
        raise StorageError("database", f"{url!r} is not a database URL",
                           "use sqlite:///ketasim.db or postgresql+psycopg://user@host/db")
    sqlite = url.startswith("sqlite")
    memory = sqlite and (url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url)
    # no pre-ping (one round trip per checkout); a connection the server dropped is detected
    # on use, the pool is invalidated and the web app answers that request with 503
    pool = {} if memory else {"pool_size": pool_size, "max_overflow": 0,
                              "pool_timeout": pool_timeout, "pool_recycle": 3600}
    try:
        engine = create_engine(url, future=True,
                               connect_args={"timeout": BUSY_TIMEOUT_S,
                                             "check_same_thread": False} if sqlite else {},
                               **pool)
    except Exception as exc:
        raise StorageError("database", f"cannot open {url!r}: {exc}",
                           "check the URL and that the driver is installed") from exc
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            dbapi_connection.isolation_level = None  # no implicit BEGIN: we emit our own

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            write = conn.get_execution_options().get(WRITE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
    return engine


def session_factory(engine: Engine) -> sessionmaker:
    """Sessions that do not expire objects on commit (reads; also fine for one-off scripts
    that write, where nothing else is writing)."""
    return sessionmaker(engine, expire_on_commit=False, future=True)


def write_session_factory(engine: Engine) -> sessionmaker:
    """Sessions for short writes (SQLite: ``BEGIN IMMEDIATE``)."""
    return sessionmaker(engine.execution_options(**{WRITE: True}), expire_on_commit=False,
                        future=True)


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the latest schema (Alembic ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location",
                        str(resources.files("ketasim.storage").joinpath("migrations")))
    cfg.set_main_option("sqlalchemy.url", url)
    try:
        command.upgrade(cfg, "head")
    except Exception as exc:
        raise StorageError("database", f"migration failed: {exc}",
                           "check the database URL and permissions") from exc


__all__ = ["WRITE", "StorageError", "make_engine", "migrate", "session_factory",
           "write_session_factory"]
