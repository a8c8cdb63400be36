"""The ``ketasim`` command line: thin adapters that parse, call the library and render.

Bad input never shows a traceback: every :class:`~ketasim.errors.KetasimError` becomes one
line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# Startup stays light (`ketasim --help` < 0.3 s): heavy libraries (pint, pandas, scipy,
# matplotlib, numba, fastapi, sqlalchemy) are imported inside the commands that use them.
from ketasim.engine.reference import REFERENCE_REGIMEN
from ketasim.errors import KetasimError
from ketasim.report.plots import DISCLAIMER

if TYPE_CHECKING:
    from ketasim.dosing.regimen import Regimen

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="ketasim: quantitative models of ketamine therapy. " + DISCLAIMER)
console = Console()
err_console = Console(stderr=True)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="folder for the CSV and plot")] = Path("out"),
    subjects: Annotated[int, typer.Option(min=1, max=100_000,
                                          help="virtual patients for the population run")] = 500,
    seed: Annotated[int, typer.Option(help="random seed (reproducible populations)")] = 1,
    regimen: Annotated[str, typer.Option(help="regimen text")] = REFERENCE_REGIMEN,
    weight: Annotated[float, typer.Option(help="the typical patient's weight (kg)")] = 70.0,
) -> None:
    """Demonstration: a racemic ketamine course for a typical patient and a virtual
    population with the library model (concentrations, metabolites, NMDA occupancy);
    prints a summary and writes result.csv (typical patient) and result.png (population)."""
    import numpy as np

    from ketasim.dosing.language import parse_regimen
    from ketasim.pd import target_exposure
    from ketasim.population import iter_pk, run_pk
    from ketasim.population.pkrun import PKRun, VirtualPopulation
    from ketasim.report.pk import plot_pk_run
    out.mkdir(parents=True, exist_ok=True)
    reg = parse_regimen(regimen)
    times = np.arange(0.0, max(24.0, reg.last_time + 84.0) + 1e-9, 5.0 / 60.0)
    typical = run_pk(reg, covariates={"weight": weight}, times=times)
    lm = typical.model
    console.print(f"[bold]ketasim demo[/bold] — {reg.to_text()} "
                  f"({reg.n_administrations} administrations)")
    console.print(f"model [cyan]{lm.name}[/cyan]: {lm.title}")
    typical.to_frame().to_csv(out / "result.csv", index=False)
    table = Table(title=f"typical {weight:g}-kg patient, whole course")
    for col in ("analyte", "Cmax (ng/mL)", "Tmax (h)", "AUC (ng·h/mL)"):
        table.add_column(col)
    for a, vals in typical.summary()["analytes"].items():
        if a in ("ketamine", "norketamine", "hnk"):
            table.add_row(a, f"{vals['cmax_ng_per_ml']:.4g}", f"{vals['tmax_h']:.3g}",
                          f"{vals['auc_ng_h_per_ml']:.4g}")
    console.print(table)
    first = run_pk(reg, covariates={"weight": weight}, times=np.arange(0.0, 8.0, 1.0 / 60.0))
    tx = target_exposure(first)
    console.print(f"peak NMDA occupancy after the first dose: {tx.peak['nmda'][0] * 100:.0f} % "
                  f"(targets reached: {', '.join(tx.meaningful())}; all others < 15 %)")

    keep = ("ketamine", "norketamine", "hnk")
    parts: list[PKRun] = []
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total} patients"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("virtual patients (first run compiles)", total=subjects)
        for chunk in iter_pk(reg, subjects=subjects, seed=seed, times=times,
                             model=lm.name if subjects > 1 else None,
                             covariates=None if subjects > 1 else {"weight": weight}):
            parts.append(PKRun(chunk.model, chunk.regimen, chunk.times,
                               {a: chunk.concentrations[a] for a in keep},
                               chunk.population, chunk.seed, chunk.engine, chunk.warnings))
            progress.advance(task, chunk.n_subjects)
    elapsed = time.perf_counter() - t0
    pop = PKRun(lm, reg, times, {a: np.vstack([p.concentrations[a] for p in parts])
                                 for a in keep},
                VirtualPopulation(subjects, {}, {}), seed, parts[0].engine)
    ptable = Table(title=f"{subjects} virtual patients (seed {seed}), {elapsed:.1f} s")
    for col in ("analyte", "Cmax p5", "p50", "p95 (ng/mL)"):
        ptable.add_column(col)
    for a, vals in pop.summary()["analytes"].items():
        q = vals["cmax_ng_per_ml"]
        if isinstance(q, dict):
            ptable.add_row(a, f"{q['p5']:.4g}", f"{q['p50']:.4g}", f"{q['p95']:.4g}")
    console.print(ptable)
    plot_pk_run(pop, out / "result.png")
    console.print(f"wrote {out / 'result.csv'} and {out / 'result.png'}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


@app.command("regimen")
def regimen_cmd(
    text: Annotated[str, typer.Argument(help="regimen text, e.g. '0.5 mg/kg IV over 40 min'")],
    weight: Annotated[float | None, typer.Option(help="body weight (kg) for mg/kg")] = None,
    csv: Annotated[Path | None, typer.Option(help="write the NM-TRAN event table here")] = None,
) -> None:
    """Parse regimen text, print it back and list every administration."""
    from ketasim.dosing.language import parse_regimen
    reg: Regimen = parse_regimen(text)
    console.print(f"[bold]{reg.to_text()}[/bold]")
    table = Table()
    for col in ("#", "time (h)", "day", "route", "amount", "infusion"):
        table.add_column(col)
    needs_weight = any(d.per_kg for d in reg.doses)
    for k, (t, amt, d) in enumerate(reg.administrations(weight if needs_weight else None), 1):
        amount = f"{amt:g} mg" if (weight or not needs_weight) else f"{d.amount:g} mg/kg"
        unit = "mg/kg/h" if d.per_kg else "mg/h"
        inf = (f"over {d.duration * 60:g} min" if d.duration is not None else
               f"at {d.rate:g} {unit}" if d.rate is not None else "")
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
    import numpy as np

    from ketasim.io.nmtran import read_nonmem_csv
    table, extra = read_nonmem_csv(path, covariates=covariate or [])
    n_dose = int(np.isin(table.evid, (1, 4)).sum())
    console.print(f"{path}: {len(table.subject_ids)} subjects, {table.n_records} records, "
                  f"{n_dose} dose records, {int((table.evid == 0).sum())} observations; "
                  f"other columns: {', '.join(extra.columns) or 'none'}")


# ----------------------------------------------------------------------------- PK library
def _parse_time(text: str, field: str) -> float:
    from ketasim.units import to_hours
    t = text.strip()
    import re as _re
    m = _re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]+)", t)
    if m:
        t = f"{m.group(1)} {m.group(2)}"
    try:
        return to_hours(t if any(c.isalpha() for c in t) else float(t), field=field)
    except ValueError:
        raise KetasimError(field, f"cannot read {text!r}", "write e.g. 24h or 5min") from None


@app.command("models")
def models_cmd() -> None:
    """List the PK model library: routes, analytes, population and citation."""
    from ketasim.pk import DEFAULTS, list_models
    table = Table(title="ketasim PK model library")
    for col in ("name", "compound", "routes", "analytes", "source and population"):
        table.add_column(col, overflow="fold")
    for m in list_models():
        table.add_row(m.name, m.compound, ", ".join(r.word for r in m.routes),
                      ", ".join(a.id for a in m.analytes),
                      f"{m.title}. {m.population.description}")
    console.print(table)
    dtable = Table(title="Defaults per compound and route")
    for col in ("compound", "route", "model", "why"):
        dtable.add_column(col, overflow="fold")
    for (compound, route), (name, why) in DEFAULTS.items():
        dtable.add_row(compound, route.word, name, why)
    console.print(dtable)


@app.command("model")
def model_cmd(name: Annotated[str, typer.Argument(help="model name (see 'ketasim models')")]
              ) -> None:
    """Print a library model's parameters with units, sources and evidence tags, and the full
    citation of every work the sources name."""
    from ketasim.pk import get_model
    from ketasim.references import render_source
    m = get_model(name)
    console.print(f"[bold]{m.title}[/bold]\n{m.citation}\n")
    console.print(f"population: {m.population.description} (sampling: "
                  f"{m.population.sampling_site})")
    table = Table(title="parameters (canonical units)")
    for col in ("name", "value", "unit", "evidence", "grade", "description", "source"):
        table.add_column(col, overflow="fold")
    for k, p in m.model.parameters.items():
        table.add_row(k, f"{p.value:.6g}", p.unit, p.evidence, p.grade, p.description,
                      render_source(p.source))
    console.print(table)
    if m.iiv is not None:
        var = Table(title=f"inter-individual variability (ω²) — {render_source(m.iiv.source)}")
        var.add_column("random effect")
        var.add_column("ω²")
        for i, k in enumerate(m.iiv.names):
            var.add_row(k, f"{m.iiv.omega[i, i]:.4g}")
        console.print(var)
    for a in m.assumptions:
        console.print(f"[yellow]assumption:[/yellow] {a}")
    for d in m.known_discrepancies:
        console.print(f"[red]known discrepancy:[/red] {d}")
    _print_references([p.source for p in m.model.parameters.values()]
                      + [m.iiv.source if m.iiv else "", m.iov.source if m.iov else ""])


def _print_references(texts: list[str]) -> None:
    """The full citation, with its DOI link, of every work ``texts`` name by key."""
    from ketasim.references import cited_keys, format_citation
    keys = cited_keys(texts, strict=False)
    if keys:
        console.print("[bold]references[/bold]")
    for key in keys:
        console.print(f"  {key}: {format_citation(key)}", markup=False, highlight=False,
                      soft_wrap=True)


@app.command("simulate")
def simulate_cmd(
    regimen: Annotated[str, typer.Option(help="regimen text, e.g. '0.5 mg/kg IV over 40 min'")],
    model: Annotated[str | None, typer.Option(help="library model (default: by route)")] = None,
    weight: Annotated[float | None, typer.Option(help="body weight (kg)")] = None,
    age: Annotated[float | None, typer.Option(help="age (years)")] = None,
    sex: Annotated[str | None, typer.Option(help="female or male (used where a model has "
                                            "a sex effect)")] = None,
    asian: Annotated[bool | None, typer.Option("--asian/--not-asian", help="Asian ancestry")]
    = None,
    japanese: Annotated[bool | None, typer.Option("--japanese/--not-japanese")] = None,
    subjects: Annotated[int, typer.Option(min=1, max=100_000_000, help="virtual patients "
                                          "(over 1,000,000 only with --parquet)")] = 1,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    until: Annotated[str | None, typer.Option(help="simulate until, e.g. 24h")] = None,
    every: Annotated[str, typer.Option(help="output interval, e.g. 5min")] = "5min",
    out: Annotated[Path | None, typer.Option(help="tidy CSV")] = None,
    plot: Annotated[Path | None, typer.Option(help="PNG plot")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print a JSON summary")] = False,
    allow_extrapolation: Annotated[bool, typer.Option(help="allow covariates outside the "
                                                      "studied population")] = False,
    residual_error: Annotated[bool, typer.Option(help="add residual (assay) error")] = False,
    parquet: Annotated[Path | None, typer.Option(help="stream the results to this Parquet "
                                                 "file: any number of subjects in bounded "
                                                 "memory (docs/scale.md)")] = None,
    profiles: Annotated[bool, typer.Option("--profiles/--metrics-only", help="with --parquet: "
                                           "every output time of every subject, or one row of "
                                           "exposure metrics per subject")] = False,
    threshold: Annotated[float | None, typer.Option(help="with --parquet: also the hours "
                                                    "above this concentration (ng/mL), per "
                                                    "analyte")] = None,
    analyte: Annotated[list[str] | None, typer.Option(help="with --parquet: only this "
                                                      "analyte (repeatable)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=1024, help="with --parquet: run on "
                                                "a local Dask cluster of this many worker "
                                                "processes")] = None,
    scheduler: Annotated[str | None, typer.Option(help="with --parquet: run on the Dask "
                                                  "cluster at this address, e.g. "
                                                  "tcp://host:8786")] = None,
) -> None:
    """Simulate a regimen with a library model for one patient or a population; --parquet
    streams populations of any size to a file."""
    import json

    import numpy as np

    from ketasim.dosing.language import parse_regimen
    from ketasim.population import run_pk
    reg = parse_regimen(regimen)
    covs: dict[str, float] = {}
    for k, v in (("weight", weight), ("age", age)):
        if v is not None:
            covs[k] = v
    if asian is not None:
        covs["asian"] = float(asian)
    if japanese is not None:
        covs["japanese"] = float(japanese)
        if japanese:
            covs["asian"] = 1.0
    notes: list[str] = []
    if sex is not None:
        if sex.lower() not in ("female", "male", "f", "m"):
            raise KetasimError("sex", f"{sex!r} is not female or male", "use --sex female|male")
        from ketasim.population import resolve_model
        lm_ = resolve_model(model, reg)
        if "sex" in lm_.model.covariates:
            covs["sex"] = 1.0 if sex.lower().startswith("f") else 0.0
        else:
            notes.append(f"sex is not a covariate of {lm_.name} (not retained by its "
                         "authors); ignored")
    end = _parse_time(until, "until") if until else reg.last_time + 24.0
    step = _parse_time(every, "every")
    if step <= 0 or end <= 0:
        raise KetasimError("every", "times must be positive", "e.g. --until 24h --every 5min")
    if end / step > 200_000:
        raise KetasimError("every", f"{end / step:.0f} output times are too many",
                           "use a longer --every or a shorter --until")
    times = np.arange(0.0, end + 1e-9, step)
    if parquet is None and (subjects > 1_000_000 or profiles or threshold is not None
                            or analyte or workers is not None or scheduler is not None):
        raise KetasimError("parquet", "more than 1,000,000 subjects, --profiles, --threshold, "
                           "--analyte, --workers and --scheduler need --parquet",
                           "give --parquet PATH")
    if parquet is not None:
        if out is not None or plot is not None:
            raise KetasimError("parquet", "--out and --plot hold a run in memory",
                               "give --parquet alone and read the file with pandas or pyarrow")
        from ketasim.cli.scale import simulate_parquet
        simulate_parquet(console, err_console, regimen=regimen, model=model, covariates=covs,
                         subjects=subjects, seed=seed, times=times, path=parquet,
                         profiles=profiles, threshold=threshold, analytes=analyte,
                         allow_extrapolation=allow_extrapolation,
                         residual_error=residual_error, workers=workers, scheduler=scheduler,
                         json_out=json_out, notes=notes)
        return
    if subjects > 1 and not json_out:
        with Progress(TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} patients"), TimeElapsedColumn(),
                      console=err_console, transient=True) as progress:
            task = progress.add_task("simulating", total=subjects)
            run = run_pk(reg, model=model, subjects=subjects, seed=seed, covariates=covs,
                         times=times, allow_extrapolation=allow_extrapolation,
                         residual_error=residual_error,
                         progress=lambda k: progress.update(task, completed=k))
    else:
        run = run_pk(reg, model=model, subjects=subjects, seed=seed, covariates=covs,
                     times=times, allow_extrapolation=allow_extrapolation,
                     residual_error=residual_error)
    if out is not None:
        run.to_frame().to_csv(out, index=False)
    if plot is not None:
        from ketasim.report.pk import plot_pk_run  # matplotlib only when a plot is asked for
        plot_pk_run(run, plot)
    summary = run.summary()
    if json_out:
        print(json.dumps(summary, indent=2))
        return
    console.print(f"[bold]{reg.to_text()}[/bold] — model [cyan]{run.model.name}[/cyan] "
                  f"({run.engine} engine)")
    console.print(f"[dim]{run.model.citation}[/dim]")
    who = "typical patient" if subjects == 1 else f"{subjects} virtual patients, seed {seed}"
    table = Table(title=f"{who}, 0–{end:g} h")
    for col in ("analyte", "Cmax (ng/mL)", "Tmax (h)", "AUC (ng·h/mL)", "Cmax (µmol/L)"):
        table.add_column(col)
    for a, vals in summary["analytes"].items():
        mw = run.model.analyte(a).molar_mass

        def fmt(v: float | dict, scale: float = 1.0) -> str:
            if isinstance(v, dict):
                return f"{v['p50'] * scale:.4g} [{v['p5'] * scale:.3g}–{v['p95'] * scale:.3g}]"
            return f"{v * scale:.4g}"
        table.add_row(a, fmt(vals["cmax_ng_per_ml"]), fmt(vals["tmax_h"]),
                      fmt(vals["auc_ng_h_per_ml"]), fmt(vals["cmax_ng_per_ml"], 1 / mw))
    console.print(table)
    if subjects > 1:
        console.print("[dim]population values: median [5th–95th percentile][/dim]")
    for w in (*run.warnings, *notes):
        console.print(f"[yellow]warning:[/yellow] {w}")
    for f_ in (out, plot):
        if f_ is not None:
            console.print(f"wrote {f_}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


@app.command("occupancy")
def occupancy_cmd(
    regimen: Annotated[str, typer.Option(help="regimen text")],
    model: Annotated[str | None, typer.Option(help="library model (default: by route)")] = None,
    weight: Annotated[float | None, typer.Option(help="body weight (kg)")] = None,
    subjects: Annotated[int, typer.Option(min=1, max=100_000)] = 1,
    seed: Annotated[int | None, typer.Option()] = None,
    until: Annotated[str | None, typer.Option(help="simulate until, e.g. 8h")] = None,
    include_disputed: Annotated[bool, typer.Option(help="include disputed targets "
                                                   "(D2 high-affinity state)")] = False,
    plot: Annotated[Path | None, typer.Option(help="PNG picture")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Which targets a regimen reaches: peak occupancy of every target by all analytes."""
    import json

    import numpy as np

    from ketasim.dosing.language import parse_regimen
    from ketasim.pd import target_exposure
    from ketasim.pd.exposure import MEANINGFUL
    from ketasim.pd.targets import load_target_data
    from ketasim.population import run_pk
    reg = parse_regimen(regimen)
    end = _parse_time(until, "until") if until else reg.last_time + 8.0
    times = np.arange(0.0, end + 1e-9, 1.0 / 60.0)
    covs = {"weight": weight} if weight is not None else {}
    run = run_pk(reg, model=model, subjects=subjects, seed=seed, covariates=covs, times=times)
    tx = target_exposure(run, include_disputed=include_disputed)
    data = load_target_data()
    rows: dict[str, dict[str, Any]] = {}
    for t in tx.targets:
        pk = tx.peak[t]
        rows[t] = {"name": data.targets[t].name, "disputed": data.targets[t].disputed,
                   "peak_occupancy": (float(pk[0]) if subjects == 1 else
                                      {f"p{q}": float(np.percentile(pk, q))
                                       for q in (5, 50, 95)}),
                   "meaningful": bool(np.median(pk) >= MEANINGFUL)}
    if json_out:
        print(json.dumps({"model": run.model.name, "regimen": reg.to_text(),
                          "threshold": MEANINGFUL, "targets": rows,
                          "disclaimer": DISCLAIMER}, indent=2))
    else:
        table = Table(title=f"{reg.to_text()} — {run.model.name}: peak target occupancy")
        for col in ("target", "peak occupancy", "reached?"):
            table.add_column(col)
        for r in rows.values():
            v = r["peak_occupancy"]
            txt = f"{v * 100:.1f} %" if isinstance(v, float) else \
                f"{v['p50'] * 100:.1f} % [{v['p5'] * 100:.1f}–{v['p95'] * 100:.1f}]"
            name = str(r["name"]) + (" [red](DISPUTED, off by default)[/red]"
                                     if r["disputed"] else "")
            table.add_row(name, txt, "[bold]yes[/bold]" if r["meaningful"] else "no")
        console.print(table)
        console.print(f"[dim]reached: median peak ≥ {MEANINGFUL * 100:g} %. {DISCLAIMER}[/dim]")
    if plot is not None:
        from ketasim.report.pd import plot_occupancy
        plot_occupancy(tx, f"{reg.to_text()} — {run.model.name}", plot)
        if not json_out:
            console.print(f"wrote {plot}")


@app.command("session")
def session_cmd(
    regimen: Annotated[str, typer.Option(help="the planned dose, e.g. '84 mg intranasal' or "
                                         "'0.5 mg/kg IV over 40 min'")],
    weight: Annotated[float, typer.Option(help="body weight (kg)")],
    age: Annotated[float, typer.Option(help="age (years)")],
    sbp: Annotated[float, typer.Option(help="pre-dose systolic BP (mmHg)")],
    dbp: Annotated[float, typer.Option(help="pre-dose diastolic BP (mmHg)")],
    hr: Annotated[float, typer.Option(help="pre-dose heart rate (beats/min)")] = 75.0,
    prior_sessions: Annotated[int, typer.Option(help="sessions this patient has had")] = 0,
    history: Annotated[Path | None, typer.Option(help="CSV of earlier sessions' readings: "
                                                 "session, regimen, time_min, cadss, sbp, "
                                                 "dbp (time_min 0 = pre-dose)")] = None,
    replicates: Annotated[int, typer.Option(min=100, max=100_000)] = 1000,
    seed: Annotated[int, typer.Option(help="random seed")] = 20261129,
    plot: Annotated[Path | None, typer.Option(help="PNG picture of the forecast")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Forecast the hour after a dose: dissociation, sedation, BP, HR, adverse events and when
    the patient will be ready to leave (individual when --history is given)."""
    import json

    import numpy as np

    from ketasim.pd.session_forecast import (
        REMS_MINIMUM_H,
        AcutePatient,
        forecast_session,
        read_history,
    )
    hist = read_history(history) if history is not None else []
    if hist and prior_sessions == 0:
        prior_sessions = max(o.session for o in hist)
    patient = AcutePatient(weight, age, sbp, dbp, hr, prior_sessions)
    f = forecast_session(regimen, patient, history=hist, n=replicates,
                         rng=np.random.default_rng(seed))
    if plot is not None:
        from ketasim.report.pd import plot_session_forecast
        plot_session_forecast(f, plot)
    if json_out:
        print(json.dumps(f.to_json(), indent=2))
        return
    kind = (f"individual: {f.n_history_sessions} earlier sessions, effective sample "
            f"{f.ess:.0f}" if f.individual and f.ess is not None else "population")
    table = Table(title=f"{f.regimen}, session {patient.session} ({f.model}; {kind}; "
                  f"{f.n} replicates)")
    for col in ("forecast", "median", "90 % band"):
        table.add_column(col)

    def band(b: Any, fmt: str = "{:.0f}", scale: float = 1.0) -> tuple[str, str]:
        def one(v: float) -> str:
            return "never" if not np.isfinite(v) else fmt.format(v * scale)
        return one(b.p50), f"{one(b.p5)}–{one(b.p95)}"
    table.add_row("peak CADSS", *band(f.cadss_peak))
    table.add_row("peak SBP (mmHg)", *band(f.sbp_peak))
    table.add_row("peak DBP (mmHg)", *band(f.dbp_peak))
    table.add_row("ready to leave (min after dose)", *band(f.discharge_ready_h, scale=60.0))
    console.print(table)
    probs = Table(title="probabilities")
    probs.add_column("event")
    probs.add_column("probability", justify="right")
    for label, v in (("SBP rise ≥ 40 mmHg (40-min or 1.5-h check)", f.p_sbp_rise_ge_40),
                     ("DBP rise ≥ 25 mmHg", f.p_dbp_rise_ge_25),
                     ("SBP ≥ 180 mmHg", f.p_sbp_ge_180), ("DBP ≥ 110 mmHg", f.p_dbp_ge_110),
                     ("any MOAA/S fall", f.p_moaas_any_fall), ("MOAA/S ≤ 3", f.p_moaas_le_3),
                     ("MOAA/S 0", f.p_moaas_0),
                     (f"ready by the REMS {REMS_MINIMUM_H:g}-h minimum", f.p_ready_by_rems),
                     *((f"{k.replace('_', ' ')} (reported incidence, grade {v['grade']})",
                        v["probability"])
                       for k, v in f.adverse_events.items())):
        probs.add_row(label, f"{v * 100:.1f} %")
    console.print(probs)
    console.print(f"peak NMDA occupancy (typical patient): {f.nmda_occupancy_peak * 100:.0f} %")
    console.print("calibrated parameters (fitted to published summary statistics, see "
                  "docs/pd.md): " + ", ".join(f.evidence.get("calibrated", [])))
    console.print("assumed: " + ", ".join(f.evidence.get("assumed", [])))
    print_footer(f.notes, plot, f.to_json()["disclaimer"])


def print_footer(notes: Any, plot: Path | None, disclaimer: str) -> None:
    """A forecast's notes, the picture written, and the disclaimer."""
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if plot is not None:
        console.print(f"wrote {plot}")
    console.print(f"[dim]{disclaimer}[/dim]")


@app.command("trial")
def trial_cmd(
    design: Annotated[Path, typer.Argument(help="design file (TOML), see docs/outcomes.md")],
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    plot: Annotated[Path | None, typer.Option(help="PNG of mean trajectories per arm "
                                              "(default: DESIGN.png beside the design)")]
    = None,
    replicates: Annotated[int, typer.Option(min=1, max=1_000_000, help="run the trial this "
                                            "many times (seeds from the design's): spread of "
                                            "the estimates and power")] = 1,
    workers: Annotated[int | None, typer.Option(min=1, max=1024, help="run the replicates on "
                                                "a local Dask cluster of this many worker "
                                                "processes")] = None,
    scheduler: Annotated[str | None, typer.Option(help="run the replicates on the Dask "
                                                  "cluster at this address, e.g. "
                                                  "tcp://host:8786")] = None,
) -> None:
    """Run a virtual trial: the endpoint per arm with a 95 % CI, and a plot of the mean
    trajectories; --replicates runs it many times (here or on a Dask cluster)."""
    import json

    if replicates > 1 or workers is not None or scheduler is not None:
        from ketasim.cli.scale import trial_replicates
        trial_replicates(console, err_console, design=design, replicates=replicates,
                         workers=workers, scheduler=scheduler, json_out=json_out)
        return
    from ketasim.outcomes.trial import load_design, run_trial
    from ketasim.report.outcomes import plot_trial
    d = load_design(design)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err_console, disable=json_out) as bar:
        task = bar.add_task("virtual trial", total=d.n_per_arm * len(d.arms))
        result = run_trial(d, progress=lambda _name, k: bar.advance(task, k))
    png = plot_trial(result, plot or design.with_suffix(".png"))
    if json_out:
        print(json.dumps({**result.to_json(), "plot": str(png), "disclaimer": DISCLAIMER},
                         indent=2))
        return
    e = d.endpoint
    table = Table(title=f"{d.indication}: {e.measure} on {e.instrument} at {e.time} "
                        f"(n={d.n_per_arm}/arm, seed {d.seed})")
    for col in ("arm", "estimate", "95 % CI (this size)", "95 % PI (a new trial)", "note"):
        table.add_column(col)

    def fmt(x: float | None) -> str:
        return "—" if x is None else f"{x:.3g}"

    pred = result.prediction or {}
    for name, a in result.arms.items():
        pi = pred.get("arms", {}).get(name, {}).get("pi95")
        table.add_row(name, fmt(a.estimate), f"{fmt(a.ci95[0])} – {fmt(a.ci95[1])}",
                      f"{fmt(pi[0])} – {fmt(pi[1])}" if pi else "—", a.note)
    for name, dd in pred.get("differences", {}).items():
        table.add_row(name, fmt(dd["estimate"]), f"{fmt(dd['ci95'][0])} – {fmt(dd['ci95'][1])}",
                      f"{fmt(dd['pi95'][0])} – {fmt(dd['pi95'][1])}", "difference")
    console.print(table)
    if "note" in pred:
        console.print(f"[dim]{pred['note']}[/dim]")
    console.print("[dim]CI: sampling error of the simulated size; PI: what a new real trial "
                  "of this design could observe (parameter uncertainty + between-trial "
                  "heterogeneity + its sampling error).[/dim]")
    console.print(f"unit: {result.unit}; wrote {png}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


@app.command("explain")
def explain_cmd(
    regimen: Annotated[str, typer.Option(help="regimen text")],
    indication: Annotated[str, typer.Option(help="indication id, e.g. trd, bipolar, ptsd")]
    = "trd",
    weight: Annotated[float, typer.Option(help="body weight (kg)")] = 70.0,
    out: Annotated[Path, typer.Option(help="HTML report to write")] = Path("explain.html"),
    patients: Annotated[int, typer.Option(min=20, max=5000, help="virtual patients for the "
                                          "symptom band")] = 300,
    seed: Annotated[int, typer.Option()] = 1,
) -> None:
    """Why does ketamine therapy work? An HTML report that walks the chain for a regimen."""
    from ketasim.report.outcomes import explain
    with console.status("simulating the chain…"):
        p = explain(regimen, indication, out, weight_kg=weight, n=patients, seed=seed)
    console.print(f"wrote {p}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


@app.command("sensitivity")
def sensitivity_cmd(
    design: Annotated[Path, typer.Argument(help="design file (TOML) with a [sensitivity] "
                                           "table, see docs/scale.md")],
    draws: Annotated[int | None, typer.Option(min=8, max=100_000_000, help="model evaluations "
                                              "(rounded to N·(parameters+2), N a power of "
                                              "two; default: the design's, else 4096)")]
    = None,
    seed: Annotated[int | None, typer.Option(min=0, help="seed of the Sobol' sample "
                                             "(default: the design's)")] = None,
    patients: Annotated[int | None, typer.Option(min=5, max=10_000, help="virtual patients "
                                                 "per draw (default: the design's, else "
                                                 "100)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    workers: Annotated[int | None, typer.Option(min=1, max=1024, help="run on a local Dask "
                                                "cluster of this many worker processes")]
    = None,
    scheduler: Annotated[str | None, typer.Option(help="run on the Dask cluster at this "
                                                  "address, e.g. tcp://host:8786")] = None,
) -> None:
    """Which assumptions drive a forecast: Sobol' indices of a trial endpoint over the
    calibrated and assumed parameters within their uncertainty (ranges printed first)."""
    from ketasim.cli.scale import sensitivity
    sensitivity(console, err_console, design=design, draws=draws, seed=seed,
                patients=patients, workers=workers, scheduler=scheduler, json_out=json_out)


calibrate_app = typer.Typer(help="Calibration runs that anyone can repeat.",
                            no_args_is_help=True)
app.add_typer(calibrate_app, name="calibrate")


@calibrate_app.command("outcomes")
def calibrate_outcomes(
    fast: Annotated[bool, typer.Option(help="small populations and few iterations (CI)")]
    = False,
    write: Annotated[bool, typer.Option(help="store the result in the package's fit file")]
    = False,
    out: Annotated[Path | None, typer.Option(help="also write the result (JSON) here")] = None,
    only: Annotated[str | None, typer.Option(
        help="comma-separated stages to fit, the others kept as stored: trd, psychotherapy "
             "or an indication (e.g. suicidal_ideation)")] = None,
    repeat: Annotated[bool, typer.Option(
        help="run the stored fit's calibration again from its recorded start and settings")]
    = False,
    structure: Annotated[str | None, typer.Option(
        help="fit one esketamine/racemic structure (H0-H3) instead of comparing all")] = None,
) -> None:
    """Fit the outcome model to every calibration trial as a model-based meta-analysis
    (between-trial heterogeneity, parameter uncertainty; the esketamine/racemic structure
    chosen by AIC). Without --repeat it continues from the stored fit; --fast (CI) fits
    only the stored structure with small populations and few iterations."""
    import json

    from ketasim.outcomes.parameters import fitted_values
    from ketasim.validation.outcomes import calibrate, repeat_stored_fit, write_fit
    stages = [x.strip() for x in only.split(",") if x.strip()] if only else None
    with console.status("calibrating…") as status:
        if repeat:
            result = repeat_stored_fit(progress=lambda m: status.update(m))
        elif fast:
            stored = fitted_values()["diagnostics"].get("mbma", {}).get("structure")
            result = calibrate(n=150, max_nfev=3, rounds=1, only=stages,
                               structure=structure or stored,
                               progress=lambda m: status.update(m))
        else:
            result = calibrate(n=400, max_nfev=15, rounds=2, only=stages, structure=structure,
                               progress=lambda m: status.update(m))
    d = result["diagnostics"]
    table = Table(title=f"outcome calibration (MBMA, n={d['n_per_arm']}/arm)")
    for col in ("parameter", "value"):
        table.add_column(col)
    for k, v in result["parameters"].items():
        table.add_row(k, f"{v:.4g}")
    console.print(table)
    mb = d.get("mbma", {})
    if mb:
        console.print(f"structure {mb['structure']}: {mb['structure_text']}")
        for h, r in mb.get("hypotheses", {}).items():
            console.print(f"  {h}: AIC {r['aic']:.1f} (Δ {r['delta_aic']:+.1f}) {r['params']}")
        console.print(f"between-trial SD (patient-level SDs): drug {mb['tau_drug']:.3f} "
                      f"{mb.get('tau_drug_ci95')}, control {mb['tau_control']:.3f} "
                      f"{mb.get('tau_control_ci95')}")
    for stage, diag in d.items():
        if stage.startswith(("stage1", "stage3")) and "data" in diag:
            outside = [r["id"] for r in diag["data"]
                       if r["pi95"] and not r["pi95"][0] <= r["observed"] <= r["pi95"][1]]
            console.print(f"{stage}: −log L {diag['nll']:.2f}; outside their 95 % "
                          f"prediction interval: {', '.join(outside) or 'none'}")
    if out is not None:
        out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        console.print(f"wrote {out}")
    if write:
        console.print(f"wrote {write_fit(result)}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    database: Annotated[str, typer.Option(help="database URL")] = "sqlite:///ketasim.db",
    demo: Annotated[bool, typer.Option(help="seed demonstration data and print log-ins")] = False,
    audit_key_file: Annotated[Path, typer.Option(help="HMAC key for the audit chain, kept "
                                                 "outside the database (created only while "
                                                 "the audit trail is empty)")]
    = Path("ketasim-audit.key"),
    trusted_proxy: Annotated[list[str] | None, typer.Option(
        "--trusted-proxy", help="address of a reverse proxy whose X-Forwarded-For/-Proto "
        "headers are believed (repeatable); without it those headers are ignored")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="server processes (one per CPU "
                                         "core serves the most requests)")] = 1,
) -> None:
    """Start the clinic web application (migrating the database first); --demo seeds a
    demonstration clinic and prints its log-ins."""
    import os
    import secrets

    import uvicorn

    from ketasim.storage.audit_store import load_or_create_key
    from ketasim.web.app import (
        ROLES,
        create_app,
        reset_demo_passwords,
        seed_demo,
        seed_demo_activity,
    )
    key = load_or_create_key(audit_key_file, database)
    application = create_app(database, audit_key=key)
    if demo:
        passwords = {r: secrets.token_urlsafe(9) for r in ROLES}
        if not seed_demo(application.state.sessions, passwords):
            reset_demo_passwords(application.state.sessions, passwords)
        seed_demo_activity(application.state.sessions, application.state.auditor)
        console.print("[bold]demo log-ins[/bold] (user name = role; new passwords each start):")
        for r in ROLES:
            console.print(f"  {r:<14} password {passwords[r]}")
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    console.print(f"ketasim clinic on http://{shown}:{port}/  (database {database}); the "
                  "public screening form is at /consult", soft_wrap=True)
    proxies = list(trusted_proxy or [])
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "warning",
                               "proxy_headers": bool(proxies),
                               "forwarded_allow_ips": proxies or None}
    if workers == 1:
        uvicorn.run(application, **options)
        return
    # several processes: each builds the app from the environment (the database is migrated
    # and seeded above, once); the audit chain stays one chain across them (see docs/clinic.md)
    os.environ["KETASIM_DATABASE"] = database
    os.environ["KETASIM_AUDIT_KEY_FILE"] = str(audit_key_file.resolve())
    uvicorn.run("ketasim.web.app:app_from_environment", factory=True, workers=workers,
                **options)


audit_app = typer.Typer(help="The clinic's audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    database: Annotated[str, typer.Option(help="database URL")] = "sqlite:///ketasim.db",
    audit_key_file: Annotated[Path, typer.Option(help="the HMAC key the server uses")]
    = Path("ketasim-audit.key"),
    head: Annotated[str | None, typer.Option(help="an anchored chain head (MAC of the last "
                                             "entry kept outside the database): also detects "
                                             "a database rolled back as a whole")]
    = None,
) -> None:
    """Check the audit trail: every entry's MAC, link and sequence number, the sealed head, and
    that every session event and questionnaire response matches its audit entry (exit 1 when
    anything is broken, 2 when the database or key cannot be read)."""
    from ketasim.storage.audit_store import open_existing, read_key, verify_database
    from ketasim.storage.db import StorageError, session_factory
    key = read_key(audit_key_file)
    engine = open_existing(database)
    try:
        from sqlalchemy import inspect
        if "audit_entries" not in inspect(engine).get_table_names():
            raise StorageError("database", f"{database} has no audit_entries table",
                               "give the database URL the clinic server uses")
        with session_factory(engine)() as db:
            report = verify_database(db, key, head=head)
    finally:
        engine.dispose()
    console.print(f"audit chain: {report.entries} entries checked (MACs, links, sequence "
                  "numbers" + (", anchored head" if head else "") + ")"
                  + (f"; last MAC {report.last_mac}" if report.last_mac else ""))
    console.print("sealed head: " + ("matches the last entry" if report.head_problem is None
                                     else "PROBLEM"))
    console.print(f"clinical rows: {report.rows_checked} session events and questionnaire "
                  "responses checked against their audit entries")
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if report.ok:
        console.print("[green]audit chain intact[/green]")
        return
    for problem in report.problems():
        console.print(f"[red]{problem}[/red]", soft_wrap=True)
    raise typer.Exit(1)


@app.command("backup")
def backup_cmd(
    out: Annotated[Path, typer.Argument(help="the backup file to write")],
    database: Annotated[str, typer.Option(help="database URL")] = "sqlite:///ketasim.db",
) -> None:
    """Back up the database while the server runs (SQLite: online backup API; PostgreSQL:
    pg_dump -Fc)."""
    from ketasim.storage.backup import backup
    result = backup(database, out)
    console.print(f"wrote {result.path} ({result.kind}, {result.size_bytes} bytes)")


@app.command("restore")
def restore_cmd(
    archive: Annotated[Path, typer.Argument(help="a file written by 'ketasim backup'")],
    database: Annotated[str, typer.Option(help="database URL to restore into")]
    = "sqlite:///ketasim.db",
    force: Annotated[bool, typer.Option(help="replace a database that already has tables")]
    = False,
    audit_key_file: Annotated[Path | None, typer.Option(help="verify the restored audit trail "
                                                        "with this key")] = None,
) -> None:
    """Restore a backup into a database (empty unless --force), migrate it, and verify its
    audit trail when a key file is given (exit 1 when broken). Stop the server first."""
    from ketasim.storage.backup import restore
    result = restore(archive, database, force=force, key_file=audit_key_file)
    console.print(f"restored {archive} into {database} ({result.tables} tables, migrated)")
    if result.audit is None:
        console.print("audit trail not checked (give --audit-key-file to verify it)")
        return
    if result.audit.ok:
        console.print(f"audit chain intact: {result.audit.entries} entries, "
                      f"{result.audit.rows_checked} clinical rows covered")
        return
    for problem in result.audit.problems():
        console.print(f"[red]{problem}[/red]", soft_wrap=True)
    raise typer.Exit(1)


@app.command("references")
def references_cmd(
    key: Annotated[str | None, typer.Argument(help="a bibliography key, e.g. zarate2006 "
                                              "(omit it to list every work)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print CSL-JSON")] = False,
) -> None:
    """The bibliography behind every number: keys, full citations and DOI links. Sources
    elsewhere name these keys ("zarate2006, Table 2"); an unknown key exits with code 2."""
    import json

    from rich.text import Text

    from ketasim.references import csl_items, load_bibliography, resolve
    if key is not None:
        rec = resolve(key)  # an unknown key raises CitationError: one line, exit code 2
        if json_out:
            item = next(i for i in csl_items() if i["id"] == rec.key)
            print(json.dumps(item, indent=2, ensure_ascii=False))
        else:
            print(rec.citation)
        return
    if json_out:
        print(json.dumps(list(csl_items()), indent=2, ensure_ascii=False))
        return
    bib = load_bibliography()
    table = Table(title=f"ketasim bibliography: {len(bib)} works ('ketasim references KEY' "
                  "prints one in full)")
    for col in ("key", "short citation", "DOI, PubMed or address"):
        table.add_column(col, overflow="fold")
    for rec in bib.values():
        table.add_row(rec.key, Text(rec.short), Text(rec.link or rec.note))
    console.print(table)


validate_app = typer.Typer(help="Validation reports: model predictions against published "
                           "numbers, with tolerances and verdicts.", no_args_is_help=True)
app.add_typer(validate_app, name="validate")


def _validation_table(title: str, outcomes: list[Any]) -> None:
    from ketasim.references import render_source
    table = Table(title=title)
    for col in ("target", "published", "predicted", "ratio", "tolerance", "verdict", "source"):
        table.add_column(col, overflow="fold")
    colours = {"pass": "green", "fail": "red", "inside band": "green"}
    for o in outcomes:
        t = o.target
        tol = (f"{t.low:g}–{t.high:g}" if t.low is not None and t.high is not None
               else f"±{t.tolerance * 100:g}%")
        colour = colours.get(o.verdict, "yellow")
        verdict = f"[{colour}]{o.verdict}[/{colour}]" + (f"\n[dim]{t.note}[/dim]" if t.note
                                                          else "")
        table.add_row(f"{t.id}\n[dim]{t.description}[/dim]", f"{t.published:.4g} {t.unit}",
                      f"{o.predicted:.4g}", f"{o.ratio:.3f}", tol, verdict,
                      render_source(t.source))
    console.print(table)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.verdict] = counts.get(o.verdict, 0) + 1
    console.print(", ".join(f"{v} {k}" for k, v in counts.items()))
    _print_references([o.target.source for o in outcomes])


@validate_app.command("pk")
def validate_pk(
    html_path: Annotated[Path | None, typer.Option("--html", help="write the HTML report "
                                                   "(with plots) here")] = None,
) -> None:
    """Run every PK validation target and print the report (exit 1 on a failure)."""
    from ketasim.report.pk import validation_html
    from ketasim.validation import run_pk_validation
    outcomes = run_pk_validation()
    _validation_table("PK validation", outcomes)
    if html_path is not None:
        validation_html(outcomes, html_path)
        console.print(f"wrote {html_path}")
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


@validate_app.command("pd")
def validate_pd() -> None:
    """Run the PD validation targets (occupancy and acute effects); exit 1 on a failure."""
    from ketasim.validation.pd import run_acute_validation, run_pd_validation
    with console.status("simulating the acute-effect targets…"):
        outcomes = run_pd_validation() + run_acute_validation()
    _validation_table("PD validation (occupancy, acute effects)", outcomes)
    console.print("[dim]kind 'calibration': a number the acute calibration was fitted to "
                  "(ketasim.validation.acute_calibration), shown to hold — not a validation. "
                  "Calibrated parameters: see docs/pd.md.[/dim]")
    fitted = [o.target.id for o in outcomes if o.target.kind == "calibration"]
    console.print(f"calibrated targets: {', '.join(fitted)}")
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


@validate_app.command("outcomes")
def validate_outcomes(
    patients: Annotated[int, typer.Option(min=50, max=20_000, help="virtual patients per "
                                          "arm")] = 1000,
    json_out: Annotated[bool, typer.Option("--json")] = False,
    loto: Annotated[bool, typer.Option(help="leave one trial out: each calibration trial "
                                       "predicted without it, with its 95 % prediction "
                                       "interval")] = False,
    refit: Annotated[bool, typer.Option(help="with --loto: refit instead of one Gauss-Newton "
                                        "step (slow)")] = False,
) -> None:
    """Every outcome calibration target and qualitative fact: published vs predicted, with
    tolerance and verdict (exit 1 on a failure)."""
    import json
    if loto:
        _loto_report(json_out, refit)
        return

    from ketasim.references import render_source
    from ketasim.report.outcomes import outcome_table
    from ketasim.validation.outcomes import run_outcome_validation
    with console.status("simulating the calibration trials…"):
        rows = outcome_table(run_outcome_validation(n=patients))
    if json_out:
        print(json.dumps({"targets": rows}, indent=2))
    else:
        table = Table(title=f"outcome validation (n={patients}/arm)")
        for col in ("target", "kind", "published", "tolerance", "predicted", "verdict",
                    "source"):
            table.add_column(col, overflow="fold")
        for r in rows:
            colour = "green" if r["verdict"] == "pass" else "yellow" if r["ok"] else "red"
            verdict = f"[{colour}]{r['verdict']}[/{colour}]" + (
                f"\n[dim]{r['note']}[/dim]" if r["note"] else "")
            table.add_row(f"{r['id']}\n[dim]{r['description']}[/dim]", r["kind"],
                          f"{r['published']:.4g} {r['unit']}", f"{r['low']:.3g} – {r['high']:.3g}",
                          f"{r['predicted']:.4g}", verdict, render_source(r["source"]))
        console.print(table)
        console.print(f"{sum(r['pass'] for r in rows)} of {len(rows)} pass; "
                      f"{sum(r['ok'] and not r['pass'] for r in rows)} known discrepancies")
        _print_references([r["source"] for r in rows])
    if not all(r["ok"] for r in rows):
        raise typer.Exit(1)


def _loto_report(json_out: bool, refit: bool) -> None:
    import json

    from ketasim.validation.outcomes import leave_one_trial_out
    with console.status("leaving one trial out…") as status:
        rep = leave_one_trial_out(refit=refit, progress=lambda m: status.update(m))
    if json_out:
        print(json.dumps(rep, indent=2))
        return
    table = Table(title=f"leave one trial out ({rep['method']})")
    for col in ("datum", "trial", "published", "predicted without it", "95 % PI", "covered"):
        table.add_column(col)
    for r in rep["rows"]:
        ok = "[green]yes[/green]" if r["covered"] else "[red]no[/red]"
        table.add_row(r["id"], r["trial"], f"{r['observed']:.3g}", f"{r['predicted']:.3g}",
                      f"{r['pi95'][0]:.3g} – {r['pi95'][1]:.3g}", ok)
    console.print(table)
    console.print(f"coverage of the 95 % prediction interval: {rep['covered']} of "
                  f"{rep['total']} ({rep['coverage'] * 100:.0f} %) over {rep['trials']} trials")
    for stage, why in rep["skipped"].items():
        console.print(f"[dim]{stage}: {why}[/dim]")


# forecast, recommend and design live in their own module (registered on import)
from ketasim.cli import individual as _individual  # noqa: E402,F401


def main() -> None:
    """Entry point: run the app and pass its exit code to the shell; ketasim errors become one
    line on stderr and exit code 2."""
    try:
        # standalone_mode=False: click RETURNS the code of typer.Exit instead of raising it
        rc = app(standalone_mode=False)
    except KetasimError as exc:
        err_console.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # usage errors (typer's vendored click, or click itself)
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if type(exc).__module__.startswith(("typer", "click")) and callable(show) \
                and isinstance(code, int):
            show()
            sys.exit(code)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


__all__ = ["app", "main"]
