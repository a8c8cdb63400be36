"""The mechanism: NMDA block → glutamate surge → AMPA → BDNF → mTORC1 → synapses, with the
HNK, opioid, lateral-habenula, inflammation, monoamine and neurogenesis hypotheses as
switchable branches. One module per pathway; :func:`run_cascade` joins them."""

from ketasim.mechanism.cascade import (
    CALIBRATED_DEFAULTS,
    Cascade,
    CascadeInputs,
    cascade_inputs,
    course_grid,
    run_cascade,
)
from ketasim.mechanism.parameters import (
    BRANCHES,
    CASCADE,
    REFERENCE_REGIMEN,
    Branch,
    Branches,
)

__all__ = ["BRANCHES", "CALIBRATED_DEFAULTS", "CASCADE", "REFERENCE_REGIMEN", "Branch",
           "Branches", "Cascade", "CascadeInputs", "cascade_inputs", "course_grid",
           "run_cascade"]
