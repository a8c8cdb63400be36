"""The session page as a checklist: what is done, what is due now and what comes next, from
the session rules (:mod:`ketasim.clinic.session`) and the forecast the page already shows.

Each step has a status: ``done``, ``now`` (due now), ``next`` (due at a stated time),
``overdue`` (its window has passed), ``blocked`` (waiting for an earlier step) or ``info``.
Times are given as instants (UTC); the page shows them in the clinic's zone.

>>> from datetime import UTC, datetime, timedelta
>>> from ketasim.clinic.session import MonitoredSession, MonitoringRules
>>> t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
>>> s = MonitoredSession("racemic", MonitoringRules(spo2_min=92, moaas_alert_max=2))
>>> s.predose_check(t0, sbp=128, dbp=80, hr=70, spo2=98, contraindications_confirmed=True)
>>> s.administer(t0 + timedelta(minutes=5), dose_mg=35)
>>> c = checklist(s, now=t0 + timedelta(minutes=20), is_open=True)
>>> [(i["key"], i["status"]) for i in c["items"]][:4]
[('predose', 'done'), ('dose', 'done'), ('bp40', 'next'), ('observe', 'now')]
>>> c["next"]["key"], c["next"]["at"].isoformat()
('bp40', '2026-03-02T09:35:00+00:00')
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ketasim.clinic.session import MonitoredSession


def _minutes(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 60.0


def checklist(s: MonitoredSession, *, now: datetime, is_open: bool,
              forecast: dict[str, Any] | None = None) -> dict[str, Any]:
    """The steps of a session with their status, the open alerts, what is due now and the
    next timed step. ``forecast`` is the page's forecast view (``ready_p50``/``ready_p95``
    with ``iso`` times) when there is one."""
    rules = s.rules
    first = s.first_administration
    open_alerts = [a for a in s.alerts if a.acknowledged_by is None]
    items: list[dict[str, Any]] = []

    def add(key: str, title: str, status: str, detail: str = "", at: datetime | None = None,
            until: datetime | None = None, anchor: str = "", at_label: str = "",
            **extra: Any) -> None:
        items.append({"key": key, "title": title, "status": status, "detail": detail,
                      "at": at, "until": until, "anchor": anchor, "at_label": at_label,
                      **extra})

    pre = s.predose
    if pre is not None:
        add("predose", "Pre-dose check", "done",
            f"BP {pre.sbp:g}/{pre.dbp:g} mmHg, HR {pre.hr:g}/min, SpO₂ {pre.spo2:g} %",
            at=pre.time)
    else:
        add("predose", "Pre-dose check", "now" if is_open else "info",
            "BP, HR and SpO₂; contraindications re-checked", anchor="step-predose")
    if first is not None:
        total = sum(mg for _, mg in s.administrations)
        add("dose", "Dose", "done", f"{total:g} mg in all"
            + (f" ({len(s.administrations)} administrations)"
               if len(s.administrations) > 1 else ""), at=first)
    else:
        add("dose", "Dose", ("now" if pre is not None else "blocked") if is_open else "info",
            "after the pre-dose check" if pre is None else "record it as it is given",
            anchor="step-dose" if pre is not None else "")
    lo, hi = rules.bp_check_window_min
    if first is None:
        add("bp40", f"BP ~40 min after the dose ({lo:g}–{hi:g} min)", "blocked",
            "timed from the first dose")
    else:
        start, end = first + timedelta(minutes=lo), first + timedelta(minutes=hi)
        got = [v for v in s.observations if lo <= _minutes(first, v.time) <= hi]
        if got:
            v = got[0]
            add("bp40", f"BP ~40 min after the dose ({lo:g}–{hi:g} min)", "done",
                f"BP {v.sbp:g}/{v.dbp:g} mmHg", at=v.time)
        elif not is_open:
            add("bp40", f"BP ~40 min after the dose ({lo:g}–{hi:g} min)", "info",
                "not recorded")
        elif now < start:
            add("bp40", f"BP ~40 min after the dose ({lo:g}–{hi:g} min)", "next",
                "aim for 40 min after the dose", at=start, until=end, anchor="step-vitals")
        elif now <= end:
            add("bp40", f"BP ~40 min after the dose ({lo:g}–{hi:g} min)", "now",
                "record it now", at=start, until=end, anchor="step-vitals")
        else:
            add("bp40", f"BP ~40 min after the dose ({lo:g}–{hi:g} min)", "overdue",
                "the window has passed: discharge needs it (tell the prescriber)",
                at=start, until=end, anchor="step-vitals")
    if first is not None:
        last = s.observations[-1] if s.observations else None
        add("observe", "Observations", "now" if is_open else "info",
            "SBP, DBP, HR, SpO₂, MOAA/S and CADSS as clinically warranted"
            + ("" if last else "; none yet"), at=last.time if last else None,
            at_label="last reading", anchor="step-vitals")
    if open_alerts:
        add("alerts", f"Acknowledge {len(open_alerts)} open alert"
            f"{'s' if len(open_alerts) != 1 else ''}", "now",
            "every alert must be acknowledged before discharge", anchor="alerts")
    earliest = s.earliest_discharge()
    if first is not None and earliest is not None:
        within = rules.predischarge_bp_within_min
        recent = [v for v in s.observations if 0 <= _minutes(v.time, now) <= within]
        due = earliest - timedelta(minutes=within)
        if s.discharged_at is not None:
            pass
        elif recent and now >= due:
            add("bp_end", f"BP before discharge (within {within:g} min)", "done",
                f"BP {recent[-1].sbp:g}/{recent[-1].dbp:g} mmHg", at=recent[-1].time,
                until=recent[-1].time + timedelta(minutes=within))
        else:
            add("bp_end", f"BP before discharge (within {within:g} min)",
                ("now" if now >= due else "next") if is_open else "info",
                "take it shortly before discharge", at=due, anchor="step-vitals")
        ready_rules = now >= earliest
        blockers = []
        if not ready_rules:
            blockers.append(f"{rules.min_observation_min:g} min after the first dose")
        if not any(lo <= _minutes(first, v.time) <= hi for v in s.observations):
            blockers.append("the ~40-min BP")
        if not (recent and now >= due):
            blockers.append(f"a BP within {within:g} min")
        if open_alerts:
            blockers.append("open alerts acknowledged")
        detail = ("possible now, once effects have resolved" if not blockers else
                  "still needs: " + ", ".join(blockers) + "; and effects resolved")
        fc = forecast or {}
        ready = None
        if fc.get("status") == "ok":
            ready = {k: datetime.fromisoformat(fc[k]["iso"]) if fc.get(k) else None
                     for k in ("ready_p50", "ready_p95")}
        if s.discharged_at is not None:
            add("discharge", "Discharge", "done", "", at=s.discharged_at)
        elif is_open:
            add("discharge", "Earliest discharge", "now" if not blockers else "next", detail,
                at=earliest, anchor="step-discharge", at_label="by the rules",
                ready=ready)
    else:
        add("discharge", "Earliest discharge", "blocked",
            f"{rules.min_observation_min:g} min after the first dose")
    timed = [i for i in items if i["status"] == "next" and i["at"] is not None]
    nxt = min(timed, key=lambda i: i["at"]) if timed else None
    return {"items": items, "open_alerts": open_alerts, "next": nxt,
            "now": [i for i in items if i["status"] in ("now", "overdue")],
            "earliest": earliest}


__all__ = ["checklist"]
