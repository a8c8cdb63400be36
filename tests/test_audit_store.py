"""The audit chain in the database: the sealed head detects a removed tail without ``--head``,
clinical digests detect edited, uncovered and deleted rows, and the key is never silently
replaced (SQLite; PostgreSQL too when KETASIM_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from ketasim.clinic.audit import AuditError, seal_head
from ketasim.storage.audit_store import (
    HEAD_CREATED,
    Auditor,
    clinical_digest,
    cover_existing_rows,
    load_or_create_key,
    row_key,
    trail_is_empty,
    verify_database,
)
from ketasim.storage.db import make_engine, migrate, session_factory
from ketasim.storage.models import (
    AuditHead,
    AuditRow,
    Clinic,
    MonitoredSessionRow,
    Patient,
    QuestionnaireResponse,
    SessionEvent,
    User,
)

KEY = bytes(range(32))
T0 = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("KETASIM_TEST_POSTGRES_URL") else [])


def empty_database(backend: str, tmp_path: Path, name: str = "a.db") -> str:
    """A URL of an empty database: a new SQLite file, or the test PostgreSQL schema emptied."""
    from tests.test_web import database_url
    return f"sqlite:///{tmp_path / name}" if backend == "sqlite" else \
        database_url(backend, tmp_path)


def add_event(db, auditor: Auditor, session_id: int, user_id: int, k: int) -> SessionEvent:
    ev = SessionEvent(session_id=session_id, kind="vitals", at=T0 + timedelta(minutes=k),
                      data={"sbp": 120.0 + k, "spo2": 97.5, "moaas": 5, "note": "ok ✓",
                            "nested": {"x": [1, 2.25, None]}},
                      recorded_by=user_id, recorded_at=T0 + timedelta(minutes=k, seconds=1))
    db.add(ev)
    db.flush()
    auditor.record(db, f"user:{user_id}", "write", "patient:1",
                   {"row": row_key(ev), "digest": clinical_digest(ev)})
    return ev


def add_response(db, auditor: Auditor, patient_id: int, user_id: int, k: int,
                 record: bool = True) -> QuestionnaireResponse:
    q = QuestionnaireResponse(patient_id=patient_id, instrument="phq9", items=[1] * 9,
                              total=9, band="mild", submitted_by=user_id,
                              submitted_at=T0 + timedelta(days=k), entered_as="patient")
    db.add(q)
    db.flush()
    if record:
        auditor.record(db, f"user:{user_id}", "write", f"patient:{patient_id}",
                       {"row": row_key(q), "digest": clinical_digest(q)})
    return q


def fill(url: str, key: bytes = KEY, n: int = 3) -> dict[str, int]:
    """A migrated database with a clinic, a session with ``n`` audited events, ``n`` audited
    questionnaires and some plain entries; returns ids."""
    migrate(url)
    auditor = Auditor(key)
    engine = make_engine(url)
    with session_factory(engine)() as db:
        clinic = Clinic(name="Drill Clinic", spo2_min=92.0, moaas_alert_max=2)
        db.add(clinic)
        db.flush()
        p = Patient(clinic_id=clinic.id, display_name="Drill Patient")
        db.add(p)
        db.flush()
        u = User(clinic_id=clinic.id, username="nurse1", role="nurse", password_hash="x",
                 active=True, failed_logins=0)
        db.add(u)
        db.flush()
        s = MonitoredSessionRow(patient_id=p.id, compound="racemic", rems_enrolled=False,
                                started_by=u.id, started_at=T0)
        db.add(s)
        db.flush()
        auditor.record(db, f"user:{u.id}", "login", f"user:{u.id}")
        for k in range(n):
            add_event(db, auditor, s.id, u.id, k)
            add_response(db, auditor, p.id, u.id, k)
            auditor.record(db, f"user:{u.id}", "read", f"patient:{p.id}")
        db.commit()
        ids = {"patient": p.id, "user": u.id, "session": s.id}
    engine.dispose()
    return ids


def check(url: str, key: bytes = KEY, head: str | None = None):
    engine = make_engine(url)
    try:
        with session_factory(engine)() as db:
            return verify_database(db, key, head=head)
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path: Path) -> str:
    u = empty_database(request.param, tmp_path)
    fill(u)
    return u


def sql(url: str, *statements) -> None:
    engine = make_engine(url)
    with session_factory(engine)() as db:
        for st in statements:
            db.execute(st)
        db.commit()
    engine.dispose()


def test_intact_database_verifies(url: str) -> None:
    report = check(url)
    assert report.ok, report.problems()
    assert report.entries == 1 + 3 * 3 and report.rows_checked == 6
    assert report.head_problem is None and not report.notes


@pytest.mark.parametrize("k", [1, 2, 4])
def test_deleting_the_last_entries_is_detected_without_head(url: str, k: int) -> None:
    n = check(url).entries
    sql(url, delete(AuditRow).where(AuditRow.seq > n - k))
    report = check(url)  # no --head given
    assert report.chain.ok  # the shortened chain is itself consistent …
    assert not report.ok and "ends at entry" in (report.head_problem or "")  # … the head is not
    # and the server refuses to seal over the evidence
    engine = make_engine(url)
    with session_factory(engine)() as db, pytest.raises(AuditError, match="audit_head"):
        Auditor(KEY).record(db, "user:1", "read", "patient:1")
    engine.dispose()


def test_deleting_entries_and_the_head_is_detected(url: str) -> None:
    n = check(url).entries
    sql(url, delete(AuditRow).where(AuditRow.seq > n - 2), delete(AuditHead))
    report = check(url)
    assert not report.ok and "missing" in (report.head_problem or "")


def test_forged_seal_is_detected(url: str) -> None:
    n = check(url).entries
    engine = make_engine(url)
    with session_factory(engine)() as db:
        last = db.scalar(select(AuditRow).where(AuditRow.seq == n - 1))
        mac = last.mac
    engine.dispose()
    forged = seal_head(b"x" * 32, n - 1, mac)  # an attacker without the key
    sql(url, delete(AuditRow).where(AuditRow.seq == n),
        update(AuditHead).values(seq=n - 1, mac=mac, seal=forged))
    report = check(url)
    assert not report.ok and "seal" in (report.head_problem or "")
    sql(url, update(AuditHead).values(seal="0" * 64))
    assert "seal" in (check(url).head_problem or "")


def test_edited_clinical_row_is_detected(url: str) -> None:
    sql(url, update(SessionEvent).where(SessionEvent.id == 2).values(data={"sbp": 90.0}),
        update(QuestionnaireResponse).where(QuestionnaireResponse.id == 1).values(total=3))
    report = check(url)
    assert report.chain.ok and report.head_problem is None
    assert report.altered == ("session_event:2", "questionnaire:1")
    assert not report.ok and any("altered" in p for p in report.problems())
    # a changed stated time is clinically meaningful too
    sql(url, update(SessionEvent).where(SessionEvent.id == 3)
        .values(at=T0 + timedelta(hours=5)))
    assert "session_event:3" in check(url).altered


def test_uncovered_and_deleted_rows_are_detected(url: str) -> None:
    engine = make_engine(url)
    with session_factory(engine)() as db:
        add_response(db, Auditor(KEY), 1, 1, 9, record=False)  # inserted without an entry
        db.commit()
    engine.dispose()
    sql(url, delete(SessionEvent).where(SessionEvent.id == 1))
    report = check(url)
    assert report.uncovered == ("questionnaire:4",)
    assert report.missing == ("session_event:1",)
    assert not report.ok


def test_digest_is_the_same_fresh_and_read_back(url: str) -> None:
    auditor = Auditor(KEY)
    engine = make_engine(url)
    with session_factory(engine)() as db:
        # a non-UTC aware time is canonicalised to UTC
        ev = SessionEvent(session_id=1, kind="dose", at=T0.astimezone(), data={"dose_mg": 36.0,
                          "dose_mg_per_kg": 0.1 + 0.2, "devices": None, "lot": "Ä-1"},
                          recorded_by=1, recorded_at=T0)
        db.add(ev)
        db.flush()
        fresh = clinical_digest(ev)
        auditor.record(db, "user:1", "write", "patient:1",
                       {"row": row_key(ev), "digest": fresh})
        db.commit()
        ev_id = ev.id
    engine.dispose()
    engine = make_engine(url)
    with session_factory(engine)() as db:
        back = db.get(SessionEvent, ev_id)
        assert clinical_digest(back) == fresh
    engine.dispose()
    assert check(url).ok


def test_legacy_chain_gets_a_head_once(url: str) -> None:
    """A chain from before the head existed gets one, after a system entry that verify reports;
    a second re-creation (head deleted again with the tail) fails verification."""
    sql(url, delete(AuditHead))
    engine = make_engine(url)
    with session_factory(engine)() as db:
        Auditor(KEY).record(db, "user:1", "read", "patient:1")
        db.commit()
        assert db.scalar(select(func.count()).select_from(AuditRow)
                         .where(AuditRow.action == HEAD_CREATED)) == 1
    engine.dispose()
    report = check(url)
    assert report.ok and len(report.notes) == 1 and "created" in report.notes[0]
    n = report.entries
    sql(url, delete(AuditRow).where(AuditRow.seq == n), delete(AuditHead))
    engine = make_engine(url)
    with session_factory(engine)() as db:
        Auditor(KEY).record(db, "user:1", "read", "patient:1")
        db.commit()
    engine.dispose()
    report = check(url)
    assert not report.ok and "created 2 times" in (report.head_problem or "")


def test_cover_existing_rows(url: str) -> None:
    engine = make_engine(url)
    with session_factory(engine)() as db:
        add_response(db, Auditor(KEY), 1, 1, 9, record=False)
        db.commit()
    engine.dispose()
    assert check(url).uncovered == ("questionnaire:4",)
    engine = make_engine(url)
    with session_factory(engine)() as db:
        assert cover_existing_rows(db, Auditor(KEY)) == 1
        db.commit()
    engine.dispose()
    assert check(url).ok


def test_external_head_still_detects_a_rolled_back_database(url: str) -> None:
    """Documented limit: an older consistent copy verifies by itself; only a head kept outside
    the database (--head) detects it."""
    anchored = check(url).last_mac
    engine = make_engine(url)
    with session_factory(engine)() as db:
        before = db.get(AuditHead, 1)
        old = (before.seq, before.mac, before.seal)
        Auditor(KEY).record(db, "user:1", "read", "patient:1")
        db.commit()
    engine.dispose()
    newer = check(url).last_mac
    assert check(url, head=anchored).ok  # entries appended after anchoring do not matter
    n = check(url).entries
    # roll back: the new entry and the head as they were (a restored older copy)
    sql(url, delete(AuditRow).where(AuditRow.seq == n),
        update(AuditHead).values(seq=old[0], mac=old[1], seal=old[2]))
    assert check(url).ok and check(url, head=anchored).ok
    assert not check(url, head=newer).ok


def test_wrong_key_fails_everything(url: str) -> None:
    report = check(url, key=b"w" * 32)
    assert not report.ok and not report.chain.ok and "seal" in (report.head_problem or "")


# --------------------------------------------------------------------------- the key file
def test_key_is_created_only_for_an_empty_trail(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    keyfile = tmp_path / "k.key"
    assert trail_is_empty(url) and not (tmp_path / "new.db").exists()  # nothing created
    key = load_or_create_key(keyfile, url)
    assert len(key) == 32 and stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert load_or_create_key(keyfile, url) == key  # read back, unchanged
    migrate(url)  # migrated but no entries yet: still empty
    assert trail_is_empty(url)


def test_missing_key_with_entries_refuses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    fill(url)
    keyfile = tmp_path / "lost.key"
    with pytest.raises(AuditError, match=r"lost\.key") as err:
        load_or_create_key(keyfile, url)
    assert "restore the key file" in str(err.value)
    assert not keyfile.exists()
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(b"w" * 32)
    with pytest.raises(AuditError, match="not the key"):
        load_or_create_key(wrong, url)
    right = tmp_path / "right.key"
    right.write_bytes(KEY)
    assert load_or_create_key(right, url) == KEY
    short = tmp_path / "short.key"
    short.write_bytes(b"s" * 8)
    with pytest.raises(AuditError, match="32-byte"):
        load_or_create_key(short, url)


def test_missing_key_with_only_a_head_refuses(tmp_path: Path) -> None:
    """Every entry deleted but the head left: still not an empty trail."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    fill(url)
    sql(url, delete(AuditRow))
    with pytest.raises(AuditError, match="does not exist"):
        load_or_create_key(tmp_path / "k.key", url)
