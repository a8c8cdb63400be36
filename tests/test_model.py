"""The model-definition API: safe expressions, validation, units, generated code."""

from __future__ import annotations

import numpy as np
import pytest

from ketasim.dosing import Route
from ketasim.engine import AnalyticEngine, OdeEngine, simulate
from ketasim.errors import ModelError, UnitError
from ketasim.model import (
    Compartment,
    Covariate,
    Expression,
    Flow,
    Flux,
    Model,
    Output,
    Parameter,
    State,
)


@pytest.mark.parametrize("text", ["__import__('os')", "a.b", "[1, 2]", "lambda: 1", "f(x)",
                                  "exp(1, 2)", "'s'", "x if y else z", "_private"])
def test_unsafe_or_unknown_expressions_are_rejected(text: str) -> None:
    with pytest.raises(ModelError):
        Expression.parse(text, field="test")


def test_expressions_evaluate_with_numpy_and_scalars() -> None:
    e = Expression.parse("where(t > 1, a * 2, -a) + max(a, 0) + log10(100)", field="e")
    assert e.evaluate({"t": 2.0, "a": 3.0}) == 6 + 3 + 2
    out = e.evaluate({"t": np.array([0.0, 2.0]), "a": np.array([1.0, 1.0])})
    assert np.allclose(out, [-1 + 1 + 2, 2 + 1 + 2])


def test_units_are_canonicalised() -> None:
    p = Parameter(1000.0, "mL/min").canonical("cl")
    assert p.unit == "L/h" and p.value == pytest.approx(60.0)
    assert Parameter(30.0, "min").canonical("t").value == pytest.approx(0.5)
    with pytest.raises(UnitError):
        Parameter(1.0, "furlongs per fortnight squared ++").canonical("x")


def test_model_validation_messages() -> None:
    base = dict(parameters={"k": Parameter(1.0, "1/h")}, compartments=[Compartment("c")])
    with pytest.raises(ModelError, match="does not exist"):
        Model("m", flows=[Flow("c", "nowhere", "k")], **base)
    with pytest.raises(ModelError, match="not defined"):
        Model("m", flows=[Flow("c", None, "k * missing")], **base)
    with pytest.raises(ModelError, match="in terms of itself"):
        Model("m", definitions={"a": "b", "b": "a"}, **base)
    with pytest.raises(ModelError, match="change over time"):
        Model("m", flows=[Flow("c", None, "k * c")], **base)
    with pytest.raises(ModelError, match="twice"):
        Model("m", parameters={"c": Parameter(1.0)}, compartments=[Compartment("c")])
    with pytest.raises(ModelError, match="usable name"):
        Model("m", parameters={"t": Parameter(1.0)}, compartments=[Compartment("c")])
    with pytest.raises(ModelError, match="evidence"):
        Model("m", parameters={"k": Parameter(1.0, evidence="vibes")},  # type: ignore[arg-type]
              compartments=[Compartment("c")])


def test_nonlinear_model_needs_the_ode_engine() -> None:
    m = Model("mm", {"vmax": Parameter(10.0, "mg/h"), "km": Parameter(5.0, "mg"),
                     "v": Parameter(10.0, "L")}, [Compartment("c")],
              fluxes=[Flux("c", None, "vmax * c / (km + c)")],
              outputs={"cp": Output("c / v", "mg/L")}, routes={Route.IV_BOLUS: "c"})
    assert not m.is_linear
    with pytest.raises(ModelError, match="linear systems only"):
        simulate(m, "100 mg IV bolus", engine=AnalyticEngine(), times=[1.0])
    r = simulate(m, "100 mg IV bolus", times=[0.0, 1.0, 5.0])
    # Michaelis-Menten: t = (A0 - A + km ln(A0/A)) / vmax, check implicit solution
    a = r.states[:, 0]
    t_back = (100 - a + 5 * np.log(100 / a)) / 10
    assert np.allclose(t_back, [0, 1, 5], atol=1e-8)


def test_indirect_response_against_closed_form() -> None:
    # constant stimulation: S(t) = S_ss + (S0 - S_ss) e^{-kout t}
    m = Model("ir", {"kout": Parameter(0.3, "1/h"), "s0": Parameter(2.0), "stim": Parameter(0.5)},
              [Compartment("c")], states={"s": State("kout * s0 * (1 + stim) - kout * s", "s0")},
              outputs={"s": Output("s")}, routes={Route.IV_BOLUS: "c"})
    r = simulate(m, "1 mg IV bolus", engine=OdeEngine(), times=[0.0, 1.0, 4.0, 10.0])
    t = r.time
    expected = 3.0 + (2.0 - 3.0) * np.exp(-0.3 * t)
    assert np.allclose(r["s"], expected, rtol=1e-8)


def test_covariate_default_and_required() -> None:
    m = Model("cov", {"cl": Parameter(5.0, "L/h"), "v": Parameter(50.0, "L")},
              [Compartment("c")], [Flow("c", None, "cl * (wt / 70) ** 0.75 / v")],
              covariates={"wt": Covariate(None, "kg", low=1, high=300)},
              routes={Route.IV_BOLUS: "c"}, outputs={"cp": Output("c / v")})
    from ketasim.errors import CovariateError
    with pytest.raises(CovariateError, match="needed"):
        simulate(m, "10 mg IV bolus", times=[1.0])
    r = simulate(m, "10 mg IV bolus", times=[1.0], covariates={"wt": 70.0})
    assert r["cp"][0] == pytest.approx(10 / 50 * np.exp(-0.1))


def test_with_parameters_and_generated_source() -> None:
    m = Model("x", {"k": Parameter(1.0, "1/h")}, [Compartment("c")], [Flow("c", None, "k")])
    assert m.with_parameters(k=2.0).parameters["k"].value == 2.0
    with pytest.raises(ModelError):
        m.with_parameters(q=1.0)
    src = m.rhs_source()
    assert "def rhs(t, y, p, r, dy)" in src and "dy[0] -= _q" in src
