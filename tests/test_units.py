"""Units at the boundary: one pint registry, canonical mg/L/h inside, ng/mL and µM out."""

from __future__ import annotations

import numpy as np
import pytest

from ketasim.dosing import Dose, Route
from ketasim.engine import simulate
from ketasim.errors import DoseError, UnitError
from ketasim.model import Compartment, Flow, Model, Output, Parameter
from ketasim.units import amount_unit_factor, convert, time_unit_factor, to_hours, to_mg


@pytest.mark.parametrize("unit,hours", [("s", 1 / 3600), ("min", 1 / 60), ("h", 1.0),
                                        ("d", 24.0), ("week", 168.0)])
def test_time_units(unit: str, hours: float) -> None:
    assert time_unit_factor(unit) == pytest.approx(hours)
    assert to_hours(f"2 {unit}") == pytest.approx(2 * hours)


@pytest.mark.parametrize("unit,mg,kind", [("mg", 1.0, "amount"), ("g", 1000.0, "amount"),
                                          ("µg", 1e-3, "amount"), ("mcg/kg", 1e-3, "per_kg"),
                                          ("mg/kg", 1.0, "per_kg")])
def test_amount_units(unit: str, mg: float, kind: str) -> None:
    assert amount_unit_factor(unit) == (pytest.approx(mg), kind)


def test_bad_units_are_typed() -> None:
    with pytest.raises(UnitError, match="time unit"):
        time_unit_factor("fortnight")
    with pytest.raises(UnitError):
        amount_unit_factor("mL")
    with pytest.raises(UnitError, match="not a time"):
        to_hours("5 mg")
    with pytest.raises(UnitError, match="not a mass"):
        to_mg("5 h")
    with pytest.raises(UnitError):
        convert(1.0, "mg/L", "h")


def test_dose_of_quantities() -> None:
    d = Dose.of("500 µg/kg", "IV", duration="40 min", time="1 d")
    assert d.per_kg and d.amount == pytest.approx(0.5) and d.time == 24.0
    assert d.duration == pytest.approx(2 / 3) and d.route is Route.IV_INFUSION
    assert Dose.of("2 g", "oral").amount == 2000.0
    assert Dose.of(30, "IV").route is Route.IV_BOLUS
    with pytest.raises(DoseError):
        Dose.of("lots", "oral")


def test_concentrations_in_ng_per_ml_and_micromolar() -> None:
    m = Model("c", {"v": Parameter(100.0, "L"), "k": Parameter(0.0001, "1/h")},
              [Compartment("central")], [Flow("central", None, "k")],
              outputs={"cp": Output("central / v", "mg/L", molar_mass=237.73),
                       "x": Output("central", "mg")},
              routes={Route.IV_BOLUS: "central"})
    r = simulate(m, "23.773 mg IV bolus", times=[0.0])
    assert r.in_units("cp", "ng/mL")[0] == pytest.approx(237.73)
    assert r.in_units("cp", "µM")[0] == pytest.approx(1.0)
    assert r.in_units("cp", "ug/mL")[0] == pytest.approx(0.23773)
    with pytest.raises(Exception, match="molar mass"):
        r.in_units("x", "uM")
    assert np.isfinite(r.in_units("x", "g")).all()
