"""Builder for allometric racemic two-compartment sets (CL, V1, Q, V2 at 70 kg)."""

from __future__ import annotations

import math

from ketasim.dosing.route import Route
from ketasim.model.model import Compartment, Flow, Model, Parameter
from ketasim.pk.library._common import WEIGHT, cite, cite_short, concentration, eta, lit
from ketasim.pk.library_model import (
    MOLAR_MASS,
    Analyte,
    LibraryModel,
    RandomEffects,
    StudyPopulation,
)


def cv_to_omega2(cv: float) -> float:
    """Log-normal variance from a coefficient of variation (fraction)."""
    return math.log(1.0 + cv * cv)


def allometric_two_compartment(
        name: str, title: str, key: str, source: str, grade: str,
        cl: float, v1: float, q: float, v2: float, bsv_cv: dict[str, float],
        population: StudyPopulation, assumptions: tuple[str, ...],
        im: tuple[Parameter, Parameter] | None = None) -> LibraryModel:
    """CL, Q ∝ (W/70)^0.75; V1, V2 ∝ W/70; log-normal BSV; optional IM depot (F, ka).
    ``key`` is the paper's bibliography key."""
    params = {
        "cl": lit(cl, "L/h", "clearance at 70 kg", source, grade),
        "v1": lit(v1, "L", "central volume at 70 kg", source, grade),
        "q": lit(q, "L/h", "intercompartmental clearance at 70 kg", source, grade),
        "v2": lit(v2, "L", "peripheral volume at 70 kg", source, grade),
    }
    for k in bsv_cv:
        params[f"eta_{k}"] = eta(k)
    defs = {"fw": "weight / 70"}
    for k, exp_ in (("cl", 0.75), ("q", 0.75), ("v1", 1.0), ("v2", 1.0)):
        e = f" * exp(eta_{k})" if k in bsv_cv else ""
        defs[f"{k}i"] = f"{k} * fw ** {exp_}{e}"
    comps = [Compartment("central"), Compartment("periph1")]
    flows = [Flow("central", None, "cli / v1i"), Flow("central", "periph1", "qi / v1i"),
             Flow("periph1", "central", "qi / v2i")]
    routes: dict[Route, str] = {Route.IV_BOLUS: "central", Route.IV_INFUSION: "central"}
    if im is not None:
        params["f_im"], params["ka_im"] = im
        comps.insert(0, Compartment("im_depot", f="f_im"))
        flows.append(Flow("im_depot", "central", "ka_im"))
        routes[Route.INTRAMUSCULAR] = "im_depot"
    model = Model(name=name, parameters=params, covariates={"weight": WEIGHT},
                  definitions=defs, compartments=comps, flows=flows,
                  outputs={"ketamine": concentration("central / v1i", "ketamine",
                                                     "racemic ketamine")},
                  routes=routes, citation=cite_short(key))
    iiv = RandomEffects.diagonal({f"eta_{k}": cv_to_omega2(v) for k, v in bsv_cv.items()},
                                 source=f"{source}: BSV as CV, ω² = ln(1 + CV²)")
    return LibraryModel(name=name, title=title, citation=cite(key), compound="racemic",
                        model=model,
                        analytes=(Analyte("ketamine", "ketamine", MOLAR_MASS["ketamine"],
                                          "racemic ketamine"),),
                        population=population, iiv=iiv if bsv_cv else None,
                        assumptions=assumptions)
