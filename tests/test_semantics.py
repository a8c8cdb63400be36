"""NM-TRAN choices the NONMEM reference set does not exercise, checked against long explicit
dose histories (steady state) and against the definition (resets)."""

from __future__ import annotations

import numpy as np
import pytest

from ketasim.dosing import EventTable
from ketasim.engine import AnalyticEngine, OdeEngine, simulate
from nmtests_model import nmtests_model


def steady_vs_history(rec: dict, lag: float, n_history: int = 200) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """SS=1 record at T versus the same dose given explicitly n_history times before T."""
    ii = rec["II"]
    t_ss = n_history * ii
    grid = t_ss + np.linspace(0.0, 3 * ii, 37)
    covs = {"lagt": lag}
    ss = EventTable.from_records([{**rec, "ID": 1, "TIME": t_ss, "EVID": 1, "SS": 1}])
    hist = EventTable.from_records([{**rec, "ID": 1, "TIME": t_ss - k * ii, "EVID": 1, "SS": 0,
                                     "II": 0, "ADDL": 0} for k in range(n_history, 0, -1)]
                                   + [{**rec, "ID": 1, "TIME": t_ss, "EVID": 1, "SS": 0}])
    a = simulate(nmtests_model(), ss, times=grid, covariates=covs)["cp"]
    b = simulate(nmtests_model(), hist, times=grid, covariates=covs)["cp"]
    return a, b


@pytest.mark.parametrize("lag", [0.0, 5.0, 12.0, 15.0, 30.0])
@pytest.mark.parametrize("kind", ["bolus", "infusion", "long_infusion"])
def test_steady_state_equals_a_long_history(kind: str, lag: float) -> None:
    rec = {"AMT": 100.0, "CMT": 2, "II": 12.0, "ADDL": 2}
    if kind == "infusion":
        rec["RATE"] = 25.0  # 4 h
    if kind == "long_infusion":
        rec["RATE"] = 100.0 / 30.0  # 30 h > II: three infusions overlap
    a, b = steady_vs_history(rec, lag)
    assert np.allclose(a, b, rtol=1e-7, atol=1e-9 * b.max())


def test_reset_cancels_running_infusions_and_pending_doses() -> None:
    table = EventTable.from_records([
        dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=2, II=12, ADDL=3, RATE=10),
        dict(ID=1, TIME=20, EVID=3, CMT=2),
        dict(ID=1, TIME=30, EVID=0, CMT=2),
        dict(ID=1, TIME=40, EVID=0, CMT=2)])
    for engine in (AnalyticEngine(), OdeEngine()):
        r = simulate(nmtests_model(), table, engine=engine)
        assert r["cp"][2] == 0.0 and r["cp"][3] == 0.0


def test_dose_record_row_is_after_its_dose_and_observation_order_is_kept() -> None:
    table = EventTable.from_records([
        dict(ID=1, TIME=0, EVID=0, CMT=2),
        dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=2),
        dict(ID=1, TIME=0, EVID=0, CMT=2)])
    cp = simulate(nmtests_model(), table)["cp"]
    assert cp[0] == 0.0 and cp[1] == pytest.approx(5000.0) and cp[2] == pytest.approx(5000.0)
