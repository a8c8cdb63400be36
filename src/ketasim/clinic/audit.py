"""A tamper-evident audit trail: an append-only HMAC-SHA256 hash chain.

Each entry's MAC covers its own canonical JSON and the previous entry's MAC, under a key kept
outside the database (the lesson from OpenEMR's audit log, whose checksum is an
unkeyed checksum that nothing verifies does not protect anything). :func:`verify` detects an
edited, deleted, inserted or reordered entry; with a MAC anchored elsewhere (``head``) it also
detects a tail truncated up to that entry. Entries hold identifiers and actions, never PHI
values. :func:`seal_head` seals the chain's end (sequence number and MAC) so the storage layer
can keep it next to the chain and detect a removed tail without an external anchor.

>>> key = b"k" * 32
>>> log = AuditLog(key)
>>> e = log.append(at="2026-03-02T09:00:00Z", actor="nurse:7", action="read",
...                subject="patient:12", detail={"page": "chart"})
>>> verify(log.entries, key).ok
True
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ketasim.errors import KetasimError

GENESIS = "0" * 64


class AuditError(KetasimError):
    """An audit entry that cannot be recorded as given."""


@dataclass(frozen=True)
class AuditEntry:
    """One recorded event."""

    seq: int
    at: str  # ISO 8601 UTC, "Z"
    actor: str
    action: str
    subject: str
    detail: Mapping[str, str | int | float | bool | None]
    prev: str
    mac: str

    def body(self) -> bytes:
        """Canonical bytes the MAC covers (everything but the MAC itself)."""
        return json.dumps({"seq": self.seq, "at": self.at, "actor": self.actor,
                           "action": self.action, "subject": self.subject,
                           "detail": dict(self.detail), "prev": self.prev},
                          sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(key: bytes, entry: AuditEntry) -> str:
    return hmac.new(key, entry.body(), hashlib.sha256).hexdigest()


def mac_ok(key: bytes, entry: AuditEntry) -> bool:
    """Whether ``entry``'s MAC is right under ``key`` (checks one entry, not the chain).

    >>> e = next_entry(b"k" * 32, None, at="2026-03-02T09:00:00Z", actor="a", action="read",
    ...                subject="patient:1")
    >>> mac_ok(b"k" * 32, e), mac_ok(b"x" * 32, e)
    (True, False)
    """
    return hmac.compare_digest(_mac(key, entry), entry.mac)


HEAD_CONTEXT = b"ketasim-audit-head:"


def seal_head(key: bytes, seq: int, mac: str) -> str:
    """HMAC-SHA256 seal of the chain's end: ``HMAC(key, b"ketasim-audit-head:" + f"{seq}:{mac}")``
    (a domain prefix, so a seal can never be mistaken for an entry's MAC).

    >>> len(seal_head(b"k" * 32, 1, GENESIS))
    64
    """
    return hmac.new(key, HEAD_CONTEXT + f"{seq}:{mac}".encode(), hashlib.sha256).hexdigest()


def _utc(at: str) -> str:
    try:
        t = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise AuditError("at", f"{at!r} is not an ISO 8601 time", "give UTC, e.g. "
                         "2026-03-02T09:00:00Z") from None
    if t.utcoffset() is None or t.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
        raise AuditError("at", f"{at!r} is not UTC", "record audit times in UTC ('Z')")
    return at


def next_entry(key: bytes, last: AuditEntry | None, *, at: str, actor: str, action: str,
               subject: str, detail: Mapping[str, str | int | float | bool | None] | None = None
               ) -> AuditEntry:
    """The entry that follows ``last`` (None: the first), with its MAC."""
    for name, value in (("actor", actor), ("action", action), ("subject", subject)):
        if not value or not value.strip():
            raise AuditError(name, "is empty", f"give the {name}")
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.mac
    entry = AuditEntry(seq, _utc(at), actor, action, subject, dict(detail or {}), prev, "")
    return replace(entry, mac=_mac(key, entry))


@dataclass
class AuditLog:
    """An in-memory append-only chain (the storage layer persists the same entries)."""

    key: bytes
    entries: list[AuditEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.key) < 32:
            raise AuditError("key", "is shorter than 32 bytes",
                             "use a random 32-byte key kept outside the database")

    @property
    def head(self) -> str:
        """The last MAC (anchor it outside the database to detect truncation)."""
        return self.entries[-1].mac if self.entries else GENESIS

    def append(self, *, at: str, actor: str, action: str, subject: str,
               detail: Mapping[str, str | int | float | bool | None] | None = None
               ) -> AuditEntry:
        """Add an entry at the end of the chain."""
        entry = next_entry(self.key, self.entries[-1] if self.entries else None, at=at,
                           actor=actor, action=action, subject=subject, detail=detail)
        self.entries.append(entry)
        return entry


@dataclass(frozen=True)
class VerifyReport:
    """The verifier's verdict: ``ok``, or the first bad position and what is wrong."""

    ok: bool
    checked: int
    first_bad: int | None = None
    problem: str = ""


def verify(entries: Sequence[AuditEntry], key: bytes, *, head: str | None = None
           ) -> VerifyReport:
    """Check every MAC, the chain links and the sequence numbers. ``head``: a MAC anchored
    outside the storage earlier (the chain's end at that time); the chain must still contain
    it, so removing entries up to and past it, or rolling the whole chain back to before it,
    is detected while entries appended since do not matter (GENESIS: the empty chain)."""
    prev = GENESIS
    for i, e in enumerate(entries):
        if e.seq != i + 1:
            return VerifyReport(False, i, i + 1, f"sequence number {e.seq} at position {i + 1}")
        if e.prev != prev:
            return VerifyReport(False, i, e.seq, "link to the previous entry is broken")
        if not hmac.compare_digest(_mac(key, e), e.mac):
            return VerifyReport(False, i, e.seq, "entry content does not match its MAC")
        prev = e.mac
    if head is not None and not (hmac.compare_digest(head, GENESIS) or
                                 any(hmac.compare_digest(e.mac, head) for e in entries)):
        return VerifyReport(False, len(entries), len(entries) + 1,
                            "the anchored head is not in the chain (entries removed, or the "
                            "database rolled back to before the head was anchored)")
    return VerifyReport(True, len(entries))


__all__ = ["GENESIS", "HEAD_CONTEXT", "AuditEntry", "AuditError", "AuditLog", "VerifyReport",
           "mac_ok", "next_entry", "seal_head", "verify"]
