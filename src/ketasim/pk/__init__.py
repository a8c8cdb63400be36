"""Ketamine pharmacokinetics: the cited model library and the defaults per route."""

from ketasim.pk.library_model import (
    MOLAR_MASS,
    Analyte,
    CovariateDistribution,
    LibraryModel,
    RandomEffects,
    ResidualError,
    StudyPopulation,
)
from ketasim.pk.registry import DEFAULTS, default_model_name, get_model, list_models, model_names

__all__ = ["DEFAULTS", "MOLAR_MASS", "Analyte", "CovariateDistribution", "LibraryModel",
           "RandomEffects", "ResidualError", "StudyPopulation", "default_model_name",
           "get_model", "list_models", "model_names"]
