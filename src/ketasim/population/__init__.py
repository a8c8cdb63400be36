"""Virtual populations, exposure metrics and PK runs with the library models."""

from typing import TYPE_CHECKING

from ketasim import _lazy

if TYPE_CHECKING:
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

_EXPORTS = {
    "auc": "ketasim.population.metrics",
    "cmax": "ketasim.population.metrics",
    "percentiles": "ketasim.population.metrics",
    "prediction_interval": "ketasim.population.metrics",
    "time_above": "ketasim.population.metrics",
    "tmax": "ketasim.population.metrics",
    "value_at": "ketasim.population.metrics",
    "DISCLAIMER": "ketasim.population.pkrun",
    "PKRun": "ketasim.population.pkrun",
    "iter_pk": "ketasim.population.pkrun",
    "resolve_model": "ketasim.population.pkrun",
    "run_pk": "ketasim.population.pkrun",
    "VirtualPopulation": "ketasim.population.virtual",
    "sample_population": "ketasim.population.virtual",
}
__getattr__, __dir__ = _lazy.attach(__name__, _EXPORTS)
