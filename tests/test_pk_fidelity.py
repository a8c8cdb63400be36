"""PK fidelity: library models against their papers' own numbers (issue #15, item 4).

1. Perez-Ruixo 2021 Table 4, all 18 strata (race × age × dose); the noresketamine AUC column
   is a documented known discrepancy, and the evidence for it is tested here.
2. Racemic oral and sublingual absorption: the calibrations (Chong 2006/2009) and the
   held-out checks (Yanagihara 2003), and the route bioavailabilities they rest on.
3. The Kamp 2020 band and the Hasan 2021 half-life: transcriptions checked against the
   papers, the half-life compared like with like (a log-linear slope, as NCA takes it).
"""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ketasim.pk import get_model
from ketasim.population import metrics, run_pk
from ketasim.validation import run_pk_validation
from ketasim.validation.calibration import CALIBRATIONS

# Perez-Ruixo 2021 Table 4 (typical values): (asian, japanese, age) -> dose -> (esketamine
# Cmax ng/mL, AUC0-24 ng·h/mL, noresketamine Cmax, AUC0-24)
TABLE4 = {
    (0, 0, 45): {28: (43.8, 147.3, 59.1, 274.4), 56: (72.5, 254.7, 119.7, 516.3),
                 84: (101.0, 362.2, 180.0, 758.0)},
    (1, 0, 45): {28: (44.1, 158.2, 73.4, 371.8), 56: (73.2, 275.9, 148.5, 704.8),
                 84: (102.4, 393.5, 223.5, 1037.0)},
    (1, 1, 45): {28: (57.5, 194.7, 72.1, 406.4), 56: (94.5, 335.1, 146.3, 760.8),
                 84: (131.3, 475.4, 220.4, 1114.0)},
    (0, 0, 70): {28: (44.6, 160.4, 57.3, 277.9), 56: (73.8, 275.8, 117.2, 522.0),
                 84: (102.7, 391.2, 177.0, 765.9)},
    (1, 0, 70): {28: (44.9, 171.0, 71.4, 373.9), 56: (74.4, 296.3, 145.9, 708.0),
                 84: (103.8, 421.5, 220.4, 1042.0)},
    (1, 1, 70): {28: (58.8, 212.2, 69.0, 409.2), 56: (96.5, 363.1, 141.7, 765.3),
                 84: (133.8, 513.9, 214.4, 1121.0)},
}
T24 = np.arange(0.0, 24.0 + 1e-9, 1.0 / 60.0)
W70 = {"weight": 70.0}
KETASIM = str(Path(sys.executable).with_name("ketasim"))  # the installed entry point


def _table4_ratios(model=None) -> np.ndarray:
    """Model/Table 4 for every stratum and dose: rows of (esk Cmax, esk AUC, nor Cmax, nor AUC)."""
    out = []
    for (asian, japanese, age), rows in TABLE4.items():
        for dose, published in rows.items():
            run = run_pk(f"{dose} mg esketamine intranasal", model=model or "perez_ruixo_2021",
                         covariates={"asian": asian, "japanese": japanese, "age": age},
                         times=T24, allow_extrapolation=True)
            e = run.concentration("esketamine", "ng/mL")
            n = run.concentration("noresketamine", "ng/mL")
            pred = (metrics.cmax(T24, e)[0], metrics.auc(T24, e)[0], metrics.cmax(T24, n)[0],
                    metrics.auc(T24, n)[0])
            out.append(np.array(pred) / np.array(published))
    return np.array(out)


@pytest.fixture(scope="module")
def table4() -> np.ndarray:
    return _table4_ratios()


def test_perez_ruixo_table4_esketamine_and_noresketamine_cmax_all_strata(table4) -> None:
    # Table 3 as printed reproduces three of Table 4's four columns in every stratum
    assert np.all(np.abs(table4[:, :3] - 1.0) < 0.02), table4[:, :3]


def test_perez_ruixo_noresketamine_auc_is_the_documented_discrepancy(table4) -> None:
    nor_auc = table4[:, 3]
    assert np.all((1.37 <= nor_auc) & (nor_auc <= 1.57)), nor_auc
    caucasian_18_60 = nor_auc[:3]
    assert np.all((1.40 <= caucasian_18_60) & (caucasian_18_60 <= 1.47))
    lm = get_model("perez_ruixo_2021")
    assert any("Table 4" in d for d in lm.known_discrepancies)


def test_perez_ruixo_table4_auc_contradicts_the_papers_own_clearance() -> None:
    """The evidence for keeping Table 3: with the formation that reproduces noresketamine
    Cmax, AUC0-inf = formed amount / (CLn/F) is fixed by Table 3's CLn/F = 38 L/h (also in
    the abstract), and the short noresketamine Vss/CL (185 L / 38 L/h, abstract) puts most of
    it inside 24 h; Table 4's AUC0-24 is only ~62 % of that AUC0-inf."""
    lm = get_model("perez_ruixo_2021")
    p = lm.model.individual({"device": 1.0})
    fm = float(p["kmeti"] / (p["kmeti"] + p["keli"]))
    assert fm == pytest.approx(2.77 / 3.88, rel=1e-9)
    absorbed = 28.0 * (0.54 + 0.46 * 0.64)  # nasal + swallowed part escaping the gut (mg)
    auc_inf = fm * absorbed / 38.0 * 1000.0  # ng·h/mL
    assert auc_inf == pytest.approx(439.0, rel=0.01)
    times = np.arange(0.0, 240.0 + 1e-9, 1.0 / 30.0)
    run = run_pk("28 mg esketamine intranasal", model=lm, times=times)
    n = run.concentration("noresketamine", "ng/mL")
    assert metrics.auc(times, n)[0] == pytest.approx(auc_inf, rel=0.01)  # mass balance
    share_24h = metrics.auc(times, n, 0.0, 24.0)[0] / auc_inf
    assert 0.85 < share_24h < 0.92
    assert 274.4 / auc_inf < 0.65  # Table 4 would need 38 % of the AUC after 24 h


def test_otto_s_norketamine_disposition_agrees_with_table3_not_table4() -> None:
    """Otto 2021's S-norketamine disposition (estimated on other, venous data; all parent
    clearance forming S-NK) fed by the same formation: within 10 % of the library."""
    base = get_model("perez_ruixo_2021")
    fm = 2.77 / (2.77 + 1.11)
    otto = base.model.with_parameters(cln=57.72 * fm, vcn=98.638 * fm, vpn=160.04 * fm,
                                      q3=42.778 * fm)
    lm = dataclasses.replace(base, model=otto)
    a = run_pk("84 mg esketamine intranasal", model=base, times=T24)
    b = run_pk("84 mg esketamine intranasal", model=lm, times=T24)
    auc_lib = metrics.auc(T24, a.concentration("noresketamine", "ng/mL"))[0]
    auc_otto = metrics.auc(T24, b.concentration("noresketamine", "ng/mL"))[0]
    assert 0.9 < auc_otto / auc_lib < 1.0
    assert auc_otto / 758.0 > 1.3


# --------------------------------------------------------------------- racemic enteral routes
def _auc(regimen: str, analyte: str, end: float) -> float:
    t = np.arange(0.0, end + 1e-9, 1.0 / 60.0)
    run = run_pk(regimen, model="racemic_enantiomers", covariates=W70, times=t)
    return float(metrics.auc(t, run.concentration(analyte, "ng/mL"))[0])


@pytest.mark.parametrize("route,f", [("oral", 0.20), ("sublingual", 0.29), ("intranasal", 0.45),
                                     ("rectal", 0.30)])
def test_racemic_route_bioavailability_is_the_published_f(route: str, f: float) -> None:
    ratio = _auc(f"25 mg {route}", "ketamine", 400.0) / _auc("25 mg IV over 30 min",
                                                               "ketamine", 400.0)
    assert ratio == pytest.approx(f, rel=0.01)


def test_racemic_oral_and_sublingual_calibrations_and_their_statistics() -> None:
    lm = get_model("racemic_enantiomers")
    for key in ("racemic.ka_po", "racemic.fm_presys", "racemic.fsw_sl"):
        cal = CALIBRATIONS[key]
        param = lm.model.parameters[cal.parameter]
        assert param.evidence == "calibrated" and key in param.source
        # the statistic, measured at the stored value, is the published one
        assert cal.measure(lm.model) == pytest.approx(cal.target, rel=5e-3)
    # the ratio is an AUC over 0-8 h, as Chong 2009 measured it
    assert _auc("25 mg oral", "norketamine", 8.0) / _auc("25 mg oral", "ketamine", 8.0) \
        == pytest.approx(5.0, rel=5e-3)
    assert _auc("25 mg sublingual", "norketamine", 8.0) \
        / _auc("25 mg sublingual", "ketamine", 8.0) == pytest.approx(2.1, rel=5e-3)


def test_racemic_held_out_absorption_checks() -> None:
    by_id = {o.target.id: o for o in run_pk_validation()
             if o.target.id.startswith(("racemic_yanagihara", "racemic_chong",
                                        "racemic_oral"))}
    assert by_id["racemic_yanagihara_in_vs_oral_nk"].verdict == "pass"
    assert by_id["racemic_yanagihara_sl_vs_oral_nk"].verdict == "pass"
    assert by_id["racemic_yanagihara_in_nk_auc"].verdict == "pass"
    assert by_id["racemic_chong_oral_tmax"].target.kind == "calibration"
    # Grant 1981 stays a known discrepancy: its 45 ng/mL would need near-instant absorption
    grant = by_id["racemic_oral_05mgkg_cmax"]
    assert grant.verdict == "known discrepancy" and 0.3 < grant.ratio < 0.45
    bound = 0.17 * 35.0 / 123.0 * 1000.0  # F (Clements 1982) × dose / V1 (Clements 1981)
    assert 45.0 / bound > 0.9


def test_no_first_pass_norketamine_after_im_or_intranasal_but_after_sublingual() -> None:
    lm = get_model("racemic_enantiomers")
    names = lm.model.compiled.cmt_names
    for route, expect in (("intramuscular", False), ("intranasal", False),
                          ("sublingual", True), ("oral", True), ("rectal", True)):
        targets = {names[c - 1] for c in lm.model.route_compartments(route)}
        assert any("firstpass" in t for t in targets) is expect, (route, targets)


# ------------------------------------------------------------ Kamp band, Hasan half-life
def test_composite_disposition_is_fanta_as_fixed_by_otto() -> None:
    p = get_model("racemic_enantiomers").model.parameters
    assert {k: p[k].value for k in ("v1", "cl_s", "vp1", "q1", "vp2", "q2")} == {
        "v1": 133.0, "cl_s": 95.2, "vp1": 187.0, "q1": 23.2, "vp2": 98.8, "q2": 157.0}
    assert p["r_cl_ratio"].value == pytest.approx(1530 / 1620, abs=1e-3)


def test_half_life_eigenvalue_versus_nca_slope() -> None:
    by_id = {o.target.id: o for o in run_pk_validation()
             if o.target.id.startswith("racemic_hasan_thalf")}
    assert by_id["racemic_hasan_thalf_s"].predicted == pytest.approx(7.37, abs=0.05)
    assert by_id["racemic_hasan_thalf_s"].verdict == "known discrepancy"
    assert by_id["racemic_hasan_thalf_s_nca"].verdict == "pass"
    assert by_id["racemic_hasan_thalf_r_nca"].verdict == "pass"
    # the typical subject's eigenvalue lies inside Hasan's between-subject mean ± SD
    assert by_id["racemic_hasan_thalf_s_spread"].verdict == "pass"
    assert 5.2 - 3.4 <= by_id["racemic_hasan_thalf_s_spread"].predicted <= 5.2 + 3.4
    # the slowest phase dominates only where S-ketamine is below ~0.1 ng/mL
    t = np.arange(0.0, 24.0 + 1e-9, 0.25)
    run = run_pk("5 mg IV over 30 min", model="racemic_enantiomers", covariates=W70, times=t)
    assert run.concentration("s_ketamine", "ng/mL")[0, -1] < 0.1


def test_kamp_band_outliers_are_the_papers_own_clearances() -> None:
    hij = get_model("hijazi_2003").model.individual({"weight": 70.0})
    assert float(hij["k10"] * hij["v1"]) / 70.0 * 1000 / 60 == pytest.approx(36.0, rel=0.01)
    dom = get_model("domino_1982").model.individual({"weight": 70.0})
    assert float(dom["k10"] * dom["v1"]) == pytest.approx(0.063 * 70 * 0.4381 * 60, rel=1e-6)
    rac = get_model("racemic_enantiomers").model.individual({"weight": 70.0})
    assert float(rac["cl_si"]) == pytest.approx(95.2) and math.isclose(
        float(rac["cl_ri"]), 95.2 * 0.944)


# Issue #15 item 4, remaining: where the 7.4 h comes from, why it is kept, and the evidence
# that Domino, Hijazi and the composite lie outside the Kamp band as their sources have them.
RAC = "racemic_enantiomers"
S_DISPOSITION = ("s_central", "s_periph1", "s_periph2")
# a typical NCA schedule after a 30-min infusion (h); Hasan's own schedule was not retrieved
NCA_SCHEDULE = np.array([0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 10, 12, 24, 36, 48, 72])
# Otto 2021 CHDR1311 digitised venous medians after 10 mg S-ketamine over 30 min (ng/mL)
OTTO_MEDIANS = {0.5: 56.0, 1: 27.0, 2: 15.5, 3: 11.5, 5: 6.0, 6: 4.2, 8: 2.5, 10: 1.8}


def _slowest_mode(model=RAC) -> tuple[float, np.ndarray]:
    """(half-life h, eigenvector scaled to the central amount) of the slowest S-ketamine mode."""
    lm = get_model(model) if isinstance(model, str) else model
    k = lm.model.system_matrix(lm.model.individual(W70))
    idx = [lm.model.compiled.cmt_names.index(c) for c in S_DISPOSITION]
    w, v = np.linalg.eig(k[np.ix_(idx, idx)])
    i = int(np.argmin(np.abs(w.real)))
    return math.log(2) / abs(w[i].real), (v[:, i] / v[0, i]).real


def _three_compartment_half_life(v1, cl, vp1, q1, vp2, q2) -> float:
    k = np.array([[-(cl + q1 + q2) / v1, q1 / vp1, q2 / vp2],
                  [q1 / v1, -q1 / vp1, 0.0],
                  [q2 / v1, 0.0, -q2 / vp2]])
    return math.log(2) / float(np.min(np.abs(np.linalg.eigvals(k).real)))


def test_terminal_phase_is_fantas_deep_peripheral_compartment() -> None:
    t_half, mode = _slowest_mode()
    assert t_half == pytest.approx(7.37, abs=0.02)
    # in the slowest mode the deep compartment (Vp1 187 L, Q1 23.2 L/h) holds ~6x the central
    # amount and 7x the shallow one: it is the deep compartment's return (k21 = 0.124 /h)
    assert mode[1] > 5.0 * mode[0] and mode[1] > 5.0 * mode[2]
    # the library model computes the same number as Fanta's parameters by hand
    assert _three_compartment_half_life(133.0, 95.2, 187.0, 23.2, 98.8, 157.0) \
        == pytest.approx(t_half, rel=1e-9)


def test_only_a_swapped_vp_q_pairing_would_give_hasans_half_life_and_otto_rules_it_out() -> None:
    """The one transcription choice that moves the terminal phase is which volume pairs with
    which intercompartmental clearance. Swapped, it would give 4.6 h (within 25 % of Hasan's
    5.2 h), but it misses Otto 2021's CHDR1311 medians (on which the published pairing was
    validated) by up to 35 % from 6 h on, where the published pairing stays within 16 %."""
    assert _three_compartment_half_life(133.0, 95.2, 187.0, 157.0, 98.8, 23.2) \
        == pytest.approx(4.62, abs=0.02)
    base = get_model("otto_2021")
    swapped = dataclasses.replace(base, model=base.model.with_parameters(q1=157.0, q2=23.2))
    t = np.arange(0.0, 12.0 + 1e-9, 1.0 / 60.0)
    errors = []
    for lm in (base, swapped):
        run = run_pk("10 mg esketamine IV over 30 min", model=lm, covariates={"weight": 68.0},
                     times=t)
        c = run.concentration("s_ketamine", "ng/mL")[0]
        errors.append(np.array([np.interp(h, t, c) / v - 1 for h, v in OTTO_MEDIANS.items()]))
    published, swap = errors
    assert np.max(np.abs(published)) < 0.17
    late = np.array(list(OTTO_MEDIANS)) >= 6
    assert np.max(np.abs(swap[late])) > 0.30
    assert np.sqrt(np.mean(np.log1p(swap) ** 2)) > 1.5 * np.sqrt(np.mean(np.log1p(published) ** 2))


def test_nca_half_life_depends_on_the_window_and_brackets_hasan() -> None:
    """An NCA λz is the log-linear slope over the last quantifiable samples. The model's local
    half-life climbs from ~2 h to 7.4 h over the first day, so what an NCA reports depends on
    the assay's LLOQ and the schedule (neither retrieved for Hasan 2021)."""
    t = np.arange(0.0, 72.0 + 1e-9, 0.05)
    run = run_pk("5 mg IV over 30 min", model=RAC, covariates=W70, times=t)
    c = run.concentration("s_ketamine", "ng/mL")[0]

    def local(h: float) -> float:
        i = int(np.searchsorted(t, h))
        return -math.log(2) * (t[i + 1] - t[i - 1]) / (math.log(c[i + 1]) - math.log(c[i - 1]))

    assert local(4.0) < 2.5 and 4.5 < local(12.0) < 5.7 and local(24.0) > 7.0
    assert np.interp(24.0, t, c) < 0.08  # where the slowest phase takes over
    sched = np.interp(NCA_SCHEDULE, t, c)
    half_lives = []
    for lloq in (0.02, 0.05, 0.1, 0.2):
        quantified = NCA_SCHEDULE[sched >= lloq]
        for n in (3, 4, 5):
            w = quantified[-n:]
            slope = np.polyfit(w, np.log(np.interp(w, t, c)), 1)[0]
            half_lives.append(-math.log(2) / slope)
    # 3.0-7.0 h: the plausible NCA readings span Hasan's 5.2 h, so the 25 % comparison of the
    # eigenvalue cannot be settled without Hasan's window; all lie inside mean ± SD
    assert min(half_lives) < 5.2 * 0.75 and max(half_lives) > 5.2 * 1.25
    assert 5.2 - 3.4 < min(half_lives) and max(half_lives) < 5.2 + 3.4


def test_hijazi_reproduces_all_three_abstract_results_which_agree_with_each_other() -> None:
    by_id = {o.target.id: o for o in run_pk_validation()
             if o.target.id.startswith("hijazi_2003")}
    for key, published in (("cl", 36.0), ("thalf", 4.9), ("vbeta", 16.0)):
        outcome = by_id[f"hijazi_2003_{key}"]
        assert outcome.target.published == published and outcome.verdict == "pass"
    assert abs(by_id["hijazi_2003_cl"].ratio - 1) < 0.01
    assert abs(by_id["hijazi_2003_thalf"].ratio - 1) < 0.02
    assert abs(by_id["hijazi_2003_vbeta"].ratio - 1) < 0.05
    # the abstract's own numbers agree: Vβ = CL·t½/ln 2 (mL/min/kg -> L/h/kg); a 10x unit
    # slip in CL (3.6 mL/min/kg, 15 L/h at 70 kg) would break that identity
    cl, t_half, vbeta = (by_id[f"hijazi_2003_{k}"].target.published
                         for k in ("cl", "thalf", "vbeta"))
    assert cl * 60 / 1000 * t_half / math.log(2) == pytest.approx(vbeta, rel=0.05)
    assert cl / 10 * 60 / 1000 * t_half / math.log(2) < 0.2 * vbeta
    assert by_id["hijazi_2003_kamp_cl"].verdict == "outside band"


def test_domino_has_no_unit_reading_inside_the_kamp_band() -> None:
    """The paper was not retrieved; what can be checked is that no misreading of the coded
    set's units gives both a clearance in Kamp's band and a ketamine-like half-life."""
    v1_kg, k10, k12, k21, k13, k31 = 0.063, 0.4381, 0.5921, 0.2470, 0.5900, 0.0146

    def disposition(v1_l: float, per_h: float) -> tuple[float, float]:
        k = np.array([k10, k12, k21, k13, k31]) * per_h  # rate constants in 1/h
        m = np.array([[-(k[0] + k[1] + k[3]), k[2], k[4]], [k[1], -k[2], 0.0],
                      [k[3], 0.0, -k[4]]])
        return v1_l * k[0], math.log(2) / float(np.min(np.abs(np.linalg.eigvals(m).real)))

    coded = disposition(v1_kg * 70, 60.0)
    assert coded[0] == pytest.approx(115.9, abs=0.1) and coded[1] == pytest.approx(1.91, abs=0.01)
    dom = get_model("domino_1982").model.individual(W70)
    assert float(dom["k10"] * dom["v1"]) == pytest.approx(coded[0], rel=1e-9)
    for v1_l, per_h in ((v1_kg * 70, 1.0), (v1_kg, 60.0), (v1_kg * 700, 60.0)):
        cl, t_half = disposition(v1_l, per_h)
        assert not (69.0 <= cl <= 90.0 and 1.0 <= t_half <= 6.0), (v1_l, per_h, cl, t_half)
    # Vss = V1 (1 + k12/k21 + k13/k31) = 2.8 L/kg: a ketamine-like distribution volume
    assert v1_kg * (1 + k12 / k21 + k13 / k31) == pytest.approx(2.76, abs=0.01)
    # Idvall 1979 (surgical patients): 41 µg/kg/min held 9.3 µmol/L, so CL <= 41/2.21 mL/min/kg
    idvall = 41.0 / (9.3 * 237.73 / 1000)
    assert idvall == pytest.approx(18.5, abs=0.1)
    assert float(dom["k10"] * dom["v1"]) / 70 * 1000 / 60 / idvall > 1.4


def test_composite_clearance_is_its_sources_and_they_lie_above_the_kamp_band() -> None:
    by_id = {o.target.id: o for o in run_pk_validation()
             if o.target.id in ("racemic_fanta_cl_s", "racemic_enantiomers_kamp_cl",
                                "racemic_hasan_cl_s", "racemic_hasan_cl_r")}
    assert by_id["racemic_fanta_cl_s"].verdict == "pass"  # Fanta's 95 L/h/70 kg, within 1 %
    assert by_id["racemic_hasan_cl_s"].verdict == by_id["racemic_hasan_cl_r"].verdict == "pass"
    kamp = by_id["racemic_enantiomers_kamp_cl"]
    assert kamp.verdict == "outside band" and kamp.predicted == pytest.approx(92.5, abs=0.1)
    # Hasan's own metabolic clearances (1620 and 1530 mL/min, 94.5 L/h on average) are above
    # the band as well: the excess is the sources', not a transcription
    hasan = (by_id["racemic_hasan_cl_s"].target.published
             + by_id["racemic_hasan_cl_r"].target.published) / 2 * 60 / 1000
    assert hasan == pytest.approx(94.5) and hasan > kamp.target.high
    assert by_id["racemic_fanta_cl_s"].target.published > kamp.target.high
    assert "Fanta" in kamp.target.note and "Hasan" in kamp.target.note


def test_cli_validate_pk_passes_the_item4_checks(tmp_path: Path) -> None:
    """``ketasim validate pk`` exits 0 with the checks against the papers' own numbers passing
    and the Kamp outliers and the eigenvalue half-life reported with their reasons."""
    html = tmp_path / "pk.html"
    done = subprocess.run([KETASIM, "validate", "pk", "--html", str(html)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"\d+ pass, 10 known discrepancy, 3 outside band", done.stdout)
    rows = {}  # target id -> verdict, one table row each
    for row in html.read_text(encoding="utf-8").split("<tr")[1:]:
        target_id, verdict = re.search(r"<td>([a-z0-9_]+)</td>", row), re.search(
            r"<td><b>([a-z ]+)</b>", row)
        if target_id and verdict:
            rows[target_id.group(1)] = verdict.group(1)
    for target in ("hijazi_2003_cl", "hijazi_2003_thalf", "hijazi_2003_vbeta",
                   "racemic_fanta_cl_s", "racemic_hasan_cl_s", "racemic_hasan_thalf_s_spread",
                   "racemic_hasan_thalf_s_nca"):
        assert rows.get(target) == "pass", (target, rows.get(target))
    assert rows.get("racemic_hasan_thalf_s") == "known discrepancy"
    for model in ("domino_1982", "hijazi_2003", "racemic_enantiomers"):
        assert rows.get(f"{model}_kamp_cl") == "outside band"
