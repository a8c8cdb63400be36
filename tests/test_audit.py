"""The audit chain detects every edit, deletion, insertion, reordering and truncation."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from ketasim.clinic.audit import AuditError, AuditLog, verify

KEY = bytes(range(32))


def build(n: int = 30) -> AuditLog:
    log = AuditLog(KEY)
    for i in range(n):
        log.append(at=f"2026-03-02T09:{i:02d}:00Z", actor=f"user:{i % 4}",
                   action=random.Random(i).choice(["read", "write", "login", "login_failed"]),
                   subject=f"patient:{i % 7}", detail={"page": "chart", "n": i})
    return log


def test_untouched_chain_verifies() -> None:
    log = build()
    assert verify(log.entries, KEY, head=log.head).ok


def test_every_kind_of_tampering_is_detected() -> None:
    rng = random.Random(1)
    trials = 0
    for _ in range(50):
        log = build()
        entries = list(log.entries)
        kind = rng.choice(["edit", "delete", "insert", "reorder", "truncate", "rekey"])
        i = rng.randrange(1, len(entries) - 1)
        if kind == "edit":
            entries[i] = replace(entries[i], action="read_nothing")
        elif kind == "delete":
            del entries[i]
        elif kind == "insert":
            entries.insert(i, replace(entries[i], subject="patient:99"))
        elif kind == "reorder":
            entries[i], entries[i + 1] = entries[i + 1], entries[i]
        elif kind == "truncate":
            entries = entries[:i]
        else:  # recomputed with another key: the MACs no longer match the real key
            forged = AuditLog(b"x" * 32)
            for e in entries:
                forged.append(at=e.at, actor=e.actor, action=e.action, subject=e.subject,
                              detail=e.detail)
            entries = forged.entries
        report = verify(entries, KEY, head=log.head)
        assert not report.ok, kind
        trials += 1
    assert trials == 50


def test_bad_entries_are_typed_errors() -> None:
    with pytest.raises(AuditError, match="32 bytes"):
        AuditLog(b"short")
    log = AuditLog(KEY)
    with pytest.raises(AuditError, match="UTC"):
        log.append(at="2026-03-02T09:00:00+01:00", actor="a", action="read", subject="p:1")
    with pytest.raises(AuditError, match="ISO 8601"):
        log.append(at="yesterday", actor="a", action="read", subject="p:1")
    with pytest.raises(AuditError, match="actor"):
        log.append(at="2026-03-02T09:00:00Z", actor=" ", action="read", subject="p:1")
