"""``ketasim validate pk|pd|outcomes``: model predictions against published numbers, with
tolerances and verdicts (exit 1 on a failure).

JSON shape (``--format json``): ``{"targets": [{target, description, published, unit,
predicted, ratio, tolerance, verdict, ok, source, note}]}`` for ``pk`` and ``pd`` (``pd`` adds
``calibrated_targets``); ``outcomes`` keeps its ``--json`` shape ``{"targets": [ROW]}`` (with
``--loto``: the leave-one-trial-out report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ketasim.cli.output import (
    FormatOption,
    JsonFlag,
    Output,
    console,
    err_console,
    print_references,
)

validate_app = typer.Typer(help="Validation reports: model predictions against published "
                           "numbers, with tolerances and verdicts.", no_args_is_help=True)


def _validation_table(o: Output, title: str, outcomes: list[Any]) -> list[dict[str, Any]]:
    """The verdict table (every format) and the references; the rows as JSON records."""
    from ketasim.references import render_source
    colours = {"pass": "green", "fail": "red", "inside band": "green"}
    rows, shown = [], []
    for oc in outcomes:
        t = oc.target
        tol = (f"{t.low:g}–{t.high:g}" if t.low is not None and t.high is not None
               else f"±{t.tolerance * 100:g}%")
        colour = colours.get(oc.verdict, "yellow")
        verdict = f"[{colour}]{oc.verdict}[/{colour}]" + (f"\n[dim]{t.note}[/dim]" if t.note
                                                           else "")
        shown.append([f"{t.id}\n[dim]{t.description}[/dim]", f"{t.published:.4g} {t.unit}",
                      f"{oc.predicted:.4g}", f"{oc.ratio:.3f}", tol, verdict,
                      render_source(t.source)])
        rows.append([t.id, t.description, t.published, t.unit, oc.predicted, oc.ratio, tol,
                     oc.verdict, bool(oc.ok), render_source(t.source), t.note or ""])
    cols = ["target", "description", "published", "unit", "predicted", "ratio", "tolerance",
            "verdict", "ok", "source", "note"]
    if o.rich:
        o.table("targets", ["target", "published", "predicted", "ratio", "tolerance",
                            "verdict", "source"], rows, shown=shown, title=title,
                overflow="fold")
    else:
        o.table("targets", cols, rows)
    counts: dict[str, int] = {}
    for oc in outcomes:
        counts[oc.verdict] = counts.get(oc.verdict, 0) + 1
    o.print(", ".join(f"{v} {k}" for k, v in counts.items()))
    print_references([oc.target.source for oc in outcomes], o)
    return [dict(zip(cols, r, strict=True)) for r in rows]


@validate_app.command("pk")
def validate_pk(
    html_path: Annotated[Path | None, typer.Option("--html", help="write the HTML report "
                                                   "(with plots) here")] = None,
    fmt: FormatOption = "table",
) -> None:
    """Run every PK validation target and print the report (exit 1 on a failure)."""
    from ketasim.report.pk import validation_html
    from ketasim.validation import run_pk_validation
    out = Output(fmt)
    outcomes = run_pk_validation()
    rows = _validation_table(out, "PK validation", outcomes)
    if html_path is not None:
        validation_html(outcomes, html_path)
        out.wrote(html_path)
    out.finish({"targets": rows})
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


@validate_app.command("pd")
def validate_pd(fmt: FormatOption = "table") -> None:
    """Run the PD validation targets (occupancy and acute effects); exit 1 on a failure."""
    from ketasim.validation.pd import run_acute_validation, run_pd_validation
    out = Output(fmt)
    with (console if out.rich else err_console).status("simulating the acute-effect targets…"):
        outcomes = run_pd_validation() + run_acute_validation()
    rows = _validation_table(out, "PD validation (occupancy, acute effects)", outcomes)
    out.print("[dim]kind 'calibration': a number the acute calibration was fitted to "
                  "(ketasim.validation.acute_calibration), shown to hold — not a validation. "
                  "Calibrated parameters: see docs/pd.md.[/dim]")
    fitted = [o.target.id for o in outcomes if o.target.kind == "calibration"]
    out.print(f"calibrated targets: {', '.join(fitted)}")
    out.finish({"targets": rows, "calibrated_targets": fitted})
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


@validate_app.command("outcomes")
def validate_outcomes(
    patients: Annotated[int, typer.Option(min=50, max=20_000, help="virtual patients per "
                                          "arm")] = 1000,
    json_out: JsonFlag = False,
    loto: Annotated[bool, typer.Option(help="leave one trial out: each calibration trial "
                                       "predicted without it, with its 95 % prediction "
                                       "interval")] = False,
    refit: Annotated[bool, typer.Option(help="with --loto: refit instead of one Gauss-Newton "
                                        "step (slow)")] = False,
    fmt: FormatOption = "table",
) -> None:
    """Every outcome calibration target and qualitative fact: published vs predicted, with
    tolerance and verdict (exit 1 on a failure)."""
    out = Output(fmt, json_out)
    if loto:
        _loto_report(out, refit)
        return

    from ketasim.references import render_source
    from ketasim.report.outcomes import outcome_table
    from ketasim.validation.outcomes import run_outcome_validation
    with (console if out.rich else err_console).status("simulating the calibration trials…"):
        rows = outcome_table(run_outcome_validation(n=patients))
    if not out.rich:
        cols = list(rows[0]) if rows else []
        out.table("targets", cols, [[r[c] for c in cols] for r in rows])
        out.finish({"targets": rows})
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
        print_references([r["source"] for r in rows], out)
    if not all(r["ok"] for r in rows):
        raise typer.Exit(1)


def _loto_report(out: Output, refit: bool) -> None:
    from ketasim.validation.outcomes import leave_one_trial_out
    with (console if out.rich else err_console).status("leaving one trial out…") as status:
        rep = leave_one_trial_out(refit=refit, progress=lambda m: status.update(m))
    if not out.rich:
        out.table("rows", ["datum", "trial", "published", "predicted without it", "pi95_low",
                           "pi95_high", "covered"],
                  [[r["id"], r["trial"], r["observed"], r["predicted"], r["pi95"][0],
                    r["pi95"][1], r["covered"]] for r in rep["rows"]])
        out.finish(rep)
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


def register(app: typer.Typer) -> None:
    """Add the ``validate`` group."""
    app.add_typer(validate_app, name="validate")


__all__ = ["register", "validate_app", "validate_outcomes", "validate_pd", "validate_pk"]
