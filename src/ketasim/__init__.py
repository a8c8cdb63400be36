"""ketasim — open, quantitative software for ketamine therapy.

The public API in one place:

>>> from ketasim import Regimen, simulate
>>> Regimen.parse("0.5 mg/kg IV over 40 min").n_administrations
1

ketasim supports decisions and research; it does not replace a clinician.
"""

from ketasim.dosing import Dose, EventTable, Regimen, Route, format_regimen, parse_regimen
from ketasim.engine import (
    AnalyticEngine,
    Engine,
    OdeEngine,
    PopulationEngine,
    Result,
    simulate,
)
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
from ketasim.io import read_nonmem_csv, write_nonmem_csv
from ketasim.model import (
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

__version__ = "0.1.0"

__all__ = [
    "AnalyticEngine", "Compartment", "Covariate", "CovariateError", "DataError", "Dose",
    "DoseError", "Engine", "EventError", "EventTable", "Flow", "Flux", "KetasimError", "Link",
    "Model", "ModelError", "OdeEngine", "Output", "Parameter", "PopulationEngine", "Regimen",
    "RegimenError", "Result", "Route", "SolverError", "State", "UnitError", "format_regimen",
    "parse_regimen", "read_nonmem_csv", "simulate", "write_nonmem_csv",
]
