"""Bad event tables and dosing input get typed errors naming the field and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from ketasim.dosing import EventTable
from ketasim.engine import simulate
from ketasim.errors import CovariateError, EventError, KetasimError, ModelError
from nmtests_model import nmtests_model


def table(**over):
    rec = dict(ID=1, TIME=0.0, EVID=1, AMT=100.0, CMT=1)
    rec.update(over)
    return EventTable.from_records([rec, dict(ID=1, TIME=5.0, EVID=0, CMT=2)])


@pytest.mark.parametrize("over,field,words", [
    (dict(AMT=-5.0), "AMT", "negative dose"),
    (dict(AMT=float("nan")), "AMT", "not a finite number"),
    (dict(TIME=float("inf")), "TIME", "not a finite number"),
    (dict(TIME=-1.0), "TIME", "negative"),
    (dict(EVID=7), "EVID", "0, 1, 2, 3 or 4"),
    (dict(SS=3, II=12), "SS", "0, 1 or 2"),
    (dict(ADDL=2), "II", "ADDL > 0"),
    (dict(SS=1), "II", "is 0 on a steady-state dose"),
    (dict(DUR=1e-300), "DUR", "shorter than"),
    (dict(RATE=-3.0), "RATE", "-1 or -2"),
    (dict(RATE=5.0, DUR=2.0), "DUR", "together with RATE"),
    (dict(ADDL=1.5, II=12), "ADDL", "non-integer"),
])
def test_bad_records(over, field, words) -> None:
    with pytest.raises(EventError) as exc:
        table(**over)
    assert exc.value.field == field
    assert words in exc.value.problem
    assert exc.value.fix


def test_unsorted_and_interleaved_subjects() -> None:
    with pytest.raises(EventError, match="earlier than the record before"):
        EventTable.from_records([dict(ID=1, TIME=5.0), dict(ID=1, TIME=1.0)])
    with pytest.raises(EventError, match="not contiguous"):
        EventTable.from_records([dict(ID=1), dict(ID=2), dict(ID=1, TIME=1.0)])


def test_dose_into_missing_compartment_and_unsupported_route() -> None:
    model = nmtests_model()
    with pytest.raises(EventError, match="compartment 5") as exc:
        simulate(model, table(CMT=5))
    assert "1..2" in exc.value.fix
    with pytest.raises(ModelError, match="does not support intranasal"):
        simulate(model, "84 mg intranasal", times=[1.0])
    with pytest.raises(EventError, match="no route"):
        simulate(model, table(CMT=0))


def test_modelled_rate_without_model_value() -> None:
    from ketasim.model import Compartment, Flow, Model, Parameter
    m = Model("m", {"k": Parameter(1.0, "1/h")}, [Compartment("c")], [Flow("c", None, "k")])
    with pytest.raises(EventError, match="RATE=-1"):
        simulate(m, EventTable.from_records([dict(ID=1, EVID=1, AMT=10, CMT=1, RATE=-1)]))


def test_covariates_checked() -> None:
    from ketasim.engine.reference import reference_model
    with pytest.raises(CovariateError, match="weight"):
        simulate(reference_model(), "0.5 mg/kg IV over 40 min", times=[1.0])
    with pytest.raises(CovariateError, match="outside"):
        simulate(reference_model(), "35 mg IV over 40 min", times=[1.0],
                 covariates={"weight": 900.0})
    with pytest.raises(CovariateError, match="values"):
        simulate(reference_model(), "35 mg IV over 40 min", times=[1.0],
                 covariates={"weight": [70.0, 80.0]}, parameters={"cl": [1.0, 2.0, 3.0]})


def test_every_error_is_one_line_with_a_fix() -> None:
    cases = [lambda: table(AMT=-1), lambda: simulate(nmtests_model(), table(CMT=9)),
             lambda: simulate(nmtests_model(), "x"), lambda: simulate(nmtests_model(), table(),
                                                                     times=[-1.0])]
    for case in cases:
        with pytest.raises(KetasimError) as exc:
            case()
        text = str(exc.value)
        assert "\n" not in text and "(fix: " in text


def test_observation_rows_and_dose_rows() -> None:
    r = simulate(nmtests_model(), table())
    assert list(r.evid) == [1, 0]
    r2 = simulate(nmtests_model(), table(), times=[1.0, 2.0])
    assert list(r2.time) == [1.0, 2.0, 5.0]
    assert np.all(r2.evid == 0)
