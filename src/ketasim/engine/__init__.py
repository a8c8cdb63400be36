"""Engines behind one entry point: analytic (linear), ODE (any model), population (batched)."""

from typing import TYPE_CHECKING

from ketasim import _lazy

if TYPE_CHECKING:
    from ketasim.engine.analytic import AnalyticEngine
    from ketasim.engine.core import Engine, SubjectEngine
    from ketasim.engine.ode import OdeEngine
    from ketasim.engine.population import PopulationEngine
    from ketasim.engine.result import Result, Status
    from ketasim.engine.simulate import simulate

__all__ = ["AnalyticEngine", "Engine", "OdeEngine", "PopulationEngine", "Result", "Status",
           "SubjectEngine", "simulate"]

_EXPORTS = {
    "AnalyticEngine": "ketasim.engine.analytic",
    "Engine": "ketasim.engine.core",
    "OdeEngine": "ketasim.engine.ode",
    "PopulationEngine": "ketasim.engine.population",
    "Result": "ketasim.engine.result",
    "Status": "ketasim.engine.result",
    "SubjectEngine": "ketasim.engine.core",
    "simulate": "ketasim.engine.simulate",
}
__getattr__, __dir__ = _lazy.attach(__name__, _EXPORTS)
