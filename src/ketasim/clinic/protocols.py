"""The protocol library treatment plans start from (regimens in the regimen language).

Schedules follow the published trials and the label (sources name bibliography keys): the
racemic IV induction series (Phillips 2019: 6 infusions over 2 weeks), the esketamine label
schedule (56 mg day 1, then 56/84 mg twice weekly for weeks 1-4, weekly for weeks 5-8), IM and
sublingual options used in clinics (assumed typical; no published trial fixes them), and
maintenance boosters.

>>> PROTOCOLS["iv_induction"].regimen
'0.5 mg/kg IV over 40 min three times weekly for 2 weeks'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    """A named regimen with its source."""

    id: str
    title: str
    regimen: str
    source: str


PROTOCOLS: dict[str, Protocol] = {p.id: p for p in (
    Protocol("iv_induction", "IV racemic ketamine induction series (6 infusions)",
             "0.5 mg/kg IV over 40 min three times weekly for 2 weeks",
             "phillips2019 (six infusions over two weeks)"),
    Protocol("esketamine_rems", "Esketamine nasal spray, label induction + weekly phase",
             "56 mg esketamine intranasal on day 1 then 84 mg twice weekly for 4 weeks "
             "then 84 mg weekly for 4 weeks", "spravato-label: dosage and administration; REMS "
             "monitoring"),
    Protocol("im_weekly", "IM racemic ketamine weekly",
             "0.5 mg/kg IM weekly for 4 weeks",
             "assumed clinic practice (no published IM trial fixes a schedule)"),
    Protocol("sublingual_kap", "Sublingual ketamine for ketamine-assisted psychotherapy",
             "100 mg sublingual weekly for 6 weeks",
             "assumed clinic practice (the evidence for ketamine-assisted psychotherapy is "
             "limited)"),
    Protocol("iv_maintenance", "IV maintenance boosters every 2 weeks",
             "0.5 mg/kg IV over 40 min every 14 days for 6 doses",
             "phillips2019: weekly maintenance infusions held the response; the 2-week "
             "interval is assumed"),
)}

__all__ = ["PROTOCOLS", "Protocol"]
