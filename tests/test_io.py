"""NONMEM CSV reading and writing."""

from __future__ import annotations

import io

import numpy as np
import pytest

from ketasim.dosing import EventTable, parse_regimen
from ketasim.engine.simulate import resolve_compartments
from ketasim.errors import DataError, EventError
from ketasim.io import read_nonmem_csv, write_nonmem_csv
from nmtests_model import nmtests_model


def test_round_trip_preserves_records() -> None:
    table = EventTable.from_records([
        dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=1, II=12, ADDL=2, WT=70),
        dict(ID=1, TIME=1.5, EVID=0, CMT=2, WT=71),
        dict(ID=2, TIME=0, EVID=4, AMT=10, CMT=2, RATE=5, SS=1, II=24, WT=60)],
        covariates=["WT"])
    buf = io.StringIO()
    write_nonmem_csv(table, buf, dv=np.array([np.nan, 3.2, np.nan]))
    text = buf.getvalue()
    assert text.splitlines()[0] == "ID,TIME,EVID,AMT,CMT,RATE,II,ADDL,SS,MDV,WT,DV"
    back, extra = read_nonmem_csv(io.StringIO(text), covariates=["WT"])
    for col in ("id", "time", "evid", "amt", "cmt", "rate", "ii", "addl", "ss"):
        assert np.array_equal(getattr(back, col), getattr(table, col)), col
    assert np.array_equal(back.covariates["WT"], [70, 71, 60])
    assert list(extra["DV"]) == [".", "3.2", "."]


def test_comments_dots_and_default_evid() -> None:
    text = "C,ID,TIME,AMT,CMT,DV\n.,1,0,100,1,.\nC,1,0.5,.,2,9\n.,1,1,.,2,3.1\n"
    table, extra = read_nonmem_csv(io.StringIO(text))
    assert table.n_records == 2
    assert list(table.evid) == [1, 0]
    assert list(extra.columns) == ["DV"]


def test_bad_files() -> None:
    with pytest.raises(DataError, match="TIME"):
        read_nonmem_csv(io.StringIO("ID,AMT\n1,2\n"))
    with pytest.raises(DataError, match="not a number"):
        read_nonmem_csv(io.StringIO("ID,TIME,AMT\n1,zero,2\n"))
    with pytest.raises(DataError, match="covariate"):
        read_nonmem_csv(io.StringIO("ID,TIME\n1,0\n"), covariates=["WT"])
    with pytest.raises(EventError, match="CMT"):
        write_nonmem_csv(parse_regimen("10 mg oral").to_events(), io.StringIO())


def test_regimen_to_dataset_with_model_compartments() -> None:
    from ketasim.model import Compartment
    model = nmtests_model()
    model = type(model)(model.name, model.parameters, model.compartments, model.flows,
                        outputs=model.outputs, routes={"oral": "depot"},
                        covariates=model.covariates, definitions=model.definitions)
    assert isinstance(model.compartments[0], Compartment)
    events = resolve_compartments(model, parse_regimen("25 mg oral q24h x 3").to_events())
    buf = io.StringIO()
    write_nonmem_csv(events, buf)
    assert "1,0,1,25,1,0,24,2,0,1" in buf.getvalue()
