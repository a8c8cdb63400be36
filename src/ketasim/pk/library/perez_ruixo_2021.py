"""Perez-Ruixo 2021: esketamine nasal spray, IV and oral solution, with noresketamine.

Three-compartment esketamine with a hepato-portal (liver) first-pass compartment; two-
compartment apparent noresketamine. A nasal dose is given as 28-mg devices 5 minutes apart
(the label); each device splits into a nasal part (F = FRn, first-order ka_n into central)
and a swallowed part (F = (1 − FRn)·Fgut, zero-order over Dsw then ka_sw into the liver).
The second and later devices of a dose have FRn × 0.62. Covariates: Asian (kel × 0.36,
CLn/F × 0.81), Japanese (FRn × 1.34), age above 60 (Qh − 2.19 L/h per year).
Source: Table 3 as encoded in nlmixr2lib ``PerezRuixo_2020_esketamine.R`` [V].
"""

from __future__ import annotations

import math

from ketasim.dosing.events import EventTable
from ketasim.dosing.route import Route
from ketasim.errors import DoseError
from ketasim.model.model import Compartment, Covariate, Flow, Model
from ketasim.pk.library._common import cite, cite_short, concentration, eta, lit
from ketasim.pk.library_model import (
    MOLAR_MASS,
    Analyte,
    CovariateDistribution,
    LibraryModel,
    RandomEffects,
    ResidualError,
    StudyPopulation,
)

T3 = ("perezruixo2021, Table 3 (as coded in nlmixr2lib, PerezRuixo_2020_esketamine.R) [V]")
DEVICE_MG = 28.0
DEVICE_GAP_H = 5.0 / 60.0


def expand_devices(table: EventTable) -> EventTable:
    """Split intranasal doses into 28-mg devices given 5 minutes apart (``device`` 1, 2, …).

    >>> from ketasim.dosing import parse_regimen
    >>> t = expand_devices(parse_regimen("84 mg intranasal").to_events())
    >>> t.time.tolist(), t.amt.tolist(), t.covariates["device"].tolist()
    ([0.0, 0.08333333333333333, 0.16666666666666666], [28.0, 28.0, 28.0], [1.0, 2.0, 3.0])
    """
    rows = []
    frame = table.to_frame()
    if "device" not in frame:
        frame["device"] = 1.0
    for rec in frame.to_dict("records"):
        nasal = rec["ROUTE"] == Route.INTRANASAL.value and rec["EVID"] in (1, 4)
        if not nasal:
            rows.append(rec)
            continue
        n = rec["AMT"] / DEVICE_MG
        if abs(n - round(n)) > 1e-9 or round(n) < 1:
            raise DoseError("amount", f"{rec['AMT']:g} mg intranasal esketamine is not a whole "
                            "number of 28-mg devices", "give 28, 56 or 84 mg (1-3 devices)")
        for k in range(round(n)):
            rows.append({**rec, "TIME": rec["TIME"] + k * DEVICE_GAP_H, "AMT": DEVICE_MG,
                         "device": float(k + 1), "EVID": rec["EVID"] if k == 0 else 1})
    import pandas as pd
    out = pd.DataFrame(rows)
    out = out.sort_values(["ID", "TIME"], kind="stable").reset_index(drop=True)
    return EventTable.from_frame(out, covariates=[*table.covariates, "device"]
                                 if "device" not in table.covariates else list(table.covariates))


def build() -> LibraryModel:
    """Build the library entry."""
    logit = math.log(0.54 / 0.46)
    p = {
        "frn_logit": lit(logit, "", "logit of the per-device nasal fraction FRn = 0.54", T3),
        "f_jap": lit(1.34, "", "FRn multiplier, Japanese", T3),
        "f_next": lit(0.62, "", "FRn multiplier, second and later devices", T3),
        "ka_n": lit(2.93, "1/h", "nasal absorption rate constant", T3),
        "dsw": lit(0.53, "h", "zero-order duration, swallowed nasal part", T3),
        "ka_sw": lit(1.45, "1/h", "absorption rate constant, swallowed nasal part", T3),
        "dpo": lit(0.32, "h", "zero-order duration, oral solution", T3),
        "ka_po": lit(0.97, "1/h", "absorption rate constant, oral solution", T3),
        "fgut": lit(0.64, "", "fraction escaping gut metabolism", T3),
        "vc": lit(192.0, "L", "esketamine central volume", T3),
        "q1": lit(84.3, "L/h", "intercompartmental clearance 1", T3),
        "vp1": lit(143.0, "L", "peripheral volume 1", T3),
        "q2": lit(37.6, "L/h", "intercompartmental clearance 2", T3),
        "vp2": lit(417.0, "L", "peripheral volume 2", T3),
        "qh": lit(151.0, "L/h", "hepatic blood flow", T3),
        "qh_age": lit(2.19, "L/h/year", "decrease of Qh per year of age above 60", T3),
        "vh": lit(101.0, "L", "hepato-portal volume", T3),
        "kel": lit(1.11, "1/h", "hepatic elimination to other metabolites", T3),
        "f_asian_kel": lit(0.36, "", "kel multiplier, Asian", T3),
        "kmet": lit(2.77, "1/h", "hepatic metabolism to noresketamine", T3),
        "vcn": lit(70.0, "L", "noresketamine apparent central volume Vcn/F", T3),
        "cln": lit(38.0, "L/h", "noresketamine apparent clearance CLn/F", T3),
        "f_asian_cln": lit(0.81, "", "CLn/F multiplier, Asian", T3),
        "vpn": lit(115.0, "L", "noresketamine apparent peripheral volume", T3),
        "q3": lit(26.1, "L/h", "noresketamine apparent intercompartmental clearance", T3),
    }
    etas = ("frn", "ka_n", "ka_sw", "ka_po", "vc", "vp1", "qh", "vh", "kel", "kmet", "vcn",
            "cln")
    p.update({f"eta_{k}": eta(k) for k in etas})
    d = {
        "frn1": "min(1 / (1 + exp(-(frn_logit + eta_frn))) * f_jap ** japanese, 1.0)",
        "frn": "frn1 * where(device > 1, f_next, 1.0)",
        "ka_ni": "ka_n * exp(eta_ka_n)", "ka_swi": "ka_sw * exp(eta_ka_sw)",
        "ka_poi": "ka_po * exp(eta_ka_po)",
        "vci": "vc * exp(eta_vc)", "vp1i": "vp1 * exp(eta_vp1)",
        "qhi": "(qh - qh_age * max(age - 60, 0)) * exp(eta_qh)", "vhi": "vh * exp(eta_vh)",
        "keli": "kel * exp(eta_kel) * f_asian_kel ** asian", "kmeti": "kmet * exp(eta_kmet)",
        "vcni": "vcn * exp(eta_vcn)", "clni": "cln * exp(eta_cln) * f_asian_cln ** asian",
    }
    comps = [
        Compartment("nasal", f="frn"),
        Compartment("gut_sw", f="(1 - frn) * fgut", duration="dsw", zero_order=True),
        Compartment("gut_po", f="fgut", duration="dpo", zero_order=True),
        Compartment("central"), Compartment("periph1"), Compartment("periph2"),
        Compartment("liver"), Compartment("nor_central"), Compartment("nor_periph"),
    ]
    flows = [
        Flow("nasal", "central", "ka_ni"), Flow("gut_sw", "liver", "ka_swi"),
        Flow("gut_po", "liver", "ka_poi"),
        Flow("central", "periph1", "q1 / vci"), Flow("periph1", "central", "q1 / vp1i"),
        Flow("central", "periph2", "q2 / vci"), Flow("periph2", "central", "q2 / vp2"),
        Flow("central", "liver", "qhi / vci"), Flow("liver", "central", "qhi / vhi"),
        Flow("liver", None, "keli"), Flow("liver", "nor_central", "kmeti"),
        Flow("nor_central", None, "clni / vcni"),
        Flow("nor_central", "nor_periph", "q3 / vcni"), Flow("nor_periph", "nor_central",
                                                             "q3 / vpn"),
    ]
    model = Model(
        name="perez_ruixo_2021", parameters=p,
        covariates={"weight": Covariate(74.0, "kg", "body weight (not a covariate of this "
                                        "model)", 0.5, 400.0),
                    "age": Covariate(45.0, "year", "age", 0.0, 120.0),
                    "asian": Covariate(0.0, "", "Asian race (0/1)", 0.0, 1.0),
                    "japanese": Covariate(0.0, "", "Japanese (0/1)", 0.0, 1.0),
                    "device": Covariate(1.0, "", "device number within a nasal dose", 1.0,
                                        10.0)},
        definitions=d, compartments=comps, flows=flows,
        outputs={
            "esketamine": concentration("central / vci", "ketamine", "esketamine"),
            # apparent noresketamine, mass in esketamine units, as published (Table 3)
            "noresketamine": concentration("nor_central / vcni", "norketamine",
                                           "noresketamine (apparent)"),
        },
        routes={Route.INTRANASAL: ("nasal", "gut_sw"), Route.ORAL: "gut_po",
                Route.IV_BOLUS: "central", Route.IV_INFUSION: "central"},
        citation=cite_short("perezruixo2021"),
    )
    iiv = RandomEffects.diagonal(
        {"eta_frn": 0.501, "eta_ka_n": 0.319, "eta_ka_sw": 1.009, "eta_ka_po": 1.009,
         "eta_vc": 0.0730, "eta_vp1": 0.218, "eta_qh": 0.0524, "eta_vh": 0.113,
         "eta_kel": 0.892, "eta_kmet": 0.0862, "eta_vcn": 0.0955, "eta_cln": 0.0625},
        source=T3 + ": ω² = ln(1 + CV²); FRn additive on the logit scale (SD 0.708); kmet "
        "variance not printed in the paper — 30 % CV placeholder (assumed, as nlmixr2lib)")
    return LibraryModel(
        name="perez_ruixo_2021",
        title="Perez-Ruixo 2021 esketamine nasal spray / IV / oral, with noresketamine",
        citation=cite("perezruixo2021"),
        compound="esketamine",
        model=model,
        analytes=(Analyte("esketamine", "esketamine", MOLAR_MASS["ketamine"], "esketamine"),
                  Analyte("noresketamine", "noresketamine", MOLAR_MASS["norketamine"],
                          "noresketamine")),
        population=StudyPopulation(
            "820 subjects (256 healthy, 564 TRD), 18-86 y (median 45), 39-170 kg (median 74), "
            "58.4 % female, 13.7 % Asian (8.8 % Japanese) [V]", 820,
            ranges={"weight": (39.0, 170.0), "age": (18.0, 86.0)},
            distributions=(
                CovariateDistribution("age", "normal", mean=45.0, sd=13.0, low=18.0, high=86.0,
                                      source="perezruixo2021: median 45, range 18-86 [V]; "
                                      "SD assumed"),
                CovariateDistribution("weight", "lognormal", mean=74.0, sd=0.2, low=39.0,
                                      high=170.0, source="perezruixo2021: median 74 and "
                                      "range [V]; spread assumed"),
                CovariateDistribution("asian", "bernoulli", p=0.137,
                                      source="perezruixo2021: 13.7 % Asian [V]"),
            )),
        iiv=iiv,
        residual={"esketamine": ResidualError(exponential=0.276, source=T3 + " Phase I/II"),
                  "noresketamine": ResidualError(exponential=0.422, source=T3 + " Phase I/II")},
        assumptions=("IIV of kmet is not printed in the paper; a 30 % CV placeholder is used "
                     "(as in nlmixr2lib), marked assumed.",
                     "FRn × 1.34 (Japanese) can exceed 1 for a large random effect; it is "
                     "capped at 1 so that the swallowed fraction 1 − FRn stays ≥ 0.",
                     "Japanese subjects are 72 of the 112 Asian subjects; when sampling, a "
                     "virtual Asian subject is Japanese with probability 72/112.",
                     "Weight is not a covariate of this model (screened, not retained)."),
        known_discrepancies=(
            "Noresketamine AUC0-24 is 1.41-1.46× Table 4 (1.38-1.56× over all 18 strata) "
            "while every Table 4 esketamine Cmax/AUC and noresketamine Cmax is met within "
            "1 %. Table 4 is inconsistent with the paper's own CLn/F (38 L/h) and "
            "noresketamine Vss (185 L): with the formation that reproduces Cmax, AUC0-inf = "
            "formed amount / CLn/F exceeds Table 4's AUC0-24 by 1.6× (28 mg: 439 against "
            "274 ng·h/mL). Otto 2021's independent S-norketamine disposition agrees with "
            "Table 3 (0.93×). Kept as published (also met by the nlmixr2lib authors).",),
        expand_doses=expand_devices,
    )


def japanese_given_asian() -> float:
    """P(Japanese | Asian) in the source population: 72 of 112 [V Table 2]."""
    return 72.0 / 112.0


__all__ = ["DEVICE_GAP_H", "DEVICE_MG", "build", "expand_devices", "japanese_given_asian"]
