"""Domino 1982: racemic ketamine, 3 compartments, weight-proportional V1 (the Stanpump/TCI set).

Rate constants and V1 as coded in opentiva ``ketamine.py`` class ``Domino`` [V as code], from
Domino EF, Zsigmond EK, Domino LE et al., Anesth Analg 1982;61:87-92 (key ``domino1982``,
PMID 7198883 as opentiva gives it; the PMID-to-paper mapping is [U]). No inter-individual
variability was published.
Clearance V1·k10 = 27.6 mL/min/kg (116 L/h at 70 kg) lies above the Kamp 2020 meta-analytic
band (69-90 L/h) and is 1.5× the clearance implied by Idvall 1979's surgical infusions
(≤ 18.5 mL/min/kg). The paper could not be retrieved, so its own clearance cannot be compared;
no unit reading of the set (rate constants per hour, V1 per 70 kg, V1 × 10) gives a clearance
in the band with a ketamine-like half-life, so the set is kept as coded (the evidence is in the
``domino_1982_kamp_cl`` note of ``ketasim validate pk`` and tests/test_pk_fidelity.py).
"""

from __future__ import annotations

from ketasim.dosing.route import Route
from ketasim.model.model import Compartment, Flow, Model
from ketasim.pk.library._common import WEIGHT, adult_weight, cite, cite_short, concentration, lit
from ketasim.pk.library_model import MOLAR_MASS, Analyte, LibraryModel, StudyPopulation

SRC = ("domino1982, as coded in opentiva (ketamine.py, class Domino) [V as code; the same "
       "rate constants in fus_anes TCI_Ketamine]")


def build() -> LibraryModel:
    """Build the library entry."""
    model = Model(
        name="domino_1982",
        parameters={
            "v1_kg": lit(0.063, "L/kg", "central volume per kg", SRC),
            "k10": lit(0.4381, "1/min", "elimination rate constant", SRC),
            "k12": lit(0.5921, "1/min", "central → peripheral 1", SRC),
            "k21": lit(0.2470, "1/min", "peripheral 1 → central", SRC),
            "k13": lit(0.5900, "1/min", "central → peripheral 2", SRC),
            "k31": lit(0.0146, "1/min", "peripheral 2 → central", SRC),
        },
        covariates={"weight": WEIGHT},
        definitions={"v1": "v1_kg * weight"},
        compartments=[Compartment("central"), Compartment("periph1"), Compartment("periph2")],
        flows=[Flow("central", None, "k10"), Flow("central", "periph1", "k12"),
               Flow("periph1", "central", "k21"), Flow("central", "periph2", "k13"),
               Flow("periph2", "central", "k31")],
        outputs={"ketamine": concentration("central / v1", "ketamine", "racemic ketamine")},
        routes={Route.IV_BOLUS: "central", Route.IV_INFUSION: "central"},
        citation=cite_short("domino1982"),
    )
    return LibraryModel(
        name="domino_1982",
        title="Domino 1982 racemic ketamine, IV (TCI set)",
        citation=cite("domino1982", note="parameters as coded in opentiva"),
        compound="racemic",
        model=model,
        analytes=(Analyte("ketamine", "ketamine", MOLAR_MASS["ketamine"], "racemic ketamine"),),
        population=StudyPopulation(
            "surgical adults (details not retrieved [U])", 0,
            ranges={"weight": (40.0, 120.0)},
            distributions=(adult_weight(75.0, 12.0, 45.0, 110.0,
                                        "assumed: adult surgical population, details [U]"),)),
        assumptions=("The studied population is not documented in the sources checked; the "
                     "40–120 kg range used for extrapolation warnings is assumed.",
                     "Rate constants do not scale with weight; only V1 does (as coded in "
                     "opentiva)."),
    )
