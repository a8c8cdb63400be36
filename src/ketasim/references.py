"""The bibliography behind every number: source keys, full citations and DOI links.

ketasim ships its bibliography as CSL-JSON (``ketasim/data/references.json``, the format of
Zotero, pandoc and citeproc). Every ``source`` in ketasim -- of a model parameter, a validation
target, a packaged data row -- names the works it rests on by **key**, followed by where in the
work the number is (a table, a figure, a section), for example ``"zarate2006, Table 2"`` or
``"otto2021, Table 3; fanta2015"``. Keys are the first author's family name and the year in
lower case (``perezruixo2021``, a letter added where one author has two papers in a year:
``simons2022a``); works without an author and year have a descriptive key
(``spravato-label``, ``nlmixr2lib``). Text around the keys (``assumed: ...``, the calibration
that fitted a value) stays as written.

:func:`format_citation` gives a work's full citation with its DOI link, :func:`render_source`
a source with each key replaced by a short citation, and :func:`full_source` that text followed
by the full citations. A key that is not in the bibliography raises :class:`CitationError`.

>>> short_citation("zarate2006")
'Zarate et al. 2006'
>>> render_source("zarate2006 as tabulated by zanos2018, Table 1 [S]")
'Zarate et al. 2006 as tabulated by Zanos et al. 2018, Table 1 [S]'
>>> [(c.key, c.locator) for c in Source.parse("otto2021, Table 3; fanta2015").citations]
[('otto2021', 'Table 3'), ('fanta2015', '')]
>>> resolve("zarate2006").doi_url
'https://doi.org/10.1001/archpsyc.63.8.856'
>>> resolve("nosuchkey1999")
Traceback (most recent call last):
ketasim.references.CitationError: key: unknown reference key 'nosuchkey1999' (fix: ...)
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ketasim.errors import KetasimError

DATA_FILE = "references.json"

# a key with a year: family name(s) in lower case, the year, an optional letter
_YEAR_KEY = r"[a-z]{2,}(?:19|20)\d{2}[a-z]?"
_BEFORE = r"(?<![\w/.@-])"
_AFTER = r"(?![\w/@-])"
_LOCATOR = re.compile(
    r"(?:,\s*|\s+)((?:Supplementary\s+(?:Table|Fig(?:ure)?|code)|Tables?|Figs?\.?|Figures?|"
    r"[Ss]ections?|[Ss]upplement|[Aa]bstract|Methods|Results|Discussion|p\.|pp\.)"
    r"(?:\s+[A-Z]?\d+[A-Za-z]?(?:\.\d+)*(?:\s*[-–/,]\s*[A-Z]?\d+[A-Za-z]?(?:\.\d+)*)*)?)")


class CitationError(KetasimError):
    """A source names a reference key that the bibliography does not hold."""


@dataclass(frozen=True)
class Reference:
    """One bibliography record (a CSL-JSON item), with the fields ketasim shows."""

    key: str
    type: str
    authors: tuple[str, ...]  # "Family Initials" or an organisation; "et al." when truncated
    families: tuple[str, ...]  # the authors' family names (organisations whole)
    year: int | None
    title: str
    container: str  # journal (or the site / publisher of a document)
    volume: str = ""
    issue: str = ""
    page: str = ""
    doi: str = ""
    pmid: str = ""
    pmcid: str = ""
    url: str = ""
    note: str = ""
    label: str = ""  # short citation for works without an author and year

    @property
    def doi_url(self) -> str:
        """``https://doi.org/...`` (empty without a DOI)."""
        return f"https://doi.org/{self.doi}" if self.doi else ""

    @property
    def pubmed_url(self) -> str:
        """The PubMed page (empty without a PMID)."""
        return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/" if self.pmid else ""

    @property
    def link(self) -> str:
        """The best link: the DOI, else PubMed, else the record's URL."""
        return self.doi_url or self.pubmed_url or self.url

    @property
    def has_identifier(self) -> bool:
        """Whether the record carries a DOI or a PMID."""
        return bool(self.doi or self.pmid)

    @property
    def short(self) -> str:
        """``Zarate et al. 2006``, ``Clements and Nimmo 1981`` or the record's label."""
        if self.label:
            return self.label
        fam = [f for f in self.families if f != "et al."]
        if not fam:
            who = self.container
        elif len(self.authors) > 2 or "et al." in self.authors:
            who = f"{fam[0]} et al."
        elif len(fam) == 2:
            who = f"{fam[0]} and {fam[1]}"
        else:
            who = fam[0]
        return f"{who} {self.year}" if self.year else who

    @property
    def citation(self) -> str:
        """The full citation as plain text, with the DOI (or PubMed, or URL) link."""
        parts = [f"{_author_text(self.authors)} ({self.year})." if self.authors and self.year
                 else f"{_author_text(self.authors)}." if self.authors
                 else f"({self.year})." if self.year else ""]
        if self.title:
            parts.append(self.title.rstrip(".") + ".")
        where = "" if (self.container,) == self.authors else self.container
        if self.volume:
            where += f" {self.volume}" + (f"({self.issue})" if self.issue else "")
            where += f":{self.page}" if self.page else ""
        elif self.page:
            where += f", {self.page}"
        if where:
            parts.append(where + ".")
        if self.doi:
            parts.append(self.doi_url)
        elif self.pmid:
            parts.append(f"PMID {self.pmid}, {self.pubmed_url}")
        if self.url and not self.doi and not self.pmid:
            parts.append(self.url)
        if self.note and not self.has_identifier:
            parts.append(f"({self.note})")
        return " ".join(p for p in parts if p)


def _author_text(authors: tuple[str, ...]) -> str:
    """``Zarate CA Jr et al.`` for three or more authors, both names for two."""
    names = [a for a in authors if a != "et al."]
    if not names:
        return ""
    if len(authors) > 2 or "et al." in authors:
        return f"{names[0]} et al."
    return ", ".join(names)


def _csl_author(person: Mapping[str, Any]) -> str:
    if "literal" in person:
        return str(person["literal"])
    given = str(person.get("given", ""))
    initials = "".join(p[0] for p in re.split(r"[\s.-]+", given) if p)
    suffix = f" {str(person['suffix']).rstrip('.')}" if person.get("suffix") else ""
    return f"{person['family']} {initials}{suffix}".strip()


def _csl_family(person: Mapping[str, Any]) -> str:
    return str(person.get("family") or person.get("literal", ""))


def _record(item: Mapping[str, Any]) -> Reference:
    issued = item.get("issued", {}).get("date-parts", [[None]])
    year = issued[0][0] if issued and issued[0] else None
    return Reference(
        key=str(item["id"]), type=str(item.get("type", "article-journal")),
        authors=tuple(_csl_author(a) for a in item.get("author", [])),
        families=tuple(_csl_family(a) for a in item.get("author", [])),
        year=int(year) if year else None, title=str(item.get("title", "")),
        container=str(item.get("container-title-short") or item.get("container-title")
                      or item.get("publisher", "")),
        volume=str(item.get("volume", "")), issue=str(item.get("issue", "")),
        page=str(item.get("page", "")), doi=str(item.get("DOI", "")),
        pmid=str(item.get("PMID", "")), pmcid=str(item.get("PMCID", "")),
        url=str(item.get("URL", "")), note=str(item.get("note", "")),
        label=str(item.get("citation-label", "")))


@cache
def csl_items() -> tuple[dict[str, Any], ...]:
    """The packaged bibliography as CSL-JSON items (read once)."""
    text = resources.files("ketasim.data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return tuple(json.loads(text))


@cache
def load_bibliography() -> dict[str, Reference]:
    """Every bibliography record, by key, in file order."""
    return {str(item["id"]): _record(item) for item in csl_items()}


def resolve(key: str) -> Reference:
    """The record of ``key``; :class:`CitationError` names an unknown key."""
    bib = load_bibliography()
    k = key.strip()
    if k not in bib:
        close = [b for b in bib if b[:4] == k[:4].lower()][:5]
        raise CitationError("key", f"unknown reference key {key!r}",
                            (f"did you mean {', '.join(close)}? " if close else "")
                            + "see 'ketasim references' for every key")
    return bib[k]


def format_citation(key: str) -> str:
    """The full citation of ``key``: authors, year, title, journal and its DOI link."""
    return resolve(key).citation


def short_citation(key: str) -> str:
    """``Zarate et al. 2006`` for ``zarate2006``."""
    return resolve(key).short


@cache
def _key_pattern() -> re.Pattern[str]:
    named = sorted((k for k in load_bibliography() if not re.fullmatch(_YEAR_KEY, k)),
                   key=len, reverse=True)
    alts = "|".join([*(re.escape(k) for k in named), _YEAR_KEY])
    return re.compile(f"{_BEFORE}({alts}){_AFTER}")


@dataclass(frozen=True)
class Citation:
    """One key in a source, with where in the work the number is (may be empty)."""

    key: str
    locator: str = ""


@dataclass(frozen=True)
class Source:
    """A ``source`` string and the works it cites.

    >>> Source.parse("assumed: no human data (clements1982) [S]").keys
    ('clements1982',)
    """

    text: str
    citations: tuple[Citation, ...]

    @classmethod
    def parse(cls, text: str, *, strict: bool = True) -> Source:
        """Find every key in ``text`` (and the locator right after it). With ``strict``,
        a key-like word that is not in the bibliography raises :class:`CitationError`."""
        found: list[Citation] = []
        bib = load_bibliography()
        for m in _key_pattern().finditer(text):
            key = m.group(1)
            if key not in bib:
                if strict:
                    resolve(key)
                continue
            loc = _LOCATOR.match(text, m.end())
            found.append(Citation(key, loc.group(1).strip() if loc else ""))
        return cls(text, tuple(found))

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys cited, in order, each once."""
        return tuple(dict.fromkeys(c.key for c in self.citations))


def cited_keys(texts: Iterable[str], *, strict: bool = True) -> list[str]:
    """Every key cited by ``texts``, in order of first appearance, each once."""
    out: dict[str, None] = {}
    for t in texts:
        for k in Source.parse(t, strict=strict).keys:
            out[k] = None
    return list(out)


def render_source(text: str) -> str:
    """``text`` with each key replaced by its short citation (unknown words left as they are).

    >>> render_source("spravato-label, section 12.3")
    'SPRAVATO prescribing information, section 12.3'
    """
    bib = load_bibliography()
    return _key_pattern().sub(lambda m: bib[m.group(1)].short if m.group(1) in bib
                              else m.group(1), text)


def full_source(text: str) -> str:
    """``text`` rendered with short citations, then the full citation of every work it cites.

    >>> full_source("clements1981").startswith("Clements and Nimmo 1981. [Clements JA, Nimmo")
    True
    """
    keys = Source.parse(text, strict=False).keys
    short = render_source(text)
    if not keys:
        return short
    return f"{short}. [" + "; ".join(format_citation(k) for k in keys) + "]"


def render_source_html(text: str) -> str:
    """``text`` as HTML, each key a short citation linked to the work (DOI, PubMed or URL),
    its full citation in the link's title.

    >>> render_source_html("clements1981 & x")[:53]
    '<a href="https://doi.org/10.1093/bja/53.1.27" title="'
    >>> render_source_html("clements1981 & x").endswith('>Clements and Nimmo 1981</a> &amp; x')
    True
    """
    bib = load_bibliography()
    out, last = [], 0
    for m in _key_pattern().finditer(text):
        out.append(html.escape(text[last:m.start()]))
        rec = bib.get(m.group(1))
        if rec is None:
            out.append(html.escape(m.group(1)))
        elif rec.link:
            out.append(f'<a href="{html.escape(rec.link)}" title="{html.escape(rec.citation)}" '
                       f'rel="noreferrer">{html.escape(rec.short)}</a>')
        else:
            out.append(f'<span title="{html.escape(rec.citation)}">{html.escape(rec.short)}'
                       "</span>")
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def citation_html(key: str) -> str:
    """The full citation of ``key`` as HTML, its DOI (or PubMed, or URL) a link."""
    rec = resolve(key)
    text = html.escape(rec.citation)
    if rec.link:
        esc = html.escape(rec.link)
        text = text.replace(esc, f'<a href="{esc}" rel="noreferrer">{esc}</a>', 1)
    return text


def references_html(texts: Iterable[str], heading: str = "References", level: int = 2) -> str:
    """An HTML section listing the full citation of every work ``texts`` cite ("" if none),
    under an ``<h{level}>`` heading."""
    keys = cited_keys(texts, strict=False)
    if not keys:
        return ""
    items = "".join(f'<li id="ref-{html.escape(k)}">{citation_html(k)}</li>' for k in keys)
    return (f'<section class="references"><h{level}>{html.escape(heading)}</h{level}>'
            f"<ol>{items}</ol></section>")


__all__ = ["DATA_FILE", "Citation", "CitationError", "Reference", "Source", "citation_html",
           "cited_keys", "csl_items", "format_citation", "full_source", "load_bibliography",
           "references_html", "render_source", "render_source_html", "resolve",
           "short_citation"]
