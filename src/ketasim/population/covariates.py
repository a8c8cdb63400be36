"""A patient's characteristics as a model's covariates: the one mapping that the command line,
the web forms and scripts share (units at the boundary: weight in kg, age in years).

Sex is coded female = 1, male = 0 and kept only where the model has a sex covariate (most
ketamine models dropped it in covariate selection); otherwise a note says it was ignored.
Japanese ancestry implies Asian ancestry (the Japanese studies are also Asian).

>>> pc = patient_covariates(weight_kg=70, sex="female", japanese=True, model_covariates={"weight"})
>>> pc.values
{'weight': 70.0, 'japanese': 1.0, 'asian': 1.0}
>>> pc.notes
('sex is not a covariate of this model (not retained by its authors); ignored',)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ketasim.errors import CovariateError

FEMALE = ("female", "f")
MALE = ("male", "m")


@dataclass(frozen=True)
class PatientCovariates:
    """Covariate values for a model (canonical units) and notes on what was left out."""

    values: dict[str, float]
    notes: tuple[str, ...] = ()


def parse_sex(text: str) -> float:
    """``female``/``f`` → 1.0, ``male``/``m`` → 0.0 (any case); anything else raises
    :class:`~ketasim.errors.CovariateError`.

    >>> parse_sex("F"), parse_sex("male")
    (1.0, 0.0)
    """
    word = text.strip().lower()
    if word in FEMALE:
        return 1.0
    if word in MALE:
        return 0.0
    raise CovariateError("sex", f"{text!r} is not female or male", "use --sex female|male")


def patient_covariates(*, weight_kg: float | None = None, age_years: float | None = None,
                       sex: str | None = None, asian: bool | None = None,
                       japanese: bool | None = None,
                       model_covariates: Collection[str] | None = None,
                       model_name: str = "this model") -> PatientCovariates:
    """The covariates a patient's characteristics give (``None``: not given, model default).

    ``model_covariates``: the covariates the model declares (needed when ``sex`` is given;
    ``model_name`` names the model in the note when sex is dropped).
    """
    values: dict[str, float] = {}
    notes: list[str] = []
    if weight_kg is not None:
        values["weight"] = float(weight_kg)
    if age_years is not None:
        values["age"] = float(age_years)
    if asian is not None:
        values["asian"] = float(asian)
    if japanese is not None:
        values["japanese"] = float(japanese)
        if japanese:
            values["asian"] = 1.0
    if sex is not None:
        code = parse_sex(sex)
        if model_covariates is None:
            raise CovariateError("sex", "cannot be mapped without the model's covariates",
                                 "pass model_covariates (the model's declared covariates)")
        if "sex" in model_covariates:
            values["sex"] = code
        else:
            notes.append(f"sex is not a covariate of {model_name} (not retained by its "
                         "authors); ignored")
    return PatientCovariates(values, tuple(notes))


__all__ = ["PatientCovariates", "parse_sex", "patient_covariates"]
