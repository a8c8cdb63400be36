"""The regimen language: dosing schedules as clinicians write them, parsed and printed back.

Grammar (case-insensitive)::

    regimen  := phase ("then" phase)*
    phase    := AMOUNT UNIT [COMPOUND] [ROUTE] [infusion] [start] [schedule [count]]
    COMPOUND := ketamine | racemic | esketamine | S-ketamine | arketamine | R-ketamine
    UNIT     := mg | g | µg | ug | mcg, optionally "/kg"
    ROUTE    := IV | IV bolus | IM | intranasal | oral | PO | sublingual | SL | buccal | rectal
                | SC | subcutaneous | inhaled      (a later phase may omit it: same route)
    infusion := "over" N (s|min|h)  |  "at" N UNIT "/h"
    start    := "on day" N  |  "at" N (min|h|d)     (absolute; day 1 is time 0)
    schedule := once | daily | twice daily | weekly | twice weekly | three times weekly
                | N times weekly | every N (h|days|weeks) | every other day | qNh | qNd
    count    := "for" N (days|weeks|doses) | "x" N | "until day" N

"IV" with "over …" is an infusion, without it a bolus. ``N times weekly`` spaces doses evenly
(II = 168/N h, e.g. 56 h for three times weekly), as NM-TRAN's II/ADDL does. A phase after
"then" starts one dosing interval after the last dose before it (the earlier phase's interval,
or the new phase's own when the earlier phase was a single dose), unless it names a start.

>>> r = parse_regimen("0.5 mg/kg IV over 40 min three times weekly for 2 weeks")
>>> r.n_administrations, r.doses[0].every
(6, 56.0)
>>> format_regimen(r)
'0.5 mg/kg IV over 40 min three times weekly for 2 weeks'
"""

from __future__ import annotations

from ketasim.dosing.regimen import Regimen
from ketasim.dosing.text import format_doses, parse_doses


def parse_regimen(text: str) -> Regimen:
    """Parse regimen text into a :class:`Regimen`; ambiguous text raises :class:`RegimenError`.

    Parse once, where the text comes in (a command's option, a form, a design file), and pass
    the :class:`Regimen` on.
    """
    return Regimen(parse_doses(text))


def format_regimen(regimen: Regimen) -> str:
    """Print a regimen in the regimen language; ``parse_regimen`` reads it back to an equal one."""
    return format_doses(regimen.doses)


__all__ = ["format_regimen", "parse_regimen"]
