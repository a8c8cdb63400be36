"""Trial endpoints from simulated courses, with 95 % confidence intervals.

- ``response``: score fell by at least the instrument's published fraction of baseline.
- ``remission``: score at or below the instrument's remission threshold.
- ``mean_change``: mean of (score − baseline), instrument points.
- ``median_time_to_relapse``: among patients responding 24 h after the last dose, weekly
  visits from then on; relapse at the first of two consecutive visits meeting the instrument's
  relapse rule (MADRS ≥ 22, SUSTAIN [M]; otherwise no longer a response); Kaplan-Meier median
  (``scipy.stats.ecdf``) in days after the last dose, censored at the follow-up end.

CIs: Wilson for proportions, Student t for means, percentile bootstrap (1,000 resamples,
seeded) for the median time to relapse.

>>> import numpy as np
>>> est, ci = proportion(np.array([True] * 30 + [False] * 70))
>>> round(est, 2), [round(x, 3) for x in ci]
(0.3, [0.219, 0.396])
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats

from ketasim.errors import ModelError
from ketasim.outcomes.course import Course
from ketasim.scales import get_instrument

Measure = Literal["response", "remission", "mean_change", "median_time_to_relapse"]
MEASURES = ("response", "remission", "mean_change", "median_time_to_relapse")


def proportion(x: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Fraction true with its Wilson 95 % interval."""
    k, n = int(np.sum(x)), int(np.size(x))
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return k / n, (float(ci.low), float(ci.high))


def mean_ci(x: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Mean with its Student-t 95 % interval."""
    x = np.asarray(x, dtype=float)
    m = float(np.mean(x))
    if x.size < 2:
        return m, (m, m)
    half = float(stats.t.ppf(0.975, x.size - 1) * np.std(x, ddof=1) / np.sqrt(x.size))
    return m, (m - half, m + half)


def responders(course: Course, time_h: float, instrument: str | None = None) -> np.ndarray:
    """Who responds at ``time_h``."""
    inst = get_instrument(instrument or course.indication.instrument)
    if inst.response_fall is None:
        raise ModelError("instrument", f"{inst.id} has no response definition",
                         "use measure = mean_change or another instrument")
    lo = inst.total_range[0]
    base = course.baseline_of(inst.id)
    s = course.scores(inst.id)[:, course.index(time_h)]
    return (base - s) >= inst.response_fall * (base - lo) - 1e-9


def remitters(course: Course, time_h: float, instrument: str | None = None) -> np.ndarray:
    """Who is in remission at ``time_h``."""
    inst = get_instrument(instrument or course.indication.instrument)
    if inst.remission_max is None:
        raise ModelError("instrument", f"{inst.id} has no remission definition",
                         "use measure = response or mean_change")
    return course.scores(inst.id)[:, course.index(time_h)] <= inst.remission_max


def change(course: Course, time_h: float, instrument: str | None = None) -> np.ndarray:
    """Score minus baseline at ``time_h`` (instrument points)."""
    inst = get_instrument(instrument or course.indication.instrument)
    return course.scores(inst.id)[:, course.index(time_h)] - course.baseline_of(inst.id)


def relapse_times(course: Course, last_dose_h: float, until_h: float,
                  instrument: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(days to relapse or censoring, relapsed?) for patients responding 24 h after the
    last dose."""
    inst = get_instrument(instrument or course.indication.instrument)
    start = last_dose_h + 24.0
    if until_h < start + 14 * 24:
        raise ModelError("time", "follow-up must reach at least 2 weeks after the last dose",
                         "give a later endpoint time for median_time_to_relapse")
    resp = responders(course, start, inst.id)
    visits = np.arange(start + 168.0, until_h + 1e-9, 168.0)
    idx = [course.index(v) for v in visits]
    s = course.scores(inst.id)[:, idx]
    base = course.baseline_of(inst.id)[:, None]
    if inst.relapse_min is not None:
        bad = s >= inst.relapse_min
    else:
        lo = inst.total_range[0]
        bad = (base - s) < (inst.response_fall or 0.5) * (base - lo)
    two = bad[:, :-1] & bad[:, 1:]
    hit = np.asarray(two.any(axis=1), dtype=bool)
    first = np.where(hit, two.argmax(axis=1), len(visits) - 1)
    days = (visits[first] - last_dose_h) / 24.0
    keep = np.asarray(resp, dtype=bool)
    return days[keep], hit[keep]


def km_median(days: np.ndarray, relapsed: np.ndarray) -> float:
    """Kaplan-Meier median (inf when not reached)."""
    if days.size == 0:
        return float("nan")
    data = stats.CensoredData(uncensored=days[relapsed], right=days[~relapsed])
    sf = stats.ecdf(data).sf
    below = np.flatnonzero(sf.probabilities <= 0.5)
    return float(sf.quantiles[below[0]]) if below.size else float("inf")


def median_relapse_ci(days: np.ndarray, relapsed: np.ndarray, seed: int
                      ) -> tuple[float, tuple[float, float]]:
    """KM median and percentile-bootstrap 95 % interval."""
    est = km_median(days, relapsed)
    if days.size < 2:
        return est, (est, est)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(1000):
        i = rng.integers(0, days.size, days.size)
        boots.append(km_median(days[i], relapsed[i]))
    b = np.array(boots)
    b = b[~np.isnan(b)]
    if b.size == 0:
        return est, (float("nan"), float("nan"))
    # 'not reached' (inf) sorts above every finite median; percentiles by rank, no arithmetic
    lo, hi = np.percentile(b, [2.5, 97.5], method="inverted_cdf")
    return est, (float(lo), float(hi))


__all__ = ["MEASURES", "Measure", "change", "km_median", "mean_ci", "median_relapse_ci",
           "proportion", "relapse_times", "remitters", "responders"]
