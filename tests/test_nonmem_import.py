"""Public NONMEM runs imported with ``ketasim.io.nonmem_model`` and re-simulated.

Each run in tests/data/nonmem_public/ with table output (sources, commits and licences in its
README) is imported from its control stream and every record re-simulated with the run's final
estimates (.ext) and each subject's ETAs (.phi, or bbr's per-record ETA table). NONMEM prints
tables with 5 significant digits (relative rounding up to 5e-5; the bbr ETAs are read from such
a table too), so the tolerance is 1e-4 relative, on the analytic and the ODE engine.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ketasim.engine import AnalyticEngine, OdeEngine, PopulationEngine
from ketasim.errors import KetasimError, ModelError
from ketasim.io.nonmem_model import check_run, import_nonmem
from ketasim.io.nonmem_output import read_table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "nonmem_public"
TOL = 1e-4  # tables print 5 significant digits
RUNS = {  # control stream -> columns that must be compared
    "pharmpy/pheno_real.mod": {"IPRED", "PRED"},
    "bbr/1.ctl": {"IPRED", "PRED", "CL", "V", "KA"},
    "nmdata/xgxr003.mod": {"PRED", "KA", "Q", "CL"},
}
KETASIM = shutil.which("ketasim") or str(Path(sys.executable).with_name("ketasim"))


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The installed entry point, as a user runs it."""
    return subprocess.run([KETASIM, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


# xgxr003's estimate Q = 2.3e6 L/h makes the system extremely stiff: the ODE engine needs
# many minutes there, so that run is checked on the analytic and population engines only
CASES = [(run, eng) for run in sorted(RUNS) for eng in ("analytic", "ode", "population")
         if not (run.startswith("nmdata") and eng == "ode")]
ENGINES = {"analytic": AnalyticEngine, "ode": OdeEngine, "population": PopulationEngine}


@pytest.mark.parametrize(("run", "engine"), CASES)
def test_public_run_reproduced_to_table_precision(run: str, engine: str) -> None:
    report = check_run(DATA / run, engine=ENGINES[engine]())
    assert RUNS[run] <= set(report.columns), report
    bad = {k: v for k, v in report.max_rel_diff.items() if not v <= TOL}
    assert not bad, f"{run}: {bad}"


def test_pheno_translation_and_what_it_leaves_out() -> None:
    run = import_nonmem(DATA / "pharmpy" / "pheno_real.mod")
    assert (run.advan, run.trans) == (1, 2)
    assert run.theta.tolist() == [4.69555e-03, 9.84258e-01, 1.58920e-01]  # pheno_real.ext
    # IF(APGR.LT.5) TVV=TVV*(1+THETA(3)) -> a second variable with where()
    assert run.model.definitions["tvv_nm"] == \
        "where((apgr < 5.0), (tvv * (1.0 + theta_3)), tvv)"
    # IF(AMT.GT.0) BTIME=TIME remembers TIME from an earlier record: line 7 of the file
    assert set(run.skipped) == {"BTIME", "TAD"} and "line 7" in run.skipped["BTIME"]
    assert {"wgt", "apgr"} <= set(run.covariates)
    ds = run.dataset()
    typical = run.simulate(ds)
    tab = read_table(DATA / "pharmpy" / "pheno_real.tab")
    assert np.allclose(typical["F"], tab["PRED"], rtol=TOL, atol=1e-9)
    # each subject's ETAs change IPRED: the population prediction does not match it
    assert not np.allclose(typical["F"], tab["IPRED"], rtol=1e-3)


def test_initial_estimates_without_ext(tmp_path: Path) -> None:
    src = DATA / "pharmpy"
    (tmp_path / "pheno.dta").write_bytes((src / "pheno.dta").read_bytes())
    (tmp_path / "run.mod").write_text((src / "pheno_real.mod").read_text())
    run = import_nonmem(tmp_path / "run.mod")
    assert run.estimates.endswith("initial estimates")
    assert run.theta.tolist() == [0.00469307, 1.00916, 0.1]
    assert np.allclose(np.diag(run.omega), [0.0309626, 0.031128])
    assert run.random_effects().names == ("eta_1", "eta_2")


def test_xgxr_if_then_else_in_error_and_sigma_reference() -> None:
    run = import_nonmem(DATA / "nmdata" / "xgxr003.mod")
    assert run.advan == 4 and [c.name for c in run.model.compartments] == [
        "depot", "central", "peripheral"]
    assert "where((ipred > 1.0)" in run.model.definitions["w"]
    assert run.model.parameters["sigma_1_1"].value == pytest.approx(run.sigma[0, 0])


def _write(tmp: Path, pk: str, sub: str = "$SUBROUTINES ADVAN1 TRANS2", extra: str = "") -> Path:
    (tmp / "d.csv").write_text("ID,TIME,AMT,DV,WT\n1,0,10,0,70\n1,1,0,1,70\n")
    path = tmp / "bad.mod"
    path.write_text(f"$PROBLEM bad\n$INPUT ID TIME AMT DV WT\n$DATA d.csv IGNORE=@\n{sub}\n"
                    f"$PK\n{pk}\n$ERROR\nIPRED=F\nY=F+EPS(1)\n$THETA (0,1) (0,10)\n"
                    f"$OMEGA 0.1\n$SIGMA 0.1\n{extra}")
    return path


def test_a_pk_that_remembers_a_value_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "IF (AMT.GT.0) BW=WT\nCL=THETA(1)*BW*EXP(ETA(1))\nV=THETA(2)\nS1=V")
    with pytest.raises(ModelError) as exc:
        import_nonmem(path)
    text = str(exc.value)
    assert "CL" in text and "line 6" in text and "earlier record" in text


@pytest.mark.parametrize(("pk", "sub", "needle"), [
    ("IF (AMT.GT.0) BW=WT\nCL=THETA(1)*BW\nV=THETA(2)\nS1=V", "$SUBROUTINES ADVAN1 TRANS2",
     "line 6"),
    ("CL=THETA(1)\nV=THETA(2)", "$SUBROUTINES ADVAN9", "ADVAN9"),
    ("CL=THETA(1)\nV=THETA(2)", "$SUBROUTINES ADVAN3 TRANS3", "TRANS3"),
    ("CL=THETA(1)", "$SUBROUTINES ADVAN1 TRANS2", "V"),
    ("CL=THETA(1)\nV=THETA(2)*PHI(WT)", "$SUBROUTINES ADVAN1 TRANS2", "PHI"),
])
def test_bad_control_streams_exit_2_with_one_line(tmp_path: Path, pk: str, sub: str,
                                                  needle: str) -> None:
    path = _write(tmp_path, pk, sub)
    with pytest.raises(KetasimError):
        import_nonmem(path)
    r = cli("import-nonmem", str(path))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_cli_check_json_and_missing_file() -> None:
    r = cli("nonmem", "check", str(DATA / "pharmpy" / "pheno_real.mod"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"records", "columns", "max_rel_diff"} and out["records"] == 744
    assert out["columns"] == ["IPRED", "PRED"] and max(out["max_rel_diff"].values()) < TOL
    r = cli("nonmem", "check", str(DATA / "nope.mod"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "cannot read" in r.stderr


def test_cli_check_without_ext_exits_2(tmp_path: Path) -> None:
    src = DATA / "pharmpy"
    (tmp_path / "pheno.dta").write_bytes((src / "pheno.dta").read_bytes())
    (tmp_path / "run.mod").write_text((src / "pheno_real.mod").read_text())
    r = cli("nonmem", "check", str(tmp_path / "run.mod"))
    assert r.returncode == 2 and ".ext" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_import_json() -> None:
    r = cli("import-nonmem", str(DATA / "bbr" / "1.ctl"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["advan"] == 2 and out["compartments"] == ["depot", "central"]
    assert out["parameters"]["theta_2"] == pytest.approx(54.6, rel=1e-2)  # 1.lst: 5.46E+01
    assert {"IPRED", "CL", "V", "KA", "F"} <= set(out["outputs"])


def test_docs_section_runs(capsys) -> None:
    text = (ROOT / "docs" / "nonmem-users.md").read_text()
    section = text[text.index("## Importing a control stream and checking a finished run"):]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    import os
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(blocks[0], "docs/nonmem-users.md", "exec"), {})
    finally:
        os.chdir(here)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "1 ['central'] pheno_real.ext: final estimates"
    assert out[2] == "['BTIME', 'TAD']"
    assert out[3] == "18.044"  # pheno_real.tab, first record: 1.8044E+01
    assert out[-1] == "True"
