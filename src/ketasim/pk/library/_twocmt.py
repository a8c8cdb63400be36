"""Builder for the racemic two-compartment sets defined by V1 per kg and rate constants."""

from __future__ import annotations

from ketasim.dosing.route import Route
from ketasim.model.model import Compartment, Flow, Model
from ketasim.pk.library._common import WEIGHT, cite, cite_short, concentration, lit
from ketasim.pk.library_model import MOLAR_MASS, Analyte, LibraryModel, StudyPopulation


def per_kg_two_compartment(name: str, title: str, key: str, source: str, v1_kg: float,
                           k10: float, k12: float, k21: float,
                           population: StudyPopulation, assumptions: tuple[str, ...]
                           ) -> LibraryModel:
    """V1 = v1_kg·weight; k10, k12, k21 in 1/min (opentiva's encoding); ``key`` is the
    paper's bibliography key."""
    model = Model(
        name=name,
        parameters={
            "v1_kg": lit(v1_kg, "L/kg", "central volume per kg", source),
            "k10": lit(k10, "1/min", "elimination rate constant", source),
            "k12": lit(k12, "1/min", "central → peripheral", source),
            "k21": lit(k21, "1/min", "peripheral → central", source),
        },
        covariates={"weight": WEIGHT},
        definitions={"v1": "v1_kg * weight"},
        compartments=[Compartment("central"), Compartment("periph1")],
        flows=[Flow("central", None, "k10"), Flow("central", "periph1", "k12"),
               Flow("periph1", "central", "k21")],
        outputs={"ketamine": concentration("central / v1", "ketamine", "racemic ketamine")},
        routes={Route.IV_BOLUS: "central", Route.IV_INFUSION: "central"},
        citation=cite_short(key),
    )
    citation = cite(key, note="parameters as coded in opentiva")
    return LibraryModel(name=name, title=title, citation=citation, compound="racemic",
                        model=model,
                        analytes=(Analyte("ketamine", "ketamine", MOLAR_MASS["ketamine"],
                                          "racemic ketamine"),),
                        population=population, assumptions=assumptions)
