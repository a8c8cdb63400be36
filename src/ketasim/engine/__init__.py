"""Engines behind one entry point: analytic (linear), ODE (any model), population (batched)."""

from ketasim.engine.analytic import AnalyticEngine
from ketasim.engine.core import Engine
from ketasim.engine.ode import OdeEngine
from ketasim.engine.population import PopulationEngine
from ketasim.engine.result import Result
from ketasim.engine.simulate import simulate

__all__ = ["AnalyticEngine", "Engine", "OdeEngine", "PopulationEngine", "Result", "simulate"]
