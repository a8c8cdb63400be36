"""The papers behind what the public pages say, and evidence text fit for the public.

The indications' evidence strings (``ketasim/data/indications.toml``) are written for the
team: they cite papers by first author and year, and carry working notes — pointers into the
team's reference files (``(PDC §D)``, ``ketamine-pd-clinical.md §F``) and grades of how a
number was checked (``[V]``, ``[M]``). :func:`public_text` removes the working notes;
:func:`papers_cited` finds the papers a text names, each with its journal and, where the
team's reference gives one, its DOI (the DOI index of shared/reference/ketamine-pd-clinical.md
§I, marked V there, and the sources of :mod:`ketasim.clinic.dose_check`).

>>> public_text("Zarate 2006, Murrough 2013, Popova 2019 (PDC §D)")
'Zarate 2006, Murrough 2013, Popova 2019'
>>> public_text("Taylor 2018 NPP 43:325 (n=18 crossover): response 33.3 % vs 0 % [V]")
'Taylor 2018 NPP 43:325 (n=18 crossover): response 33.3 % vs 0 %'
>>> [p.short for p in papers_cited("Wilkinson 2018 AJP; Taiwan RCT (PDC §E)")]
['Wilkinson 2018', 'Su 2023']
>>> papers_cited("Murrough 2013")[0].doi_url
'https://doi.org/10.1176/appi.ajp.2013.13030392'
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    """A published paper as the public pages cite it."""

    short: str  # first author and year, as the evidence text names it
    authors: str  # the first author, "et al." where there are more
    year: int
    journal: str  # journal, volume and first page
    doi: str = ""

    @property
    def doi_url(self) -> str:
        """A link to the paper (empty without a DOI)."""
        return f"https://doi.org/{self.doi}" if self.doi else ""

    @property
    def citation(self) -> str:
        """``Authors (year). Journal volume:page.``"""
        return f"{self.authors} ({self.year}). {self.journal}."


_PAPERS = (
    Paper("Zarate 2006", "Zarate CA Jr et al.", 2006,
          "Arch Gen Psychiatry 63:856", "10.1001/archpsyc.63.8.856"),
    Paper("Murrough 2013", "Murrough JW et al.", 2013,
          "Am J Psychiatry 170:1134", "10.1176/appi.ajp.2013.13030392"),
    Paper("Fava 2020", "Fava M et al.", 2020,
          "Mol Psychiatry 25:1592", "10.1038/s41380-018-0256-5"),
    Paper("Singh 2016", "Singh JB et al.", 2016,
          "Am J Psychiatry 173:816", "10.1176/appi.ajp.2016.16010037"),
    Paper("Phillips 2019", "Phillips JL et al.", 2019,
          "Am J Psychiatry 176:401", "10.1176/appi.ajp.2018.18070834"),
    Paper("Popova 2019", "Popova V et al.", 2019,
          "Am J Psychiatry 176:428", "10.1176/appi.ajp.2019.19020172"),
    Paper("Zarate 2012", "Zarate CA Jr et al.", 2012,
          "Biol Psychiatry 71:939"),
    Paper("Wilkinson 2018", "Wilkinson ST et al.", 2018,
          "Am J Psychiatry 175:150", "10.1176/appi.ajp.2017.17040472"),
    Paper("Su 2023", "Su TP et al.", 2023,
          "Int J Neuropsychopharmacol 26:331", "10.1093/ijnp/pyad014"),
    Paper("Feder 2014", "Feder A et al.", 2014,
          "JAMA Psychiatry 71:681"),
    Paper("Abdallah 2022", "Abdallah CG et al.", 2022,
          "Neuropsychopharmacology 47:1574", "10.1038/s41386-022-01266-9"),
    Paper("Rodriguez 2013", "Rodriguez CI et al.", 2013,
          "Neuropsychopharmacology 38:2475", "10.1038/npp.2013.150"),
    Paper("Bloch 2012", "Bloch MH et al.", 2012,
          "Biol Psychiatry 72:964"),
    Paper("Taylor 2018", "Taylor JH et al.", 2018,
          "Neuropsychopharmacology 43:325", "10.1038/npp.2017.194"),
    Paper("Glue 2017", "Glue P et al.", 2017,
          "J Psychopharmacol 31:1302", "10.1177/0269881117705089"),
    Paper("Zhou 2024", "Zhou Y et al.", 2024,
          "J Am Acad Child Adolesc Psychiatry 63:507", "10.1016/j.jaac.2023.05.031"),
    Paper("Sigtermans 2009", "Sigtermans MJ et al.", 2009,
          "Pain 145:304", "10.1016/j.pain.2009.06.023"),
    Paper("Dahan 2011", "Dahan A et al.", 2011,
          "Eur J Pain 15:258", "10.1016/j.ejpain.2010.06.016"),
    Paper("Grabski 2022", "Grabski M et al.", 2022,
          "Am J Psychiatry 179:152", "10.1176/appi.ajp.2021.21030277"),
    Paper("Keeler 2021", "Keeler JL et al.", 2021,
          "Nutrients 13:4158", "10.3390/nu13114158"),
    Paper("Ragnhildstveit 2022", "Ragnhildstveit A et al.", 2022,
          "Brain Sci 12:382"),
)
PAPERS: dict[str, Paper] = {p.short: p for p in _PAPERS}
# names the evidence text uses for a paper instead of its first author and year
ALIASES = {"Taiwan RCT": "Su 2023"}

# working notes: a pointer into the team's reference files, or a grade of how a number was
# checked ([V] seen in the source, [M] from memory, [U] unverified, and combinations)
_NOTE_PAREN = re.compile(r"\s*\((?:[^()]*?(?:PDC|\.md\b|§)[^()]*)\)")
_NOTE_BARE = re.compile(r"\s*(?:the Taiwan RCT of )?(?:PDC|[\w-]+\.md)\s*§\s*[A-Z]\d*")
_GRADE = re.compile(r"\s*\[(?:[VMU](?:[/ ][^\]]{0,30})?|V use|V design; M results)\]")


def public_text(text: str) -> str:
    """``text`` without the team's working notes (reference-file pointers and check
    grades), tidied."""
    out = _NOTE_PAREN.sub("", text)
    out = _GRADE.sub("", out)
    out = _NOTE_BARE.sub("", out)
    out = re.sub(r"\(\s*[;,]?\s*\)", "", out)
    out = re.sub(r"\s+([;,.])", r"\1", out)
    out = re.sub(r"\s{2,}", " ", out)
    return out.strip(" ;,")


def papers_cited(text: str) -> list[Paper]:
    """The papers ``text`` names (by first author and year, or an alias), in order, once."""
    found: list[tuple[int, Paper]] = []
    for key, p in PAPERS.items():
        m = re.search(rf"\b{re.escape(key)}\b", text)
        if m:
            found.append((m.start(), p))
    for alias, key in ALIASES.items():
        m = re.search(rf"\b{re.escape(alias)}\b", text)
        if m and all(p.short != key for _, p in found):
            found.append((m.start(), PAPERS[key]))
    return [p for _, p in sorted(found, key=lambda x: x[0])]


def has_working_notes(text: str) -> bool:
    """Whether ``text`` still carries a working note (used by the tests of public pages)."""
    return bool(re.search(r"PDC|\.md\b|§|\[[VMU]\]", text))


__all__ = ["ALIASES", "PAPERS", "Paper", "has_working_notes", "papers_cited", "public_text"]
