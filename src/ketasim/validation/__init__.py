"""Validation: library models against their papers' numbers and independent observations."""

from ketasim.validation.pk import PK_TARGETS, Outcome, Target, run_pk_validation

__all__ = ["PK_TARGETS", "Outcome", "Target", "run_pk_validation"]
