"""Outcomes: symptom trajectories per indication, placebo, psychotherapy, trials, long-term
risk."""

from ketasim.outcomes.course import Arm, Course, hours, simulate_course
from ketasim.outcomes.indications import Indication, get_indication, load_indications

__all__ = ["Arm", "Course", "Indication", "get_indication", "hours", "load_indications",
           "simulate_course"]
