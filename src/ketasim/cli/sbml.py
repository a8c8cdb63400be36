"""``ketasim export-sbml``: write a model, one subject and a regimen as SBML (docs/sbml.md).

A thin adapter: parse the covariates, call :func:`ketasim.io.sbml.write_sbml`, say what was
written. Registered on the app by :func:`register`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ketasim.cli.output import FormatOption, Output, parse_covariates


def register(app: typer.Typer) -> None:
    """Add the ``export-sbml`` command to ``app``."""

    @app.command("export-sbml")
    def export_sbml_cmd(
        model: Annotated[str, typer.Argument(help="library model (see 'ketasim models')")],
        out: Annotated[Path, typer.Option("--out", help="SBML file to write (.xml)")],
        regimen: Annotated[str | None, typer.Option(
            help="doses, e.g. '0.5 mg/kg IV over 40 min' (docs/regimen-language.md); "
                 "none: the model without doses")] = None,
        covariate: Annotated[list[str] | None, typer.Option(
            "--covariate", help="fixed covariate NAME=VALUE (repeat; defaults otherwise)")
        ] = None,
        fmt: FormatOption = "table",
    ) -> None:
        """Export a library model with a fixed subject and regimen to SBML Level 3, to run in
        libRoadRunner, COPASI or tellurium (amounts mg, volumes L, time h)."""
        from ketasim.io.sbml import output_ids, write_sbml
        from ketasim.pk.registry import get_model
        result = Output(fmt)
        lm = get_model(model)
        covs = parse_covariates(covariate)
        write_sbml(out, lm, covariates=covs, regimen=regimen)
        ids = output_ids(lm)
        result.wrote(out)
        result.table("outputs", ["output", "sbml id"], [[k, v] for k, v in ids.items()],
                     title=f"{lm.name}: outputs in the SBML file")
        result.finish({"file": str(out), "model": lm.name, "outputs": ids})


__all__ = ["register"]
