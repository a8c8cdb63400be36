"""The model-definition API: compartments, flows, nonlinear states, outputs, parameters."""

from ketasim.model.expr import Expression
from ketasim.model.model import (
    Compartment,
    Covariate,
    Flow,
    Flux,
    Link,
    Model,
    Output,
    Parameter,
    State,
    compile_function,
)

__all__ = ["Compartment", "Covariate", "Expression", "Flow", "Flux", "Link", "Model", "Output",
           "Parameter", "State", "compile_function"]
