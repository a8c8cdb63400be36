"""Between-subject variability declared in a model, as NONMEM's ``$OMEGA`` and ``ETA(n)``.

A :class:`Model` may declare random effects: each :class:`Eta` acts on one individual value
(a parameter or a definition computed from parameters and covariates) *after* the model's
covariate formulas, exactly where a control stream writes ``CL = TVCL * EXP(ETA(1))``:

* ``exponential`` (log-normal): ``value * exp(eta)``;
* ``proportional``: ``value * (1 + eta)``;
* ``additive``: ``value + eta``.

The covariance of the etas is a :class:`RandomEffects` (``$OMEGA``, diagonal or in blocks).
An individual's etas are passed to any engine with ``parameters={"eta_cl": 0.2, ...}``
(scalars or one value per subject); unset etas are 0, the typical individual.

>>> from ketasim.model import Compartment, Flow, Model, Output, Parameter
>>> pars = {"cl": Parameter(5.0, "L/h", source="x"), "v": Parameter(50.0, "L", source="x")}
>>> m = Model("one", pars, [Compartment("central")], [Flow("central", None, "cl / v")],
...           covariates={}, definitions={"cli": "cl * 2"},
...           outputs={"cp": Output("central / v", "mg/L")},
...           etas={"eta_cl": Eta("cli")}, omega={"eta_cl": 0.09})
>>> float(m.individual(parameters={"eta_cl": 0.0})["cli"])
10.0
>>> round(float(m.individual(parameters={"eta_cl": 0.5})["cli"]), 4)   # 10 * exp(0.5)
16.4872
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ketasim.errors import ModelError

EtaKind = Literal["exponential", "proportional", "additive"]


@dataclass(frozen=True)
class Eta:
    """A random effect on the individual value ``on`` (a parameter or a definition)."""

    on: str
    kind: EtaKind = "exponential"
    description: str = ""

    def apply(self, value: Any, eta: Any) -> Any:
        """``value`` with the random effect ``eta`` applied."""
        if self.kind == "exponential":
            return value * np.exp(eta)
        if self.kind == "proportional":
            return value * (1.0 + eta)
        return value + eta


@dataclass(frozen=True)
class RandomEffects:
    """Random effects (named ``eta_*``) with covariance ``omega``, as NONMEM's ``$OMEGA``.

    >>> re = RandomEffects.diagonal({"eta_cl": 0.09}, source="example")
    >>> re.sample(3, np.random.default_rng(0))["eta_cl"].shape
    (3,)
    """

    names: tuple[str, ...]
    omega: Any
    source: str = ""

    def __post_init__(self) -> None:
        om = np.atleast_2d(np.asarray(self.omega, dtype=float))
        if om.shape != (len(self.names), len(self.names)):
            raise ModelError("omega", f"shape {om.shape} for {len(self.names)} random effects",
                             "give a square covariance matrix, one row per eta")
        if not np.allclose(om, om.T) or np.any(np.linalg.eigvalsh(om) < -1e-12):
            raise ModelError("omega", "is not a symmetric positive semi-definite matrix",
                             "check the variances and covariances")
        object.__setattr__(self, "omega", om)

    @classmethod
    def diagonal(cls, variances: Mapping[str, float], source: str = "") -> RandomEffects:
        """Independent random effects with the given variances (ω²)."""
        names = tuple(variances)
        return cls(names, np.diag([float(variances[k]) for k in names]), source)

    @classmethod
    def blocks(cls, *blocks: tuple[tuple[str, ...], list[list[float]]],
               source: str = "") -> RandomEffects:
        """Block-diagonal covariance from ``(names, matrix)`` pairs."""
        names: list[str] = []
        mats: list[np.ndarray] = []
        for nm, block in blocks:
            names.extend(nm)
            mats.append(np.asarray(block, dtype=float))
        om = np.zeros((len(names), len(names)))
        i = 0
        for arr in mats:
            k = arr.shape[0]
            om[i:i + k, i:i + k] = arr
            i += k
        return cls(tuple(names), om, source)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw ``n`` vectors of random effects ~ N(0, Ω)."""
        if not self.names:
            return {}
        vals, vecs = np.linalg.eigh(self.omega)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        z = rng.standard_normal((n, len(self.names))) @ root.T
        return {k: z[:, j] for j, k in enumerate(self.names)}


def as_random_effects(omega: Any, names: tuple[str, ...]) -> RandomEffects:
    """``omega`` given as a :class:`RandomEffects`, a mapping of variances or a matrix."""
    if isinstance(omega, RandomEffects):
        if set(omega.names) != set(names):
            raise ModelError("omega", f"covers {sorted(omega.names)} but the model declares "
                             f"etas {sorted(names)}", "give one row of omega per declared eta")
        return omega
    if isinstance(omega, Mapping):
        missing = set(names) ^ set(omega)
        if missing:
            raise ModelError("omega", f"variances for {sorted(set(omega))} do not match the etas "
                             f"{sorted(names)}", "give one variance per declared eta")
        return RandomEffects.diagonal({k: float(omega[k]) for k in names})
    if omega is None:
        raise ModelError("omega", "is missing for the declared etas",
                         "give omega as variances {eta: omega^2} or a matrix in eta order")
    return RandomEffects(names, omega)


__all__ = ["Eta", "EtaKind", "RandomEffects", "as_random_effects"]
