"""Dosing as data: routes, doses, regimens, the regimen language and NM-TRAN event tables."""

from typing import TYPE_CHECKING

from ketasim import _lazy

if TYPE_CHECKING:
    from ketasim.dosing.events import NMTRAN_COLUMNS, EventTable
    from ketasim.dosing.language import format_regimen, parse_regimen
    from ketasim.dosing.regimen import Dose, Regimen, check_weight
    from ketasim.dosing.route import Route
    from ketasim.dosing.schedule import Schedule, SteadyStateSpec, build_schedule

__all__ = ["NMTRAN_COLUMNS", "Dose", "EventTable", "Regimen", "Route", "Schedule",
           "SteadyStateSpec", "build_schedule", "check_weight", "format_regimen",
           "parse_regimen"]

_EXPORTS = {
    "NMTRAN_COLUMNS": "ketasim.dosing.events",
    "EventTable": "ketasim.dosing.events",
    "format_regimen": "ketasim.dosing.language",
    "parse_regimen": "ketasim.dosing.language",
    "Dose": "ketasim.dosing.regimen",
    "Regimen": "ketasim.dosing.regimen",
    "check_weight": "ketasim.dosing.regimen",
    "Route": "ketasim.dosing.route",
    "Schedule": "ketasim.dosing.schedule",
    "SteadyStateSpec": "ketasim.dosing.schedule",
    "build_schedule": "ketasim.dosing.schedule",
}
__getattr__, __dir__ = _lazy.attach(__name__, _EXPORTS)
