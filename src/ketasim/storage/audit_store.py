"""The audit chain in the database: appending with a sealed head, fingerprints of clinical rows,
and the verifier that checks all three against each other.

:class:`Auditor` appends entries of the HMAC chain (:mod:`ketasim.clinic.audit`) to
``audit_entries`` inside the caller's write transaction and, in the same transaction, upserts
``audit_head`` (one row, id 1) with the new entry's sequence number and MAC and a seal
``HMAC(key, b"ketasim-audit-head:" + f"{seq}:{mac}")``. The web layer writes, for every
``session_events``, ``questionnaire_responses`` and ``drug_levels`` row, an entry whose
detail names the row (``"session_event:<id>"`` / ``"questionnaire:<id>"`` /
``"drug_level:<id>"``) and carries :func:`clinical_digest`.
:func:`verify_database` then checks the chain, the head, and that every clinical row is covered
by an entry with an equal digest.

What is tamper-evident (detected by ``ketasim audit verify``) for someone who can write to the
database but does not have the audit key:

- editing, inserting, deleting or reordering audit entries (the chain's MACs and links);
- deleting the last entries, with or without the head row (the sealed head no longer matches
  the last entry; a missing head with a non-empty chain fails);
- editing a recorded session event, questionnaire response or drug level (a clinically
  meaningful column: see :data:`DIGEST_COLUMNS`), inserting one without an entry, or
  deleting one that an entry names.

What is NOT tamper-evident:

- anything done by someone who has both the database and the key: they can rewrite the chain
  and re-seal the head. Keep the key outside the database and its backups, readable only by the
  server's account.
- columns and tables that no entry fingerprints: patients' names, users, clinic settings,
  consultation requests, treatment plans, dose-limit versions, safety alerts and the status
  columns of ``monitored_sessions`` (discharged, cancelled, form due/submitted). Changes made
  through the application are recorded as entries, but a direct edit in the database is not
  detected. The non-digest columns of the fingerprinted tables (``form_token``) are not
  covered either.
- replacing the whole database with an older, consistent copy of itself (an old backup, or the
  database rolled back with its head): the older chain and head verify. Only a head anchored
  outside the database (``ketasim audit verify --head <MAC>``, the last MAC written somewhere
  else) detects that; so does deleting every entry and the head together.
- rows written before this module existed (no entries name them: they are reported as
  uncovered until :func:`cover_existing_rows` records them once, explicitly).

>>> from datetime import UTC, datetime
>>> from ketasim.storage.models import SessionEvent
>>> ev = SessionEvent(id=1, session_id=1, kind="vitals", data={"spo2": 97.0}, recorded_by=2,
...                   at=datetime(2026, 3, 2, 9, tzinfo=UTC),
...                   recorded_at=datetime(2026, 3, 2, 9, 1, tzinfo=UTC))
>>> naive = SessionEvent(id=1, session_id=1, kind="vitals", data={"spo2": 97.0}, recorded_by=2,
...                      at=datetime(2026, 3, 2, 9), recorded_at=datetime(2026, 3, 2, 9, 1))
>>> clinical_digest(ev) == clinical_digest(naive)
True
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ketasim.clinic.audit import (
    AuditEntry,
    AuditError,
    VerifyReport,
    mac_ok,
    next_entry,
    seal_head,
    verify,
)
from ketasim.storage.db import StorageError, make_engine, session_factory
from ketasim.storage.models import (
    AuditHead,
    AuditRow,
    DrugLevel,
    QuestionnaireResponse,
    SessionEvent,
)

ADVISORY_LOCK = 7304551  # PostgreSQL: one appender at a time, across server processes
HEAD_ID = 1
#: the clinically meaningful columns that :func:`clinical_digest` covers, per table
DIGEST_COLUMNS: dict[str, tuple[str, ...]] = {
    "session_events": ("id", "session_id", "kind", "at", "data", "recorded_by", "recorded_at"),
    "questionnaire_responses": ("id", "patient_id", "instrument", "items", "total", "band",
                                "submitted_by", "submitted_at", "entered_as"),
    "drug_levels": ("id", "patient_id", "analyte", "value_ng_ml", "drawn_at", "entered_by",
                    "created_at"),
}
ROW_PREFIX = {"session_events": "session_event", "questionnaire_responses": "questionnaire",
              "drug_levels": "drug_level"}
ClinicalRow = SessionEvent | QuestionnaireResponse | DrugLevel
HEAD_CREATED = "audit_head_created"


def _now() -> datetime:
    return datetime.now(UTC)


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(row.seq, row.at, row.actor, row.action, row.subject, row.detail, row.prev,
                      row.mac)


def _read_head(db: Session) -> AuditHead | None:
    return db.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID)
                     .execution_options(populate_existing=True))


def _head_problem(key: bytes, head: AuditHead, last: AuditRow | None) -> str | None:
    if not hmac.compare_digest(seal_head(key, head.seq, head.mac), head.seal):
        return "the head's seal is not valid under this key (the head row was edited)"
    if last is None:
        return f"the head names entry {head.seq} but the chain is empty (entries removed)"
    if head.seq != last.seq or not hmac.compare_digest(head.mac, last.mac):
        return (f"the head names entry {head.seq} but the chain ends at entry {last.seq} "
                "(entries removed or added after the head was sealed)")
    return None


class Auditor:
    """Appends to the HMAC chain stored in the database and keeps its sealed head.

    :meth:`record` runs inside the caller's open write transaction (PostgreSQL: holding the
    head row's lock, ``SELECT … FOR UPDATE``, or an advisory lock while the chain has no head
    yet; SQLite: transactions begin IMMEDIATE, holding the write lock), so concurrent
    requests and several server processes extend one consistent chain, and the entry, the head
    and the caller's own changes commit or roll back together.

    Fails closed: when the stored head does not match the chain's end (its last entries were
    removed, or the head was edited), :meth:`record` raises :class:`AuditError` instead of
    re-sealing over the evidence; nothing more is written until an operator has investigated
    (``ketasim audit verify``) and restored the database. A chain without a head (a database
    from before the head existed) gets one, after a system entry ``audit_head_created`` that
    :func:`verify_database` reports.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise AuditError("audit_key", "is shorter than 32 bytes",
                             "use a random 32-byte key kept outside the database")
        self.key = key

    def _append(self, db: Session, last: AuditRow | None, actor: str, action: str,
                subject: str, detail: dict[str, Any] | None) -> AuditRow:
        e = next_entry(self.key, None if last is None else _entry(last),
                       at=_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"), actor=actor, action=action,
                       subject=subject, detail=detail)
        row = AuditRow(seq=e.seq, at=e.at, actor=e.actor, action=e.action, subject=e.subject,
                       detail=dict(e.detail), prev=e.prev, mac=e.mac)
        db.add(row)
        return row

    def record(self, db: Session, actor: str, action: str, subject: str,
               detail: dict[str, Any] | None = None) -> None:
        """Append one entry (and re-seal the head) in ``db``'s open transaction; flushes,
        never commits."""
        self.record_many(db, [(actor, action, subject, detail)])

    def record_many(self, db: Session,
                    entries: list[tuple[str, str, str, dict[str, Any] | None]]) -> None:
        """Append several entries in order (one lock, one read of the chain's end, one head
        update) in ``db``'s open transaction; flushes, never commits."""
        if not entries:
            return
        if db.get_bind().dialect.name == "postgresql":
            # the head row's lock serialises appenders (one round trip: lock and read); the
            # advisory lock covers a chain that has no head yet
            locked_head = (select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()
                           .execution_options(populate_existing=True))
            head = db.scalar(locked_head)
            if head is None:
                db.execute(text(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK})"))
                head = db.scalar(locked_head)  # another appender may have created it
            last = db.scalar(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1))
        else:
            last = db.scalar(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1))
            head = _read_head(db)
        if head is not None:
            problem = _head_problem(self.key, head, last)
            if problem is not None:
                raise AuditError("audit_head", f"audit trail tampered with or damaged: {problem}",
                                 "stop, run `ketasim audit verify`, and restore the database "
                                 "from a backup taken before the damage")
        elif last is not None:
            last = self._append(db, last, "system", HEAD_CREATED, "audit_head",
                                {"unanchored_entries": last.seq})
        row = last
        for actor, action, subject, detail in entries:
            row = self._append(db, row, actor, action, subject, detail)
        assert row is not None
        seal = seal_head(self.key, row.seq, row.mac)
        if head is None:
            db.add(AuditHead(id=HEAD_ID, seq=row.seq, mac=row.mac, seal=seal))
        else:
            head.seq, head.mac, head.seal = row.seq, row.mac, seal
        db.flush()


# ------------------------------------------------------------------------- clinical digests
def _canonical_time(value: datetime) -> str:
    t = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return _canonical_time(value)
    return json.loads(json.dumps(value))


def row_key(row: ClinicalRow) -> str:
    """The name an audit entry's detail gives ``row``: ``session_event:<id>`` or
    ``questionnaire:<id>``.

    >>> row_key(QuestionnaireResponse(id=4))
    'questionnaire:4'
    """
    return f"{ROW_PREFIX[row.__tablename__]}:{row.id}"


def clinical_digest(row: ClinicalRow) -> str:
    """SHA-256 (hex) of the canonical JSON of ``row``'s clinically meaningful columns
    (:data:`DIGEST_COLUMNS`): times as UTC ISO 8601 with microseconds (naive times, as SQLite
    returns them, are UTC), JSON values through a JSON round trip, keys sorted. A freshly
    flushed object and the same row read back from SQLite or PostgreSQL give the same digest.
    Times must be stored in UTC (SQLite keeps the wall time of an aware datetime).

    >>> clinical_digest(QuestionnaireResponse(id=1, patient_id=1, instrument="phq9",
    ...     items=[0] * 9, total=0, band="minimal", submitted_by=1, entered_as="patient",
    ...     submitted_at=datetime(2026, 3, 2, tzinfo=UTC)))[:12]
    '7067f2d0ec71'
    """
    table = row.__tablename__
    if table not in DIGEST_COLUMNS:
        raise AuditError("row", f"{table} rows have no clinical digest",
                         "digest session events, questionnaire responses and drug levels")
    if row.id is None:
        raise AuditError("row", "has no id yet", "flush the session before digesting a row")
    body = {c: _canonical(getattr(row, c)) for c in DIGEST_COLUMNS[table]}
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


def _clinical_rows(db: Session) -> Iterator[ClinicalRow]:
    yield from db.scalars(select(SessionEvent).order_by(SessionEvent.id))
    yield from db.scalars(select(QuestionnaireResponse).order_by(QuestionnaireResponse.id))
    yield from db.scalars(select(DrugLevel).order_by(DrugLevel.id))


def cover_existing_rows(db: Session, auditor: Auditor, *, actor: str = "system:upgrade") -> int:
    """Record one ``baseline`` entry for every clinical row that no entry names yet (rows
    written before the web layer fingerprinted them); returns how many. Run once, by an
    operator, after checking the database by other means: it vouches for the rows as they are
    now. Call inside a write transaction and commit."""
    named: set[str] = set()
    details: list[Any] = list(db.scalars(select(AuditRow.detail)))
    for d in details:
        if isinstance(d, dict) and "row" in d:
            named.add(str(d["row"]))
    n = 0
    for row in list(_clinical_rows(db)):
        if row_key(row) not in named:
            auditor.record(db, actor, "baseline", row_key(row),
                           {"row": row_key(row), "digest": clinical_digest(row)})
            n += 1
    return n


# ------------------------------------------------------------------------------ verifying
@dataclass(frozen=True)
class DatabaseReport:
    """What :func:`verify_database` checked and found. ``ok`` when the chain verifies, the head
    matches, and every clinical row is covered by an entry with its current digest."""

    chain: VerifyReport
    entries: int
    last_mac: str | None
    head_problem: str | None
    rows_checked: int
    uncovered: tuple[str, ...] = ()   # clinical rows no entry names
    altered: tuple[str, ...] = ()     # rows whose digest differs from the latest entry's
    missing: tuple[str, ...] = ()     # rows an entry names that no longer exist
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when nothing is broken."""
        return (self.chain.ok and self.head_problem is None and not self.uncovered
                and not self.altered and not self.missing)

    def problems(self) -> list[str]:
        """Every failure, one line each (empty when ``ok``)."""
        out = []
        if not self.chain.ok:
            out.append(f"audit chain BROKEN at entry {self.chain.first_bad}: "
                       f"{self.chain.problem}")
        if self.head_problem is not None:
            out.append(f"audit head: {self.head_problem}")
        for label, keys in (("altered since recorded", self.altered),
                            ("not covered by any audit entry", self.uncovered),
                            ("recorded but missing from the database", self.missing)):
            if keys:
                shown = ", ".join(keys[:20]) + (f" … ({len(keys)} in all)" if len(keys) > 20
                                                else "")
                out.append(f"clinical rows {label}: {shown}")
        return out


def verify_database(db: Session, key: bytes, head: str | None = None) -> DatabaseReport:
    """Check the chain (every MAC, link and sequence number; ``head``: a MAC anchored outside
    the database), the sealed ``audit_head`` row, and that every ``session_events``,
    ``questionnaire_responses`` and ``drug_levels`` row is covered by an entry naming it
    with an equal digest (the latest such entry counts). Reads only."""
    rows = db.scalars(select(AuditRow).order_by(AuditRow.seq)).all()
    entries = [_entry(r) for r in rows]
    chain = verify(entries, key, head=head)
    last = rows[-1] if rows else None
    stored = _read_head(db)
    head_problem: str | None = None
    if stored is not None:
        head_problem = _head_problem(key, stored, last)
    elif last is not None:
        head_problem = ("missing while the chain has entries (the head row was deleted, "
                        "or no entry was written since the upgrade that added it)")
    notes: list[str] = []
    created = [r for r in rows if r.action == HEAD_CREATED and r.actor == "system"]
    for r in created:
        notes.append(f"the head was created at entry {r.seq}, after "
                     f"{r.detail.get('unanchored_entries')} entries written without one")
    if len(created) > 1 and head_problem is None:
        head_problem = (f"the head was created {len(created)} times (entries "
                        f"{', '.join(str(r.seq) for r in created)}): it was deleted and "
                        "re-created, so entries may have been removed")
    recorded: dict[str, str] = {}
    for r in rows:
        d = r.detail if isinstance(r.detail, dict) else {}
        if "row" in d and "digest" in d:
            recorded[str(d["row"])] = str(d["digest"])  # the latest entry wins
    uncovered: list[str] = []
    altered: list[str] = []
    present: set[str] = set()
    n = 0
    for row in _clinical_rows(db):
        n += 1
        k = row_key(row)
        present.add(k)
        if k not in recorded:
            uncovered.append(k)
        elif not hmac.compare_digest(recorded[k], clinical_digest(row)):
            altered.append(k)
    missing = sorted(k for k in recorded if k not in present)
    return DatabaseReport(chain, len(rows), None if last is None else last.mac, head_problem,
                          n, tuple(uncovered), tuple(altered), tuple(missing), tuple(notes))


# ----------------------------------------------------------------------- opening and keys
def sqlite_path(url: str) -> Path | None:
    """The file of an ``sqlite:///`` URL (None for other databases and in-memory SQLite).

    >>> sqlite_path("sqlite:///clinic.db"), sqlite_path("postgresql+psycopg://h/db")
    (PosixPath('clinic.db'), None)
    """
    try:
        u = make_url(url)
    except Exception as exc:
        raise StorageError("database", f"{url!r} is not a database URL: {exc}",
                           "use sqlite:///ketasim.db or postgresql+psycopg://user@host/db"
                           ) from exc
    if u.get_backend_name() != "sqlite":
        return None
    if not u.database or u.database == ":memory:" or u.database.startswith("file:"):
        return None
    return Path(u.database)


def open_existing(url: str) -> Engine:
    """An engine on an existing database: typed errors (never a new empty file) for a SQLite
    file that does not exist or an unreachable server."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StorageError("database", f"{path} does not exist",
                           "give the database URL the server uses, e.g. sqlite:///ketasim.db")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StorageError("database", f"cannot connect to {make_url(url)!r}: "
                           f"{str(exc.orig if hasattr(exc, 'orig') else exc).strip()}",
                           "check the URL, that the server is running and the credentials"
                           ) from exc
    return engine


def _has_tables(engine: Engine, *names: str) -> bool:
    have = set(inspect(engine).get_table_names())
    return all(n in have for n in names)


def trail_is_empty(database_url: str) -> bool:
    """Whether the database at ``database_url`` has no audit entries and no head (also true
    for a database or SQLite file that does not exist yet)."""
    path = sqlite_path(database_url)
    if path is not None and not path.is_file():
        return True
    engine = open_existing(database_url)
    try:
        if not _has_tables(engine, "audit_entries"):
            return True
        with session_factory(engine)() as db:
            if db.scalar(select(AuditRow.seq).limit(1)) is not None:
                return False
            return not _has_tables(engine, "audit_head") or _read_head(db) is None
    finally:
        engine.dispose()


def read_key(path: Path) -> bytes:
    """The audit key in ``path`` (typed errors: missing, unreadable, shorter than 32 bytes)."""
    if not path.is_file():
        raise AuditError("audit_key_file", f"{path} does not exist",
                         "give the key file the server was started with")
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise AuditError("audit_key_file", f"cannot read {path}: {exc.strerror}",
                         "run as the server's user, or fix the file's permissions") from exc
    if len(key) < 32:
        raise AuditError("audit_key_file", f"{path} holds {len(key)} bytes, not a 32-byte key",
                         "give the key file the server was started with")
    return key


def load_or_create_key(path: Path, database_url: str) -> bytes:
    """The audit key for ``database_url``: read from ``path``; created there (32 random bytes,
    mode 0600) only when the file is missing AND the database's audit trail is empty. A missing
    key with a non-empty trail is an :class:`AuditError` (a new key would silently break the
    chain), and so is a key that does not match the trail's sealed head."""
    if not path.exists():
        if not trail_is_empty(database_url):
            raise AuditError(
                "audit_key_file",
                f"{path} does not exist but the database's audit trail has entries: a new key "
                "would break the chain",
                f"restore the key file the server used to {path} (from where you keep it) or "
                "point --audit-key-file at it; do not create a new one")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return read_key(path)  # another process created it first
        except OSError as exc:
            raise AuditError("audit_key_file", f"cannot create {path}: {exc.strerror}",
                             "choose a writable location for the key file") from exc
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(path, 0o600)
        return read_key(path)
    key = read_key(path)
    _check_key_matches(key, path, database_url)
    return key


def _check_key_matches(key: bytes, path: Path, database_url: str) -> None:
    if trail_is_empty(database_url):
        return
    engine = open_existing(database_url)
    try:
        with session_factory(engine)() as db:
            head = _read_head(db) if _has_tables(engine, "audit_head") else None
            last = db.scalar(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1))
    finally:
        engine.dispose()
    ok = ((last is not None and mac_ok(key, _entry(last)))
          or (head is not None and hmac.compare_digest(seal_head(key, head.seq, head.mac),
                                                       head.seal)))
    if not ok:
        raise AuditError("audit_key_file",
                         f"{path} is not the key this database's audit trail was written with "
                         "(or the trail's last entry and head were both altered)",
                         "give the key file the server was started with; run `ketasim audit "
                         "verify` to check the trail")


__all__ = ["ADVISORY_LOCK", "DIGEST_COLUMNS", "Auditor", "DatabaseReport", "clinical_digest",
           "cover_existing_rows", "load_or_create_key", "open_existing", "read_key", "row_key",
           "sqlite_path", "trail_is_empty", "verify_database"]
