"""Real public NONMEM runs read unchanged with their own $INPUT and $DATA options.

Sources (repository, path, commit, licence): tests/data/nonmem_public/README.md. Counts are
compared with each run's NONMEM listing ("NO. OF DATA RECS IN DATA SET", "TOT. NO. OF OBS
RECS", "TOT. NO. OF INDIVIDUALS"), records with the run's $TABLE files, and two runs are
re-simulated from their .ext/.phi estimates and compared with NONMEM's PRED and IPRED.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from ketasim.engine import AnalyticEngine, OdeEngine, simulate
from ketasim.io import (
    final_estimates,
    read_ext,
    read_nonmem,
    read_nonmem_control,
    read_phi,
    read_table,
    read_tables,
)
from ketasim.model import Compartment, Covariate, Flow, Model, Output, Parameter
from nmtests_model import nmtests_model

DATA = Path(__file__).resolve().parent / "data" / "nonmem_public"
SRC = "tests/data/nonmem_public/README.md"


def lst_count(lst: Path, label: str) -> int:
    m = re.search(re.escape(label) + r":?\s+(\d+)", lst.read_text())
    assert m, label
    return int(m.group(1))


def same_table_digits(ours: np.ndarray, nonmem: np.ndarray) -> np.ndarray:
    """NONMEM tables print 5 significant digits (1.2345E+01): agree to that rounding."""
    ours = np.asarray(ours, dtype=float)
    rounded = np.array([float(f"{x:.4E}") for x in ours])
    return np.isclose(rounded, nonmem, rtol=1.5e-4, atol=1e-6)


# ----------------------------------------------------------------------------- bbr acop (MIT)
@pytest.fixture(scope="module")
def acop():
    ctl = read_nonmem_control(DATA / "bbr" / "1.ctl", data_dir=DATA / "bbr")
    return ctl, ctl.read_data()


def test_acop_csv_with_ignore_list_on_a_continuation_line(acop) -> None:
    ctl, ds = acop
    # $DATA ../../../../extdata/acop.csv IGNORE=@ / IGNORE(ID.EQ.2) on the next line
    assert ctl.ignore == ("@", "ID.EQ.2") and ctl.advan == 2
    lst = DATA / "bbr" / "1.lst"
    assert ds.n_records == lst_count(lst, "NO. OF DATA RECS IN DATA SET") == 779
    assert ds.n_observations == lst_count(lst, "TOT. NO. OF OBS RECS") == 741
    assert ds.n_subjects == lst_count(lst, "TOT. NO. OF INDIVIDUALS") == 39
    assert 2 not in set(ds.column("ID"))
    # every record of the run's $TABLE, in the same order (NUM is a data item)
    tab = read_table(DATA / "bbr" / "1.tab")
    assert np.array_equal(tab["NUM"].to_numpy(), ds.column("NUM"))
    assert np.allclose(tab["DV"].to_numpy(), ds.dv, rtol=1e-4)


def test_acop_without_cmt_doses_go_to_the_depot_observations_to_central(acop) -> None:
    _, ds = acop
    ev = ds.events
    dose = np.isin(ev.evid, (1, 4))
    assert dose.any() and set(ev.cmt[dose]) == {1}
    assert set(ev.cmt[ev.evid == 0]) == {2}  # ADVAN2: COMPARTMENT ATTRIBUTES in 1.lst


def advan2(ka: float, cl: float, v: float) -> Model:
    src = f"bbr example run 1 ({SRC})"
    return Model(
        "acop_advan2",
        {"ka": Parameter(ka, "1/h", "THETA1", source=src, evidence="assumed"),
         "cl": Parameter(cl, "L/h", "THETA2", source=src, evidence="assumed"),
         "v": Parameter(v, "L", "THETA3", source=src, evidence="assumed")},
        [Compartment("depot"), Compartment("central")],
        flows=[Flow("depot", "central", "ka"), Flow("central", None, "cl * (wt / 70) ** 0.75 / v")],
        outputs={"pred": Output("central / v", "mg/L")},
        covariates={"wt": Covariate(70.0, "kg", "body weight")})


@pytest.mark.parametrize("engine", [AnalyticEngine(), OdeEngine()], ids=["analytic", "ode"])
def test_acop_pred_matches_nonmem_from_the_ext_estimates(engine) -> None:
    ctl = read_nonmem_control(DATA / "bbr" / "1.ctl", data_dir=DATA / "bbr")
    ds = ctl.read_data(covariates={"wt": "WT"})
    theta = final_estimates(DATA / "bbr" / "1.ext").theta
    result = simulate(advan2(*theta[:3]), ds.events, engine=engine)
    tab = read_table(DATA / "bbr" / "1.tab")
    ok = same_table_digits(result["pred"], tab["PRED"].to_numpy())
    assert ok.all(), f"{(~ok).sum()} of {ok.size} PRED values differ"


def test_acop_ext_matches_the_listing() -> None:
    lst = (DATA / "bbr" / "1.lst").read_text()
    ext = read_ext(DATA / "bbr" / "1.ext")
    assert len(ext) == 1 and ext[0].method == "First Order Conditional Estimation with Interaction"
    est = ext[0].estimates()
    # 1.lst: "OBJECTIVE FUNCTION VALUE WITHOUT CONSTANT:    2583.3109009417403"
    assert "WITHOUT CONSTANT:    2583.3109009417403" in lst
    assert est.ofv == 2583.3109009417403
    # FINAL PARAMETER ESTIMATE block: 2.32E+00 5.46E+01 4.63E+02 -8.20E-02 4.18E+00
    assert [float(f"{t:.2E}") for t in est.theta] == [2.32, 54.6, 463.0, -0.082, 4.18]
    assert [float(f"{x:.2E}") for x in np.diag(est.omega)] == [0.0985, 0.157]
    assert est.omega[0, 1] == est.omega[1, 0] == 0.0 and est.sigma.tolist() == [[1.0]]
    # STANDARD ERROR OF ESTIMATE block: 8.72E-02 3.38E+00 3.03E+01 5.61E-02 1.38E+00
    se = ext[0].standard_errors
    assert se is not None
    assert [float(f"{se[f'THETA{k}']:.2E}") for k in range(1, 6)] == [
        0.0872, 3.38, 30.3, 0.0561, 1.38]
    assert np.isnan(se["SIGMA(1,1)"])  # 1.00000E+10 in the .ext: fixed, not estimated
    assert ext[0].fixed == {**{k: False for k in se if k != "SIGMA(1,1)"},
                            "SIGMA(1,1)": True, "OMEGA(2,1)": True}
    assert len(ext[0].iterations) == 9 and int(ext[0].iterations.index[-1]) == 37


def test_bbr_510_ext_and_phi_with_four_estimation_steps() -> None:
    ext = read_ext(DATA / "bbr" / "510.ext")
    assert [t.method for t in ext] == [
        "Iterative Two Stage", "First Order Conditional Estimation with Interaction",
        "Importance Sampling", "Objective Function Evaluation by Importance Sampling"]
    assert [t.number for t in ext] == [1, 2, 3, 4]
    assert ext[1].goal == "MINIMUM VALUE OF OBJECTIVE FUNCTION"
    assert [round(float(t.final["OBJ"]), 6) for t in ext] == [
        362.247036, 359.013326, 352.384943, 351.948136]
    final = final_estimates(DATA / "bbr" / "510.ext")
    assert final.theta.tolist() == [12.3143, 90.6557, 0.162544, 0.566528, 0.402975, -0.395497]
    assert final.omega.tolist() == [[0.0517081, 0.00344745], [0.00344745, 0.0537602]]
    phi = read_phi(DATA / "bbr" / "510.phi")
    assert [len(p.frame) for p in phi] == [40, 40, 40, 40]
    # FOCE writes ETA(i); ITS and IMP write PHI(i)
    assert list(phi[1].etas.columns) == ["ETA(1)", "ETA(2)"]
    assert list(phi[3].etas.columns) == ["PHI(1)", "PHI(2)"]
    assert phi[0].eta_of(1).tolist() == [-6.41436e-02, -3.06969e-01]
    assert phi[3].obj.index.tolist() == list(range(1, 41))


def test_bbr_table_files_firstonly_and_two_tables_in_one_file() -> None:
    first = read_table(DATA / "bbr" / "1first1.tab")
    assert list(first.columns) == ["ID", "CL"] and len(first) == 39
    assert first["CL"].iloc[0] == pytest.approx(43.449)
    tables = read_tables(DATA / "bbr" / "1twotables.tab")
    assert [(t.number, list(t.frame.columns), len(t.frame)) for t in tables] == [
        (7, ["NUM", "CL"], 39), (8, ["ID", "CL"], 39)]
    assert read_table(DATA / "bbr" / "1twotables.tab", table=8)["ID"].iloc[1] == 3.0


# ----------------------------------------------------------------------------- NMdata xgxr (MIT)
@pytest.mark.parametrize("mod", ["xgxr003.mod", "xgxr002.mod"])
def test_xgxr_ignore_flag_list_and_extra_character_columns(mod: str) -> None:
    ctl = read_nonmem_control(DATA / "nmdata" / mod, data_dir=DATA / "nmdata")
    assert ctl.ignore == ("@", "FLAG.NE.0") and ctl.advan == 4
    ds = ctl.read_data()
    raw = pd.read_csv(DATA / "nmdata" / "xgxr1.csv")
    assert (raw.FLAG == 0).sum() == ds.n_records == 905
    # items beyond $INPUT (EVENTU, NAME, ... text) are not read, as NM-TRAN does
    assert "NAME" not in ds.data.columns and ds.n_subjects == raw.ID[raw.FLAG == 0].nunique()
    res = read_table(DATA / "nmdata" / "xgxr003_res.txt")  # two pages of 900 + 5 records
    assert len(res) == 905
    assert np.array_equal(res["ROW"].to_numpy(), ds.column("ROW"))
    assert np.allclose(res["DV"].to_numpy(), ds.dv, rtol=1e-4, atol=1e-6)
    if mod == "xgxr002.mod":  # CYCLE=DROP, and WEIGHTB read under the name BBW
        assert "CYCLE" not in ds.data.columns and "BBW" in ds.data.columns
        assert np.array_equal(ds.column("BBW"), raw.WEIGHTB[raw.FLAG == 0].to_numpy())


def test_xgxr_comma_formatted_firstonly_table() -> None:
    fo = read_table(DATA / "nmdata" / "xgxr003_res_fo.txt")  # FORMAT=,1PE15.8
    assert list(fo.columns) == ["ID", "CL"] and len(fo) == 150
    assert fo["CL"].iloc[0] == pytest.approx(0.724569055)


# ----------------------------------------------------------------------------- pharmpy pheno (LGPL)
@pytest.fixture(scope="module")
def pheno():
    ctl = read_nonmem_control(DATA / "pharmpy" / "pheno_real.mod")
    return ctl, ctl.read_data(covariates={"wgt": "WGT", "apgr": "APGR"})


def test_pheno_whitespace_file_with_header_ignored_by_at(pheno) -> None:
    ctl, ds = pheno
    assert ctl.ignore == ("@",) and ctl.advan == 1
    # pharmpy tests/testdata/nonmem/pheno_real.lst lines 61, 75, 76: 744 records, 155 obs, 59 IDs
    assert (ds.n_records, ds.n_observations, ds.n_subjects) == (744, 155, 59)
    tab = read_table(DATA / "pharmpy" / "pheno_real.tab")
    for item in ("ID", "TIME", "AMT", "WGT", "APGR"):
        assert np.allclose(tab[item].to_numpy(), ds.column(item), rtol=1e-4), item
    assert set(ds.events.evid) == {0, 1}  # no EVID item: AMT > 0 is a dose


def test_pheno_ext_and_phi() -> None:
    est = final_estimates(DATA / "pharmpy" / "pheno_real.ext")
    assert est.theta.tolist() == [4.69555e-03, 9.84258e-01, 1.58920e-01]
    assert np.diag(est.omega).tolist() == [2.93508e-02, 2.79060e-02]
    assert est.ofv == 586.27605628188053  # pheno_real.lst line 322
    phi = read_phi(DATA / "pharmpy" / "pheno_real.phi")[-1]
    assert phi.etas.shape == (59, 2)
    # pheno_real.lst line 306: ETABAR 1.6884E-03 -1.1976E-03 (mean ETA over the 59 individuals)
    assert phi.etas.mean().round(7).tolist() == [1.6884e-03, -1.1976e-03]


def pheno_model(theta: np.ndarray) -> Model:
    src = f"pharmpy pheno_real ({SRC})"
    return Model(
        "pheno_advan1",
        {f"th{k + 1}": Parameter(float(t), "", f"THETA{k + 1}", source=src, evidence="assumed")
         for k, t in enumerate(theta)},
        [Compartment("central")],
        flows=[Flow("central", None, "cl / v")],
        definitions={"cl": "th1 * wgt * exp(eta1)",
                     "v": "th2 * wgt * where(apgr < 5, 1 + th3, 1) * exp(eta2)"},
        outputs={"ipred": Output("central / v", "mg/L")},
        covariates={"wgt": Covariate(1.0, "kg", "weight"), "apgr": Covariate(7.0, "", "Apgar"),
                    "eta1": Covariate(0.0, "", "ETA(1)"), "eta2": Covariate(0.0, "", "ETA(2)")})


@pytest.mark.parametrize("engine", [AnalyticEngine(), OdeEngine()], ids=["analytic", "ode"])
def test_pheno_ipred_matches_nonmem_from_ext_and_phi(pheno, engine) -> None:
    _, ds = pheno
    theta = final_estimates(DATA / "pharmpy" / "pheno_real.ext").theta
    etas = read_phi(DATA / "pharmpy" / "pheno_real.phi")[-1].etas
    ids = ds.events.id
    events = ds.events.with_covariates(eta1=etas["ETA(1)"].reindex(ids).to_numpy(),
                                       eta2=etas["ETA(2)"].reindex(ids).to_numpy())
    result = simulate(pheno_model(theta), events, engine=engine)
    tab = read_table(DATA / "pharmpy" / "pheno_real.tab")
    ok = same_table_digits(result["ipred"], tab["IPRED"].to_numpy())
    assert ok.all(), f"{(~ok).sum()} of {ok.size} IPRED values differ"


# ----------------------------------------------------------------------------- mrgsolve/nmtests
def test_nmtests_input_read_by_position_with_ignore_c_matches_nonmem() -> None:
    """The 29 dosing scenarios (GPL, read in place from ../shared): $INPUT and IGNORE=C of the
    nmtests control streams, then simulate: NONMEM's CP to 5 significant digits."""
    path = shared_path("data", "nmtests", "dosing", "input.csv")
    ds = read_nonmem(path, "C ID TIME EVID AMT CMT SS II ADDL RATE LAGT MODE DUR2 RAT2 BIOAV DV",
                     ignore="C", covariates={c.lower(): c for c in
                                             ("LAGT", "BIOAV", "RAT2", "DUR2")}, n_cmt=2)
    ref = pd.read_csv(shared_path("data", "nmtests", "dosing", "nonmem-output.csv"))
    assert ds.n_records == len(ref) and ds.n_lines_ignored == 1  # the header "C,ID,time,..."
    result = simulate(nmtests_model(), ds.events)
    fa = np.array([float(f"{x:.5g}") for x in result["cp"]])
    fb = np.array([float(f"{x:.5g}") for x in ref.CP.to_numpy()])
    assert ((fa == fb) | (np.abs(result["cp"] - ref.CP.to_numpy()) < 1e-6)).all()
