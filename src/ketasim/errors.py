"""Typed errors that name the offending field and say how to fix it.

Every error raised for bad user input derives from :class:`KetasimError`, carries the name of
the field at fault and a one-line fix, and renders as a single line (the CLI prints ``str(err)``
and exits with code 2).

>>> err = DoseError("amount", "dose amount is -5 mg", "amounts must be >= 0")
>>> str(err)
'amount: dose amount is -5 mg (fix: amounts must be >= 0)'
"""

from __future__ import annotations


class KetasimError(Exception):
    """Base class of every ketasim error: a field, what is wrong, and the fix."""

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        text = f"{field}: {problem}"
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)


class UnitError(KetasimError):
    """A quantity has a unit that cannot be converted to what the field needs."""


class RegimenError(KetasimError):
    """Regimen text or a regimen object is malformed or ambiguous."""


class DoseError(KetasimError):
    """A dose has a bad amount, time, rate, duration or route."""


class EventError(KetasimError):
    """An NM-TRAN event table is inconsistent (unsorted times, bad EVID/CMT/SS combination …)."""


class CovariateError(KetasimError):
    """A subject covariate is missing or outside its allowed range."""


class ModelError(KetasimError):
    """A model definition is invalid, or a model cannot do what was asked of it."""


class SolverError(KetasimError):
    """A numerical solver failed (raised only when the caller asks for ``throw=True``)."""


class DataError(KetasimError):
    """A data file (CSV dataset, table) cannot be read as the expected format."""


__all__ = [
    "CovariateError",
    "DataError",
    "DoseError",
    "EventError",
    "KetasimError",
    "ModelError",
    "RegimenError",
    "SolverError",
    "UnitError",
]
