"""Which targets a regimen reaches: effect-site unbound concentrations and occupancy.

>>> from ketasim.population import run_pk
>>> import numpy as np
>>> run = run_pk("0.5 mg/kg IV over 40 min", covariates={"weight": 70.0},
...              times=np.arange(0, 6, 1 / 60))
>>> tx = target_exposure(run)
>>> 0.3 < float(tx.peak["nmda"][0]) < 0.7
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ketasim.errors import ModelError
from ketasim.pd.effect_site import KE0_PER_H, effect_site
from ketasim.pd.occupancy import occupancy, peak_occupancy
from ketasim.pd.targets import load_target_data
from ketasim.population.pkrun import PKRun

# PK analyte id -> binding compound; totals are used only when the parts are absent
ANALYTE_COMPOUND = {
    "s_ketamine": "s_ketamine", "esketamine": "s_ketamine", "r_ketamine": "r_ketamine",
    "ketamine": "racemic_ketamine", "s_norketamine": "s_norketamine",
    "noresketamine": "s_norketamine", "r_norketamine": "r_norketamine",
    "norketamine": "racemic_norketamine", "s_hnk": "hnk_2s6s", "r_hnk": "hnk_2r6r",
}
_PARTS = {"ketamine": ("s_ketamine", "r_ketamine"),
          "norketamine": ("s_norketamine", "r_norketamine"), "hnk": ("s_hnk", "r_hnk")}

MEANINGFUL = 0.15  # below this, a target is "not meaningfully occupied" (assumed cut-off)


def binding_analytes(run: PKRun) -> list[tuple[str, str]]:
    """(PK analyte, compound) pairs to count once each (enantiomers over totals)."""
    present = set(run.concentrations)
    pairs = []
    for a in run.concentrations:
        if a in _PARTS and all(p in present for p in _PARTS[a]):
            continue
        if a in ANALYTE_COMPOUND:
            pairs.append((a, ANALYTE_COMPOUND[a]))
    return pairs


@dataclass(frozen=True, eq=False)
class TargetExposure:
    """Occupancy time courses (targets → (subjects, times)) and peaks (targets → (subjects,))."""

    times: np.ndarray
    targets: list[str]
    occupancy: dict[str, np.ndarray]
    peak: dict[str, np.ndarray]
    unbound_effect_um: dict[str, np.ndarray]

    def meaningful(self, threshold: float = MEANINGFUL) -> list[str]:
        """Targets whose median peak occupancy reaches ``threshold``."""
        return [t for t in self.targets if float(np.median(self.peak[t])) >= threshold]


def unbound_effect_site(run: PKRun, ke0: float = KE0_PER_H) -> dict[str, np.ndarray]:
    """Unbound effect-site concentration (µM) per binding compound, (subjects, times)."""
    data = load_target_data()
    out: dict[str, np.ndarray] = {}
    for analyte, compound in binding_analytes(run):
        comp = data.compounds[compound]
        cu = run.concentration(analyte, "mg/L") / comp.molar_mass * 1000.0 * comp.fu
        out[compound] = out.get(compound, 0.0) + effect_site(run.times, cu, ke0)
    if not out:
        raise ModelError("analytes", f"{run.model.name} predicts no analyte with binding data",
                         "use a model with ketamine or its metabolites")
    return out


def target_exposure(run: PKRun, targets: list[str] | None = None,
                    include_disputed: bool = False, ke0: float = KE0_PER_H) -> TargetExposure:
    """Occupancy of each target by every analyte present, over time and at its peak."""
    data = load_target_data()
    tg = targets or data.default_targets(include_disputed)
    cu = unbound_effect_site(run, ke0)
    compounds = list(cu)
    inv_k = data.matrix(compounds, tg)
    conc = np.stack([cu[c] for c in compounds])
    occ = occupancy(conc, inv_k)
    peaks = peak_occupancy(conc, inv_k)
    return TargetExposure(run.times, tg, {t: occ[j] for j, t in enumerate(tg)},
                          {t: peaks[j] for j, t in enumerate(tg)}, cu)


__all__ = ["ANALYTE_COMPOUND", "MEANINGFUL", "TargetExposure", "binding_analytes",
           "target_exposure", "unbound_effect_site"]
