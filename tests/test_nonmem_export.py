"""export-nonmem -> import-nonmem round trip: every library model, written as a NONMEM
control stream and CSV and read back, predicts what the library model predicts (1e-6
relative; the same engines on both sides except $DES models, which run on the ODE engine)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ketasim.dosing import Route
from ketasim.engine import AnalyticEngine, OdeEngine, simulate
from ketasim.errors import KetasimError
from ketasim.io.nonmem_export import export_nonmem
from ketasim.io.nonmem_model import import_nonmem
from ketasim.pk import get_model, model_names

ROOT = Path(__file__).resolve().parent.parent
TOL = 1e-6
KETASIM = shutil.which("ketasim") or str(Path(sys.executable).with_name("ketasim"))
REGIMEN = {Route.IV_INFUSION: "0.5 mg/kg IV over 40 min then 0.5 mg/kg IV over 40 min "
                              "every 2 days x 2",
           Route.IV_BOLUS: "20 mg IV bolus",
           Route.INTRANASAL: "56 mg intranasal"}
TIMES = [0.1, 0.25, 0.5, 0.67, 1, 2, 4, 8, 24, 48, 50, 72]


def engine_for(model):
    return AnalyticEngine() if model.is_linear else OdeEngine()


@pytest.mark.parametrize("name", model_names())
def test_round_trip_gives_the_library_predictions(name: str, tmp_path: Path) -> None:
    lib = get_model(name)
    route = next(r for r in (Route.IV_INFUSION, Route.INTRANASAL, Route.IV_BOLUS)
                 if r in lib.model.routes)
    covs = {"weight": 70.0} if "weight" in lib.model.covariates else None
    ex = export_nonmem(name, REGIMEN[route], tmp_path, covariates=covs, times=TIMES)
    assert ex.advan == (5 if lib.model.is_linear else 13)
    text = ex.control.read_text()
    assert text.isascii() and f"$SUBROUTINES ADVAN{ex.advan}" in text
    run = import_nonmem(ex.control)
    assert run.estimates.endswith("initial estimates")  # no .ext: the $THETA ... FIX values
    ours = run.simulate(run.dataset(), engine=engine_for(run.model))
    ref = simulate(lib.model, ex.events, engine=engine_for(lib.model))
    assert len(ref[next(iter(lib.model.outputs))]) == len(ours["F"]) > len(TIMES)
    for out_nm, out_ks in zip(ex.outputs, lib.model.outputs, strict=True):
        a, b = np.asarray(ours[out_nm]), np.asarray(ref[out_ks])
        assert np.max(b) > 0, out_ks
        rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-12)
        assert np.all(rel <= TOL), f"{name} {out_ks}: {rel.max():.2e}"


def test_infusion_records_use_rate_minus_2_and_the_dur_item(tmp_path: Path) -> None:
    ex = export_nonmem("clements_1981", "0.5 mg/kg IV over 40 min", tmp_path,
                       covariates={"weight": 80}, times=[1, 2])
    rows = ex.data.read_text().splitlines()
    assert rows[0] == "ID,TIME,EVID,AMT,CMT,RATE,DUR,II,ADDL,SS,MDV,DV,WEIGHT"
    dose = rows[1].split(",")
    assert dose[3] == "40" and dose[5] == "-2" and float(dose[6]) == pytest.approx(40 / 60)
    assert "D1 = DUR" in ex.control.read_text()


def test_cli_export_and_bad_input(tmp_path: Path) -> None:
    r = subprocess.run([KETASIM, "export-nonmem", "hijazi_2003",
                        "--regimen", "0.5 mg/kg IV over 40 min", "--out", str(tmp_path),
                        "--covariate", "weight=70", "--times", "1,2,4"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "hijazi_2003.mod").exists() and (tmp_path / "hijazi_2003.csv").exists()
    for bad in (["no_such_model", "--regimen", "20 mg IV bolus"],
                ["hijazi_2003", "--regimen", "twenty mg"],
                ["hijazi_2003", "--regimen", "20 mg IV bolus", "--covariate", "height=1"]):
        r = subprocess.run([KETASIM, "export-nonmem", *bad, "--out",
                            str(tmp_path / "x")], capture_output=True, text=True, cwd=ROOT,
                           timeout=600)
        assert r.returncode == 2, (bad, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_unknown_covariate_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(KetasimError, match="height"):
        export_nonmem("clements_1981", "20 mg IV bolus", tmp_path,
                      covariates={"weight": 70, "height": 1})
