"""``ketasim demo``, ``regimen``, ``dataset``, ``simulate``, ``occupancy`` and ``session``:
regimens read and run through the PK library and the acute PD models.

Every regimen text is parsed once, here at the boundary, and passed on as a
:class:`~ketasim.dosing.regimen.Regimen`; patient options become covariates through
:func:`ketasim.population.covariates.patient_covariates`.

JSON shapes (``--format json``): ``regimen`` → ``{"regimen": TEXT, "administrations": [{"n",
"time_h", "day", "route", "amount_mg" (null when mg/kg without --weight), "amount_mg_per_kg"
(mg/kg doses), "infusion"}]}``; ``dataset`` → ``{"path", "subjects", "records",
"dose_records", "observations", "other_columns"}``; ``demo`` → ``{"regimen", "model",
"typical": SUMMARY, "population": SUMMARY, "peak_nmda_occupancy", "files"}``; ``simulate``,
``occupancy`` and ``session`` keep their ``--json`` shapes.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ketasim.cli.output import (
    FormatOption,
    JsonFlag,
    Output,
    SchedulerOption,
    WorkersOption,
    console,
    err_console,
    parse_time,
    print_footer,
)
from ketasim.engine.reference import REFERENCE_REGIMEN
from ketasim.errors import KetasimError
from ketasim.report.plots import DISCLAIMER

if TYPE_CHECKING:
    from ketasim.dosing.regimen import Regimen


def demo(
    out: Annotated[Path, typer.Option(help="folder for the CSV and plot")] = Path("out"),
    subjects: Annotated[int, typer.Option(min=1, max=100_000,
                                          help="virtual patients for the population run")] = 500,
    seed: Annotated[int, typer.Option(help="random seed (reproducible populations)")] = 1,
    regimen: Annotated[str, typer.Option(help="regimen text")] = REFERENCE_REGIMEN,
    weight: Annotated[float, typer.Option(help="the typical patient's weight (kg)")] = 70.0,
    fmt: FormatOption = "table",
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
    o = Output(fmt)
    out.mkdir(parents=True, exist_ok=True)
    reg = parse_regimen(regimen)
    times = np.arange(0.0, max(24.0, reg.last_time + 84.0) + 1e-9, 5.0 / 60.0)
    typical = run_pk(reg, covariates={"weight": weight}, times=times)
    lm = typical.model
    o.print(f"[bold]ketasim demo[/bold] — {reg.to_text()} "
            f"({reg.n_administrations} administrations)")
    o.print(f"model [cyan]{lm.name}[/cyan]: {lm.title}")
    typical.to_frame().to_csv(out / "result.csv", index=False)
    tsum = typical.summary()
    keep = ("ketamine", "norketamine", "hnk")
    rows = [[a, v["cmax_ng_per_ml"], v["tmax_h"], v["auc_ng_h_per_ml"]]
            for a, v in tsum["analytes"].items() if a in keep]
    o.table("typical", ["analyte", "Cmax (ng/mL)", "Tmax (h)", "AUC (ng·h/mL)"], rows,
            shown=[[a, f"{c:.4g}", f"{t:.3g}", f"{u:.4g}"] for a, c, t, u in rows],
            title=f"typical {weight:g}-kg patient, whole course")
    first = run_pk(reg, covariates={"weight": weight}, times=np.arange(0.0, 8.0, 1.0 / 60.0))
    tx = target_exposure(first)
    nmda = float(tx.peak["nmda"][0])
    o.print(f"peak NMDA occupancy after the first dose: {nmda * 100:.0f} % "
            f"(targets reached: {', '.join(tx.meaningful())}; all others < 15 %)")

    parts: list[PKRun] = []
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total} patients"), TimeElapsedColumn(), console=console,
                  transient=True, disable=not o.rich) as progress:
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
    psum = pop.summary()
    prow = [[a, q["p5"], q["p50"], q["p95"]] for a, vals in psum["analytes"].items()
            if isinstance(q := vals["cmax_ng_per_ml"], dict)]
    o.table("population", ["analyte", "Cmax p5", "p50", "p95 (ng/mL)"], prow,
            shown=[[a, f"{x:.4g}", f"{y:.4g}", f"{z:.4g}"] for a, x, y, z in prow],
            title=f"{subjects} virtual patients (seed {seed}), {elapsed:.1f} s")
    plot_pk_run(pop, out / "result.png")
    o.print(f"wrote {out / 'result.csv'} and {out / 'result.png'}")
    o.print(f"[dim]{DISCLAIMER}[/dim]")
    o.finish({"regimen": reg.to_text(), "model": lm.name, "typical": tsum,
              "population": psum, "peak_nmda_occupancy": nmda,
              "files": [str(out / "result.csv"), str(out / "result.png")],
              "disclaimer": DISCLAIMER})


def regimen_cmd(
    text: Annotated[str, typer.Argument(help="regimen text, e.g. '0.5 mg/kg IV over 40 min'")],
    weight: Annotated[float | None, typer.Option(help="body weight (kg) for mg/kg")] = None,
    csv: Annotated[Path | None, typer.Option(help="write the NM-TRAN event table here")] = None,
    fmt: FormatOption = "table",
) -> None:
    """Parse regimen text, print it back and list every administration."""
    from ketasim.dosing.language import parse_regimen
    o = Output(fmt)
    reg: Regimen = parse_regimen(text)
    o.print(f"[bold]{reg.to_text()}[/bold]")
    needs_weight = any(d.per_kg for d in reg.doses)
    rows, shown = [], []
    known = weight is not None or not needs_weight
    # mg/kg without --weight: the doses are listed in mg/kg (nothing to resolve)
    times = sorted(((float(t), d) for d in reg.doses for t in d.times()), key=lambda x: x[0])
    for k, (t, d) in enumerate(times, 1):
        amt = d.amount_mg(weight) if known else math.nan
        amount = f"{amt:g} mg" if known else f"{d.amount:g} mg/kg"
        unit = "mg/kg/h" if d.per_kg else "mg/h"
        inf = (f"over {d.duration * 60:g} min" if d.duration is not None else
               f"at {d.rate:g} {unit}" if d.rate is not None else "")
        rows.append([k, t, t / 24 + 1, d.route.word, amt if known else None,
                     d.amount if d.per_kg else None, inf])
        shown.append([str(k), f"{t:g}", f"{t / 24 + 1:g}", d.route.word, amount, inf])
    cols = ["#", "time (h)", "day", "route", "amount (mg)", "amount (mg/kg)", "infusion"]
    if o.rich:
        o.table("administrations", ["#", "time (h)", "day", "route", "amount", "infusion"],
                rows, shown=shown)
    else:
        o.table("administrations", cols, rows)
    if csv is not None:
        reg.to_events(weight_kg=weight).to_frame().to_csv(csv, index=False)
        o.wrote(csv)
    o.finish({"regimen": reg.to_text(),
              "administrations": [{"n": r[0], "time_h": r[1], "day": r[2], "route": r[3],
                                   "amount_mg": r[4], "amount_mg_per_kg": r[5],
                                   "infusion": r[6]} for r in rows]})


def dataset(
    path: Annotated[Path, typer.Argument(help="NONMEM-style CSV dataset")],
    covariate: Annotated[list[str] | None, typer.Option(help="covariate column")] = None,
    fmt: FormatOption = "table",
) -> None:
    """Check a NONMEM-style dataset against NM-TRAN rules and summarise it."""
    import numpy as np

    from ketasim.io.nmtran import read_nonmem_csv
    o = Output(fmt)
    table, extra = read_nonmem_csv(path, covariates=covariate or [])
    n_dose = int(np.isin(table.evid, (1, 4)).sum())
    summary: dict[str, Any] = {"path": str(path), "subjects": len(table.subject_ids),
               "records": table.n_records, "dose_records": n_dose,
               "observations": int((table.evid == 0).sum()),
               "other_columns": list(extra.columns)}
    o.print(f"{path}: {summary['subjects']} subjects, {table.n_records} records, "
            f"{n_dose} dose records, {summary['observations']} observations; "
            f"other columns: {', '.join(extra.columns) or 'none'}")
    if not o.rich:
        o.table("dataset", list(summary), [[*list(summary.values())[:-1],
                                            " ".join(summary["other_columns"])]])
    o.finish(summary)


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
    json_out: Annotated[bool, typer.Option("--json", help="print a JSON summary (same as "
                                           "--format json)")] = False,
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
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    fmt: FormatOption = "table",
) -> None:
    """Simulate a regimen with a library model for one patient or a population; --parquet
    streams populations of any size to a file."""
    import numpy as np

    from ketasim.dosing.language import parse_regimen
    from ketasim.population import resolve_model, run_pk
    from ketasim.population.covariates import patient_covariates
    o = Output(fmt, json_out)
    reg = parse_regimen(regimen)
    lm = resolve_model(model, reg) if sex is not None else None
    pc = patient_covariates(weight_kg=weight, age_years=age, sex=sex, asian=asian,
                            japanese=japanese,
                            model_covariates=None if lm is None else set(lm.model.covariates),
                            model_name="this model" if lm is None else lm.name)
    covs, notes = pc.values, list(pc.notes)
    end = parse_time(until, "until") if until else reg.last_time + 24.0
    step = parse_time(every, "every")
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
        simulate_parquet(o, regimen=regimen, model=model, covariates=covs,
                         subjects=subjects, seed=seed, times=times, path=parquet,
                         profiles=profiles, threshold=threshold, analytes=analyte,
                         allow_extrapolation=allow_extrapolation,
                         residual_error=residual_error, workers=workers, scheduler=scheduler,
                         notes=notes)
        return
    if subjects > 1 and o.rich:
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
    if o.json:
        o.finish(summary)
        return
    o.print(f"[bold]{reg.to_text()}[/bold] — model [cyan]{run.model.name}[/cyan] "
            f"({run.engine} engine)")
    o.print(f"[dim]{run.model.citation}[/dim]")
    who = "typical patient" if subjects == 1 else f"{subjects} virtual patients, seed {seed}"

    def fmt_(v: float | dict, scale: float = 1.0) -> str:
        if isinstance(v, dict):
            return f"{v['p50'] * scale:.4g} [{v['p5'] * scale:.3g}–{v['p95'] * scale:.3g}]"
        return f"{v * scale:.4g}"

    def cells(v: float | dict, scale: float = 1.0) -> list[Any]:
        if isinstance(v, dict):
            return [v["p50"] * scale, v["p5"] * scale, v["p95"] * scale]
        return [v * scale]
    rows, shown = [], []
    for a, vals in summary["analytes"].items():
        mw = run.model.analyte(a).molar_mass
        rows.append([a, *cells(vals["cmax_ng_per_ml"]), *cells(vals["tmax_h"]),
                     *cells(vals["auc_ng_h_per_ml"]), *cells(vals["cmax_ng_per_ml"], 1 / mw)])
        shown.append([a, fmt_(vals["cmax_ng_per_ml"]), fmt_(vals["tmax_h"]),
                      fmt_(vals["auc_ng_h_per_ml"]), fmt_(vals["cmax_ng_per_ml"], 1 / mw)])
    heads = ["Cmax (ng/mL)", "Tmax (h)", "AUC (ng·h/mL)", "Cmax (µmol/L)"]
    cols = ["analyte", *heads] if subjects == 1 else \
        ["analyte", *(f"{h} {q}" for h in heads for q in ("p50", "p5", "p95"))]
    if o.rich:
        o.table("analytes", ["analyte", *heads], rows, shown=shown, title=f"{who}, 0–{end:g} h")
    else:
        o.table("analytes", cols, rows)
    if subjects > 1:
        o.print("[dim]population values: median [5th–95th percentile][/dim]")
    for w in (*run.warnings, *notes):
        o.note(w, "warning")
    for f_ in (out, plot):
        if f_ is not None:
            o.wrote(f_)
    o.print(f"[dim]{DISCLAIMER}[/dim]")
    o.finish(summary)


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
    json_out: JsonFlag = False,
    fmt: FormatOption = "table",
) -> None:
    """Which targets a regimen reaches: peak occupancy of every target by all analytes."""
    import numpy as np

    from ketasim.dosing.language import parse_regimen
    from ketasim.pd import target_exposure
    from ketasim.pd.exposure import MEANINGFUL
    from ketasim.pd.targets import load_target_data
    from ketasim.population import run_pk
    from ketasim.population.covariates import patient_covariates
    o = Output(fmt, json_out)
    reg = parse_regimen(regimen)
    end = parse_time(until, "until") if until else reg.last_time + 8.0
    times = np.arange(0.0, end + 1e-9, 1.0 / 60.0)
    covs = patient_covariates(weight_kg=weight).values
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
    plain, shown = [], []
    for t, r in rows.items():
        v = r["peak_occupancy"]
        txt = f"{v * 100:.1f} %" if isinstance(v, float) else \
            f"{v['p50'] * 100:.1f} % [{v['p5'] * 100:.1f}–{v['p95'] * 100:.1f}]"
        name = str(r["name"]) + (" [red](DISPUTED, off by default)[/red]"
                                 if r["disputed"] else "")
        shown.append([name, txt, "[bold]yes[/bold]" if r["meaningful"] else "no"])
        vals = [v] if isinstance(v, float) else [v["p50"], v["p5"], v["p95"]]
        plain.append([t, r["name"], r["disputed"], *vals, r["meaningful"]])
    occ = ["peak occupancy"] if subjects == 1 else \
        ["peak occupancy p50", "peak occupancy p5", "peak occupancy p95"]
    if o.rich:
        o.table("targets", ["target", "peak occupancy", "reached?"], plain, shown=shown,
                title=f"{reg.to_text()} — {run.model.name}: peak target occupancy")
        o.print(f"[dim]reached: median peak ≥ {MEANINGFUL * 100:g} %. {DISCLAIMER}[/dim]")
    else:
        o.table("targets", ["target", "name", "disputed", *occ, "reached"], plain)
    if plot is not None:
        from ketasim.report.pd import plot_occupancy
        plot_occupancy(tx, f"{reg.to_text()} — {run.model.name}", plot)
        if o.rich:
            o.wrote(plot)
    o.finish({"model": run.model.name, "regimen": reg.to_text(), "threshold": MEANINGFUL,
              "targets": rows, "disclaimer": DISCLAIMER})


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
    json_out: JsonFlag = False,
    fmt: FormatOption = "table",
) -> None:
    """Forecast the hour after a dose: dissociation, sedation, BP, HR, adverse events and when
    the patient will be ready to leave (individual when --history is given)."""
    import numpy as np

    from ketasim.dosing.language import parse_regimen
    from ketasim.pd.session_forecast import (
        REMS_MINIMUM_H,
        AcutePatient,
        forecast_session,
        read_history,
    )
    o = Output(fmt, json_out)
    reg = parse_regimen(regimen)
    hist = read_history(history) if history is not None else []
    if hist and prior_sessions == 0:
        prior_sessions = max(o_.session for o_ in hist)
    patient = AcutePatient(weight, age, sbp, dbp, hr, prior_sessions)
    f = forecast_session(reg, patient, history=hist, n=replicates,
                         rng=np.random.default_rng(seed))
    if plot is not None:
        from ketasim.report.pd import plot_session_forecast
        plot_session_forecast(f, plot)
    if o.json:
        o.finish(f.to_json())
        return
    kind = (f"individual: {f.n_history_sessions} earlier sessions, effective sample "
            f"{f.ess:.0f}" if f.individual and f.ess is not None else "population")

    def one(v: float, scale: float = 1.0) -> str:
        return "never" if not np.isfinite(v) else f"{v * scale:.0f}"
    bands = [("peak CADSS", f.cadss_peak, 1.0), ("peak SBP (mmHg)", f.sbp_peak, 1.0),
             ("peak DBP (mmHg)", f.dbp_peak, 1.0),
             ("ready to leave (min after dose)", f.discharge_ready_h, 60.0)]
    if o.rich:
        _session_table(f, patient, kind, bands, one)
    else:
        o.table("forecast", ["forecast", "median", "p5", "p95"],
                [[label, b.p50 * s, b.p5 * s, b.p95 * s] for label, b, s in bands])
    events = [("SBP rise ≥ 40 mmHg (40-min or 1.5-h check)", f.p_sbp_rise_ge_40),
              ("DBP rise ≥ 25 mmHg", f.p_dbp_rise_ge_25),
              ("SBP ≥ 180 mmHg", f.p_sbp_ge_180), ("DBP ≥ 110 mmHg", f.p_dbp_ge_110),
              ("any MOAA/S fall", f.p_moaas_any_fall), ("MOAA/S ≤ 3", f.p_moaas_le_3),
              ("MOAA/S 0", f.p_moaas_0),
              (f"ready by the REMS {REMS_MINIMUM_H:g}-h minimum", f.p_ready_by_rems),
              *((f"{k.replace('_', ' ')} (reported incidence, grade {v['grade']})",
                 v["probability"]) for k, v in f.adverse_events.items())]
    if o.rich:
        o.table("probabilities", ["event", "probability"], [[e, p] for e, p in events],
                shown=[[e, f"{p * 100:.1f} %"] for e, p in events], title="probabilities",
                justify={"probability": "right"})
    else:
        o.table("probabilities", ["event", "probability"], [[e, p] for e, p in events])
    o.print(f"peak NMDA occupancy (typical patient): {f.nmda_occupancy_peak * 100:.0f} %")
    o.print("calibrated parameters (fitted to published summary statistics, see "
            "docs/pd.md): " + ", ".join(f.evidence.get("calibrated", [])))
    o.print("assumed: " + ", ".join(f.evidence.get("assumed", [])))
    print_footer(f.notes, plot, f.to_json()["disclaimer"], o)
    o.finish()


def _session_table(f: Any, patient: Any, kind: str, bands: list[Any],
                   one: Any) -> None:
    from rich.table import Table
    table = Table(title=f"{f.regimen}, session {patient.session} ({f.model}; {kind}; "
                  f"{f.n} replicates)")
    for col in ("forecast", "median", "90 % band"):
        table.add_column(col)
    for label, b, s in bands:
        table.add_row(label, one(b.p50, s), f"{one(b.p5, s)}–{one(b.p95, s)}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``demo``, ``regimen``, ``dataset``, ``simulate``, ``occupancy`` and ``session``."""
    app.command()(demo)
    app.command("regimen")(regimen_cmd)
    app.command()(dataset)
    app.command("simulate")(simulate_cmd)
    app.command("occupancy")(occupancy_cmd)
    app.command("session")(session_cmd)


__all__ = ["dataset", "demo", "occupancy_cmd", "regimen_cmd", "register", "session_cmd",
           "simulate_cmd"]
