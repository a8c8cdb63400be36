"""The cascade from a PK run to an antidepressant drive: one function of arrays.

    NMDA occupancy (effect site) ─► glutamate surge (inverted U) ─► AMPA ─► BDNF (eEF2)
        ├─► fast potentiation (mTOR-independent, hours) ─────────────────────┐
        └─► mTORC1 (0.5-2 h) ─► synaptic proteins (2-72 h) ─► spines (days) ─┴─► drive

Fast and slow components are each normalised to their peak after the reference regimen
(0.5 mg/kg IV over 40 min, 70 kg, typical patient), so the drive is in "reference units":
1 is what one standard infusion gives at its peak. ``w_fast`` (calibrated) weighs the two.
The reference run's PK is computed once (:func:`reference_inputs`); a new parameter value
re-runs, on it, only the stages of the one-subject cascade downstream of that parameter (each
peak is kept for the last :data:`REFERENCE_CACHE_SIZE` values of what it depends on).
Switchable branches (:class:`~ketasim.mechanism.parameters.Branches`) add their own
normalised component with weight ``branch_share`` relative to the main cascade, or gate it
(opioid), or block it (mTOR switch off).

>>> from ketasim.population import run_pk
>>> t = course_grid([0.0], 72.0)
>>> c = run_cascade(cascade_inputs(run_pk(REFERENCE_REGIMEN, covariates={"weight": 70.0},
...                                       times=t)))
>>> round(float(c.slow.max()), 2), float(t[c.slow[0].argmax()]) > 12
(1.0, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache

import numpy as np

from ketasim.errors import ModelError
from ketasim.mechanism.ampa import ampa_drive
from ketasim.mechanism.bdnf import bdnf_translation
from ketasim.mechanism.glutamate import glutamate_surge
from ketasim.mechanism.modulators import slow_modulator
from ketasim.mechanism.mtor import mtorc1
from ketasim.mechanism.nmda import trapped_block
from ketasim.mechanism.parameters import (
    CASCADE,
    REFERENCE_REGIMEN,
    REFERENCE_WEIGHT_KG,
    Branches,
)
from ketasim.mechanism.synapse import fast_potentiation, spines, synaptic_proteins
from ketasim.pd.exposure import target_exposure, unbound_effect_site
from ketasim.population.pkrun import PKRun, run_pk

# the cascade's calibrated settings have these defaults until a stored fit replaces them
CALIBRATED_DEFAULTS = {"w_fast": 0.5, "t_half_spine_h": 96.0}


def course_grid(dose_times: Sequence[float], horizon_h: float, *, fine_h: float = 8.0,
                fine_step_h: float = 2.0 / 60.0, coarse_step_h: float = 1.0) -> np.ndarray:
    """Hourly times to ``horizon_h``, with 2-min steps for ``fine_h`` after each dose."""
    if not np.isfinite(horizon_h) or horizon_h <= 0:
        raise ModelError("horizon", f"is {horizon_h}", "simulate a positive time span")
    parts = [np.arange(0.0, horizon_h + 1e-9, coarse_step_h)]
    for t0 in dose_times:
        if t0 <= horizon_h:
            parts.append(np.arange(t0, min(t0 + fine_h, horizon_h), fine_step_h))
    return np.unique(np.round(np.concatenate(parts), 9))


@dataclass(frozen=True, eq=False)
class CascadeInputs:
    """What the cascade needs from PK, each (subjects, times)."""

    times: np.ndarray
    nmda: np.ndarray
    sert: np.ndarray
    hnk_2r6r_um: np.ndarray

    @property
    def n(self) -> int:
        """Number of subjects."""
        return int(self.nmda.shape[0])

    @classmethod
    def none(cls, times: np.ndarray, n: int) -> CascadeInputs:
        """No drug (placebo arms)."""
        z = np.zeros((n, len(times)))
        return cls(np.asarray(times, dtype=float), z, z, z)


def cascade_inputs(run: PKRun) -> CascadeInputs:
    """Effect-site NMDA and SERT occupancy and unbound (2R,6R)-HNK from a PK run."""
    tx = target_exposure(run, targets=["nmda", "sert"])
    cu = unbound_effect_site(run)
    hnk = cu.get("hnk_2r6r", np.zeros_like(tx.occupancy["nmda"]))
    return CascadeInputs(run.times, tx.occupancy["nmda"], tx.occupancy["sert"], hnk)


@dataclass(frozen=True, eq=False)
class Cascade:
    """Every state of the cascade, (subjects, times); ``drive`` is what symptoms see."""

    times: np.ndarray
    occupancy: np.ndarray
    glutamate: np.ndarray
    ampa: np.ndarray
    bdnf: np.ndarray
    mtor: np.ndarray
    proteins: np.ndarray
    spines: np.ndarray
    potentiation: np.ndarray
    fast: np.ndarray
    slow: np.ndarray
    drive: np.ndarray
    branches: Branches
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def glutamate_pct(self) -> np.ndarray:
        """The surge as % rise of glutamate-glutamine cycling (reporting scale)."""
        return self.glutamate / _reference(_key({}))["glutamate"] \
            * CASCADE["glutamate_surge_ref_pct"].value


def _key(settings: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    merged = {**{k: p.value for k, p in CASCADE.items()}, **CALIBRATED_DEFAULTS,
              **dict(settings)}
    return tuple(sorted(merged.items()))


# what the reference peaks do not depend on: the weights of the drive and the report scale
_NOT_IN_REFERENCE = frozenset({"w_fast", "branch_share", "glutamate_surge_ref_pct"})
REFERENCE_CACHE_SIZE = 4096  # distinct values kept per reference peak (a float each)
_ARRAY_CACHE_SIZE = 32  # reference time courses kept per stage (an array on the grid each)


def _reference_key(key: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    return tuple(kv for kv in key if kv[0] not in _NOT_IN_REFERENCE)


def _raw(inp: CascadeInputs, s: Mapping[str, float], branches: Branches
         ) -> dict[str, np.ndarray]:
    t = inp.times
    glu = glutamate_surge(t, inp.nmda, s["o_zero"], s["t_half_glutamate_h"],
                          s["t_half_adaptation_h"])
    out = {"glutamate": glu, "hnk": inp.hnk_2r6r_um}
    if branches.lhb:
        out["lhb"] = trapped_block(t, inp.nmda, s["t_half_untrap_h"])
    if branches.inflammation:
        out["kynurenine"] = slow_modulator(t, inp.nmda, s["t_half_kynurenine_h"])
    out["monoamine"] = inp.sert
    return out


_ALL = Branches(hnk=True, opioid=True, lhb=True, inflammation=True, monoamine=True,
                neurogenesis=True)


@cache
def reference_inputs() -> CascadeInputs:
    """The cascade's inputs after the reference regimen (typical 70-kg patient, 21 days),
    computed once: no cascade parameter changes the PK, so every new parameter value re-uses
    this run (read-only arrays)."""
    t = course_grid([0.0], 24.0 * 21)
    run = run_pk(REFERENCE_REGIMEN, covariates={"weight": REFERENCE_WEIGHT_KG}, times=t)
    inp = cascade_inputs(run)
    for a in (inp.times, inp.nmda, inp.sert, inp.hnk_2r6r_um):
        a.flags.writeable = False
    return inp


def _reference(key: tuple[tuple[str, float], ...]) -> dict[str, float]:
    """Peaks of every component after the reference regimen (typical 70-kg patient).
    Each peak is cached by the parameters it depends on and each stage's time course by the
    parameters upstream of it, so a new value recomputes only the stages downstream of its
    own (a new ``t_half_spine_h``: the spines, ~0.1 ms); ``w_fast`` and ``branch_share``
    key nothing, and no new value needs a PK run."""
    return _reference_peaks(_reference_key(key))


def _reference_peaks(key: tuple[tuple[str, float], ...]) -> dict[str, float]:
    s = dict(key)
    glu = (s["o_zero"], s["t_half_glutamate_h"], s["t_half_adaptation_h"])
    bdnf = (*glu, s["t_half_bdnf_h"])
    hnk, monoamine = _ref_input_peaks()
    return {"glutamate": float(_ref_glutamate(glu).max()), "hnk": hnk,
            "bdnf": float(_ref_bdnf(bdnf).max()),
            "spines": _ref_spines_peak(bdnf, s["t_half_mtor_h"], s["t_half_protein_h"],
                                       s["t_half_spine_h"]),
            "potentiation": _ref_potentiation_peak(bdnf, s["t_half_potentiation_h"]),
            "lhb": _ref_lhb_peak(s["t_half_untrap_h"]),
            "kynurenine": _ref_kynurenine_peak(s["t_half_kynurenine_h"]),
            "monoamine": monoamine,
            "neurogenesis": _ref_neurogenesis_peak(bdnf, s["t_half_neurogenesis_h"])}


@cache
def _ref_input_peaks() -> tuple[float, float]:
    inp = reference_inputs()
    return float(inp.hnk_2r6r_um.max()), float(inp.sert.max())


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@lru_cache(maxsize=_ARRAY_CACHE_SIZE)
def _ref_glutamate(glu: tuple[float, float, float]) -> np.ndarray:
    inp = reference_inputs()
    return _read_only(glutamate_surge(inp.times, inp.nmda, *glu))


@lru_cache(maxsize=_ARRAY_CACHE_SIZE)
def _ref_bdnf(bdnf: tuple[float, ...]) -> np.ndarray:
    return _read_only(bdnf_translation(reference_inputs().times, _ref_glutamate(bdnf[:3]),
                                       bdnf[3]))


@lru_cache(maxsize=_ARRAY_CACHE_SIZE)
def _ref_proteins(bdnf: tuple[float, ...], t_mtor: float, t_protein: float) -> np.ndarray:
    t = reference_inputs().times
    return _read_only(synaptic_proteins(t, mtorc1(t, _ref_bdnf(bdnf), t_mtor), t_protein))


@lru_cache(maxsize=REFERENCE_CACHE_SIZE)
def _ref_spines_peak(bdnf: tuple[float, ...], t_mtor: float, t_protein: float,
                     t_spine: float) -> float:
    t = reference_inputs().times
    return float(spines(t, _ref_proteins(bdnf, t_mtor, t_protein), t_spine).max())


@lru_cache(maxsize=REFERENCE_CACHE_SIZE)
def _ref_potentiation_peak(bdnf: tuple[float, ...], t_half: float) -> float:
    t = reference_inputs().times
    return float(fast_potentiation(t, _ref_bdnf(bdnf), t_half).max())


@lru_cache(maxsize=REFERENCE_CACHE_SIZE)
def _ref_neurogenesis_peak(bdnf: tuple[float, ...], t_half: float) -> float:
    t = reference_inputs().times
    return float(slow_modulator(t, _ref_bdnf(bdnf), t_half).max())


@lru_cache(maxsize=REFERENCE_CACHE_SIZE)
def _ref_lhb_peak(t_half: float) -> float:
    inp = reference_inputs()
    return float(trapped_block(inp.times, inp.nmda, t_half).max())


@lru_cache(maxsize=REFERENCE_CACHE_SIZE)
def _ref_kynurenine_peak(t_half: float) -> float:
    inp = reference_inputs()
    return float(slow_modulator(inp.times, inp.nmda, t_half).max())


_REFERENCE_CACHES = (_ref_glutamate, _ref_bdnf, _ref_proteins, _ref_spines_peak,
                     _ref_potentiation_peak, _ref_neurogenesis_peak, _ref_lhb_peak,
                     _ref_kynurenine_peak)


def run_cascade(inp: CascadeInputs, settings: Mapping[str, float] | None = None,
                branches: Branches | None = None,
                opioid_block: np.ndarray | float = 0.0) -> Cascade:
    """Run the cascade for every subject. ``settings`` overrides parameter values (by name);
    ``opioid_block`` (0-1 per subject) is naltrexone's block, used only by the opioid
    branch."""
    br = branches or Branches()
    key = _key(settings or {})
    s = dict(key)
    ref = _reference(key)
    t = inp.times
    gate = 1.0 - np.asarray(opioid_block, dtype=float) if br.opioid else 1.0
    raw = _raw(inp, s, br)
    glu_n = raw["glutamate"] / ref["glutamate"]
    hnk_n = raw["hnk"] / ref["hnk"] if br.hnk and ref["hnk"] > 0 else None
    share = s["branch_share"]
    a = ampa_drive(glu_n, hnk_n, share / (1.0 + share) if hnk_n is not None else 0.0)
    # BDNF is linear in the AMPA drive, so normalise by the reference BDNF peak
    b = bdnf_translation(t, a, s["t_half_bdnf_h"], gate) * (ref["glutamate"] / ref["bdnf"])
    m = mtorc1(t, b, s["t_half_mtor_h"], blocked=not br.mtor)
    p = synaptic_proteins(t, m, s["t_half_protein_h"])
    sp = spines(t, p, s["t_half_spine_h"])
    h = fast_potentiation(t, b, s["t_half_potentiation_h"])
    ref_b = ref["bdnf"]
    fast = h / (ref["potentiation"] / ref_b)
    slow = sp / (ref["spines"] / ref_b)
    extra: dict[str, np.ndarray] = {}
    fast_parts, slow_parts = [fast], [slow]
    if br.lhb:
        extra["lhb"] = raw["lhb"] / ref["lhb"]
        fast_parts.append(share * extra["lhb"])
    if br.monoamine:
        extra["monoamine"] = raw["monoamine"] / ref["monoamine"]
        fast_parts.append(share * extra["monoamine"])
    if br.inflammation:
        extra["kynurenine"] = raw["kynurenine"] / ref["kynurenine"]
        slow_parts.append(share * extra["kynurenine"])
    if br.neurogenesis:
        extra["neurogenesis"] = slow_modulator(t, b, s["t_half_neurogenesis_h"]) \
            / (ref["neurogenesis"] / ref_b)
        slow_parts.append(share * extra["neurogenesis"])
    norm_f = 1.0 + share * (len(fast_parts) - 1)
    norm_s = 1.0 + share * (len(slow_parts) - 1)
    fast_all = sum(fast_parts) / norm_f
    slow_all = sum(slow_parts) / norm_s
    w = s["w_fast"]
    drive = w * fast_all + (1.0 - w) * slow_all
    return Cascade(t, inp.nmda, raw["glutamate"], a, b, m, p, sp, h, np.asarray(fast_all),
                   np.asarray(slow_all), np.asarray(drive), br, extra)


__all__ = ["CALIBRATED_DEFAULTS", "Cascade", "CascadeInputs", "cascade_inputs", "course_grid",
           "run_cascade"]
