"""ketasim's enantiomer-resolved racemic ketamine model for the routes clinics use.

Each enantiomer gets half of a racemic dose. Disposition is the venous S-ketamine model of
Fanta 2015 (as fixed by Otto 2021) for both, with R-ketamine clearance 0.944 × S (Hasan 2021:
1530 vs 1620 mL/min) and shared distribution (Henthorn 2018). All ketamine clearance forms
norketamine (Otto 2021, fm = 1; S-norketamine disposition from Otto 2021 for both
enantiomers). 70 % of norketamine clearance forms hydroxynorketamine (the fraction Simons 2022
fixed) with Simons 2022's S-HNK disposition. Extravascular routes use the bioavailabilities
of the reference route table. Part of the oral or rectal dose that does not reach the
circulation as ketamine forms norketamine before it does (first pass); the fraction is
calibrated to the oral norketamine/ketamine AUC0-8h ratio (Chong 2009) and the oral
absorption rate to the oral Tmax (Chong 2006). A sublingual/buccal dose is absorbed through
the mucosa (F 0.29, Rolan 2014); a calibrated share of its non-bioavailable part is
swallowed and meets the same first pass (sublingual ratio, Chong 2009). Intranasal doses get
no first-pass norketamine (Yanagihara 2003: the oral/intranasal norketamine contrast).

This is a composite: every parameter says where it comes from, and what is assumed is
tagged ``assumed``. Dehydronorketamine is not modelled (parameters not retrieved).
"""

from __future__ import annotations

from ketasim.dosing.route import Route
from ketasim.model.model import Compartment, Covariate, Flow, Model
from ketasim.pk.library._common import assumed, calibrated, concentration, eta, lit
from ketasim.pk.library_model import (
    MOLAR_MASS,
    Analyte,
    CovariateDistribution,
    LibraryModel,
    RandomEffects,
    ResidualError,
    StudyPopulation,
)
from ketasim.references import full_source, render_source

FANTA = "fanta2015: S-ketamine disposition as fixed by otto2021, Table 3 [V]"
OTTO = "otto2021, Table 3: S-norketamine [V]"
SIMONS = "simons2022a, Table 4: S-hydroxynorketamine [V]"
COMPOSITE = ("ketasim composite: fanta2015 and otto2021 (disposition, norketamine), hasan2021 "
             "(R/S clearance), henthorn2018 (shared distribution), simons2022a (HNK); route "
             "bioavailabilities from clements1982, yanagihara2003 and rolan2014; oral and "
             "sublingual absorption calibrated to chong2006 and chong2009")
MK, MHNK = MOLAR_MASS["ketamine"], MOLAR_MASS["hnk"]

# route -> (bioavailability, absorption rate, first pass): the first pass is None (no
# first-pass norketamine) or (rate at which it appears, fraction of the non-bioavailable
# dose that meets it: "1" for doses swallowed or given rectally, a parameter otherwise)
_ROUTES: dict[Route, tuple[str, str, tuple[str, str] | None]] = {
    Route.INTRAMUSCULAR: ("f_im", "ka_im", None),
    Route.SUBCUTANEOUS: ("f_sc", "ka_sc", None),
    Route.INTRANASAL: ("f_in", "ka_in", None),
    Route.ORAL: ("f_po", "ka_po", ("ka_po", "1")),
    Route.SUBLINGUAL: ("f_sl", "ka_sl", ("ka_po", "fsw_sl")),
    Route.BUCCAL: ("f_sl", "ka_sl", ("ka_po", "fsw_sl")),
    Route.RECTAL: ("f_pr", "ka_pr", ("ka_pr", "1")),
}


def _parameters() -> dict:
    p = {
        "v1": lit(133.0, "L", "central volume at 70 kg (each enantiomer)", FANTA),
        "cl_s": lit(95.2, "L/h", "S-ketamine clearance at 70 kg", FANTA),
        "r_cl_ratio": lit(0.944, "", "R/S clearance ratio (1530/1620 mL/min)",
                          "hasan2021, abstract [V]"),
        "vp1": lit(187.0, "L", "peripheral volume 1 (shared by S and R)",
                   FANTA + "; shared distribution: henthorn2018, abstract [V]"),
        "q1": lit(23.2, "L/h", "intercompartmental clearance 1", FANTA),
        "vp2": lit(98.8, "L", "peripheral volume 2", FANTA),
        "q2": lit(157.0, "L/h", "intercompartmental clearance 2", FANTA),
        "v_nk": lit(98.638, "L", "norketamine central volume at 70 kg", OTTO),
        "cl_nk": lit(57.72, "L/h", "norketamine clearance at 70 kg", OTTO),
        "vp_nk": lit(160.04, "L", "norketamine peripheral volume", OTTO),
        "q_nk": lit(42.778, "L/h", "norketamine intercompartmental clearance", OTTO),
        "fm_hnk": assumed(0.7, "", "fraction of norketamine clearance forming HNK",
                          "simons2022a fixed this fraction for S-NK (not estimated); applied "
                          "to both enantiomers"),
        "v_hnk": lit(4.4, "L", "HNK central volume at 70 kg", SIMONS),
        "vp_hnk": lit(87.5, "L", "HNK peripheral volume at 70 kg", SIMONS),
        "cl_hnk": lit(0.933, "L/min", "HNK clearance at 70 kg", SIMONS),
        "q_hnk": lit(1.70, "L/min", "HNK intercompartmental clearance at 70 kg", SIMONS),
        "fm_presys": calibrated(0.6305, "", "fraction of the oral first-pass loss forming "
                                "norketamine", "ketasim.validation.calibration "
                                "'racemic.fm_presys': oral 25 mg norketamine/ketamine AUC0-8h "
                                "ratio 5 (chong2009, abstract) [V]"),
        "f_im": lit(0.93, "", "IM bioavailability (adults)",
                    "clements1982 [S]", "S"),
        "ka_im": calibrated(14.12, "1/h", "IM absorption rate constant",
                            "ketasim.validation.calibration 'racemic.ka_im': Tmax 10 min (IM Tmax "
                            "5-15 min, clements1982 [S])"),
        "f_sc": assumed(0.93, "", "SC bioavailability",
                        "no human SC bioavailability retrieved [U gap]; taken equal to IM "
                        "(rats: SC ≈ IM ≈ IV exposure, PubMed 29895202)"),
        "ka_sc": assumed(14.12, "1/h", "SC absorption rate constant",
                         "no human data [U gap]; taken equal to IM"),
        "f_in": lit(0.45, "", "intranasal bioavailability (racemic spray)",
                    "yanagihara2003, abstract [V] (n = 3)"),
        "ka_in": lit(2.93, "1/h", "nasal absorption rate constant",
                     "perezruixo2021, Table 3: ka_n (esketamine spray) [V]; assumed to hold "
                     "for racemic spray"),
        "f_po": lit(0.20, "", "oral bioavailability (tablet)", "yanagihara2003, abstract [V]"),
        "ka_po": calibrated(1.0868, "1/h", "oral absorption rate constant",
                            "ketasim.validation.calibration 'racemic.ka_po': oral 25 mg "
                            "ketamine Tmax 0.96 h (chong2006, abstract) [V]; replaces "
                            "brunette2011's paediatric absorption t½ of 59 min"),
        "f_sl": lit(0.29, "", "sublingual bioavailability (wafer)",
                    "rolan2014, abstract [V]"),
        "fsw_sl": calibrated(0.4097, "", "fraction of the non-bioavailable sublingual/buccal "
                             "dose that is swallowed and meets first-pass metabolism",
                             "ketasim.validation.calibration 'racemic.fsw_sl': sublingual "
                             "25 mg norketamine/ketamine AUC0-8h ratio 2.1 (chong2009, "
                             "abstract) [V]"),
        "ka_sl": calibrated(1.524, "1/h", "sublingual absorption rate constant",
                            "ketasim.validation.calibration 'racemic.ka_sl': Tmax 0.75 h "
                            "(rolan2014, abstract) [V]"),
        "f_pr": lit(0.30, "", "rectal bioavailability (suppository)",
                    "yanagihara2003, abstract [V]"),
        "ka_pr": assumed(1.0868, "1/h", "rectal absorption rate constant",
                         "yanagihara2003: rectal profile similar to the tablet; the oral ka "
                         "(calibrated, 'racemic.ka_po') is used"),
    }
    for k in ("v1", "cl", "v_nk", "cl_nk", "v_hnk", "cl_hnk", "q_hnk"):
        p[f"eta_{k}"] = eta(k)
    return p


def build() -> LibraryModel:
    """Build the library entry."""
    d = {
        "fw": "weight / 70",
        "v1i": "v1 * fw * exp(eta_v1)",
        "cl_si": "cl_s * fw ** 0.75 * exp(eta_cl)", "cl_ri": "cl_si * r_cl_ratio",
        "v_nki": "v_nk * fw * exp(eta_v_nk)", "cl_nki": "cl_nk * fw ** 0.75 * exp(eta_cl_nk)",
        "v_hnki": "v_hnk * fw * exp(eta_v_hnk)", "vp_hnki": "vp_hnk * fw",
        "cl_hnki": "cl_hnk * fw ** 0.75 * exp(eta_cl_hnk)",
        "q_hnki": "q_hnk * fw ** 0.75 * exp(eta_q_hnk)",
    }
    comps: list[Compartment] = []
    flows: list[Flow] = []
    routes: dict[Route, tuple[str, ...]] = {Route.IV_BOLUS: ("s_central", "r_central"),
                                            Route.IV_INFUSION: ("s_central", "r_central")}
    for e in ("s", "r"):
        comps += [Compartment(f"{e}_central", f=0.5), Compartment(f"{e}_periph1"),
                  Compartment(f"{e}_periph2"), Compartment(f"{e}_nk"),
                  Compartment(f"{e}_nk_periph"), Compartment(f"{e}_hnk"),
                  Compartment(f"{e}_hnk_periph")]
        flows += [
            Flow(f"{e}_central", f"{e}_nk", f"cl_{e}i / v1i"),
            Flow(f"{e}_central", f"{e}_periph1", "q1 / v1i"),
            Flow(f"{e}_periph1", f"{e}_central", "q1 / vp1"),
            Flow(f"{e}_central", f"{e}_periph2", "q2 / v1i"),
            Flow(f"{e}_periph2", f"{e}_central", "q2 / vp2"),
            Flow(f"{e}_nk", f"{e}_hnk", "fm_hnk * cl_nki / v_nki"),
            Flow(f"{e}_nk", None, "(1 - fm_hnk) * cl_nki / v_nki"),
            Flow(f"{e}_nk", f"{e}_nk_periph", "q_nk / v_nki"),
            Flow(f"{e}_nk_periph", f"{e}_nk", "q_nk / vp_nk"),
            Flow(f"{e}_hnk", None, "cl_hnki / v_hnki"),
            Flow(f"{e}_hnk", f"{e}_hnk_periph", "q_hnki / v_hnki"),
            Flow(f"{e}_hnk_periph", f"{e}_hnk", "q_hnki / vp_hnki"),
        ]
    names = set()
    for route, (f, ka, first) in _ROUTES.items():
        targets: list[str] = []
        for e in ("s", "r"):
            depot, first_pass = f"{e}_depot_{f[2:]}", f"{e}_firstpass_{f[2:]}"
            if depot not in names:
                names.add(depot)
                comps.append(Compartment(depot, f=f"0.5 * {f}"))
                flows.append(Flow(depot, f"{e}_central", ka))
                if first is not None:
                    ka_fp, swallowed = first
                    comps.append(Compartment(
                        first_pass, f=f"0.5 * (1 - {f}) * {swallowed} * fm_presys"))
                    flows.append(Flow(first_pass, f"{e}_nk", ka_fp))
            targets.append(depot)
            if first is not None:
                targets.append(first_pass)
        routes[route] = tuple(targets)
    conv = f"{MHNK} / {MK}"
    outputs = {
        "ketamine": concentration("(s_central + r_central) / v1i", "ketamine",
                                  "racemic ketamine (S + R), venous"),
        "s_ketamine": concentration("s_central / v1i", "ketamine", "S-ketamine"),
        "r_ketamine": concentration("r_central / v1i", "ketamine", "R-ketamine"),
        "norketamine": concentration("(s_nk + r_nk) / v_nki", "norketamine", "norketamine"),
        "s_norketamine": concentration("s_nk / v_nki", "norketamine", "S-norketamine"),
        "r_norketamine": concentration("r_nk / v_nki", "norketamine", "R-norketamine"),
        "hnk": concentration(f"(s_hnk + r_hnk) / v_hnki * {conv}", "hnk",
                             "hydroxynorketamine (2S,6S + 2R,6R)"),
        "s_hnk": concentration(f"s_hnk / v_hnki * {conv}", "hnk", "(2S,6S)-HNK"),
        "r_hnk": concentration(f"r_hnk / v_hnki * {conv}", "hnk", "(2R,6R)-HNK"),
    }
    model = Model(
        name="racemic_enantiomers", parameters=_parameters(),
        covariates={"weight": Covariate(None, "kg", "body weight", 0.5, 400.0),
                    "age": Covariate(45.0, "year", "age (not a covariate of this model)",
                                     0.0, 120.0)},
        definitions=d, compartments=comps, flows=flows, outputs=outputs, routes=routes,
        citation=render_source(COMPOSITE))
    iiv = RandomEffects.blocks(
        (("eta_v1", "eta_cl"), [[0.084177, 0.02261], [0.02261, 0.026048]]),
        (("eta_v_nk", "eta_cl_nk"), [[0.040426, 0.04456], [0.04456, 0.10319]]),
        (("eta_v_hnk", "eta_cl_hnk", "eta_q_hnk"),
         [[1.22, 0.0, 0.0], [0.0, 0.103, 0.0], [0.0, 0.0, 0.287]]),
        source="otto2021, Table 3 (ketamine, norketamine blocks) [V]; simons2022a, Table 4 "
               "(HNK) [V]; the same random effects act on S and R (assumed)")
    return LibraryModel(
        name="racemic_enantiomers",
        title="ketasim racemic ketamine, S and R resolved, with norketamine and HNK (all "
              "clinic routes)",
        citation=full_source(COMPOSITE),
        compound="racemic",
        model=model,
        analytes=tuple(Analyte(k, k, o.molar_mass or MK, o.description)
                       for k, o in outputs.items()),
        population=StudyPopulation(
            "adults treated with ketamine (assumed clinic population: 18-80 y, 45-150 kg); "
            "disposition estimated in healthy volunteers (Fanta 2015, Otto 2021)", 0,
            ranges={"weight": (45.0, 150.0), "age": (18.0, 80.0)},
            distributions=(
                CovariateDistribution("weight", "lognormal", mean=80.0, sd=0.2, low=45.0,
                                      high=150.0, source="assumed adult clinic population"),
                CovariateDistribution("age", "normal", mean=45.0, sd=13.0, low=18.0,
                                      high=80.0, source="assumed adult clinic population"),
            ),
            sampling_site="venous"),
        iiv=iiv,
        residual={"ketamine": ResidualError(proportional=0.23609, source=OTTO),
                  "s_ketamine": ResidualError(proportional=0.23609, source=OTTO),
                  "r_ketamine": ResidualError(proportional=0.23609, source=OTTO),
                  "norketamine": ResidualError(proportional=0.14261, source=OTTO),
                  "s_norketamine": ResidualError(proportional=0.14261, source=OTTO),
                  "r_norketamine": ResidualError(proportional=0.14261, source=OTTO),
                  "hnk": ResidualError(proportional=0.079, source=SIMONS),
                  "s_hnk": ResidualError(proportional=0.079, source=SIMONS),
                  "r_hnk": ResidualError(proportional=0.079, source=SIMONS)},
        assumptions=(
            "Both enantiomers use the S-ketamine (Fanta 2015) disposition; R clearance is "
            "0.944 × S (Hasan 2021) and distribution is shared (Henthorn 2018).",
            "R-norketamine and R-HNK use the S parameters (no R-metabolite model retrieved).",
            "63 % of the first-pass loss of oral (and, assumed alike, rectal) doses forms "
            "norketamine, calibrated to the oral NK/K AUC0-8h ratio of 5 (Chong 2009); the "
            "oral absorption rate is calibrated to the oral Tmax of the same patients (Chong "
            "2006).",
            "41 % of the non-bioavailable part of a sublingual/buccal dose is swallowed and "
            "meets that first pass, calibrated to the sublingual NK/K AUC0-8h ratio of 2.1 "
            "(Chong 2009); Yanagihara 2003's sublingual/oral norketamine contrast is held out.",
            "Intranasal doses form no first-pass norketamine: Yanagihara 2003's intranasal/"
            "oral norketamine contrast (0.40 per mg) is met without it and missed with it "
            "(0.44 against 1.07), so that check informed the choice and is not fully "
            "independent. The esketamine spray (perez_ruixo_2021) does model its swallowed "
            "part.",
            "Rectal doses get the oral first pass in full (assumed; Yanagihara 2003's rectal "
            "norketamine is lower, a known discrepancy).",
            "SC bioavailability and absorption are taken equal to IM (no human SC data).",
            "IM and sublingual absorption rate constants are calibrated to reported Tmax "
            "(ketasim.validation.calibration).",
            "The same random effects act on S and R of one subject.",
            "Dehydronorketamine is not modelled.",
        ),
        known_discrepancies=(
            "S-ketamine terminal half-life (slowest eigenvalue) 7.4 h against Hasan 2021's NCA "
            "5.2 ± 3.4 h: the deep peripheral compartment of Fanta 2015 (Vp1 187 L, Q1 "
            "23.2 L/h) dominates only after ~24 h; log-linear slopes over the windows an NCA "
            "could use give 3-7 h, and the eigenvalue lies inside Hasan's mean ± SD "
            "(ketasim validate pk).",
        ),
    )
