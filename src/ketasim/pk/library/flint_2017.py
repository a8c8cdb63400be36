"""Flint 2017: continuous IV S-ketamine in ventilated children (paediatric ICU).

Two-compartment S-ketamine; S-norketamine formed from S-ketamine elimination with apparent
parameters (V/Fm fixed at 1 L), its clearance rising with time on infusion
(CL/Fm × (1 + 0.0087·t[h])). Allometric 0.75/1. Source: nlmixr2lib
``Flint_2017_s_ketamine.R`` (Flint RB et al. Paediatr Anaesth 2017;27:1098-1107, key
``flint2017``) [V].
The time-dependent S-NK clearance makes S-NK a time-varying state: it is written as an ODE
state driven by the (linear) S-ketamine compartments, so populations still run on the
population engine (S-ketamine exact, S-NK integrated with error control).
"""

from __future__ import annotations

import math

from ketasim.dosing.route import Route
from ketasim.model.model import Compartment, Flow, Model, State
from ketasim.pk.library._common import WEIGHT, cite, cite_short, concentration, eta, lit
from ketasim.pk.library_model import (
    MOLAR_MASS,
    Analyte,
    CovariateDistribution,
    LibraryModel,
    RandomEffects,
    ResidualError,
    StudyPopulation,
)

SRC = "flint2017 (as coded in nlmixr2lib, Flint_2017_s_ketamine.R) [V]"


def build() -> LibraryModel:
    """Build the library entry."""
    om_cl = math.log(1 + 0.402 ** 2)
    om_nk = math.log(1 + 1.04 ** 2)
    cov = 0.506 * math.sqrt(om_cl * om_nk)
    model = Model(
        name="flint_2017",
        parameters={
            "cl": lit(112.0, "L/h", "S-ketamine clearance at 70 kg", SRC),
            "v1": lit(7.73, "L", "S-ketamine central volume at 70 kg", SRC),
            "q": lit(196.0, "L/h", "intercompartmental clearance at 70 kg", SRC),
            "v2": lit(545.0, "L", "peripheral volume at 70 kg", SRC),
            "cl_nk": lit(53.2, "L/h", "S-norketamine CL/Fm at 70 kg (t = 0)", SRC),
            "v_nk": lit(1.0, "L", "S-norketamine V/Fm at 70 kg (fixed)", SRC),
            "k_time": lit(0.0087, "1/h", "relative rise of S-NK clearance per hour", SRC),
            "eta_cl": eta("CL"), "eta_cl_nk": eta("CL S-NK"),
        },
        covariates={"weight": WEIGHT},
        definitions={"fw": "weight / 70", "cli": "cl * fw ** 0.75 * exp(eta_cl)",
                     "v1i": "v1 * fw", "qi": "q * fw ** 0.75", "v2i": "v2 * fw",
                     "cl_nki": "cl_nk * fw ** 0.75 * exp(eta_cl_nk)", "v_nki": "v_nk * fw"},
        compartments=[Compartment("central"), Compartment("periph")],
        flows=[Flow("central", None, "cli / v1i"),
               Flow("central", "periph", "qi / v1i"), Flow("periph", "central", "qi / v2i")],
        # S-NK (apparent, per Fm) is formed from all S-ketamine elimination
        states={"nk_central": State("cli / v1i * central - cl_nki * (1 + k_time * t) / v_nki"
                                    " * nk_central", 0.0, "mg",
                                    "S-norketamine amount (apparent)")},
        outputs={"s_ketamine": concentration("central / v1i", "ketamine", "S-ketamine"),
                 "s_norketamine": concentration("nk_central / v_nki", "norketamine",
                                                "S-norketamine (apparent, per Fm)")},
        routes={Route.IV_BOLUS: "central", Route.IV_INFUSION: "central"},
        citation=cite_short("flint2017"),
    )
    return LibraryModel(
        name="flint_2017",
        title="Flint 2017 S-ketamine continuous IV, paediatric ICU",
        citation=cite("flint2017"),
        compound="esketamine",
        model=model,
        analytes=(Analyte("s_ketamine", "s_ketamine", MOLAR_MASS["ketamine"], "S-ketamine"),
                  Analyte("s_norketamine", "s_norketamine", MOLAR_MASS["norketamine"],
                          "S-norketamine (apparent)")),
        population=StudyPopulation(
            "25 ventilated children, 0.02-12.5 y (median 0.42), 3.4-35 kg (median 7) [V]", 25,
            ranges={"weight": (3.4, 35.0), "age": (0.02, 12.5)},
            distributions=(CovariateDistribution(
                "weight", "lognormal", mean=7.0, sd=0.6, low=3.4, high=35.0,
                source="flint2017: median 7 kg, range 3.4-35 [V]; log-normal spread "
                       "assumed"),)),
        iiv=RandomEffects(("eta_cl", "eta_cl_nk"),
                          [[om_cl, cov], [cov, om_nk]],
                          source=SRC + ": CV 40.2 % and 104 %, r = 0.506"),
        residual={"s_ketamine": ResidualError(proportional=0.419, source=SRC),
                  "s_norketamine": ResidualError(proportional=0.475, source=SRC)},
        assumptions=("Time t in the S-NK clearance is time since the start of the simulation "
                     "(the start of the infusion).",),
    )
