"""``ketasim trial``, ``explain``, ``sensitivity`` and ``calibrate outcomes``: virtual trials,
the chain explained, what drives a forecast, and the outcome calibration.

JSON shapes (``--format json``): ``trial`` as ``--json`` (``{"arms", "differences", "indication",
"endpoint", "unit", "seed", "plot", "disclaimer"}``; with ``--replicates`` the replicate
summary); ``sensitivity`` as ``--json``; ``explain`` → ``{"report", "regimen", "indication",
"disclaimer"}``; ``calibrate outcomes`` → the fit (``{"parameters", "diagnostics", ...}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ketasim.cli.output import (
    FormatOption,
    JsonFlag,
    Output,
    SchedulerOption,
    WorkersOption,
    console,
    err_console,
    to_json_text,
)
from ketasim.report.plots import DISCLAIMER


def trial_cmd(
    design: Annotated[Path, typer.Argument(help="design file (TOML), see docs/outcomes.md")],
    json_out: JsonFlag = False,
    plot: Annotated[Path | None, typer.Option(help="PNG of mean trajectories per arm "
                                              "(default: DESIGN.png beside the design)")]
    = None,
    replicates: Annotated[int, typer.Option(min=1, max=1_000_000, help="run the trial this "
                                            "many times (seeds from the design's): spread of "
                                            "the estimates and power")] = 1,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    fmt: FormatOption = "table",
) -> None:
    """Run a virtual trial: the endpoint per arm with a 95 % CI, and a plot of the mean
    trajectories; --replicates runs it many times (here or on a Dask cluster)."""
    o = Output(fmt, json_out)
    if replicates > 1 or workers is not None or scheduler is not None:
        from ketasim.cli.scale import trial_replicates
        trial_replicates(o, design=design, replicates=replicates, workers=workers,
                         scheduler=scheduler)
        return
    from ketasim.outcomes.trial import load_design, run_trial
    from ketasim.report.outcomes import plot_trial
    d = load_design(design)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err_console, disable=not o.rich) as bar:
        task = bar.add_task("virtual trial", total=d.n_per_arm * len(d.arms))
        result = run_trial(d, progress=lambda _name, k: bar.advance(task, k))
    png = plot_trial(result, plot or design.with_suffix(".png"))
    pred = result.prediction or {}
    if not o.rich:
        rows: list[list[Any]] = []
        for name, a in result.arms.items():
            pi = pred.get("arms", {}).get(name, {}).get("pi95") or [None, None]
            rows.append([name, "arm", a.estimate, *a.ci95, *pi, a.note])
        for name, dd in pred.get("differences", {}).items():
            rows.append([name, "difference", dd["estimate"], *dd["ci95"], *dd["pi95"], ""])
        o.table("arms", ["arm", "kind", "estimate", "ci95_low", "ci95_high", "pi95_low",
                         "pi95_high", "note"], rows)
        o.wrote(png)
        o.finish({**result.to_json(), "plot": str(png), "disclaimer": DISCLAIMER})
        return
    e = d.endpoint
    table = Table(title=f"{d.indication}: {e.measure} on {e.instrument} at {e.time} "
                        f"(n={d.n_per_arm}/arm, seed {d.seed})")
    for col in ("arm", "estimate", "95 % CI (this size)", "95 % PI (a new trial)", "note"):
        table.add_column(col)

    def num(x: float | None) -> str:
        return "—" if x is None else f"{x:.3g}"

    for name, a in result.arms.items():
        pi = pred.get("arms", {}).get(name, {}).get("pi95")
        table.add_row(name, num(a.estimate), f"{num(a.ci95[0])} – {num(a.ci95[1])}",
                      f"{num(pi[0])} – {num(pi[1])}" if pi else "—", a.note)
    for name, dd in pred.get("differences", {}).items():
        table.add_row(name, num(dd["estimate"]), f"{num(dd['ci95'][0])} – {num(dd['ci95'][1])}",
                      f"{num(dd['pi95'][0])} – {num(dd['pi95'][1])}", "difference")
    console.print(table)
    if "note" in pred:
        console.print(f"[dim]{pred['note']}[/dim]")
    console.print("[dim]CI: sampling error of the simulated size; PI: what a new real trial "
                  "of this design could observe (parameter uncertainty + between-trial "
                  "heterogeneity + its sampling error).[/dim]")
    console.print(f"unit: {result.unit}; wrote {png}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


def explain_cmd(
    regimen: Annotated[str, typer.Option(help="regimen text")],
    indication: Annotated[str, typer.Option(help="indication id, e.g. trd, bipolar, ptsd")]
    = "trd",
    weight: Annotated[float, typer.Option(help="body weight (kg)")] = 70.0,
    out: Annotated[Path, typer.Option(help="HTML report to write")] = Path("explain.html"),
    patients: Annotated[int, typer.Option(min=20, max=5000, help="virtual patients for the "
                                          "symptom band")] = 300,
    seed: Annotated[int, typer.Option()] = 1,
    fmt: FormatOption = "table",
) -> None:
    """Why does ketamine therapy work? An HTML report that walks the chain for a regimen."""
    from ketasim.report.outcomes import explain
    o = Output(fmt)
    with (console if o.rich else err_console).status("simulating the chain…"):
        p = explain(regimen, indication, out, weight_kg=weight, n=patients, seed=seed)
    o.print(f"wrote {p}")
    o.print(f"[dim]{DISCLAIMER}[/dim]")
    if not o.rich:
        o.table("report", ["report", "regimen", "indication"], [[str(p), regimen, indication]])
    o.finish({"report": str(p), "regimen": regimen, "indication": indication,
              "disclaimer": DISCLAIMER})


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
    json_out: JsonFlag = False,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    fmt: FormatOption = "table",
) -> None:
    """Which assumptions drive a forecast: Sobol' indices of a trial endpoint over the
    calibrated and assumed parameters within their uncertainty (ranges printed first)."""
    from ketasim.cli.scale import sensitivity
    sensitivity(Output(fmt, json_out), design=design, draws=draws, seed=seed,
                patients=patients, workers=workers, scheduler=scheduler)


calibrate_app = typer.Typer(help="Calibration runs that anyone can repeat.",
                            no_args_is_help=True)


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
    fmt: FormatOption = "table",
) -> None:
    """Fit the outcome model to every calibration trial as a model-based meta-analysis
    (between-trial heterogeneity, parameter uncertainty; the esketamine/racemic structure
    chosen by AIC). Without --repeat it continues from the stored fit; --fast (CI) fits
    only the stored structure with small populations and few iterations."""
    from ketasim.outcomes.parameters import fitted_values
    from ketasim.validation.outcomes import calibrate, repeat_stored_fit, write_fit
    o = Output(fmt)
    stages = [x.strip() for x in only.split(",") if x.strip()] if only else None
    with (console if o.rich else err_console).status("calibrating…") as status:
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
    o.table("parameters", ["parameter", "value"],
            [[k, v] for k, v in result["parameters"].items()],
            title=f"outcome calibration (MBMA, n={d['n_per_arm']}/arm)")
    if not o.rich:
        if out is not None:
            out.write_text(to_json_text(result) + "\n", encoding="utf-8")
            o.wrote(out)
        if write:
            o.wrote(write_fit(result))
        o.finish(result)
        return
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


def register(app: typer.Typer) -> None:
    """Add ``trial``, ``explain``, ``sensitivity`` and the ``calibrate`` group."""
    app.command("trial")(trial_cmd)
    app.command("explain")(explain_cmd)
    app.command("sensitivity")(sensitivity_cmd)
    app.add_typer(calibrate_app, name="calibrate")


__all__ = ["calibrate_app", "explain_cmd", "register", "sensitivity_cmd", "trial_cmd"]
