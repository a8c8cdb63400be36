"""Engines behind one entry point: analytic (linear), ODE (any model), population (batched)."""

from typing import TYPE_CHECKING

from ketasim import _lazy

if TYPE_CHECKING:
    from ketasim.engine.analytic import AnalyticEngine
    from ketasim.engine.core import Engine
    from ketasim.engine.ode import OdeEngine
    from ketasim.engine.population import PopulationEngine
    from ketasim.engine.result import Result
    from ketasim.engine.simulate import simulate

__all__ = ["AnalyticEngine", "Engine", "OdeEngine", "PopulationEngine", "Result", "simulate"]

_EXPORTS = {
    "AnalyticEngine": "ketasim.engine.analytic",
    "Engine": "ketasim.engine.core",
    "OdeEngine": "ketasim.engine.ode",
    "PopulationEngine": "ketasim.engine.population",
    "Result": "ketasim.engine.result",
    "simulate": "ketasim.engine.simulate",
}
__getattr__, __dir__ = _lazy.attach(__name__, _EXPORTS)
