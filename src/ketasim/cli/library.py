"""``ketasim models``, ``ketasim model NAME`` and ``ketasim references``: the PK model library
and the bibliography behind every number.

JSON shapes (``--format json``): ``models`` → ``{"models": [{name, compound, routes, analytes,
title, population}], "defaults": [{compound, route, model, why}]}``; ``model`` → ``{name,
title, citation, population: {description, sampling_site}, parameters: [{name, value, unit,
evidence, grade, description, source}], iiv: {source, omega: {eta: ω²}} | null, assumptions,
known_discrepancies, references: [{key, citation}]}``; ``references`` → CSL-JSON (as
``--json``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ketasim.cli.output import FormatOption, Output, print_references


def models_cmd(fmt: FormatOption = "table") -> None:
    """List the PK model library: routes, analytes, population and citation."""
    from ketasim.pk import DEFAULTS, list_models
    out = Output(fmt)
    models = list_models()
    out.table("models", ["name", "compound", "routes", "analytes", "source and population"],
              [[m.name, m.compound, ", ".join(r.word for r in m.routes),
                ", ".join(a.id for a in m.analytes), f"{m.title}. {m.population.description}"]
               for m in models], title="ketasim PK model library", overflow="fold")
    out.table("defaults", ["compound", "route", "model", "why"],
              [[compound, route.word, name, why]
               for (compound, route), (name, why) in DEFAULTS.items()],
              title="Defaults per compound and route", overflow="fold")
    out.finish({"models": [{"name": m.name, "compound": m.compound,
                            "routes": [r.word for r in m.routes],
                            "analytes": [a.id for a in m.analytes], "title": m.title,
                            "population": m.population.description} for m in models],
                "defaults": out.records()["defaults"]})


def model_cmd(name: Annotated[str, typer.Argument(help="model name (see 'ketasim models')")],
              fmt: FormatOption = "table") -> None:
    """Print a library model's parameters with units, sources and evidence tags, and the full
    citation of every work the sources name."""
    from ketasim.pk import get_model
    from ketasim.references import render_source
    out = Output(fmt)
    m = get_model(name)
    out.print(f"[bold]{m.title}[/bold]\n{m.citation}\n")
    out.print(f"population: {m.population.description} (sampling: "
              f"{m.population.sampling_site})")
    params = m.model.parameters
    out.table("parameters", ["name", "value", "unit", "evidence", "grade", "description",
                             "source"],
              [[k, p.value, p.unit, p.evidence, p.grade, p.description, render_source(p.source)]
               for k, p in params.items()],
              shown=[[k, f"{p.value:.6g}", p.unit, p.evidence, p.grade, p.description,
                      render_source(p.source)] for k, p in params.items()],
              title="parameters (canonical units)", overflow="fold")
    iiv: dict[str, Any] | None = None
    if m.iiv is not None:
        omega = {k: float(m.iiv.omega[i, i]) for i, k in enumerate(m.iiv.names)}
        iiv = {"source": render_source(m.iiv.source), "omega": omega}
        out.table("iiv", ["random effect", "ω²"], [[k, v] for k, v in omega.items()],
                  title=f"inter-individual variability (ω²) — {iiv['source']}")
    for a in m.assumptions:
        out.print(f"[yellow]assumption:[/yellow] {a}")
    for d in m.known_discrepancies:
        out.print(f"[red]known discrepancy:[/red] {d}")
    refs = print_references([p.source for p in params.values()]
                            + [m.iiv.source if m.iiv else "", m.iov.source if m.iov else ""],
                            out)
    out.finish({"name": m.name, "title": m.title, "citation": m.citation,
                "population": {"description": m.population.description,
                               "sampling_site": m.population.sampling_site},
                "parameters": out.records()["parameters"], "iiv": iiv,
                "assumptions": list(m.assumptions),
                "known_discrepancies": list(m.known_discrepancies), "references": refs})


def references_cmd(
    key: Annotated[str | None, typer.Argument(help="a bibliography key, e.g. zarate2006 "
                                              "(omit it to list every work)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print CSL-JSON (same as --format "
                                           "json)")] = False,
    fmt: FormatOption = "table",
) -> None:
    """The bibliography behind every number: keys, full citations and DOI links. Sources
    elsewhere name these keys ("zarate2006, Table 2"); an unknown key exits with code 2."""
    from rich.text import Text

    from ketasim.references import csl_items, load_bibliography, resolve
    out = Output(fmt, json_out)
    if key is not None:
        rec = resolve(key)  # an unknown key raises CitationError: one line, exit code 2
        if out.json:
            out.finish(next(i for i in csl_items() if i["id"] == rec.key))
        elif out.rich:
            print(rec.citation)
        else:
            out.table("reference", ["key", "citation", "link"],
                      [[rec.key, rec.citation, rec.link or rec.note]])
            out.finish()
        return
    if out.json:
        out.finish(list(csl_items()))
        return
    bib = load_bibliography()
    out.table("references", ["key", "short citation", "DOI, PubMed or address"],
              [[r.key, r.short, r.link or r.note] for r in bib.values()],
              shown=[[r.key, Text(r.short), Text(r.link or r.note)] for r in bib.values()],
              title=f"ketasim bibliography: {len(bib)} works ('ketasim references KEY' "
              "prints one in full)", overflow="fold")
    out.finish()


def register(app: typer.Typer) -> None:
    """Add ``models``, ``model`` and ``references`` to ``app``."""
    app.command("models")(models_cmd)
    app.command("model")(model_cmd)
    app.command("references")(references_cmd)


__all__ = ["model_cmd", "models_cmd", "references_cmd", "register"]
