"""Herd 2007: racemic ketamine in children (emergency-department sedation), 2 compartments.

Herd DW, Anderson BJ, Keene NA, Holford NHG. Paediatr Anaesth 2007;17(7):622-629
(bibliography key ``herd2007``). Parameters and BSV standardised to 70 kg [V];
allometric exponents as coded in opentiva [S].
"""

from __future__ import annotations

from ketasim.pk.library._allometric import allometric_two_compartment
from ketasim.pk.library_model import CovariateDistribution, LibraryModel, StudyPopulation

SRC = "herd2007, abstract: 70-kg standardised estimates [V]"


def build() -> LibraryModel:
    """Build the library entry."""
    return allometric_two_compartment(
        "herd_2007", "Herd 2007 racemic ketamine, IV, children",
        "herd2007",
        SRC, "V", cl=90.0, v1=38.7, q=215.0, v2=102.0,
        bsv_cv={"cl": 0.381, "v1": 0.64, "q": 0.19, "v2": 0.517},
        population=StudyPopulation(
            "54 children, age 8.3 (SD 3.5) y, weight 32.5 (SD 15.6) kg [V]", 54,
            ranges={"weight": (8.0, 80.0), "age": (1.0, 17.0)},
            distributions=(CovariateDistribution(
                "weight", "normal", mean=32.5, sd=15.6, low=10.0, high=80.0,
                source="herd2007, abstract: mean and SD [V]; truncation assumed"),)),
        assumptions=("Studied ranges (8–80 kg, 1–17 y) assumed from the reported mean ± SD; "
                     "the paper's ranges were not retrieved.",
                     "Allometric exponents 0.75 (CL, Q) and 1 (V) as coded in opentiva [S]."))
