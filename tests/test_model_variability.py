"""Between-subject variability declared in the model ($OMEGA / ETA), and the one-line effect
compartment and metabolite, checked against closed-form solutions on every engine."""

from __future__ import annotations

import numpy as np
import pytest

from ketasim.dosing import Route
from ketasim.engine import AnalyticEngine, OdeEngine, PopulationEngine, simulate
from ketasim.errors import ModelError
from ketasim.model import (
    Compartment,
    Covariate,
    EffectCompartment,
    Eta,
    Flow,
    Metabolite,
    Model,
    Output,
    Parameter,
    RandomEffects,
)

RTOL = 1e-6  # engines against closed form (the project's stated engine tolerance)
ENGINES = [AnalyticEngine(), OdeEngine(), PopulationEngine()]


def _p(v: float, unit: str) -> Parameter:
    return Parameter(v, unit, source="test", evidence="assumed")


def one_cmt(**extra: object) -> Model:
    """1-compartment IV model with allometric clearance; etas act after the allometry."""
    kwargs: dict[str, object] = {"outputs": {"cp": Output("central / vi", "mg/L")}, **extra}
    return Model(
        "one", {"cl": _p(6.0, "L/h"), "v": _p(40.0, "L")}, [Compartment("central")],
        [Flow("central", None, "cli / vi")],
        covariates={"weight": Covariate(70.0, "kg", low=1, high=300)},
        definitions={"cli": "cl * (weight / 70) ** 0.75", "vi": "v * weight / 70"},
        routes={Route.IV_BOLUS: "central", Route.IV_INFUSION: "central"},
        **kwargs)  # type: ignore[arg-type]


def test_eta_acts_after_the_covariate_formulas() -> None:
    m = one_cmt(etas={"eta_cl": Eta("cli"), "eta_v": Eta("vi", "proportional")},
                omega={"eta_cl": 0.09, "eta_v": 0.04})
    ind = m.individual({"weight": 90.0}, {"eta_cl": 0.3, "eta_v": -0.1})
    assert float(ind["cli"]) == pytest.approx(6.0 * (90 / 70) ** 0.75 * np.exp(0.3), rel=1e-15)
    assert float(ind["vi"]) == pytest.approx(40.0 * 90 / 70 * 0.9, rel=1e-15)
    # without etas: the typical individual
    assert float(m.individual({"weight": 90.0})["cli"]) == pytest.approx(6.0 * (90 / 70) ** 0.75)


def test_additive_eta_on_a_parameter_reaches_its_definitions() -> None:
    m = one_cmt(etas={"eta_v": Eta("v", "additive")}, omega=[[4.0]])
    ind = m.individual({"weight": 35.0}, {"eta_v": 2.0})
    assert float(ind["vi"]) == pytest.approx((40.0 + 2.0) * 0.5, rel=1e-15)


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: type(e).__name__)
def test_etas_per_subject_on_every_engine_against_closed_form(engine: object) -> None:
    m = one_cmt(etas={"eta_cl": Eta("cli"), "eta_v": Eta("vi")},
                omega={"eta_cl": 0.09, "eta_v": 0.04})
    w = np.array([50.0, 70.0, 110.0])
    e_cl, e_v = np.array([-0.4, 0.0, 0.5]), np.array([0.2, -0.3, 0.1])
    t = np.linspace(0.25, 24, 20)
    res = simulate(m, "100 mg IV bolus", engine=engine, covariates={"weight": w},  # type: ignore[arg-type]
                   parameters={"eta_cl": e_cl, "eta_v": e_v}, times=t)
    df = res.to_frame(wide=True)
    for k in range(3):
        cl = 6.0 * (w[k] / 70) ** 0.75 * np.exp(e_cl[k])
        v = 40.0 * w[k] / 70 * np.exp(e_v[k])
        expect = 100.0 / v * np.exp(-cl / v * t)
        got = df[df["id"] == k + 1]["cp"].to_numpy()
        np.testing.assert_allclose(got, expect, rtol=RTOL, atol=0)


def test_sample_etas_has_the_declared_covariance() -> None:
    om = np.array([[0.09, 0.03], [0.03, 0.04]])
    m = one_cmt(etas={"eta_cl": Eta("cli"), "eta_v": Eta("vi")}, omega=om)
    assert isinstance(m.random_effects, RandomEffects)
    draws = m.sample_etas(200_000, np.random.default_rng(1))
    cov = np.cov(np.vstack([draws["eta_cl"], draws["eta_v"]]))
    # 200,000 draws: the sampling SD of each (co)variance is below 4e-4
    np.testing.assert_allclose(cov, om, atol=2e-3)
    assert one_cmt().sample_etas(5, np.random.default_rng(0)) == {}


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"etas": {"eta_cl": Eta("nothing")}, "omega": [[0.1]]}, "etas.eta_cl"),
    ({"etas": {"eta_cl": Eta("weight")}, "omega": [[0.1]]}, "etas.eta_cl"),
    ({"etas": {"eta_cl": Eta("cli", "cubic")}, "omega": [[0.1]]}, "etas.eta_cl"),  # type: ignore[arg-type]
    ({"etas": {"eta_cl": Eta("cli")}}, "omega"),
    ({"etas": {"eta_cl": Eta("cli")}, "omega": {"eta_v": 0.1}}, "omega"),
    ({"etas": {"eta_cl": Eta("cli")}, "omega": [[-0.1]]}, "omega"),
    ({"omega": [[0.1]]}, "omega"),
    ({"etas": {"cl": Eta("cli")}, "omega": [[0.1]]}, "cl"),
])
def test_bad_declarations_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ModelError) as err:
        one_cmt(**kwargs)
    assert err.value.field == field


def test_unknown_eta_or_parameter_is_refused_naming_it() -> None:
    m = one_cmt(etas={"eta_cl": Eta("cli")}, omega=[[0.1]])
    with pytest.raises(ModelError) as err:
        m.individual(parameters={"eta_q": 0.1})
    assert err.value.field == "eta_q" and "eta_cl" in str(err.value)


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: type(e).__name__)
def test_effect_compartment_in_one_line_against_closed_form(engine: object) -> None:
    ke0 = 1.7
    m = one_cmt(effect_compartments=[EffectCompartment("effect", "central", ke0, "vi")],
                outputs={"cp": Output("central / vi", "mg/L"), "ce": Output("effect", "mg/L")})
    t = np.linspace(0.1, 12, 25)
    res = simulate(m, "100 mg IV bolus", engine=engine, times=t)  # type: ignore[arg-type]
    df = res.to_frame(wide=True)
    k = 6.0 / 40.0
    expect = 100.0 / 40.0 * ke0 / (ke0 - k) * (np.exp(-k * t) - np.exp(-ke0 * t))
    np.testing.assert_allclose(df["ce"].to_numpy(), expect, rtol=RTOL)


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: type(e).__name__)
def test_metabolite_in_one_line_against_closed_form(engine: object) -> None:
    fm, km = 0.8, 0.4
    m = one_cmt(metabolites=[Metabolite("metab", "central", fm, km)],
                outputs={"cp": Output("central / vi", "mg/L"), "am": Output("metab", "mg")})
    t = np.linspace(0.1, 24, 25)
    res = simulate(m, "100 mg IV bolus", engine=engine, times=t)  # type: ignore[arg-type]
    df = res.to_frame(wide=True)
    k = 6.0 / 40.0
    expect = fm * k * 100.0 / (km - k) * (np.exp(-k * t) - np.exp(-km * t))
    np.testing.assert_allclose(df["am"].to_numpy(), expect, rtol=RTOL)
    # mass balance of the split: parent elimination is unchanged
    np.testing.assert_allclose(df["cp"].to_numpy(), 100.0 / 40.0 * np.exp(-k * t), rtol=RTOL)


def test_metabolite_needs_one_elimination_flow() -> None:
    with pytest.raises(ModelError) as err:
        one_cmt(metabolites=[Metabolite("m", "nothing", 0.5, 1.0)])
    assert err.value.field == "metabolites.m"


def test_declarations_survive_replace_without_doubling() -> None:
    m = one_cmt(effect_compartments=[EffectCompartment("effect", "central", 1.0, "vi")],
                metabolites=[Metabolite("metab", "central", 0.5, 0.2)],
                etas={"eta_cl": Eta("cli")}, omega=[[0.1]])
    m2 = m.with_parameters(cl=7.0)
    assert [c.name for c in m2.compartments] == ["central", "metab", "effect"]
    assert len(m2.flows) == len(m.flows) == 4 and m2.etas == m.etas


def test_models_doc_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/models.md's worked example runs and prints what its text says."""
    from doc_blocks import run_python_blocks

    assert run_python_blocks("docs/models.md") == 3
    out = capsys.readouterr().out
    assert "['central', 'norket', 'ce']" in out
    cl = 80 * (90 / 70) ** 0.75 * np.exp(0.3)
    assert f"{cl:.2f} L/h" in out
    assert "['eta_cl', 'eta_ke0', 'eta_kout', 'eta_q2', 'eta_v1'] 0.0862" in out
