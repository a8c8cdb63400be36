"""Hornik 2018: racemic ketamine IV and IM in children, 2 compartments, IM F = 41 %.

Hornik CP et al., J Clin Pharmacol 2018;58(8):1092-1104 (key ``hornik2018``). IM F = 0.41
[V abstract]; V1, V2, CL, Q as coded in opentiva [S, not checked against the paper]; the
absorption rate constant was not retrieved and is calibrated (``ketasim.validation.calibration``).
"""

from __future__ import annotations

from ketasim.pk.library._allometric import allometric_two_compartment
from ketasim.pk.library._common import calibrated, lit
from ketasim.pk.library_model import CovariateDistribution, LibraryModel, StudyPopulation

SRC = "hornik2018, as coded in opentiva (ketamine.py, class Hornik) [S, not checked vs paper]"


def build() -> LibraryModel:
    """Build the library entry."""
    return allometric_two_compartment(
        "hornik_2018", "Hornik 2018 racemic ketamine, IV and IM, children",
        "hornik2018",
        SRC, "S", cl=38.9, v1=32.8, q=54.9, v2=152.0, bsv_cv={},
        im=(lit(0.41, "", "IM bioavailability", "hornik2018, abstract [V]"),
            calibrated(11.08, "1/h", "IM absorption rate constant",
                       "ketasim.validation.calibration 'hornik_2018.ka_im': Tmax 10 min (IM Tmax "
                       "5-15 min, clements1982 [S]); hornik2018's ka not retrieved [U]")),
        population=StudyPopulation(
            "113 children (50 IM, 63 IV), 0.02-17.6 y, 2.4-176 kg [V]", 113,
            ranges={"weight": (2.4, 176.0), "age": (0.02, 17.6)},
            distributions=(CovariateDistribution(
                "weight", "lognormal", mean=14.0, sd=0.8, low=2.4, high=176.0,
                source="median 14 kg and range [V]; log-normal spread assumed"),)),
        assumptions=("Absorption rate constant calibrated to an adult IM Tmax of 10 min; the "
                     "paper's ka was not retrieved.",
                     "Disposition values are opentiva's transcription [S]; the published "
                     "BSV was not retrieved, so this entry has no IIV."))
