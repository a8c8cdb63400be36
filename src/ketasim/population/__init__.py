"""Virtual populations, exposure metrics and PK runs with the library models."""

from ketasim.population.metrics import (
    auc,
    cmax,
    percentiles,
    prediction_interval,
    time_above,
    tmax,
    value_at,
)
from ketasim.population.pkrun import DISCLAIMER, PKRun, iter_pk, resolve_model, run_pk
from ketasim.population.virtual import VirtualPopulation, sample_population

__all__ = ["DISCLAIMER", "PKRun", "VirtualPopulation", "auc", "cmax", "iter_pk", "percentiles",
           "prediction_interval", "resolve_model", "run_pk", "sample_population",
           "time_above", "tmax", "value_at"]
