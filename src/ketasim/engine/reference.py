"""The reference population benchmark model, the problem engines are compared on.

Racemic-ketamine-like 3-compartment PK with norketamine, an effect compartment, an Emax
dissociation score and an indirect-response "plasticity" state. Parameter values are the
benchmark's illustrative ones, *not* a clinical model; they exist so that engines can be
compared on one fixed problem.

>>> m = reference_model()
>>> m.n_states, m.is_linear, m.has_linear_compartments, sorted(m.etas)[:2]
(6, False, True, ['eta_cl', 'eta_ke0'])
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ketasim.dosing.route import Route

if TYPE_CHECKING:
    import numpy as np

    from ketasim.model.model import Model, Parameter

_SRC = ("ketasim reference benchmark problem (docs/engines.md, 'Speed'): an illustrative "
        "value, not clinical")


def _p(value: float, unit: str, description: str) -> Parameter:
    from ketasim.model.model import Parameter
    return Parameter(value, unit, description, source=_SRC, evidence="assumed")


def reference_model() -> Model:
    """Build the benchmark model with ketasim's model-definition API."""
    # imported here: the model layer needs pint, and the CLI imports this module for
    # REFERENCE_REGIMEN only
    from ketasim.model.model import (
        Compartment,
        Covariate,
        EffectCompartment,
        Flow,
        Metabolite,
        Model,
        Output,
        State,
    )
    from ketasim.model.variability import Eta
    omega2 = math.log(1 + 0.3 ** 2)  # 30 % CV, log-normal
    return Model(
        name="reference_benchmark",
        description="Benchmark problem: 3-cmt PK + metabolite + effect site + indirect response",
        citation=_SRC,
        parameters={
            "cl": _p(80.0, "L/h", "ketamine clearance (70 kg)"),
            "v1": _p(15.0, "L", "central volume (70 kg)"),
            "q2": _p(100.0, "L/h", "fast intercompartmental clearance (70 kg)"),
            "v2": _p(60.0, "L", "fast peripheral volume (70 kg)"),
            "q3": _p(30.0, "L/h", "slow intercompartmental clearance (70 kg)"),
            "v3": _p(180.0, "L", "slow peripheral volume (70 kg)"),
            "fm": _p(0.8, "", "fraction of clearance forming norketamine"),
            "clm": _p(40.0, "L/h", "norketamine clearance (70 kg)"),
            "vm": _p(100.0, "L", "norketamine volume (70 kg)"),
            "ke0": _p(2.0, "1/h", "effect-site equilibration rate constant"),
            "emax": _p(60.0, "", "maximum dissociation score"),
            "ec50": _p(0.3, "mg/L", "effect-site concentration at half-maximal effect"),
            "hill": _p(1.5, "", "Hill coefficient"),
            "kout": _p(0.01, "1/h", "plasticity turnover rate constant"),
            "s0": _p(1.0, "", "baseline plasticity"),
            "smax": _p(3.0, "", "maximal stimulation of plasticity formation"),
            "sc50": _p(0.2, "mg/L", "effect-site concentration at half-maximal stimulation"),
        },
        covariates={"weight": Covariate(70.0, "kg", "body weight", 0.5, 400.0)},
        definitions={
            "fw": "weight / 70",
            "cli": "cl * fw ** 0.75", "q2i": "q2 * fw ** 0.75", "q3i": "q3 * fw ** 0.75",
            "clmi": "clm * fw ** 0.75",
            "v1i": "v1 * fw", "v2i": "v2 * fw", "v3i": "v3 * fw", "vmi": "vm * fw",
            "ce": "effect",
        },
        compartments=[Compartment("central"), Compartment("periph1"), Compartment("periph2")],
        flows=[
            Flow("central", "periph1", "q2i / v1i"), Flow("periph1", "central", "q2i / v2i"),
            Flow("central", "periph2", "q3i / v1i"), Flow("periph2", "central", "q3i / v3i"),
            Flow("central", None, "cli / v1i"),
        ],
        metabolites=[Metabolite("metabolite", "central", "fm", "clmi / vmi")],
        # the effect "compartment" holds Ce (mg/L): dCe/dt = ke0 (C1 - Ce)
        effect_compartments=[EffectCompartment("effect", "central", "ke0", "v1i")],
        states={"plasticity": State("kout * s0 * (1 + smax * ce / (sc50 + ce)) - kout * "
                                    "plasticity", "s0", "", "indirect-response state")},
        outputs={
            "c1": Output("central / v1i", "mg/L", "ketamine plasma concentration"),
            "cm": Output("metabolite / vmi", "mg/L", "norketamine concentration"),
            "ce": Output("ce", "mg/L", "effect-site concentration"),
            "effect": Output("emax * ce ** hill / (ec50 ** hill + ce ** hill)", "",
                             "Emax dissociation score"),
            "plasticity": Output("plasticity", "", "indirect-response state"),
        },
        routes={Route.IV_INFUSION: "central", Route.IV_BOLUS: "central"},
        # 30 % CV log-normal between-subject variability, after the allometry
        etas={"eta_cl": Eta("cli"), "eta_v1": Eta("v1i"), "eta_q2": Eta("q2i"),
              "eta_ke0": Eta("ke0"), "eta_kout": Eta("kout")},
        omega={k: omega2 for k in ("eta_cl", "eta_v1", "eta_q2", "eta_ke0", "eta_kout")},
    )


def reference_population(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Weight ~ U(50, 110) kg and 30% CV log-normal IIV on CL, V1, Q2, ke0, kout.

    Individual values are returned as parameter values (what the hand-written benchmark
    baseline reads); ``reference_model().sample_etas`` draws the same distribution as etas.
    """
    import numpy as np
    omega = np.sqrt(np.log(1 + 0.3 ** 2))
    base = reference_model().parameters
    out = {"weight": rng.uniform(50.0, 110.0, n)}
    for name in ("cl", "v1", "q2", "ke0", "kout"):
        out[name] = base[name].value * np.exp(rng.normal(0.0, omega, n))
    return out


REFERENCE_REGIMEN = "0.5 mg/kg IV over 40 min twice weekly for 3 weeks"

__all__ = ["REFERENCE_REGIMEN", "reference_model", "reference_population"]
