"""Dosing as data: routes, doses, regimens, the regimen language and NM-TRAN event tables."""

from ketasim.dosing.events import NMTRAN_COLUMNS, EventTable
from ketasim.dosing.language import format_regimen, parse_regimen
from ketasim.dosing.regimen import Dose, Regimen, check_weight
from ketasim.dosing.route import Route
from ketasim.dosing.schedule import Schedule, SteadyStateSpec, build_schedule

__all__ = ["NMTRAN_COLUMNS", "Dose", "EventTable", "Regimen", "Route", "Schedule",
           "SteadyStateSpec", "build_schedule", "check_weight", "format_regimen",
           "parse_regimen"]
