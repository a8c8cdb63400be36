"""Clements & Nimmo 1981 ("Clements250"): racemic ketamine 250 µg/kg IV, 2 compartments.

Values as coded in opentiva class ``Clements250`` [V as code; paper content U], ref.
Clements JA, Nimmo WS, Br J Anaesth 1981;53:27-30 (bibliography key ``clements1981``).
"""

from __future__ import annotations

from ketasim.pk.library._common import adult_weight
from ketasim.pk.library._twocmt import per_kg_two_compartment
from ketasim.pk.library_model import LibraryModel, StudyPopulation

SRC = "clements1981, as coded in opentiva (ketamine.py, class Clements250) [V as code]"


def build() -> LibraryModel:
    """Build the library entry."""
    return per_kg_two_compartment(
        "clements_1981", "Clements & Nimmo 1981 racemic ketamine, IV",
        "clements1981",
        SRC, 1.7522, 0.0109, 0.0186, 0.0137,
        StudyPopulation("adult volunteers, 250 µg/kg IV (details [U])", 0,
                        ranges={"weight": (40.0, 120.0)},
                        distributions=(adult_weight(75.0, 12.0, 45.0, 110.0,
                                                    "assumed: adults, details [U]"),)),
        ("Studied population not documented in the sources checked; 40–120 kg assumed.",))
