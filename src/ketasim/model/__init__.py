"""The model-definition API: compartments, flows, nonlinear states, outputs, parameters."""

from typing import TYPE_CHECKING

from ketasim import _lazy

if TYPE_CHECKING:
    from ketasim.model.expr import Expression
    from ketasim.model.model import (
        Compartment,
        Covariate,
        EffectCompartment,
        Eta,
        Flow,
        Flux,
        Link,
        Metabolite,
        Model,
        Output,
        Parameter,
        RandomEffects,
        State,
        compile_function,
    )

__all__ = ["Compartment", "Covariate", "EffectCompartment", "Eta", "Expression", "Flow", "Flux",
           "Link", "Metabolite", "Model", "Output", "Parameter", "RandomEffects", "State",
           "compile_function"]

_EXPORTS = {
    "Expression": "ketasim.model.expr",
    "Compartment": "ketasim.model.model",
    "Covariate": "ketasim.model.model",
    "EffectCompartment": "ketasim.model.model",
    "Metabolite": "ketasim.model.model",
    "Eta": "ketasim.model.variability",
    "RandomEffects": "ketasim.model.variability",
    "Flow": "ketasim.model.model",
    "Flux": "ketasim.model.model",
    "Link": "ketasim.model.model",
    "Model": "ketasim.model.model",
    "Output": "ketasim.model.model",
    "Parameter": "ketasim.model.model",
    "State": "ketasim.model.model",
    "compile_function": "ketasim.model.model",
}
__getattr__, __dir__ = _lazy.attach(__name__, _EXPORTS)
