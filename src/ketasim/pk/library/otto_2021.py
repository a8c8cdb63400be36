"""Otto 2021 / Fanta 2015: S-ketamine IV (3 compartments) with S-norketamine (2 compartments).

S-ketamine population parameters fixed to Fanta 2015; IIV, S-norketamine and residual error
re-estimated by Otto 2021 on venous data (CHDR1311, CHDR1016). All S-ketamine clearance forms
S-norketamine (fm = 1), carried in S-ketamine mass units as in the published code.
Source: nlmixr2lib ``Otto_2021_s_ketamine.R`` (Table 3 and supplementary NONMEM code) [V].
"""

from __future__ import annotations

from ketasim.dosing.route import Route
from ketasim.model.model import Compartment, Flow, Model
from ketasim.pk.library._common import (
    WEIGHT,
    adult_weight,
    cite,
    cite_short,
    concentration,
    eta,
    lit,
)
from ketasim.pk.library_model import (
    MOLAR_MASS,
    Analyte,
    LibraryModel,
    RandomEffects,
    ResidualError,
    StudyPopulation,
)

FANTA = ("fanta2015 via otto2021, Table 3, fixed (as coded in nlmixr2lib, "
         "Otto_2021_s_ketamine.R, THETA 1-6) [V]")
OTTO = ("otto2021, Table 3 and supplementary code (as coded in nlmixr2lib, "
        "Otto_2021_s_ketamine.R) [V]")


def build() -> LibraryModel:
    """Build the library entry."""
    model = Model(
        name="otto_2021",
        parameters={
            "v1": lit(133.0, "L", "S-ketamine central volume at 70 kg", FANTA),
            "cl": lit(95.2, "L/h", "S-ketamine clearance at 70 kg", FANTA),
            "vp1": lit(187.0, "L", "S-ketamine peripheral volume 1", FANTA),
            "q1": lit(23.2, "L/h", "S-ketamine intercompartmental clearance 1", FANTA),
            "vp2": lit(98.8, "L", "S-ketamine peripheral volume 2", FANTA),
            "q2": lit(157.0, "L/h", "S-ketamine intercompartmental clearance 2", FANTA),
            "v_nk": lit(98.638, "L", "S-norketamine central volume at 70 kg", OTTO),
            "cl_nk": lit(57.72, "L/h", "S-norketamine clearance at 70 kg", OTTO),
            "vp_nk": lit(160.04, "L", "S-norketamine peripheral volume", OTTO),
            "q_nk": lit(42.778, "L/h", "S-norketamine intercompartmental clearance", OTTO),
            "eta_v1": eta("V1"), "eta_cl": eta("CL"),
            "eta_v_nk": eta("V S-NK"), "eta_cl_nk": eta("CL S-NK"),
        },
        covariates={"weight": WEIGHT},
        definitions={
            "fw": "weight / 70",
            "v1i": "v1 * fw * exp(eta_v1)", "cli": "cl * fw ** 0.75 * exp(eta_cl)",
            "v_nki": "v_nk * fw * exp(eta_v_nk)",
            "cl_nki": "cl_nk * fw ** 0.75 * exp(eta_cl_nk)",
        },
        compartments=[Compartment("central"), Compartment("periph1"), Compartment("periph2"),
                      Compartment("nk_central"), Compartment("nk_periph")],
        flows=[Flow("central", "nk_central", "cli / v1i"),
               Flow("central", "periph1", "q1 / v1i"), Flow("periph1", "central", "q1 / vp1"),
               Flow("central", "periph2", "q2 / v1i"), Flow("periph2", "central", "q2 / vp2"),
               Flow("nk_central", None, "cl_nki / v_nki"),
               Flow("nk_central", "nk_periph", "q_nk / v_nki"),
               Flow("nk_periph", "nk_central", "q_nk / vp_nk")],
        outputs={
            "s_ketamine": concentration("central / v1i", "ketamine", "S-ketamine (venous)"),
            # S-NK carried in S-ketamine mass; Otto's volumes were fitted to measured
            # S-NK ng/mL on that scale, so the ratio is reported as S-NK concentration
            "s_norketamine": concentration("nk_central / v_nki", "norketamine",
                                           "S-norketamine (venous)"),
        },
        routes={Route.IV_BOLUS: "central", Route.IV_INFUSION: "central"},
        citation=cite_short("otto2021", "fanta2015"),
    )
    iiv = RandomEffects.blocks(
        (("eta_v1", "eta_cl"), [[0.084177, 0.02261], [0.02261, 0.026048]]),
        (("eta_v_nk", "eta_cl_nk"), [[0.040426, 0.04456], [0.04456, 0.10319]]),
        source="otto2021, Table 3 and supplement (OMEGA BLOCK(2)) [V]")
    return LibraryModel(
        name="otto_2021",
        title="Otto 2021 (Fanta 2015) S-ketamine + S-norketamine, IV, venous",
        citation=cite("otto2021", "fanta2015"),
        compound="esketamine",
        model=model,
        analytes=(Analyte("s_ketamine", "s_ketamine", MOLAR_MASS["ketamine"], "S-ketamine"),
                  Analyte("s_norketamine", "s_norketamine", MOLAR_MASS["norketamine"],
                          "S-norketamine")),
        population=StudyPopulation(
            "48 healthy volunteers (CHDR1311 n=17, CHDR1016 n=31), 45.8 % female, mean "
            "weight 68-71 (SD 7-8.5) kg, age ~23 y [V]", 48,
            ranges={"weight": (50.0, 95.0), "age": (18.0, 45.0)},
            distributions=(adult_weight(70.0, 8.0, 50.0, 95.0,
                                        "otto2021, Table 1: means and SDs [V]; truncation "
                                        "assumed"),),
            sampling_site="venous"),
        iiv=iiv,
        residual={"s_ketamine": ResidualError(proportional=0.23609, source=OTTO),
                  "s_norketamine": ResidualError(proportional=0.14261, source=OTTO)},
        assumptions=("Studied weight range 50–95 kg assumed from the reported means ± 3 SD.",
                     "Peripheral volumes and intercompartmental clearances are not weight-"
                     "scaled (as run by Otto 2021)."),
    )
