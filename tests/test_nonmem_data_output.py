"""Readers of NONMEM output files (.ext, .phi, $TABLE) on the layouts NONMEM writes; the
numbers of real runs are checked in test_nonmem_data_public.py."""

from __future__ import annotations

import io

import numpy as np
import pytest

from ketasim.errors import DataError
from ketasim.io import EXT_ROWS, final_estimates, read_ext, read_phi, read_table, read_tables


def page(n: int, start: int) -> str:
    rows = "".join(f"  {i:.4E}  {2 * i:.4E}\n" for i in range(start, start + n))
    return f"TABLE NO.  1\n ID          DV\n{rows}"


def test_pages_of_900_records_are_joined_and_other_tables_kept_apart() -> None:
    text = page(900, 1) + page(5, 901) + "TABLE NO.  2\n ID   CL\n 1 3.5\n"
    tables = read_tables(io.StringIO(text))
    assert [(t.number, len(t.frame)) for t in tables] == [(1, 905), (2, 1)]
    assert tables[0].frame["DV"].iloc[-1] == 2 * 905
    assert tables[1].line == 910
    with pytest.raises(DataError, match="holds 2 tables"):
        read_table(io.StringIO(text))
    assert len(read_table(io.StringIO(text), table=1)) == 905
    with pytest.raises(DataError, match=r"no TABLE NO\. 5"):
        read_table(io.StringIO(text), table=5)


def test_notitle_nolabel_tab_and_comma_layouts() -> None:
    # NOTITLE: labels repeated without TABLE NO. lines
    assert len(read_table(io.StringIO(" ID DV\n 1 2\n ID DV\n 3 4\n"))) == 2
    # NOLABEL: numbers only, labels given by the caller
    frame = read_table(io.StringIO("1.0 2.0\n3.0 4.0\n"), columns=["ID", "DV"])
    assert frame["DV"].tolist() == [2.0, 4.0]
    with pytest.raises(DataError, match="NOLABEL"):
        read_table(io.StringIO("1.0 2.0\n"))
    tab = read_table(io.StringIO("TABLE NO.  2\n ID      \tV2\n   31.0000\t    0.0420\n"))
    assert tab.to_numpy().tolist() == [[31.0, 0.042]]
    comma = read_table(io.StringIO("TABLE NO.  3\n ID             ,CL\n  3.1E+01, 7.2E-01\n"))
    assert comma.to_numpy().tolist() == [[31.0, 0.72]]
    # Fortran's three-digit exponents drop the E
    assert read_table(io.StringIO(" ID DV\n 1 1.0-100\n"))["DV"].iloc[0] == 1e-100


def test_bad_table_files() -> None:
    with pytest.raises(DataError, match="holds no table"):
        read_tables(io.StringIO("\n\n"))
    with pytest.raises(DataError, match="line 3 has 1 items for 2 labels"):
        read_tables(io.StringIO("TABLE NO.  1\n ID DV\n 1\n"))
    with pytest.raises(DataError, match="cannot read"):
        read_tables("/no/such/file.tab")


EXT = """TABLE NO.     1: MCMC Bayesian Analysis: Goal Function=MCMC AVERAGE VALUE: Problem=1 \
Subproblem=0 Superproblem1=0 Iteration1=0 Superproblem2=0 Iteration2=0
 ITERATION    THETA1       THETA2       SIGMA(1,1)   OMEGA(1,1)   OMEGA(2,1)   OMEGA(2,2)   OBJ
        -2  1.0E+00  2.0E+00  1.0E-01  1.0E-01  0.0E+00  2.0E-01    10.0
        -1  1.1E+00  2.1E+00  1.0E-01  1.0E-01  1.0E-02  2.0E-01    9.0
         0  1.2E+00  2.2E+00  1.0E-01  1.0E-01  2.0E-02  2.0E-01    8.0
         1  1.3E+00  2.3E+00  1.0E-01  1.0E-01  3.0E-02  2.0E-01    7.5
TABLE NO.     2: Laplacian Conditional Estimation: Problem=2 Subproblem=3
 ITERATION    THETA1       THETA2       SIGMA(1,1)   OMEGA(1,1)   OMEGA(2,1)   OMEGA(2,2)   OBJ
         0  1.2E+00  2.2E+00  1.0E-01  1.0E-01  2.0E-02  2.0E-01    8.0
  -1000000000  1.5E+00  2.5E+00  1.0E-01  1.0E-01  2.0E-02  2.0E-01    6.0
  -1000000001  1.0E-01  1.0E+10  1.0E+10  1.0E-02  1.0E-02  1.0E-02    0.0
  -1000000006  0.0E+00  1.0E+00  1.0E+00  0.0E+00  0.0E+00  0.0E+00    0.0
"""


def test_ext_tables_burn_in_fallback_and_codes() -> None:
    bayes, lap = read_ext(io.StringIO(EXT))
    assert bayes.method == "MCMC Bayesian Analysis" and bayes.goal == "MCMC AVERAGE VALUE"
    assert bayes.iterations.index.tolist() == [-2, -1, 0, 1]  # burn-in iterations are negative
    assert bayes.row(-1000000000) is None and bayes.standard_errors is None
    assert bayes.fixed is None
    assert bayes.estimates().theta.tolist() == [1.3, 2.3]  # no final row: the last iteration
    assert (lap.problem, lap.subproblem) == (2, 3)
    est = final_estimates(io.StringIO(EXT))
    assert est.theta.tolist() == [1.5, 2.5] and est.ofv == 6.0
    assert est.omega.tolist() == [[0.1, 0.02], [0.02, 0.2]] and est.sigma.tolist() == [[0.1]]
    assert est.values["OMEGA(2,1)"] == 0.02
    se = lap.standard_errors
    assert se is not None and se["THETA1"] == 0.1 and np.isnan(se["THETA2"])
    assert lap.fixed == {"THETA1": False, "THETA2": True, "SIGMA(1,1)": True,
                         "OMEGA(1,1)": False, "OMEGA(2,1)": False, "OMEGA(2,2)": False}
    assert EXT_ROWS[-1000000006].startswith("fixed")


def test_bad_ext_and_phi_files() -> None:
    with pytest.raises(DataError, match="no ITERATION column"):
        read_ext(io.StringIO("TABLE NO. 1: FO\n ID DV\n 1 2\n"))
    with pytest.raises(DataError, match="has no rows"):
        _ = read_ext(io.StringIO("TABLE NO. 1: FO\n ITERATION THETA1 OBJ\n"))[0].final
    with pytest.raises(DataError, match="no ID column"):
        read_phi(io.StringIO("TABLE NO. 1: FO\n SUBJECT_NO ETA(1)\n 1 0.1\n"))
    phi = read_phi(io.StringIO("TABLE NO. 1: FO\n SUBJECT_NO ID ETA(1) OBJ\n 1 7 0.1 3\n"))[0]
    assert phi.obj.to_dict() == {7: 3.0} and phi.method == "FO"
    with pytest.raises(DataError, match=r"ID: 8 is not in the \.phi table"):
        phi.eta_of(8)
