"""NONMEM commands: ``nonmem check`` (reproduce a finished run), ``import-nonmem`` (show the
translated model) and ``export-nonmem`` (a control stream and dataset for a library model).

Every unreadable input is a :class:`~ketasim.errors.KetasimError`, which the entry point turns
into one line on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ketasim.cli.output import FormatOption, JsonFlag, Output, parse_covariates

nonmem_app = typer.Typer(no_args_is_help=True,
                         help="Work with NONMEM runs: reproduce a finished run.")


def check_cmd(
    run: Annotated[Path, typer.Argument(help="the run's control stream (.mod/.ctl)")],
    as_json: JsonFlag = False,
    engine: Annotated[str, typer.Option(help="analytic, ode or population (default: analytic for "
                                        "ADVAN models, ode for $DES)")] = "",
    table: Annotated[list[Path] | None, typer.Option(help="table file(s) to compare "
                                                     "(default: the $TABLE files)")] = None,
    fmt: FormatOption = "table",
) -> None:
    """Re-simulate every record of a finished run with its final estimates and each
    subject's ETAs, and compare with the run's $TABLE columns (IPRED, PRED, ...)."""
    from ketasim.errors import KetasimError
    from ketasim.io.nonmem_model import check_run
    eng = None
    if engine:
        from ketasim.engine import AnalyticEngine, OdeEngine, PopulationEngine
        engines = {"analytic": AnalyticEngine, "ode": OdeEngine, "population": PopulationEngine}
        if engine not in engines:
            raise KetasimError("--engine", f"{engine!r} is not known",
                               "use analytic, ode or population")
        eng = engines[engine]()
    out = Output(fmt, as_json)
    report = check_run(run, engine=eng, tables=table or ())
    out.print(f"{run}: {report.records} records, tables {', '.join(report.tables)}",
              highlight=False)
    out.table("agreement", ["column", "max relative difference"],
              [[col, report.max_rel_diff[col]] for col in report.columns],
              shown=[[col, f"{report.max_rel_diff[col]:.2e}"] for col in report.columns])
    for col, why in report.not_compared.items():
        out.note(f"{col} not compared: {why}")
    for note in report.notes:
        out.note(note)
    out.finish(report.to_json())


def import_cmd(
    run: Annotated[Path, typer.Argument(help="the control stream (.mod/.ctl)")],
    as_json: JsonFlag = False,
    initial: Annotated[bool, typer.Option(help="use the initial estimates even when an .ext "
                                          "is beside the control stream")] = False,
    fmt: FormatOption = "table",
) -> None:
    """Translate a control stream into a ketasim model and summarise it."""
    from ketasim.io.nonmem_model import import_nonmem
    out = Output(fmt, as_json)
    summary = import_nonmem(run, initial=initial).summary()
    out.print(f"{run}: ADVAN{summary['advan']} TRANS{summary['trans']}, "
              f"{summary['engine']} engine", highlight=False)
    out.print("compartments: " + ", ".join(summary["compartments"]), highlight=False)
    out.table("parameters", ["parameter", "value"], list(summary["parameters"].items()),
              title=f"parameters ({summary['estimates']})")
    out.print("covariates: " + (", ".join(f"{k} ({v})" for k, v in
                                          summary["covariates"].items()) or "none"),
              highlight=False)
    out.print("outputs: " + ", ".join(summary["outputs"]), highlight=False)
    for k, why in summary["skipped"].items():
        out.note(f"{k}: {why}", label="not translated")
    out.finish(summary)


def export_cmd(
    model: Annotated[str, typer.Argument(help="library model name (ketasim models)")],
    regimen: Annotated[str, typer.Option(help="regimen text, e.g. '0.5 mg/kg IV over 40 "
                                         "min'")],
    out: Annotated[Path, typer.Option(help="folder for the .mod and .csv")],
    covariate: Annotated[list[str] | None, typer.Option(help="NAME=VALUE (repeatable), "
                                                        "e.g. weight=70")] = None,
    times: Annotated[str, typer.Option(help="observation times in h, comma-separated "
                                       "(default every 0.5 h to 24 h after the last "
                                       "dose)")] = "",
    fmt: FormatOption = "table",
) -> None:
    """Write a NONMEM control stream and CSV dataset for a library model and a regimen."""
    from ketasim.errors import KetasimError
    from ketasim.io.nonmem_export import export_nonmem
    out_ = Output(fmt)
    covs = parse_covariates(covariate)
    tlist = None
    if times.strip():
        try:
            tlist = [float(t) for t in times.split(",") if t.strip()]
        except ValueError:
            raise KetasimError("--times", f"cannot read {times!r}",
                               "give hours separated by commas, e.g. 0.5,1,2,4") from None
    ex = export_nonmem(model, regimen, out, covariates=covs or None, times=tlist)
    out_.wrote(ex.control)
    out_.wrote(ex.data)
    out_.print(f"ADVAN{ex.advan}; outputs {', '.join(ex.outputs)}", highlight=False)
    out_.finish({"control": str(ex.control), "data": str(ex.data), "advan": ex.advan,
                 "outputs": list(ex.outputs)})


def register(app: typer.Typer) -> None:
    """Add ``nonmem check``, ``import-nonmem`` and ``export-nonmem``."""
    nonmem_app.command("check")(check_cmd)
    app.add_typer(nonmem_app, name="nonmem")
    app.command("import-nonmem")(import_cmd)
    app.command("export-nonmem")(export_cmd)


__all__ = ["check_cmd", "export_cmd", "import_cmd", "register"]
