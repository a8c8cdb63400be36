"""Routes of administration and the words clinicians use for them.

>>> Route.parse("SL")
<Route.SUBLINGUAL: 'sublingual'>
>>> Route.IV_INFUSION.is_infusion
True
"""

from __future__ import annotations

from enum import StrEnum

from ketasim.errors import DoseError


class Route(StrEnum):
    """How a dose is given. Models map each route they support to a dosing compartment."""

    IV_BOLUS = "iv_bolus"
    IV_INFUSION = "iv_infusion"
    INTRAMUSCULAR = "im"
    INTRANASAL = "intranasal"
    ORAL = "oral"
    SUBLINGUAL = "sublingual"
    BUCCAL = "buccal"
    RECTAL = "rectal"
    SUBCUTANEOUS = "sc"
    INHALED = "inhaled"

    @property
    def is_infusion(self) -> bool:
        """True for zero-order intravenous input."""
        return self is Route.IV_INFUSION

    @property
    def is_intravenous(self) -> bool:
        """True for IV bolus and IV infusion."""
        return self in (Route.IV_BOLUS, Route.IV_INFUSION)

    @property
    def word(self) -> str:
        """The short word the regimen language prints for this route."""
        return _WORDS[self]

    @classmethod
    def parse(cls, text: str) -> Route:
        """Read a route from its value or a common clinical abbreviation."""
        key = text.strip().lower().replace("-", " ").replace("_", " ")
        route = _ALIASES.get(key)
        if route is None:
            try:
                return cls(text.strip().lower())
            except ValueError:
                raise DoseError(
                    "route", f"unknown route {text!r}",
                    "use one of IV, IV bolus, IM, intranasal, oral, sublingual, buccal, rectal, "
                    "SC, inhaled") from None
        return route


_WORDS = {
    Route.IV_BOLUS: "IV bolus",
    Route.IV_INFUSION: "IV",
    Route.INTRAMUSCULAR: "IM",
    Route.INTRANASAL: "intranasal",
    Route.ORAL: "oral",
    Route.SUBLINGUAL: "sublingual",
    Route.BUCCAL: "buccal",
    Route.RECTAL: "rectal",
    Route.SUBCUTANEOUS: "SC",
    Route.INHALED: "inhaled",
}

_ALIASES = {
    "iv bolus": Route.IV_BOLUS, "bolus": Route.IV_BOLUS, "iv push": Route.IV_BOLUS,
    "iv infusion": Route.IV_INFUSION, "infusion": Route.IV_INFUSION,
    # plain "IV" names the intravenous route; a dose without a duration is a bolus
    "iv": Route.IV_INFUSION, "intravenous": Route.IV_INFUSION,
    "im": Route.INTRAMUSCULAR, "intramuscular": Route.INTRAMUSCULAR,
    "in": Route.INTRANASAL, "intranasal": Route.INTRANASAL, "nasal": Route.INTRANASAL,
    "nasal spray": Route.INTRANASAL,
    "po": Route.ORAL, "oral": Route.ORAL, "oral tablet": Route.ORAL,
    "sl": Route.SUBLINGUAL, "sublingual": Route.SUBLINGUAL,
    "buccal": Route.BUCCAL,
    "pr": Route.RECTAL, "rectal": Route.RECTAL,
    "sc": Route.SUBCUTANEOUS, "sq": Route.SUBCUTANEOUS, "subcut": Route.SUBCUTANEOUS,
    "subcutaneous": Route.SUBCUTANEOUS,
    "inhaled": Route.INHALED, "inhalation": Route.INHALED,
}

__all__ = ["Route"]
