"""Clinical instruments: items, ranges, scoring, severity bands, response and remission.

Definitions follow the published scales and trials (sources name bibliography keys; grades
carried per instrument: V checked, M recalled). Scoring is strict: every item must be present
and within its range, or a :class:`ScaleError` names the item and the fix; nothing is coerced.

>>> s = score("phq9", [1, 1, 2, 1, 0, 1, 1, 0, 1])
>>> s.total, s.band, s.flags
(8, 'mild', ('phq9_item9_positive',))
>>> is_response("madrs", baseline=32, current=15), is_remission("madrs", 12)
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ketasim.errors import KetasimError


class ScaleError(KetasimError):
    """A questionnaire or rating with a missing or out-of-range item."""


@dataclass(frozen=True)
class Instrument:
    """A rating scale and how it is scored and interpreted."""

    id: str
    name: str
    item_ranges: tuple[tuple[int, int], ...]
    total_range: tuple[int, int]
    bands: tuple[tuple[int, int, str], ...] = ()
    response_fall: float | None = None  # fractional fall from baseline that is a response
    remission_max: int | None = None  # total ≤ this is remission
    relapse_min: int | None = None  # total ≥ this (at 2 consecutive visits) is relapse
    clinician_rated: bool = False
    loinc: str = ""
    source: str = ""
    grade: str = "M"
    item_labels: tuple[str, ...] = ()
    total_of: Callable[[Sequence[int]], int] | None = field(default=None, compare=False)
    higher_is_worse: bool = True

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self.item_ranges)


def _qids_total(items: Sequence[int]) -> int:
    """QIDS-SR16: 16 items over 9 domains (sleep, appetite/weight and psychomotor by max)."""
    return (max(items[0:4]) + items[4] + max(items[5:9]) + items[9] + items[10] + items[11]
            + items[12] + items[13] + max(items[14:16]))


_HAMD_RANGES = tuple((0, 4) if i in (1, 2, 3, 7, 8, 9, 10, 11, 15) else (0, 2)
                     for i in range(1, 18))

INSTRUMENTS: dict[str, Instrument] = {i.id: i for i in (
    Instrument("madrs", "Montgomery-Åsberg Depression Rating Scale", ((0, 6),) * 10, (0, 60),
               ((0, 6, "none"), (7, 19, "mild"), (20, 34, "moderate"), (35, 60, "severe")),
               response_fall=0.5, remission_max=12, relapse_min=22, clinician_rated=True,
               source="bands: snaith1986 [V]; remission ≤12 as in the esketamine programme "
               "(popova2019); relapse ≥22 on 2 consecutive visits (daly2019) [M]", grade="V"),
    Instrument("hamd17", "Hamilton Depression Rating Scale (17 items)", _HAMD_RANGES, (0, 52),
               ((0, 7, "normal"), (8, 13, "mild"), (14, 18, "moderate"), (19, 22, "severe"),
                (23, 52, "very severe")),
               response_fall=0.5, remission_max=7, clinician_rated=True,
               source="standard scoring (recalled) [M]; items 1-3, 7-11 and 15 are 0-4, the "
               "others 0-2"),
    Instrument("qids_sr16", "Quick Inventory of Depressive Symptomatology, self-report",
               ((0, 3),) * 16, (0, 27),
               ((0, 5, "none"), (6, 10, "mild"), (11, 15, "moderate"), (16, 20, "severe"),
                (21, 27, "very severe")), response_fall=0.5, remission_max=5,
               source="ids-qids [V]", grade="V", total_of=_qids_total),
    Instrument("phq9", "Patient Health Questionnaire-9", ((0, 3),) * 9, (0, 27),
               ((0, 4, "minimal"), (5, 9, "mild"), (10, 14, "moderate"),
                (15, 19, "moderately severe"), (20, 27, "severe")),
               response_fall=0.5, remission_max=4, loinc="44261-6",
               source="cut-offs 5/10/15/20; loinc code 44261-6 [V]", grade="V"),
    Instrument("gad7", "Generalized Anxiety Disorder-7", ((0, 3),) * 7, (0, 21),
               ((0, 4, "minimal"), (5, 9, "mild"), (10, 14, "moderate"), (15, 21, "severe")),
               response_fall=0.5, loinc="70274-6",
               source="cut-offs 5/10/15; loinc code 70274-6 [V]; response ≥50 % fall assumed "
               "(as for the depression scales; no published definition found)", grade="V"),
    Instrument("pcl5", "PTSD Checklist for DSM-5", ((0, 4),) * 20, (0, 80),
               ((0, 30, "below provisional PTSD"), (31, 80, "provisional PTSD")),
               response_fall=0.3,
               source="provisional PTSD ~31-33 (recalled) [M]; response ≥30 % fall assumed (as "
               "for CAPS-5)"),
    Instrument("caps5", "Clinician-Administered PTSD Scale for DSM-5", ((0, 4),) * 20, (0, 80),
               response_fall=0.3, clinician_rated=True,
               source="response ≥30 % fall, as used in the PTSD ketamine trials [V]",
               grade="V"),
    Instrument("ybocs", "Yale-Brown Obsessive Compulsive Scale", ((0, 4),) * 10, (0, 40),
               ((0, 7, "subclinical"), (8, 15, "mild"), (16, 23, "moderate"),
                (24, 31, "severe"), (32, 40, "extreme")),
               response_fall=0.35, remission_max=12, clinician_rated=True,
               source="response ≥35 % (rodriguez2013) [V]; bands, remission (recalled) [M]"),
    Instrument("lsas", "Liebowitz Social Anxiety Scale", ((0, 3),) * 48, (0, 144),
               response_fall=0.35, clinician_rated=True,
               source="24 situations × fear and avoidance; response >35 % (taylor2018) [V]",
               grade="V"),
    Instrument("cadss", "Clinician-Administered Dissociative States Scale (subjective items)",
               ((0, 4),) * 23, (0, 92), clinician_rated=True,
               source="23 subjective items scored 0-4 (recalled structure) [M]"),
    Instrument("bprs", "Brief Psychiatric Rating Scale", ((1, 7),) * 18, (18, 126),
               clinician_rated=True, source="18 items scored 1-7 (recalled) [M]"),
    Instrument("cssrs_ideation", "C-SSRS suicidal ideation severity", ((0, 5),), (0, 5),
               remission_max=0, clinician_rated=True,
               source="ideation 0-5; remission = 0 (su2023) [V use]", grade="V"),
    Instrument("nrs_pain", "Numeric rating scale for pain", ((0, 10),), (0, 10),
               response_fall=0.3,
               source="≥30 % fall moderately important (farrar2001; IMMPACT) [M]"),
    Instrument("moaas", "Modified Observer's Assessment of Alertness/Sedation", ((0, 5),),
               (0, 5), ((0, 0, "unresponsive"), (1, 3, "sedated"), (4, 5, "alert or drowsy")),
               clinician_rated=True, higher_is_worse=False,
               source="0-5, 0 = unresponsive (spravato-label) [V]; bands as used for "
               "sedation monitoring (assumed)", grade="V"),
)}


@dataclass(frozen=True)
class Score:
    """A scored questionnaire."""

    instrument: str
    total: int
    band: str
    flags: tuple[str, ...] = ()


def get_instrument(instrument: str) -> Instrument:
    """The instrument with this id."""
    key = instrument.strip().lower().replace("-", "").replace(" ", "")
    aliases = {"hamd": "hamd17", "hdrs": "hamd17", "qids": "qids_sr16", "qidssr16": "qids_sr16",
               "pcl5": "pcl5", "caps5": "caps5", "cssrs": "cssrs_ideation", "nrs": "nrs_pain",
               "moaa/s": "moaas"}
    key = aliases.get(key, key)
    if key not in INSTRUMENTS:
        raise ScaleError("instrument", f"unknown instrument {instrument!r}",
                         f"use one of {', '.join(INSTRUMENTS)}")
    return INSTRUMENTS[key]


def band_of(inst: Instrument, total: int) -> str:
    """Severity band of a total ('' when the instrument has none)."""
    for lo, hi, label in inst.bands:
        if lo <= total <= hi:
            return label
    return ""


def score(instrument: str, items: Sequence[int | None]) -> Score:
    """Score a complete set of item responses (strictly validated)."""
    inst = get_instrument(instrument)
    if len(items) != inst.n_items:
        raise ScaleError(inst.id, f"has {len(items)} answers, {inst.n_items} items expected",
                         f"answer all {inst.n_items} items")
    clean: list[int] = []
    for k, (v, (lo, hi)) in enumerate(zip(items, inst.item_ranges, strict=True), start=1):
        if v is None:
            raise ScaleError(f"{inst.id} item {k}", "is missing", "answer every item")
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ScaleError(f"{inst.id} item {k}", f"is {v!r}",
                             f"give a whole number from {lo} to {hi}")
        clean.append(v)
    total = inst.total_of(clean) if inst.total_of else sum(clean)
    flags: list[str] = []
    if inst.id == "phq9" and clean[8] > 0:
        flags.append("phq9_item9_positive")
    if inst.id == "cssrs_ideation" and clean[0] > 0:
        flags.append("suicidal_ideation")
    return Score(inst.id, total, band_of(inst, total), tuple(flags))


def _check_total(inst: Instrument, value: float, field: str) -> None:
    lo, hi = inst.total_range
    if not lo <= value <= hi:
        raise ScaleError(field, f"{value:g} is outside {inst.id}'s {lo}-{hi}",
                         f"give a {inst.id} total between {lo} and {hi}")


def is_response(instrument: str, *, baseline: float, current: float) -> bool:
    """Response: a fall from baseline of at least the instrument's fraction."""
    inst = get_instrument(instrument)
    if inst.response_fall is None:
        raise ScaleError("instrument", f"{inst.id} has no response definition",
                         "use an instrument with a published response criterion")
    _check_total(inst, baseline, "baseline")
    _check_total(inst, current, "current")
    floor = inst.total_range[0]
    if baseline - floor <= 0:
        return False
    return (baseline - current) / (baseline - floor) >= inst.response_fall - 1e-12


def is_remission(instrument: str, total: float) -> bool:
    """Remission: total at or below the instrument's remission threshold."""
    inst = get_instrument(instrument)
    if inst.remission_max is None:
        raise ScaleError("instrument", f"{inst.id} has no remission definition",
                         "use an instrument with a published remission criterion")
    _check_total(inst, total, "total")
    return total <= inst.remission_max


__all__ = ["INSTRUMENTS", "Instrument", "ScaleError", "Score", "band_of", "get_instrument",
           "is_remission", "is_response", "score"]
