"""ketasim — open, quantitative software for ketamine therapy.

The public API in one place:

>>> from ketasim import Regimen, simulate
>>> Regimen.parse("0.5 mg/kg IV over 40 min").n_administrations
1

ketasim supports decisions and research; it does not replace a clinician.
"""

from typing import TYPE_CHECKING

from ketasim import _lazy

if TYPE_CHECKING:
    from ketasim.dosing.events import EventTable
    from ketasim.dosing.language import format_regimen, parse_regimen
    from ketasim.dosing.regimen import Dose, Regimen
    from ketasim.dosing.route import Route
    from ketasim.engine.analytic import AnalyticEngine
    from ketasim.engine.core import Engine
    from ketasim.engine.ode import OdeEngine
    from ketasim.engine.population import PopulationEngine
    from ketasim.engine.reference import reference_model
    from ketasim.engine.result import Result, Status
    from ketasim.engine.simulate import simulate
    from ketasim.errors import (
        CovariateError,
        DataError,
        DoseError,
        EventError,
        KetasimError,
        ModelError,
        RegimenError,
        SolverError,
        UnitError,
    )
    from ketasim.io.nmtran import read_nonmem_csv, write_nonmem_csv
    from ketasim.model.model import (
        Compartment,
        Covariate,
        EffectCompartment,
        Flow,
        Flux,
        Link,
        Metabolite,
        Model,
        Output,
        Parameter,
        State,
    )
    from ketasim.model.variability import Eta, RandomEffects

__version__ = "0.1.0"
__all__ = [
    "AnalyticEngine", "Compartment", "Covariate", "CovariateError", "DataError", "Dose",
    "DoseError", "EffectCompartment", "Engine", "Eta", "EventError", "EventTable", "Flow", "Flux",
    "KetasimError", "Link", "Metabolite", "Model", "ModelError", "OdeEngine", "Output",
    "Parameter", "PopulationEngine", "RandomEffects", "Regimen", "RegimenError", "Result",
    "Route", "SolverError", "State", "Status", "UnitError", "format_regimen", "parse_regimen",
    "read_nonmem_csv", "reference_model", "simulate", "write_nonmem_csv",
]

_EXPORTS = {
    "Dose": "ketasim.dosing.regimen",
    "EventTable": "ketasim.dosing.events",
    "Regimen": "ketasim.dosing.regimen",
    "Route": "ketasim.dosing.route",
    "format_regimen": "ketasim.dosing.language",
    "parse_regimen": "ketasim.dosing.language",
    "AnalyticEngine": "ketasim.engine.analytic",
    "Engine": "ketasim.engine.core",
    "OdeEngine": "ketasim.engine.ode",
    "PopulationEngine": "ketasim.engine.population",
    "Result": "ketasim.engine.result",
    "Status": "ketasim.engine.result",
    "simulate": "ketasim.engine.simulate",
    "reference_model": "ketasim.engine.reference",
    "CovariateError": "ketasim.errors",
    "DataError": "ketasim.errors",
    "DoseError": "ketasim.errors",
    "EventError": "ketasim.errors",
    "KetasimError": "ketasim.errors",
    "ModelError": "ketasim.errors",
    "RegimenError": "ketasim.errors",
    "SolverError": "ketasim.errors",
    "UnitError": "ketasim.errors",
    "read_nonmem_csv": "ketasim.io.nmtran",
    "write_nonmem_csv": "ketasim.io.nmtran",
    "Compartment": "ketasim.model.model",
    "Covariate": "ketasim.model.model",
    "Flow": "ketasim.model.model",
    "Flux": "ketasim.model.model",
    "Link": "ketasim.model.model",
    "Model": "ketasim.model.model",
    "Output": "ketasim.model.model",
    "Parameter": "ketasim.model.model",
    "State": "ketasim.model.model",
    "EffectCompartment": "ketasim.model.model",
    "Metabolite": "ketasim.model.model",
    "Eta": "ketasim.model.variability",
    "RandomEffects": "ketasim.model.variability",
}
__getattr__, __dir__ = _lazy.attach(__name__, _EXPORTS)
