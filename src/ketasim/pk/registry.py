"""The model library: names, lookup, and the default model per route and compound.

>>> [m.name for m in list_models()][:3]
['racemic_enantiomers', 'domino_1982', 'clements_1981']
>>> default_model_name("racemic", Route.IV_INFUSION)
'racemic_enantiomers'
"""

from __future__ import annotations

from functools import cache

from ketasim.dosing.route import Route
from ketasim.errors import ModelError
from ketasim.pk.library import (
    clements_1981,
    domino_1982,
    flint_2017,
    herd_2007,
    hijazi_2003,
    hornik_2018,
    otto_2021,
    perez_ruixo_2021,
    racemic_enantiomers,
    simons_2022,
)
from ketasim.pk.library_model import Compound, LibraryModel

_BUILDERS = {
    "racemic_enantiomers": racemic_enantiomers.build,
    "domino_1982": domino_1982.build,
    "clements_1981": clements_1981.build,
    "hijazi_2003": hijazi_2003.build,
    "herd_2007": herd_2007.build,
    "hornik_2018": hornik_2018.build,
    "otto_2021": otto_2021.build,
    "simons_2022": simons_2022.build,
    "flint_2017": flint_2017.build,
    "perez_ruixo_2021": perez_ruixo_2021.build,
}

# (compound, route) -> (model, reason)
DEFAULTS: dict[tuple[str, Route], tuple[str, str]] = {
    **{("racemic", r): ("racemic_enantiomers",
                        "the only racemic model with S/R, norketamine and HNK for every clinic "
                        "route; venous disposition matching clinical sampling")
       for r in (Route.IV_INFUSION, Route.IV_BOLUS, Route.INTRAMUSCULAR, Route.SUBCUTANEOUS,
                 Route.INTRANASAL, Route.ORAL, Route.SUBLINGUAL, Route.BUCCAL, Route.RECTAL)},
    ("esketamine", Route.INTRANASAL): ("perez_ruixo_2021",
                                       "N = 820, the nasal spray with its swallowed fraction, "
                                       "first pass and covariates"),
    ("esketamine", Route.ORAL): ("perez_ruixo_2021",
                                 "explicit hepatic first pass of the oral solution"),
    ("esketamine", Route.IV_INFUSION): ("otto_2021",
                                        "venous, fully specified and externally validated"),
    ("esketamine", Route.IV_BOLUS): ("otto_2021", "venous, fully specified"),
    ("esketamine", Route.SUBLINGUAL): ("simons_2022", "the only mucosal esketamine model"),
    ("esketamine", Route.BUCCAL): ("simons_2022", "the only mucosal esketamine model"),
}


def model_names() -> list[str]:
    """Names of every library model."""
    return list(_BUILDERS)


@cache
def get_model(name: str) -> LibraryModel:
    """The library model called ``name``."""
    key = name.strip().lower().replace("-", "_")
    if key not in _BUILDERS:
        raise ModelError("model", f"unknown model {name!r}",
                         f"use one of: {', '.join(_BUILDERS)} (see 'ketasim models')")
    return _BUILDERS[key]()


def list_models() -> list[LibraryModel]:
    """Every library model, in listing order."""
    return [get_model(n) for n in _BUILDERS]


def default_model_name(compound: Compound | str, route: Route) -> str:
    """The default model for a compound given by a route."""
    key = (str(compound), route)
    if key not in DEFAULTS:
        options = sorted(m.name for m in list_models() if m.compound == compound and
                         route in m.routes)
        raise ModelError("model", f"no default model for {compound} by {route.word}",
                         f"name one with --model ({', '.join(options) or 'none available'})")
    return DEFAULTS[key][0]


__all__ = ["DEFAULTS", "default_model_name", "get_model", "list_models", "model_names"]
