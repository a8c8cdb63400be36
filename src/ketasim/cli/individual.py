"""``ketasim forecast``, ``ketasim recommend`` and ``ketasim design``: this patient's forecast
from their own data, the next-session recommendation, and a population schedule search.

Thin adapters: parse, call :mod:`ketasim.estimation` / :mod:`ketasim.design`, render.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ketasim.cli.output import FormatOption, JsonFlag, Output, console, print_footer
from ketasim.errors import KetasimError

INDICATION_HELP = "indication (trd, bipolar_depression, ptsd, …)"


def _hours(text: str | None, field: str) -> float | None:
    if text is None:
        return None
    from ketasim.outcomes.course import hours
    try:
        return hours(text)
    except KetasimError as exc:
        raise KetasimError(field, exc.problem, exc.fix) from None


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.0f} %"


def forecast_cmd(
    patient: Annotated[Path, typer.Argument(help="patient file (NM-TRAN-style CSV: TIME, EVID, "
                                            "AMT, DUR, ROUTE, DVID, DV, WT; docs/estimation.md)")],
    plan: Annotated[str | None, typer.Option(help="the plan from here, e.g. '0.5 mg/kg IV over "
                                             "40 min weekly for 4 weeks'")] = None,
    indication: Annotated[str, typer.Option(help=INDICATION_HELP)] = "trd",
    start_in: Annotated[str | None, typer.Option(help="plan's first dose after the last record, "
                                                 "e.g. '3 days' (default: one plan interval "
                                                 "after the last dose)")] = None,
    instrument: Annotated[str | None, typer.Option(help="instrument to forecast (default: the "
                                                   "one the patient is rated on most)")] = None,
    follow_up_days: Annotated[float, typer.Option(help="days after the last session")] = 84.0,
    draws: Annotated[int, typer.Option(min=200, max=50_000, help="posterior draws")] = 2000,
    seed: Annotated[int, typer.Option(help="random seed")] = 20261129,
    weight: Annotated[float | None, typer.Option(help="weight (kg) if the file has no WT")] = None,
    plot: Annotated[Path | None, typer.Option(help="PNG of the forecast")] = None,
    json_out: JsonFlag = False,
    fmt: FormatOption = "table",
) -> None:
    """This patient's symptom forecast under a plan, from their own ratings, sessions and
    levels (Bayesian update of the population model)."""
    from ketasim.estimation.forecast import forecast_patient
    from ketasim.estimation.patient import read_patient
    o = Output(fmt, json_out)
    data = read_patient(patient, weight_kg=weight)
    start = _hours(start_in, "start_in")
    f = forecast_patient(data, indication, plan=plan,
                         start_h=None if start is None else data.last_time_h + start,
                         instrument=instrument, follow_up_days=follow_up_days, n=draws,
                         seed=seed)
    if plot is not None:
        from ketasim.report.individual import plot_individual_forecast
        plot_individual_forecast(f, plot)
    if not o.rich:
        obs = {round(d): v for d, v in f.observed}
        o.table("forecast", ["day", "observed", "p50", "p5", "p95", "population_p50",
                             "population_p5", "population_p95"],
                [[d, obs.get(int(d)), f.p50[i], f.p5[i], f.p95[i], f.population_p50[i],
                  f.population_p5[i], f.population_p95[i]] for i, d in enumerate(f.days)])
        o.finish(f.to_json())
        return
    console.print(f"[bold]{patient.name}[/bold]: {len(data.ratings)} ratings, "
                  f"{data.regimen.n_administrations} doses, {len(data.readings)} session "
                  f"readings, {len(data.levels)} levels; plan: {f.plan or 'none'}")
    table = Table(title=f"{f.instrument} forecast (90 % band of the rating; population at "
                  "this weight and baseline beside it)")
    for col in ("day", "observed", "this patient p50", "90 % band", "population p50",
                "population 90 %"):
        table.add_column(col, justify="right")
    observed = {round(d): v for d, v in f.observed}
    step = 7
    for i, d in enumerate(f.days):
        if int(d) % step and int(d) not in observed:
            continue
        table.add_row(f"{d:g}", f"{observed[int(d)]:g}" if int(d) in observed else "",
                      f"{f.p50[i]:g}", f"{f.p5[i]:g}–{f.p95[i]:g}", f"{f.population_p50[i]:g}",
                      f"{f.population_p5[i]:g}–{f.population_p95[i]:g}")
    console.print(table)
    med = f.median_days_to_relapse
    console.print(f"P(response) at day {f.end_day:g}: {_pct(f.p_response)};  "
                  f"P(remission): {_pct(f.p_remission)}")
    console.print("P(relapse) by day after the last session (among responders): "
                  + ", ".join(f"{k} d {_pct(v)}" for k, v in f.p_relapse_by.items())
                  + ";  median time to relapse: "
                  + ("not reached" if math.isinf(med) else "–" if math.isnan(med)
                     else f"{med:g} days"))
    nr = f.next_rating
    console.print(f"next rating (day {nr['day']:g}): {nr['p50']:g} "
                  f"(90 %: {nr['p5']:g}–{nr['p95']:g})")
    ns = f.next_session
    if "cadss_peak" in ns:
        c, sb = ns["cadss_peak"], ns["sbp_peak_mmhg"]
        console.print(f"next session (day {ns['day']:g}, {ns['dose']}; "
                      f"{'individual' if ns['individual'] else 'population'}): peak CADSS "
                      f"{c['p50']:.0f} ({c['p5']:.0f}–{c['p95']:.0f}), peak SBP {sb['p50']:.0f} "
                      f"({sb['p5']:.0f}–{sb['p95']:.0f}) mmHg, ready by the REMS 2 h "
                      f"{_pct(ns['p_ready_by_rems_minimum'])}")
    console.print("MAP: " + ", ".join(f"{k} {v:.3g}" for k, v in f.map.items()))
    console.print("posterior SD / prior SD (1 = the data did not move it): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in f.shrinkage.items())
                  + f";  effective sample {f.ess:.0f}")
    print_footer(f.notes, plot, f.to_json()["disclaimer"])


def recommend_cmd(
    patient: Annotated[Path, typer.Argument(help="patient file (see 'ketasim forecast')")],
    target_relapse: Annotated[float, typer.Option(help="highest acceptable P(relapse) over "
                                                  "the horizon")] = 0.2,
    indication: Annotated[str, typer.Option(help=INDICATION_HELP)] = "trd",
    intervals: Annotated[str, typer.Option(help="candidate intervals (days, 3-28), comma "
                                           "separated")] = "3,4,5,7,10,14,21,28",
    doses: Annotated[str | None, typer.Option(help="candidate doses, e.g. '0.5 mg/kg,0.75 "
                                              "mg/kg' (default: the last dose)")] = None,
    max_mg_per_kg: Annotated[float | None, typer.Option(help="the clinic's dose limit for "
                                                        "this route (mg/kg)")] = None,
    horizon_days: Annotated[float, typer.Option(help="days to look ahead")] = 84.0,
    draws: Annotated[int, typer.Option(min=200, max=20_000, help="posterior draws")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed")] = 20261129,
    weight: Annotated[float | None, typer.Option(help="weight (kg) if the file has no WT")] = None,
    json_out: JsonFlag = False,
    fmt: FormatOption = "table",
) -> None:
    """The next sessions for this patient: the fewest that keep P(relapse) at or below the
    target, with every alternative and its forecast."""
    from ketasim.design.recommend import recommend
    from ketasim.estimation.patient import read_patient
    o = Output(fmt, json_out)
    try:
        ks = tuple(float(x) for x in intervals.split(",") if x.strip())
    except ValueError:
        raise KetasimError("intervals", f"cannot read {intervals!r}",
                           "give days separated by commas, e.g. 7,14,21") from None
    data = read_patient(patient, weight_kg=weight)
    dose_list = tuple(d.strip() for d in doses.split(",") if d.strip()) if doses else ()
    r = recommend(data, indication, target_relapse=target_relapse, intervals_days=ks,
                  doses=dose_list, max_mg_per_kg=max_mg_per_kg, horizon_days=horizon_days,
                  n=draws, seed=seed)
    if not o.rich:
        o.table("candidates", ["every_days", "dose", "sessions", "first_session_day",
                               "p_relapse", "p_response_end", "median_end", "meets_target",
                               "recommended"],
                [[c.interval_days, c.dose_text, c.sessions, c.first_session_day, c.p_relapse,
                  c.p_response_end, c.median_end, c.meets_target, c is r.chosen]
                 for c in r.candidates])
        o.finish(r.to_json())
        return
    table = Table(title=f"maintenance candidates over {horizon_days:g} days "
                  f"({r.instrument}, weekly ratings before sessions)")
    for col in ("every (days)", "dose", "sessions", "first session (day)", "P(relapse)",
                "P(response) at end", "median score at end", "meets target"):
        table.add_column(col, justify="right")
    for c in r.candidates:
        mark = "[bold green]recommended[/bold green]" if c is r.chosen else \
            ("yes" if c.meets_target else "no")
        table.add_row(f"{c.interval_days:g}", c.dose_text, str(c.sessions),
                      f"{c.first_session_day:.1f}", _pct(c.p_relapse), _pct(c.p_response_end),
                      f"{c.median_end:g}", mark)
    console.print(table)
    console.print(("recommended: " if r.chosen else "") + r.reason)
    if r.chosen is not None:
        console.print(f"next session: day {r.chosen.first_session_day:.1f} from the first dose")
    console.print(f"[dim]{r.to_json()['disclaimer']}[/dim]")


def design_cmd(
    design: Annotated[Path, typer.Argument(help="design file (TOML), see docs/estimation.md")],
    json_out: JsonFlag = False,
    fmt: FormatOption = "table",
) -> None:
    """Search maintenance schedules for a population: the fewest sessions meeting the
    response and relapse targets, with every candidate shown."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ketasim.design.population import candidate_regimens, read_design, run_design
    o = Output(fmt, json_out)
    json_out = not o.rich
    spec = read_design(design)
    total = len(candidate_regimens(spec))
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=json_out) as bar:
        task = bar.add_task(f"{total} candidates × {spec.patients} patients", total=total)
        result = run_design(spec, progress=lambda k: bar.update(task, completed=k))
    if not o.rich:
        o.table("candidates", ["every_days", "dose", "sessions", "p_response_induction",
                               "p_relapse", "p_response_end", "meets_targets", "recommended"],
                [[c.interval_days, c.dose, c.sessions, c.p_response_induction, c.p_relapse,
                  c.p_response_end, c.meets_targets, c is result.chosen]
                 for c in result.candidates])
        o.finish(result.to_json())
        return
    table = Table(title=f"{spec.indication}: {spec.induction}, then maintenance for "
                  f"{spec.weeks} weeks ({spec.patients} virtual patients)")
    for col in ("every (days)", "dose", "sessions", "response after induction",
                "relapse (responders)", "response at end", "meets targets"):
        table.add_column(col, justify="right")
    for c in result.candidates:
        mark = "[bold green]recommended[/bold green]" if c is result.chosen else \
            ("yes" if c.meets_targets else "no")
        table.add_row(f"{c.interval_days:g}", c.dose, str(c.sessions),
                      _pct(c.p_response_induction), _pct(c.p_relapse), _pct(c.p_response_end),
                      mark)
    console.print(table)
    console.print(result.reason)
    console.print(f"[dim]{result.to_json()['disclaimer']}[/dim]")


def register(app: typer.Typer) -> None:
    """Add ``forecast``, ``recommend`` and ``design``."""
    app.command("forecast")(forecast_cmd)
    app.command("recommend")(recommend_cmd)
    app.command("design")(design_cmd)


__all__ = ["design_cmd", "forecast_cmd", "recommend_cmd", "register"]
