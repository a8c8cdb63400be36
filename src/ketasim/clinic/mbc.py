"""Measurement-based care: which questionnaires are due.

The default schedule is an assumed clinic practice (the literature gives instruments and
cut-offs, not visit schedules): PHQ-9 and the C-SSRS screen weekly, GAD-7, QIDS-SR16 and
PCL-5 every two weeks. A clinic may change it.

>>> from datetime import UTC, datetime, timedelta
>>> now = datetime(2026, 3, 10, tzinfo=UTC)
>>> questionnaires_due([("phq9", now - timedelta(days=8))], now)["phq9"]
'due'
>>> "phq9" in questionnaires_due([("phq9", now - timedelta(days=2))], now)
False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

SCHEDULE_DAYS: Mapping[str, int] = {"phq9": 7, "cssrs_ideation": 7, "gad7": 14,
                                    "qids_sr16": 14, "pcl5": 14}


def questionnaires_due(done: Iterable[tuple[str, datetime]], now: datetime,
                       schedule: Mapping[str, int] = SCHEDULE_DAYS) -> dict[str, str]:
    """{instrument: 'due' | 'never done'} for those whose interval has passed."""
    last: dict[str, datetime] = {}
    for inst, t in done:
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        if inst not in last or t > last[inst]:
            last[inst] = t
    out = {}
    for inst, days in schedule.items():
        if inst not in last:
            out[inst] = "never done"
        elif now - last[inst] >= timedelta(days=days):
            out[inst] = "due"
    return out


__all__ = ["SCHEDULE_DAYS", "questionnaires_due"]
