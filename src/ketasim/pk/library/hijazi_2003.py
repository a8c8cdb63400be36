"""Hijazi 2003: racemic ketamine in ICU patients with brain or spinal-cord injury.

Two-compartment values as coded in opentiva class ``Hijazi`` [V as code], consistent with the
paper's NCA clearance 36.0 mL/min/kg [V]. Hijazi Y et al., Br J Anaesth 2003;90:155-160
(bibliography key ``hijazi2003``). (opentiva's age_upper = 18 is a bug: the study was in adults.)
The set reproduces the paper's three NCA results (abstract): clearance 36.0 mL/min/kg, Vβ
16.0 L/kg and terminal half-life 4.9 h, which agree with one another (CL·t½/ln 2 = 15.3 L/kg).
The ICU patients' clearance (151 L/h at 70 kg) lies above the Kamp 2020 band of healthy and
surgical adults; the paper itself reports clearance and volume above volunteers' values (a
population difference, not a transcription error).
"""

from __future__ import annotations

from ketasim.pk.library._common import adult_weight
from ketasim.pk.library._twocmt import per_kg_two_compartment
from ketasim.pk.library_model import LibraryModel, StudyPopulation

SRC = ("hijazi2003, as coded in opentiva (ketamine.py, class Hijazi) [V as code]; V1·k10 is "
       "the paper's NCA clearance, 36.0 mL/min/kg (hijazi2003, abstract) [V]")


def build() -> LibraryModel:
    """Build the library entry."""
    return per_kg_two_compartment(
        "hijazi_2003", "Hijazi 2003 racemic ketamine, IV, adult ICU",
        "hijazi2003",
        SRC, 1.08, 0.0333, 0.0088, 0.0030,
        StudyPopulation("12 adult ICU patients with brain or spinal-cord injury [V]", 12,
                        ranges={"weight": (40.0, 120.0)},
                        distributions=(adult_weight(75.0, 12.0, 45.0, 110.0,
                                                    "assumed: adult ICU, weights [U]"),)),
        ("Weight range of the 12 patients not retrieved; 40–120 kg assumed.",))
