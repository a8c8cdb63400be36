"""Virtual patients: covariates from the source study's distributions, random effects from
the published variances, all drawn from an explicit ``numpy.random.Generator``.

>>> import numpy as np
>>> from ketasim.pk import get_model
>>> pop = sample_population(get_model("otto_2021"), 4, np.random.default_rng(1))
>>> sorted(pop.covariates), sorted(pop.parameters)[:2]
(['weight'], ['eta_cl', 'eta_cl_nk'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ketasim.errors import CovariateError
from ketasim.pk.library_model import LibraryModel


@dataclass(frozen=True, eq=False)
class VirtualPopulation:
    """``n`` subjects: covariate arrays and random-effect (``eta_*``) arrays, each (n,)."""

    n: int
    covariates: dict[str, np.ndarray]
    parameters: dict[str, np.ndarray]

    def subject(self, i: int) -> tuple[dict[str, float], dict[str, float]]:
        """Covariates and random effects of subject ``i``."""
        return ({k: float(v[i]) for k, v in self.covariates.items()},
                {k: float(v[i]) for k, v in self.parameters.items()})


def sample_population(model: LibraryModel, n: int, rng: np.random.Generator, *,
                      covariates: Mapping[str, Any] | None = None,
                      variability: bool = True) -> VirtualPopulation:
    """Sample ``n`` virtual patients for ``model``.

    ``covariates`` fixes covariates (a scalar for everyone or one value per subject);
    the others are drawn from the model's study population. With ``variability=False``
    every subject is the typical subject (all random effects 0).
    """
    if not isinstance(rng, np.random.Generator):
        raise CovariateError("rng", "is not a numpy.random.Generator",
                             "pass numpy.random.default_rng(seed)")
    if n < 1:
        raise CovariateError("subjects", f"is {n}", "simulate at least one subject")
    fixed = dict(covariates or {})
    out: dict[str, np.ndarray] = {}
    for dist in model.population.distributions:
        if dist.name in fixed:
            continue
        out[dist.name] = dist.sample(n, rng)
    for k, v in fixed.items():
        arr = np.asarray(v, dtype=float)
        if arr.ndim == 0:
            out[k] = np.full(n, float(arr))
        elif arr.shape == (n,):
            out[k] = arr.copy()
        else:
            raise CovariateError(k, f"has {arr.size} values for {n} subjects",
                                 "give one value or one per subject")
    if "asian" in out and "japanese" in model.model.covariates and "japanese" not in fixed:
        from ketasim.pk.library.perez_ruixo_2021 import japanese_given_asian
        out["japanese"] = out["asian"] * (rng.random(n) < japanese_given_asian())
    needed = [k for k, c in model.model.covariates.items() if c.default is None]
    missing = [k for k in needed if k not in out]
    if missing:
        raise CovariateError(missing[0], f"is needed by {model.name}",
                             f"give {missing[0]} (e.g. --{missing[0]} …)")
    etas = model.iiv.sample(n, rng) if (variability and model.iiv is not None) else {}
    out = {k: v for k, v in out.items() if k in model.model.covariates}
    return VirtualPopulation(n, out, etas)


__all__ = ["VirtualPopulation", "sample_population"]
