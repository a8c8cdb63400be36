"""Times as people see and enter them: in the clinic's time zone, to the minute, with the
zone named; stored in UTC.

The clinic's zone is an IANA name (``Clinic.timezone``, default ``"UTC"``, checked with
:mod:`zoneinfo`). Every time on a page goes through :func:`shown` (date and time) or
:func:`clock` (time of day); a time typed into an ``<input type="datetime-local">`` is read
by :func:`local_candidates` in the clinic's zone (a wall-clock time the clocks skipped is
refused; one they passed twice gives both instants, and the caller's rules choose).

>>> from datetime import UTC, datetime
>>> oslo = zone("Europe/Oslo")
>>> t = datetime(2026, 11, 29, 8, 57, 3, 915638, tzinfo=UTC)
>>> shown(t, oslo), clock(t, oslo)
('2026-11-29 09:57 CET', '09:57 CET')
>>> [c.isoformat() for c in local_candidates(datetime(2026, 7, 1, 10, 0), oslo)]
['2026-07-01T08:00:00+00:00']
>>> len(local_candidates(datetime(2026, 10, 25, 2, 30), oslo))  # the clocks went back
2
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ketasim.errors import KetasimError


class ZoneError(KetasimError):
    """A time zone name that is not an IANA zone, or a wall-clock time that does not exist."""


@cache
def zone_names() -> tuple[str, ...]:
    """The IANA zone names this server knows, sorted (``UTC`` first)."""
    names = {n for n in available_timezones() if "/" in n and not n.startswith(
        ("Etc/", "SystemV/", "US/", "posix/", "right/"))}
    return ("UTC", *sorted(names))


def check_zone(name: str) -> str:
    """``name`` if it is an IANA time zone this server knows; otherwise a :class:`ZoneError`
    naming the fix."""
    text = name.strip() if isinstance(name, str) else ""
    if not text or len(text) > 64 or (text != "UTC" and text not in zone_names()):
        raise ZoneError("time zone", f"{text[:64]!r} is not a time zone",
                        "choose the clinic's zone from the list (e.g. Europe/Oslo)")
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ZoneError("time zone", f"{text!r} is not known to this server",
                        "choose another zone from the list") from None
    return text


def zone(name: str | None) -> tzinfo:
    """The zone called ``name`` (UTC for none, or for a name this server does not know:
    a page must always show)."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def zone_name(tz: tzinfo) -> str:
    """The zone's IANA name (``UTC`` for UTC)."""
    return getattr(tz, "key", None) or "UTC"


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def abbreviation(t: datetime, tz: tzinfo) -> str:
    """The zone's name at ``t`` as people read it: ``CET``, ``CEST``, ``UTC``, or the
    offset (``UTC+03``) where the zone has no letters."""
    local = _aware(t).astimezone(tz)
    abbr = local.tzname() or ""
    if abbr.isalpha():
        return abbr
    off = local.utcoffset()
    minutes = int(off.total_seconds() // 60) if off is not None else 0
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"UTC{sign}{h:02d}" + (f":{m:02d}" if m else "")


def shown(t: datetime | None, tz: tzinfo) -> str:
    """A stored time as shown on a page: date and time to the minute in ``tz``, zone named
    (``—`` for none)."""
    if t is None:
        return "—"
    local = _aware(t).astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {abbreviation(t, tz)}"


def clock(t: datetime | None, tz: tzinfo) -> str:
    """The time of day to the minute in ``tz``, zone named (``09:57 CET``)."""
    if t is None:
        return "—"
    return f"{_aware(t).astimezone(tz):%H:%M} {abbreviation(t, tz)}"


def day(t: datetime | None, tz: tzinfo) -> str:
    """The date in ``tz`` (``2026-11-29``)."""
    return "—" if t is None else f"{_aware(t).astimezone(tz):%Y-%m-%d}"


def input_value(t: datetime | None, tz: tzinfo) -> str:
    """The value of an ``<input type="datetime-local">`` for ``t`` in ``tz``
    (``2026-11-29T09:57``)."""
    return "" if t is None else f"{_aware(t).astimezone(tz):%Y-%m-%dT%H:%M}"


def local_candidates(wall: datetime, tz: tzinfo) -> list[datetime]:
    """The UTC instants a wall-clock time in ``tz`` may mean: one, or two when the clocks
    went back (earlier first). A time the clocks skipped is a :class:`ZoneError`."""
    if wall.tzinfo is not None:
        return [wall.astimezone(UTC)]
    out: list[datetime] = []
    for fold in (0, 1):
        t = wall.replace(tzinfo=tz, fold=fold)
        u = t.astimezone(UTC)
        if u.astimezone(tz).replace(tzinfo=None) != wall:
            raise ZoneError("time", f"{wall:%Y-%m-%d %H:%M} does not exist in "
                            f"{zone_name(tz)} (the clocks went forward)",
                            "check the time, or leave it empty for now")
        if u not in out:
            out.append(u)
    return sorted(out)


__all__ = ["ZoneError", "abbreviation", "check_zone", "clock", "day", "input_value",
           "local_candidates", "shown", "zone", "zone_name", "zone_names"]
