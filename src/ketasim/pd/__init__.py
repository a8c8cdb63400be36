"""Pharmacodynamics: target data, effect site, multi-target occupancy."""

from ketasim.pd.effect_site import KE0_PER_H, T_HALF_KE0_MIN, effect_site
from ketasim.pd.exposure import TargetExposure, target_exposure, unbound_effect_site
from ketasim.pd.occupancy import occupancy, peak_occupancy, shares
from ketasim.pd.targets import load_target_data

__all__ = ["KE0_PER_H", "T_HALF_KE0_MIN", "TargetExposure", "effect_site",
           "load_target_data", "occupancy", "peak_occupancy", "shares", "target_exposure",
           "unbound_effect_site"]
