"""The one-compartment depot model the NONMEM reference outputs were produced with."""

from __future__ import annotations

from ketasim.model import Compartment, Covariate, Flow, Model, Output, Parameter


def nmtests_model() -> Model:
    """ADVAN2 TRANS2: depot (1) -> central (2); F2, ALAG2, R2, D2 from data columns."""
    src = "mrgsolve/nmtests (NONMEM 7.5 reference runs), see shared/data/nmtests/README.md"
    return Model(
        name="nmtests_advan2",
        parameters={
            "cl": Parameter(1.1, "L/h", "clearance at 70 kg", source=src, evidence="literature"),
            "v": Parameter(20.0, "L", "central volume", source=src, evidence="literature"),
            "ka": Parameter(1.5, "1/h", "absorption rate constant", source=src,
                            evidence="literature"),
        },
        covariates={
            "wt": Covariate(70.0, "kg", "body weight"),
            "lagt": Covariate(0.0, "h", "ALAG2"),
            "bioav": Covariate(1.0, "", "F2"),
            "rat2": Covariate(10.0, "mg/h", "R2 (RATE=-1)"),
            "dur2": Covariate(2.0, "h", "D2 (RATE=-2)"),
        },
        definitions={"cli": "cl * (wt / 70) ** 0.75"},
        compartments=[Compartment("depot"),
                      Compartment("central", f="bioav", lag="lagt", rate="rat2",
                                  duration="dur2")],
        flows=[Flow("depot", "central", "ka"), Flow("central", None, "cli / v")],
        outputs={"cp": Output("central / (v / 1000)", "ng/mL")},
    )
