"""SBML export (ketasim.io.sbml): every library model, exported with a subject and a regimen,
is simulated by libRoadRunner and compared with ketasim's own engines.

Tolerances, stated once:

* libRoadRunner: CVODE with relative tolerance 1e-12 and absolute tolerance 1e-14 (set on the
  integrator below, never its defaults).
* ketasim: its default engine (analytic for linear models, ODE with rtol 1e-10, atol 1e-12
  for nonlinear ones); the every-element model uses the ODE engine at rtol 1e-12, atol 1e-14.
* Agreement: at every compared time, for every output and every compartment amount,
  ``|sbml - ketasim| <= 1e-6 * max(|ketasim|, floor)`` with the absolute floor
  ``floor = 1e-6 * max |ketasim|`` of that series over the run: values below a millionth of
  their peak (the far terminal phase and emptied depots, where CVODE's absolute tolerance,
  1e-14 per step, accumulates to ~1e-12 mg) are compared absolutely, to 1e-12 of the peak.
* Times: 0.0137 h + a grid of ~0.12 h to the end, so no compared time falls exactly on a dose
  or an infusion end (ketasim's row at a dose time is after the dose; SBML tools may report
  either side of an event there). Every regimen's doses still start at the grid's t = 0.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

roadrunner = pytest.importorskip("roadrunner")
libsbml = pytest.importorskip("libsbml")

from doc_blocks import run_python_blocks  # noqa: E402
from ketasim.dosing import Route  # noqa: E402
from ketasim.dosing.events import EventTable  # noqa: E402
from ketasim.engine.ode import OdeEngine  # noqa: E402
from ketasim.engine.simulate import simulate  # noqa: E402
from ketasim.errors import CovariateError, ModelError, RegimenError  # noqa: E402
from ketasim.io.sbml import output_ids, to_sbml  # noqa: E402
from ketasim.model import (  # noqa: E402
    Compartment,
    Covariate,
    Flow,
    Flux,
    Link,
    Model,
    Output,
    Parameter,
    State,
)
from ketasim.pk.registry import get_model, model_names  # noqa: E402

CVODE_RTOL, CVODE_ATOL = 1e-12, 1e-14
REL = 1e-6
FLOOR = 1e-6  # of each series' peak


def grid(end: float) -> np.ndarray:
    t = np.linspace(0.0, end, 801) + 0.0137
    return t[t < end]


def roadrunner_run(xml: str, times: np.ndarray, selections: list[str]) -> np.ndarray:
    rr = roadrunner.RoadRunner(xml)
    rr.integrator.relative_tolerance = CVODE_RTOL
    rr.integrator.absolute_tolerance = CVODE_ATOL
    rr.integrator.maximum_num_steps = 1_000_000
    assert rr.integrator.relative_tolerance == CVODE_RTOL
    # libRoadRunner starts at the first time given: start at 0 (the doses at t = 0), drop it
    res = rr.simulate(times=[0.0, *times], selections=["time", *selections])
    out = np.asarray(res)[1:]
    np.testing.assert_allclose(out[:, 0], times, rtol=0, atol=1e-12)
    return out[:, 1:]


def worst_difference(model: Model, regimen: object, covariates: dict[str, float],
                     end: float, engine: OdeEngine | None = None,
                     parameters: dict[str, float] | None = None) -> tuple[float, str]:
    """Largest ``|sbml - ketasim| / max(|ketasim|, floor)`` over outputs and amounts."""
    times = grid(end)
    xml = to_sbml(model, covariates=covariates, parameters=parameters,
                  regimen=regimen)  # type: ignore[arg-type]
    ids = output_ids(model)
    outs = list(model.outputs)
    cmts = [c.name for c in model.compartments]
    sb = roadrunner_run(xml, times, [ids[o] for o in outs] + cmts + list(model.states))
    ks = simulate(model, regimen, covariates=covariates, times=times,  # type: ignore[arg-type]
                  parameters=parameters, engine=engine, throw=True)
    series = [ks[o] for o in outs] + [ks.states[:, i] for i in range(model.n_states)]
    names = outs + cmts + list(model.states)
    worst, where = 0.0, ""
    for j, (name, ref) in enumerate(zip(names, series, strict=True)):
        ref = np.asarray(ref, dtype=float)
        assert np.all(np.isfinite(sb[:, j])), name
        peak = float(np.max(np.abs(ref)))
        if peak == 0.0:
            assert np.all(sb[:, j] == 0.0), name
            continue
        rel = np.abs(sb[:, j] - ref) / np.maximum(np.abs(ref), FLOOR * peak)
        if rel.max() > worst:
            k = int(rel.argmax())
            worst, where = float(rel.max()), f"{name} at t={times[k]:.4f} h"
    return worst, where


def regimen_for(route: Route) -> str:
    """Repeated doses by ``route``; infusions overlap (35 mg at 20 mg/h lasts 1.75 h, given
    hourly), so simultaneous on/off events add up."""
    if route is Route.IV_BOLUS:
        return "35 mg IV bolus q12h x 3"
    if route is Route.IV_INFUSION:
        return "35 mg IV at 20 mg/h q1h x 3 then 0.5 mg/kg IV over 40 min q12h x 2"
    return f"50 mg {route.word} q8h x 3"


CASES = [(name, route) for name in model_names() for route in get_model(name).routes]


def covariates_for(model: Model) -> dict[str, float]:
    return {"weight": 70.0} if "weight" in model.covariates else {}


def test_every_library_model_and_route_is_covered() -> None:
    assert {n for n, _ in CASES} == set(model_names())
    kinds = {r for _, r in CASES}
    assert {Route.IV_BOLUS, Route.IV_INFUSION, Route.ORAL, Route.INTRAMUSCULAR,
            Route.INTRANASAL} <= kinds
    assert any(not get_model(n).model.is_linear for n in model_names())


@pytest.mark.parametrize(("name", "route"), CASES, ids=[f"{n}-{r.value}" for n, r in CASES])
def test_library_model_reproduced_by_roadrunner(name: str, route: Route) -> None:
    model = get_model(name).model
    worst, where = worst_difference(model, regimen_for(route), covariates_for(model), 48.0)
    assert worst <= REL, f"{name} {route.value}: {worst:.2e} at {where}"


def test_fixed_covariates_other_than_defaults() -> None:
    """Covariates are written as fixed parameters: non-default values change the SBML run
    exactly as they change ketasim's (age, race and device in Perez-Ruixo 2021; IOV in
    Simons 2022)."""
    pr = get_model("perez_ruixo_2021").model
    covs = {"weight": 60.0, "age": 72.0, "asian": 1.0, "japanese": 1.0, "device": 2.0}
    worst, where = worst_difference(pr, "56 mg esketamine intranasal twice weekly for 2 weeks",
                                    covs, 24 * 8)
    assert worst <= REL, where
    si = get_model("simons_2022").model
    covs = {"weight": 90.0, "iov_f1": 0.3, "iov_d1": -0.2, "iov_f2": -0.1, "iov_d2": 0.25}
    worst, where = worst_difference(si, "25 mg esketamine sublingual q24h x 3", covs, 72.0)
    assert worst <= REL, where
    # the values are in the document
    doc = libsbml.readSBMLFromString(to_sbml(si, covariates=covs))
    assert doc.getModel().getParameter("iov_d2").getValue() == 0.25
    assert doc.getModel().getParameter("iov_d2").getConstant()


# a model with every element ketasim has: lag, bioavailability expression, modelled rate
# (RATE = -1), modelled duration (zero order), flows, a link (effect compartment), a nonlinear
# flux, nonlinear states (one driven by time), definitions (individual and time-varying),
# outputs (one named like a definition), covariates, and every expression function
EVERY = Model(
    name="every_element",
    parameters={
        "ka": Parameter(1.2, "1/h"), "cl": Parameter(6.0, "L/h"), "v": Parameter(40.0, "L"),
        "q": Parameter(3.0, "L/h"), "vp": Parameter(80000.0, "mL"), "ke0": Parameter(0.8, "1/h"),
        "vmax": Parameter(4.0, "mg/h"), "km": Parameter(0.5, "mg/L"),
        "clm": Parameter(2.0, "L/h"), "vm": Parameter(30.0, "L"), "f_po": Parameter(0.6),
        "tlag": Parameter(15.0, "min"), "r_im": Parameter(30.0, "mg/h"),
        "d_sc": Parameter(1.5, "h"), "kin": Parameter(1.0, "1/h"), "kout": Parameter(0.2, "1/h"),
        "emax": Parameter(2.0), "ec50": Parameter(0.4, "mg/L"), "hill": Parameter(1.5),
    },
    covariates={"weight": Covariate(70.0, "kg", low=30.0, high=200.0),
                "age": Covariate(None, "year", low=18.0, high=90.0)},
    compartments=[
        Compartment("depot", f="f_po * min(weight / 70, 1.2)", lag="tlag"),
        Compartment("im_depot", rate="r_im"),
        Compartment("sc_depot", duration="d_sc", zero_order=True, f=0.9),
        Compartment("central"), Compartment("periph"), Compartment("effect"),
        Compartment("metab"),
    ],
    flows=[Flow("depot", "central", "ka"), Flow("im_depot", "central", "2 * ka"),
           Flow("sc_depot", "central", "ka"), Flow("central", None, "cli / v"),
           Flow("central", "periph", "q / v"), Flow("periph", "central", "q / vp"),
           Flow("effect", None, "ke0"), Flow("metab", None, "clm / vm")],
    links=[Link("central", "effect", "ke0")],
    fluxes=[Flux("central", "metab", "vmax * cp / (km + cp)")],
    states={
        "response": State("kin * exp(-0.01 * t) * (1 + emax * ce_pos ** hill / "
                          "(ec50 ** hill + ce_pos ** hill)) - kout * response",
                          initial="kin / kout"),
        "auc": State("cp", initial=0.0, unit="mg*h/L"),
    },
    definitions={
        "heavy": "weight > 80",
        "cli": "cl * (weight / 70) ** 0.75 * where(age > 65, 0.8, 1.0) * (1 + 0.1 * heavy)",
        "cp": "central / v",
        "ce": "effect / v",
        "ce_pos": "where(ce > 0, ce, 0)",
    },
    outputs={"cp": Output("cp", "mg/L"), "ce": Output("ce", "mg/L"),
             "log_cp": Output("log10(1 + cp) + log(1 + ce)"),
             "spread": Output("sqrt(abs(cp - ce)) + -cp ** 2"),
             "capped": Output("min(cp, 0.5) + max(ce, 0.1) + where(auc, 1, 0)"),
             "cm": Output("metab / vm", "mg/L"), "response_out": Output("response")},
    routes={Route.ORAL: "depot", Route.INTRAMUSCULAR: "im_depot",
            Route.SUBCUTANEOUS: "sc_depot", Route.IV_BOLUS: "central",
            Route.IV_INFUSION: "central", Route.INTRANASAL: ("depot", "central")},
)
TIGHT = OdeEngine(rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("regimen", [
    "20 mg IV bolus q6h x 3",
    "30 mg IV over 2 h q3h x 3",
    "40 mg oral q4h x 4",
    "40 mg SC q6h x 2",
    "10 mg intranasal q8h x 2 then 30 mg IM",
])
def test_every_element_model_reproduced(regimen: str) -> None:
    covs = {"weight": 85.0, "age": 70.0}
    worst, where = worst_difference(EVERY, regimen, covs, 30.0, engine=TIGHT)
    assert worst <= REL, f"{regimen}: {worst:.2e} at {where}"


def test_event_table_rates_and_modelled_rate() -> None:
    """NM-TRAN records: an explicit RATE (F scales the duration), RATE = -1 (the model's rate
    r_im), RATE = -2 (the model's duration), DUR, a zero-amount record and ADDL/II."""
    table = EventTable.from_records([
        dict(ID=1, TIME=0.0, EVID=1, AMT=25.0, CMT=4, RATE=10.0),
        dict(ID=1, TIME=1.0, EVID=1, AMT=40.0, CMT=2, RATE=-1, II=5.0, ADDL=2),
        dict(ID=1, TIME=2.0, EVID=1, AMT=30.0, CMT=1, DUR=0.5),
        dict(ID=1, TIME=3.0, EVID=1, AMT=20.0, CMT=3, RATE=-2),
        dict(ID=1, TIME=4.0, EVID=1, AMT=0.0, CMT=4),
        dict(ID=1, TIME=5.0, EVID=1, AMT=15.0, CMT=1, II=3.0, ADDL=3),
    ])
    worst, where = worst_difference(EVERY, table, {"weight": 60.0, "age": 40.0}, 30.0,
                                    engine=TIGHT)
    assert worst <= REL, f"{worst:.2e} at {where}"


def test_parameters_replaced() -> None:
    """``parameters=`` replaces values (canonical units) as ``simulate(parameters=...)`` does;
    the replaced value is in the document and changes the run."""
    pars = {"vmax": 9.0, "tlag": 0.6, "d_sc": 0.5}
    regimen = "40 mg oral q4h x 2 then 20 mg SC"
    worst, where = worst_difference(EVERY, regimen, {"age": 30.0}, 20.0, engine=TIGHT,
                                    parameters=pars)
    assert worst <= REL, where
    doc = libsbml.readSBMLFromString(to_sbml(EVERY, covariates={"age": 30.0}, parameters=pars))
    assert doc.getModel().getParameter("vmax").getValue() == 9.0
    with pytest.raises(ModelError, match="is not a parameter"):
        to_sbml(EVERY, covariates={"age": 30.0}, parameters={"vmx": 9.0})


def test_document_structure() -> None:
    """What each ketasim element becomes (module docstring table)."""
    doc = libsbml.readSBMLFromString(to_sbml(EVERY, covariates={"age": 30.0},
                                             regimen="40 mg oral q4h x 2"))
    m = doc.getModel()
    assert (doc.getLevel(), doc.getVersion()) == (3, 2)
    assert m.getNumSpecies() == len(EVERY.compartments)
    assert all(m.getSpecies(i).getHasOnlySubstanceUnits() for i in range(m.getNumSpecies()))
    assert m.getNumReactions() == len(EVERY.flows) + len(EVERY.links) + len(EVERY.fluxes)
    assert m.getRateRule("response") is not None and m.getRateRule("auc") is not None
    assert m.getInitialAssignmentBySymbol("response") is not None
    for d in EVERY.definitions:
        assert m.getAssignmentRule(d) is not None
    assert output_ids(EVERY)["cp"] == "cp_output"
    assert m.getAssignmentRule("cp_output") is not None
    assert m.getParameter("age").getValue() == 30.0 and m.getParameter("age").getConstant()
    # parameters in canonical units: 80000 mL is 80 L; 15 min is 0.25 h
    assert m.getParameter("vp").getValue() == 80.0
    assert m.getParameter("tlag").getValue() == 0.25
    ud = m.getUnitDefinition(m.getParameter("cl").getUnits())
    assert libsbml.UnitDefinition.printUnits(ud, True) == "(1 litre)^1, (3600 second)^-1"
    assert m.getTimeUnits() == m.getParameter("tlag").getUnits()
    # two oral doses: the trigger carries the lag, the assignment the bioavailability
    assert m.getNumEvents() == 2
    ev = m.getEvent(1)
    assert "tlag" in libsbml.formulaToL3String(ev.getTrigger().getMath())
    assert "4 +" in libsbml.formulaToL3String(ev.getTrigger().getMath())
    assert "f_po" in libsbml.formulaToL3String(ev.getEventAssignment(0).getMath())
    assert not ev.getUseValuesFromTriggerTime()


@pytest.mark.parametrize("name", model_names())
def test_library_documents_pass_libsbml_consistency(name: str) -> None:
    model = get_model(name).model
    route = next(iter(model.routes))
    doc = libsbml.readSBMLFromString(to_sbml(model, covariates=covariates_for(model),
                                             regimen=regimen_for(route)))
    doc.checkConsistency()
    errors = [doc.getError(i).getMessage() for i in range(doc.getNumErrors())
              if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR]
    assert errors == []
    assert doc.getModel().getNumEvents() > 0


def test_every_element_document_passes_libsbml_consistency() -> None:
    doc = libsbml.readSBMLFromString(to_sbml(EVERY, covariates={"age": 50.0},
                                             regimen="30 mg IV over 2 h q3h x 3"))
    doc.checkConsistency()
    errors = [doc.getError(i).getMessage() for i in range(doc.getNumErrors())
              if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR]
    assert errors == []


def test_refusals_are_typed() -> None:
    m = get_model("otto_2021").model
    ss = EventTable.from_records([dict(ID=1, TIME=0.0, EVID=1, AMT=10.0, CMT=1, II=12.0, SS=1)])
    with pytest.raises(RegimenError, match="steady-state") as info:
        to_sbml(m, covariates={"weight": 70.0}, regimen=ss)
    assert info.value.field == "SS"
    reset = EventTable.from_records([dict(ID=1, TIME=0.0, EVID=1, AMT=10.0, CMT=1),
                                     dict(ID=1, TIME=5.0, EVID=3, CMT=1)])
    with pytest.raises(RegimenError, match="resets"):
        to_sbml(m, covariates={"weight": 70.0}, regimen=reset)
    two = EventTable.from_records([dict(ID=1, TIME=0.0, EVID=1, AMT=10.0, CMT=1),
                                   dict(ID=2, TIME=0.0, EVID=1, AMT=10.0, CMT=1)])
    with pytest.raises(RegimenError, match="2 subjects"):
        to_sbml(m, covariates={"weight": 70.0}, regimen=two)
    varying = EventTable.from_records([dict(ID=1, TIME=0.0, EVID=1, AMT=10.0, CMT=1, WT=70.0),
                                       dict(ID=1, TIME=5.0, EVID=0, CMT=1, WT=80.0)])
    varying = EventTable(**{**{k: getattr(varying, k) for k in (
        "id", "time", "evid", "amt", "cmt", "rate", "dur", "ii", "addl", "ss", "route")},
        "covariates": {"weight": np.array([70.0, 80.0])}})
    with pytest.raises(CovariateError, match="changes over time"):
        to_sbml(m, covariates={"weight": 70.0}, regimen=varying)
    with pytest.raises(CovariateError, match="is not a covariate"):
        to_sbml(m, covariates={"weight": 70.0, "height": 170.0})
    with pytest.raises(CovariateError, match="is needed"):
        to_sbml(EVERY)  # age has no default
    named_time = Model("t1", {"time": Parameter(1.0, "h"), "k": Parameter(0.1, "1/h")},
                       [Compartment("a")], flows=[Flow("a", None, "k")])
    with pytest.raises(ModelError, match="SBML symbol") as info2:
        to_sbml(named_time)
    assert info2.value.field == "time"


def test_missing_libsbml_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "libsbml", None)
    with pytest.raises(ModelError, match=r"ketasim\[sbml\]"):
        to_sbml(get_model("otto_2021"))


# the lead registers the command on the app; until then the test registers it itself
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``ketasim`` entry point, as a user runs it."""
    exe = shutil.which("ketasim") or str(Path(sys.executable).with_name("ketasim"))
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)


def test_cli_export_reproduced(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "hornik.xml"
    regimen = "0.5 mg/kg IM q8h x 2"
    p = run_cli("export-sbml", "hornik_2018", "--regimen", regimen, "--covariate", "weight=25",
                "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "wrote" in p.stdout and "ketamine" in p.stdout
    model = get_model("hornik_2018").model
    times = grid(24.0)
    sb = roadrunner_run(out.read_text(), times, ["ketamine"])[:, 0]
    ref = simulate(model, regimen, covariates={"weight": 25.0}, times=times)["ketamine"]
    floor = FLOOR * np.max(np.abs(ref))
    assert np.max(np.abs(sb - ref) / np.maximum(np.abs(ref), floor)) <= REL
    # without --regimen: the model alone, no events; output ids renamed where they clash
    bare = tmp_path / "racemic.xml"
    p = run_cli("export-sbml", "racemic_enantiomers", "--covariate", "weight=70",
                "--covariate", "age=30", "--out", str(bare))
    assert p.returncode == 0, p.stderr
    ids = json.loads(run_cli("export-sbml", "racemic_enantiomers", "--covariate", "weight=70",
                             "--covariate", "age=30", "--out", str(bare), "--format",
                             "json").stdout)["outputs"]
    assert ids["s_hnk"] == "s_hnk_output"
    m = libsbml.readSBMLFromFile(str(bare)).getModel()
    assert m.getNumEvents() == 0 and m.getParameter("age").getValue() == 30.0


def test_cli_errors_exit_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for args, text in [
        (["export-sbml", "otto_2021", "--covariate", "weight", "--out", "x.xml"],
         "NAME=VALUE"),
        (["export-sbml", "otto_2021", "--covariate", "weight=heavy", "--out", "x.xml"],
         "not a number"),
        (["export-sbml", "no_such_model", "--out", "x.xml"], "unknown model"),
        (["export-sbml", "racemic_enantiomers", "--regimen", "0.5 mg/kg IV over 40 min",
          "--out", "x.xml"], "weight"),
        (["export-sbml", "otto_2021", "--regimen", "35 mg IV bolus", "--covariate",
          "weight=70", "--out", str(tmp_path / "missing" / "x.xml")], "cannot write"),
    ]:
        p = run_cli(*args)
        assert p.returncode == 2, (args, p.stderr)
        assert text in p.stderr and "Traceback" not in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_docs_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_python_blocks("docs/sbml.md") == 1
    printed = capsys.readouterr().out
    assert "max relative difference" in printed
