"""Simons 2022: S-ketamine oral thin film (sublingual/buccal) and IV, with S-NK and S-HNK.

Three-compartment S-ketamine, two-compartment S-norketamine and S-hydroxynorketamine, with
two-compartment metabolism delay chains; the film dose is absorbed by a mucosal route
(F1, zero-order D1, then KA1) and a swallowed route (F2, D2, KA2, gut-to-liver transit MTTG)
that feeds hepatic metabolism only. Arterial sampling. All states carry S-ketamine mass;
metabolite concentrations convert by molar mass (µmol/L × molar mass of the metabolite).
Source: Simons 2022 Table 4 (key ``simons2022a``) as encoded in nlmixr2lib
``Simons_2022_s_ketamine.R`` [V].
"""

from __future__ import annotations

from ketasim.dosing.route import Route
from ketasim.model.model import Compartment, Covariate, Flow, Model
from ketasim.pk.library._common import (
    WEIGHT,
    adult_weight,
    assumed,
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

T4 = "simons2022a, Table 4 (as coded in nlmixr2lib, Simons_2022_s_ketamine.R) [V]"
MK, MNK, MHNK = MOLAR_MASS["ketamine"], MOLAR_MASS["norketamine"], MOLAR_MASS["hnk"]


def build() -> LibraryModel:
    """Build the library entry."""
    p = {
        "f1": lit(0.263, "", "mucosal bioavailability F1", T4),
        "d1": lit(13.1, "min", "mucosal zero-order input duration D1", T4),
        "ka1": lit(0.04, "1/min", "mucosal absorption rate constant KA1", T4),
        "f2": lit(1.16, "", "swallowed fraction into hepatic metabolism F2 (a scaling term)", T4),
        "d2": lit(29.9, "min", "swallowed zero-order input duration D2", T4),
        "ka2": lit(0.049, "1/min", "gastrointestinal absorption rate constant KA2", T4),
        "mttg": lit(10.7, "min", "gut-to-liver mean transit time", T4),
        "vk1": lit(11.6, "L", "S-ketamine central volume at 70 kg", T4),
        "vk2": lit(39.0, "L", "S-ketamine peripheral volume 1 at 70 kg", T4),
        "vk3": lit(174.0, "L", "S-ketamine peripheral volume 2 at 70 kg", T4),
        "clk1": lit(1.48, "L/min", "S-ketamine clearance into metabolism at 70 kg", T4),
        "clk2": lit(2.43, "L/min", "S-ketamine intercompartmental clearance 1", T4),
        "clk3": lit(1.21, "L/min", "S-ketamine intercompartmental clearance 2", T4),
        "mtt_nk": lit(20.1, "min", "mean transit time of the S-ketamine metabolism chain", T4),
        "fm_nk": lit(0.8, "", "fraction of metabolised S-ketamine forming S-NK (fixed by "
                     "the authors)", "simons2022a, Methods: fixed by the authors [V]"),
        "vn2": lit(221.0, "L", "S-norketamine peripheral volume at 70 kg", T4),
        "cln1": lit(1.00, "L/min", "S-norketamine clearance into metabolism at 70 kg", T4),
        "cln2": lit(2.63, "L/min", "S-norketamine intercompartmental clearance", T4),
        "mtt_hnk": lit(1.12, "min", "mean transit time of the S-NK metabolism chain", T4),
        "fm_hnk": lit(0.7, "", "fraction of metabolised S-NK forming S-HNK (fixed by the "
                      "authors)", "simons2022a, Methods: fixed by the authors [V]"),
        "vh1": lit(4.4, "L", "S-HNK central volume at 70 kg", T4),
        "vh2": lit(87.5, "L", "S-HNK peripheral volume at 70 kg", T4),
        "clh1": lit(0.933, "L/min", "S-HNK clearance at 70 kg", T4),
        "clh2": lit(1.70, "L/min", "S-HNK intercompartmental clearance", T4),
        "allo_cl": assumed(0.75, "", "allometric exponent on clearances",
                           "not printed in simons2022a; standard value (nlmixr2lib vignette)"),
        "allo_v": assumed(1.0, "", "allometric exponent on volumes",
                          "not printed in simons2022a; standard value (nlmixr2lib vignette)"),
    }
    etas = ("vk1", "clk1", "clk3", "cln1", "mtt_nk", "vh1", "clh1", "clh2")
    p.update({f"eta_{k}": eta(k) for k in etas})
    d = {
        "wc": "(weight / 70) ** allo_cl", "wv": "(weight / 70) ** allo_v",
        "vk1i": "vk1 * wv * exp(eta_vk1)", "vk2i": "vk2 * wv", "vk3i": "vk3 * wv",
        "clk1i": "clk1 * wc * exp(eta_clk1)", "clk2i": "clk2 * wc",
        "clk3i": "clk3 * wc * exp(eta_clk3)",
        "vn1i": "vk1i", "vn2i": "vn2 * wv", "cln1i": "cln1 * wc * exp(eta_cln1)",
        "cln2i": "cln2 * wc",
        "vh1i": "vh1 * wv * exp(eta_vh1)", "vh2i": "vh2 * wv",
        "clh1i": "clh1 * wc * exp(eta_clh1)", "clh2i": "clh2 * wc * exp(eta_clh2)",
        "ktr_nk": "2 / (mtt_nk * exp(eta_mtt_nk))", "ktr_hnk": "2 / mtt_hnk",
    }
    comps = [
        Compartment("depot", f="f1 * exp(iov_f1)", duration="d1 * exp(iov_d1)",
                    zero_order=True),
        Compartment("depot2", f="f2 * exp(iov_f2)", duration="d2 * exp(iov_d2)",
                    zero_order=True),
        Compartment("gut_liver"),
        Compartment("central"), Compartment("periph1"), Compartment("periph2"),
        Compartment("tr1_nk"), Compartment("tr2_nk"),
        Compartment("nk_central"), Compartment("nk_periph"),
        Compartment("tr1_hnk"), Compartment("tr2_hnk"),
        Compartment("hnk_central"), Compartment("hnk_periph"),
    ]
    flows = [
        Flow("depot", "central", "ka1"),
        Flow("depot2", "gut_liver", "ka2"), Flow("gut_liver", "tr1_nk", "1 / mttg"),
        Flow("central", "tr1_nk", "clk1i / vk1i"),
        Flow("central", "periph1", "clk2i / vk1i"), Flow("periph1", "central", "clk2i / vk2i"),
        Flow("central", "periph2", "clk3i / vk1i"), Flow("periph2", "central", "clk3i / vk3i"),
        Flow("tr1_nk", "tr2_nk", "ktr_nk"),
        Flow("tr2_nk", "nk_central", "fm_nk * ktr_nk"),
        Flow("tr2_nk", None, "(1 - fm_nk) * ktr_nk"),
        Flow("nk_central", "tr1_hnk", "cln1i / vn1i"),
        Flow("nk_central", "nk_periph", "cln2i / vn1i"),
        Flow("nk_periph", "nk_central", "cln2i / vn2i"),
        Flow("tr1_hnk", "tr2_hnk", "ktr_hnk"),
        Flow("tr2_hnk", "hnk_central", "fm_hnk * ktr_hnk"),
        Flow("tr2_hnk", None, "(1 - fm_hnk) * ktr_hnk"),
        Flow("hnk_central", None, "clh1i / vh1i"),
        Flow("hnk_central", "hnk_periph", "clh2i / vh1i"),
        Flow("hnk_periph", "hnk_central", "clh2i / vh2i"),
    ]
    model = Model(
        name="simons_2022", parameters=p,
        covariates={"weight": WEIGHT,
                    **{k: Covariate(0.0, "", f"inter-occasion random effect on {k[4:].upper()}",
                                    -10.0, 10.0)
                       for k in ("iov_f1", "iov_d1", "iov_f2", "iov_d2")}},
        definitions=d,
        compartments=comps, flows=flows,
        outputs={
            "s_ketamine": concentration("central / vk1i", "ketamine", "S-ketamine (arterial)"),
            "s_norketamine": concentration(f"nk_central / vn1i / {MK} * {MNK}", "norketamine",
                                           "S-norketamine (arterial)"),
            "s_hnk": concentration(f"hnk_central / vh1i / {MK} * {MHNK}", "hnk",
                                   "S-hydroxynorketamine (arterial)"),
        },
        routes={Route.SUBLINGUAL: ("depot", "depot2"), Route.BUCCAL: ("depot", "depot2"),
                Route.IV_BOLUS: "central", Route.IV_INFUSION: "central"},
        citation=cite_short("simons2022a"),
    )
    iiv = RandomEffects.diagonal(
        {"eta_vk1": 0.057, "eta_clk1": 0.029, "eta_clk3": 0.026, "eta_cln1": 0.050,
         "eta_mtt_nk": 0.021, "eta_vh1": 1.22, "eta_clh1": 0.103, "eta_clh2": 0.287},
        source=T4 + " (ω²)")
    return LibraryModel(
        name="simons_2022",
        title="Simons 2022 S-ketamine oral thin film (SL/buccal) + IV, with S-NK and S-HNK",
        citation=cite("simons2022a"),
        compound="esketamine",
        model=model,
        analytes=(Analyte("s_ketamine", "s_ketamine", MK, "S-ketamine"),
                  Analyte("s_norketamine", "s_norketamine", MNK, "S-norketamine"),
                  Analyte("s_hnk", "s_hnk", MHNK, "S-hydroxynorketamine")),
        population=StudyPopulation(
            "20 healthy volunteers, 19-32 y, 53-93 kg, 50 % female [V]", 20,
            ranges={"weight": (53.0, 93.0), "age": (19.0, 32.0)},
            distributions=(adult_weight(73.0, 12.0, 53.0, 93.0, "simons2022a, Table 1 [V]"),),
            sampling_site="arterial"),
        iiv=iiv,
        iov=RandomEffects.diagonal(
            {"iov_f1": 0.060, "iov_d1": 0.154, "iov_f2": 0.057, "iov_d2": 0.611},
            source=T4 + " (ν², per occasion)"),
        residual={
            "s_ketamine": ResidualError(proportional=0.1095, source=T4 + " (0.012 read as a "
                                        "variance)"),
            "s_norketamine": ResidualError(proportional=0.102, additive=0.058 * MNK / 1000,
                                           source=T4 + " (additive 0.058 nmol/mL)"),
            "s_hnk": ResidualError(proportional=0.079, additive=0.020 * MHNK / 1000,
                                   source=T4 + " (additive 0.020 nmol/mL)"),
        },
        assumptions=("Allometric exponents 0.75/1 are not printed in the paper (standard values).",
                     "Inter-occasion variability (Table 4) is applied to F1, D1, F2 and D2, "
                     "one draw per administration; the IOV on KA1, KA2, MTTG, MTT K→NK, VH2 "
                     "and CLH1 is not applied (rate constants are fixed per subject).",
                     "Sublingual and buccal placement share one absorption model (pooled in "
                     "the study)."),
    )
