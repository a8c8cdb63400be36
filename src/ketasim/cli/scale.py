"""The command line's runs at scale: ``simulate --parquet``, ``trial --replicates`` and
``sensitivity`` (called from :mod:`ketasim.cli.run` and :mod:`ketasim.cli.outcomes`; they parse
nothing, call the library and render through :class:`~ketasim.cli.output.Output`). Dask,
pyarrow and SALib are imported inside, when a run needs them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ketasim.cli.output import Output, console, err_console
from ketasim.report.plots import DISCLAIMER


def _bar(console: Console, disable: bool, unit: str) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn(unit), TimeElapsedColumn(), TextColumn("left"),
                    TimeRemainingColumn(), console=console, disable=disable, transient=True)


def simulate_parquet(o: Output, *, regimen: str,
                     model: str | None, covariates: Mapping[str, float], subjects: int,
                     seed: int | None, times: np.ndarray, path: Path, profiles: bool,
                     threshold: float | None, analytes: Sequence[str] | None,
                     allow_extrapolation: bool, residual_error: bool, workers: int | None,
                     scheduler: str | None, notes: Sequence[str]) -> None:
    """``ketasim simulate --parquet``: the size first (refused when it will not fit), then a
    progress bar while blocks are simulated and written."""
    from ketasim.distributed import cluster
    from ketasim.population.stream import human_bytes, plan_stream, write_stream
    job = plan_stream(regimen, path=path, subjects=subjects, seed=seed, model=model,
                      covariates=covariates, times=times, profiles=profiles,
                      analytes=analytes, threshold=threshold,
                      allow_extrapolation=allow_extrapolation, residual_error=residual_error)
    json_out = not o.rich
    say = err_console if json_out else console
    kind = (f"profiles of {len(job.spec.analytes)} analytes at {len(times)} times"
            if profiles else "exposure metrics")
    say.print(f"{subjects:,} subjects ({kind}), model {job.spec.model}, seed "
              f"{job.spec.seed}: {job.rows:,} rows, about {human_bytes(job.estimated_bytes)} "
              f"→ {path} ({human_bytes(job.free_bytes)} free)", soft_wrap=True,
              highlight=False)
    with cluster(scheduler, workers) as client, \
            _bar(err_console, json_out, "patients") as bar:
        task = bar.add_task("simulating", total=subjects)
        res = write_stream(job, client=client,
                           progress=lambda k: bar.update(task, completed=k))
    if not o.rich:
        o.table("stream", ["path", "rows", "bytes", "seconds", "subjects_per_second", "blocks"],
                [[str(res.path), res.rows, res.bytes, res.seconds, res.subjects_per_second,
                  res.blocks]])
        for w in (*res.warnings, *notes):
            o.note(w, "warning")
        o.finish({**res.to_json(), "notes": list(notes)})
        return
    console.print(f"wrote {res.path}: {res.rows:,} rows, {human_bytes(res.bytes)} in "
                  f"{res.seconds:.1f} s ({res.subjects_per_second:,.0f} subjects/s, "
                  f"{res.blocks} blocks)", soft_wrap=True, highlight=False)
    for w in (*res.warnings, *notes):
        console.print(f"[yellow]warning:[/yellow] {w}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


def trial_replicates(o: Output, *, design: Path, replicates: int, workers: int | None,
                     scheduler: str | None) -> None:
    """``ketasim trial --replicates R``: the spread of every arm's estimate and the power of
    every drug-minus-control difference over R replicate trials."""
    from ketasim.distributed import cluster
    from ketasim.outcomes.replicates import run_replicates
    from ketasim.outcomes.trial import load_design
    d = load_design(design)
    json_out = not o.rich
    with cluster(scheduler, workers) as client, _bar(err_console, json_out, "trials") as bar:
        task = bar.add_task("replicate trials", total=replicates)
        res = run_replicates(d, replicates, client=client,
                             progress=lambda k: bar.update(task, completed=k))
    out = res.to_json()
    if not o.rich:
        o.table("replicates", ["arm / difference", "mean", "sd", "p2.5", "p50", "p97.5",
                               "power"],
                [[k, s["mean"], s["sd"], s["p2.5"], s["p50"], s["p97.5"], s.get("power")]
                 for part in ("arms", "differences") for k, s in out[part].items()])
        o.finish({**out, "disclaimer": DISCLAIMER})
        return
    e = d.endpoint
    table = Table(title=f"{d.indication}: {e.measure} on {e.instrument} at {e.time} — "
                        f"{replicates} replicate trials of n={d.n_per_arm}/arm (seed {d.seed}, "
                        f"{res.workers} worker{'s' if res.workers > 1 else ''})")
    for col in ("arm / difference", "mean", "SD", "95 % of replicates", "power"):
        table.add_column(col)

    def fmt(x: float | None) -> str:
        return "—" if x is None else f"{x:.3g}"
    for name, s in out["arms"].items():
        table.add_row(name, fmt(s["mean"]), fmt(s["sd"]), f"{fmt(s['p2.5'])} – "
                      f"{fmt(s['p97.5'])}", "")
    for name, s in out["differences"].items():
        power = "—" if s["power"] is None else f"{s['power'] * 100:.0f} %"
        table.add_row(name, fmt(s["mean"]), fmt(s["sd"]), f"{fmt(s['p2.5'])} – "
                      f"{fmt(s['p97.5'])}", power)
    console.print(table)
    console.print("[dim]replicate 0 is the design's own seed (what 'ketasim trial' prints); "
                  "power: share of replicates whose difference's 95 % interval excludes 0. "
                  "Sampling error only: parameter uncertainty is in 'ketasim trial' "
                  "(prediction interval) and 'ketasim sensitivity'.[/dim]")
    console.print(f"unit: {res.unit}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


def sensitivity(o: Output, *, design: Path, draws: int | None, seed: int | None,
                patients: int | None, workers: int | None, scheduler: str | None) -> None:
    """``ketasim sensitivity``: the ranges used, then Sobol' indices ranked by total effect."""
    import time

    from ketasim.distributed import cluster
    from ketasim.validation.sensitivity import (
        Uncertainty,
        load_sensitivity_design,
        run_sensitivity,
    )
    d, settings = load_sensitivity_design(design)
    json_out = not o.rich

    def show_ranges(kept: list[Uncertainty], screened: list[str]) -> None:
        if json_out:
            return
        table = Table(title="parameters varied (uniform; log: uniform in the logarithm)")
        for col in ("parameter", "evidence", "value", "range", "basis of the range"):
            table.add_column(col, overflow="fold")
        for r in kept:
            table.add_row(r.name, r.evidence, f"{r.value:.4g}",
                          f"{r.low:.4g} – {r.high:.4g}" + (" log" if r.scale == "log" else ""),
                          r.basis)
        console.print(table)
        if screened:
            console.print(f"[dim]no effect on this forecast at either end of their ranges "
                          f"(not varied): {', '.join(screened)}[/dim]")

    t0 = time.perf_counter()
    with cluster(scheduler, workers) as client, _bar(err_console, json_out, "draws") as bar:
        task = bar.add_task("screening", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, description="Sobol' draws", completed=done, total=total)
        res = run_sensitivity(d, settings, draws=draws, seed=seed, patients=patients,
                              client=client, on_ranges=show_ranges, progress=step)
    wall = time.perf_counter() - t0
    out = res.to_json()
    s = res.sobol
    if not o.rich:
        o.table("sobol", ["parameter", "ST", "ST_conf", "S1", "S1_conf"],
                [[k, s.st[k], s.st_conf[k], s.s1[k], s.s1_conf[k]] for k in res.ranked()])
        o.finish({**out, "disclaimer": DISCLAIMER})
        return
    table = Table(title=f"what drives the forecast: {res.forecast} ({res.unit})")
    for col in ("parameter", "total effect ST", "first order S1", ""):
        table.add_column(col)
    for k in res.ranked():
        width = round(max(0.0, min(1.0, s.st[k])) * 30)
        table.add_row(k, f"{s.st[k]:.3f} ± {s.st_conf[k]:.3f}",
                      f"{s.s1[k]:.3f} ± {s.s1_conf[k]:.3f}", "█" * width)
    console.print(table)
    over = out["forecast_over_ranges"]
    console.print(f"forecast at the stated values: {res.nominal:.4g}; over the ranges: median "
                  f"{over['p50']:.4g} (95 % of draws {over['p2.5']:.4g} – {over['p97.5']:.4g})")
    console.print(f"{s.draws:,} draws (N = {s.base_samples:,} base points × "
                  f"{len(s.names) + 2}) of {res.patients} patients each, seed {res.seed}, "
                  f"{res.workers} worker{'s' if res.workers > 1 else ''}: {wall:.1f} s "
                  f"({s.draws / max(s.seconds, 1e-9):,.0f} draws/s)")
    console.print("[dim]ST: share of the forecast's variance that involves the parameter "
                  "(alone or with others); S1: alone. ± 95 % bootstrap half-width. Inputs are "
                  "sampled independently although the calibration's are correlated: see "
                  "docs/scale.md.[/dim]")
    for note in (*res.notes, *s.notes):
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


__all__ = ["sensitivity", "simulate_parquet", "trial_replicates"]
