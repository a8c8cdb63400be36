"""The papers behind what the public pages say, and evidence text fit for the public.

Evidence and source strings (``ketasim/data/indications.toml``, the screening cautions, the
protocol library) name their works by bibliography key (:mod:`ketasim.references`) and carry
grades of how a number was checked (``[V]``, ``[M]``). :func:`public_text` turns the keys into
short citations and drops the grades; :func:`papers_cited` gives the works a text cites, each
with its full citation and DOI link, for the page's list of studies.

>>> public_text("zarate2006; murrough2013; popova2019")
'Zarate et al. 2006; Murrough et al. 2013; Popova et al. 2019'
>>> public_text("taylor2018 (n=18 crossover): response 33.3 % vs 0 % [V]")
'Taylor et al. 2018 (n=18 crossover): response 33.3 % vs 0 %'
>>> [p.short for p in papers_cited("wilkinson2018: IPD meta-analysis; su2023")]
['Wilkinson et al. 2018', 'Su et al. 2023']
>>> papers_cited("murrough2013")[0].doi_url
'https://doi.org/10.1176/appi.ajp.2013.13030392'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ketasim.references import Reference, cited_keys, render_source, resolve

# grades of how a number was checked ([V] seen in the source, [M] from memory, [U]
# unverified, and combinations such as [V abstract] or [M timings])
_GRADE = re.compile(r"\s*\[(?:[VMUS](?:[/ ;,][^\]]{0,40})?)\]")
# names of the team's working notes, which users do not have (never shown on a page)
WORKING_NOTES = ("ketamine-pk.md", "ketamine-pd-clinical.md", "ketamine-acute-pd.md",
                 "reliability-security.md", "shared/reference")


def public_text(text: str) -> str:
    """``text`` with bibliography keys as short citations and without check grades, tidied."""
    out = render_source(_GRADE.sub("", text))
    out = re.sub(r"\(\s*[;,]?\s*\)", "", out)
    out = re.sub(r"\s+([;,.])", r"\1", out)
    out = re.sub(r"\s{2,}", " ", out)
    return out.strip(" ;,")


def papers_cited(*texts: str | Iterable[str]) -> list[Reference]:
    """The works ``texts`` cite (by bibliography key), in order, each once."""
    flat: list[str] = []
    for t in texts:
        flat.extend([t] if isinstance(t, str) else t)
    return [resolve(k) for k in cited_keys(flat, strict=False)]


def has_working_notes(text: str) -> bool:
    """Whether ``text`` still carries a working note: a note file's name or a pointer into
    one (``PDC §D``), or a check grade (used by the tests of public pages)."""
    return (any(n in text for n in WORKING_NOTES)
            or bool(re.search(r"PDC|\.md\b|§|\[[VMU]\]", text)))


__all__ = ["WORKING_NOTES", "has_working_notes", "papers_cited", "public_text"]
