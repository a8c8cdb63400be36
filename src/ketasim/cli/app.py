"""The ``ketasim`` command line: thin adapters that parse, call the library and render.

Bad input never shows a traceback: every :class:`~ketasim.errors.KetasimError` becomes one
line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ketasim.dosing import Regimen, parse_regimen
from ketasim.engine import PopulationEngine, simulate
from ketasim.engine.population import concatenate_chunks
from ketasim.engine.reference import REFERENCE_REGIMEN, reference_model, reference_population
from ketasim.errors import KetasimError
from ketasim.io import read_nonmem_csv
from ketasim.report import DISCLAIMER, percentiles, plot_result, summarize

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="ketasim: quantitative models of ketamine therapy. " + DISCLAIMER)
console = Console()
err_console = Console(stderr=True)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="folder for the CSV and plot")] = Path("out"),
    subjects: Annotated[int, typer.Option(min=1, max=1_000_000,
                                          help="virtual subjects for the population run")] = 500,
    seed: Annotated[int, typer.Option(help="random seed (reproducible populations)")] = 1,
    regimen: Annotated[str, typer.Option(help="regimen text")] = REFERENCE_REGIMEN,
) -> None:
    """Demonstration: a regimen on the illustrative benchmark model, one subject and a
    population; prints a summary and writes result.csv and result.png."""
    out.mkdir(parents=True, exist_ok=True)
    reg = parse_regimen(regimen)
    model = reference_model()
    times = np.arange(0.0, max(24.0, reg.last_time + 84.0) + 1e-9, 0.25)
    console.print(f"[bold]ketasim demo[/bold] — model [cyan]{model.name}[/cyan] "
                  "(illustrative benchmark values, not a clinical model)")
    console.print(f"regimen: {reg.to_text()}  ({reg.n_administrations} administrations)")
    single = simulate(model, reg, covariates={"weight": 70.0}, times=times)
    single.raise_on_failure().to_csv(out / "result.csv", wide=True)
    table = Table(title="70-kg subject")
    for col in ("output", "Cmax", "Tmax (h)", "AUC (unit·h)", "unit"):
        table.add_column(col)
    for row in summarize(single).itertuples():
        table.add_row(str(row.output), f"{row.cmax:.4g}", f"{row.tmax_h:.3g}",
                      f"{row.auc:.4g}", str(row.unit))
    console.print(table)

    rng = np.random.default_rng(seed)
    pop = reference_population(subjects, rng)
    engine = PopulationEngine(chunk_size=min(2000, subjects))
    chunks = []
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total} subjects"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("population (first call compiles)", total=subjects)
        for chunk in engine.iter_chunks(
                model, reg, covariates={"weight": pop["weight"]},
                parameters={k: pop[k] for k in ("cl", "v1", "q2", "ke0", "kout")}, times=times,
                outputs=["c1", "effect", "plasticity"]):
            chunks.append(chunk)
            progress.advance(task, len(chunk.subject))
    elapsed = time.perf_counter() - t0
    result = concatenate_chunks(chunks, engine.name)
    stats = summarize(result)
    ptable = Table(title=f"{subjects} virtual subjects (seed {seed}), {elapsed:.1f} s")
    for col in ("output", "Cmax p5", "p50", "p95", "unit"):
        ptable.add_column(col)
    for name, grp in stats.groupby("output", sort=False):
        q = percentiles(grp["cmax"])
        ptable.add_row(str(name), f"{q['p5']:.4g}", f"{q['p50']:.4g}", f"{q['p95']:.4g}",
                       grp["unit"].iloc[0])
    console.print(ptable)
    plot_result(result, out / "result.png", title=f"{reg.to_text()} — {subjects} subjects")
    console.print(f"wrote {out / 'result.csv'} and {out / 'result.png'}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


@app.command("regimen")
def regimen_cmd(
    text: Annotated[str, typer.Argument(help="regimen text, e.g. '0.5 mg/kg IV over 40 min'")],
    weight: Annotated[float | None, typer.Option(help="body weight (kg) for mg/kg")] = None,
    csv: Annotated[Path | None, typer.Option(help="write the NM-TRAN event table here")] = None,
) -> None:
    """Parse regimen text, print it back and list every administration."""
    reg: Regimen = parse_regimen(text)
    console.print(f"[bold]{reg.to_text()}[/bold]")
    table = Table()
    for col in ("#", "time (h)", "day", "route", "amount", "infusion"):
        table.add_column(col)
    needs_weight = any(d.per_kg for d in reg.doses)
    for k, (t, amt, d) in enumerate(reg.administrations(weight if needs_weight else None), 1):
        amount = f"{amt:g} mg" if (weight or not needs_weight) else f"{d.amount:g} mg/kg"
        inf = "" if d.duration is None else f"over {d.duration * 60:g} min"
        table.add_row(str(k), f"{t:g}", f"{t / 24 + 1:g}", d.route.word, amount, inf)
    console.print(table)
    if csv is not None:
        reg.to_events(weight_kg=weight).to_frame().to_csv(csv, index=False)
        console.print(f"wrote {csv}")


@app.command()
def dataset(
    path: Annotated[Path, typer.Argument(help="NONMEM-style CSV dataset")],
    covariate: Annotated[list[str] | None, typer.Option(help="covariate column")] = None,
) -> None:
    """Check a NONMEM-style dataset against NM-TRAN rules and summarise it."""
    table, extra = read_nonmem_csv(path, covariates=covariate or [])
    n_dose = int(np.isin(table.evid, (1, 4)).sum())
    console.print(f"{path}: {len(table.subject_ids)} subjects, {table.n_records} records, "
                  f"{n_dose} dose records, {int((table.evid == 0).sum())} observations; "
                  f"other columns: {', '.join(extra.columns) or 'none'}")


def main() -> None:
    """Entry point: run the app, turning ketasim errors into one line and exit code 2."""
    try:
        app(standalone_mode=False)
    except KetasimError as exc:
        err_console.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


__all__ = ["app", "main"]
