"""Pictures and reports of outcomes: virtual-trial trajectories, the calibration table, and
the "explain" report that walks the chain from dose to symptoms for one regimen.

Every panel of the explain report names its sources as short citations linked to the work,
and the report ends with the full citation (and DOI link) of every work it cites
(:mod:`ketasim.references`). Every plot's axes are labelled; time runs in days since the
first dose.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ketasim.mechanism.cascade import cascade_inputs, course_grid, run_cascade
from ketasim.mechanism.parameters import BRANCHES, CASCADE, Branches
from ketasim.outcomes import endpoints as ep
from ketasim.outcomes.course import IDEATION, Arm, hours, simulate_course
from ketasim.outcomes.indications import get_indication
from ketasim.outcomes.longterm import TOLERANCE, summarise_regimen
from ketasim.outcomes.trial import TrialResult
from ketasim.pd.effect_site import T_HALF_KE0_MIN, effect_site
from ketasim.pd.exposure import target_exposure
from ketasim.pd.targets import load_target_data
from ketasim.population.pkrun import DISCLAIMER, run_pk
from ketasim.references import cited_keys, references_html, render_source_html
from ketasim.report.plots import save_figure
from ketasim.scales import get_instrument


def plot_trial(result: TrialResult, path: str | Path) -> Path:
    """Mean score per arm over time (days), the endpoint time marked."""
    d = result.design
    inst = get_instrument(d.endpoint.instrument)
    fig, ax = plt.subplots(figsize=(8, 4.6))
    for name, arm in result.arms.items():
        est = "" if arm.estimate is None else f" — {arm.estimate:.3g}"
        ax.plot(arm.times_h / 24.0, arm.mean_score, lw=1.6, label=f"{name}{est}")
    ax.axvline(hours(d.endpoint.time) / 24.0, color="0.5", ls=":", lw=1)
    ax.set_xlabel("days after the first dose")
    ax.set_ylabel(f"mean {inst.id} score")
    ax.set_title(f"virtual trial: {get_indication(d.indication).name}, n={d.n_per_arm}/arm, "
                 f"{d.endpoint.measure} at {d.endpoint.time}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path, DISCLAIMER)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=95)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


DAYS = "time since the first dose (days)"


def _panel(title: str, sentence: str, sources: str, img: str | None = None,
           body: str = "") -> str:
    """One report section; ``sources`` names bibliography keys (shown as linked citations)."""
    pic = f'<img alt="{html.escape(title)}" src="data:image/png;base64,{img}">' if img else ""
    return (f"<section><h2>{html.escape(title)}</h2><p>{html.escape(sentence)}</p>{pic}{body}"
            f'<p class="src">Sources: {render_source_html(sources)}</p></section>')


def explain(regimen: str, indication: str, path: str | Path, *, weight_kg: float = 70.0,
            n: int = 300, seed: int = 1) -> Path:
    """Write the HTML report for ``regimen`` in ``indication``: plasma → effect site →
    occupancy → glutamate → BDNF/mTOR → synapses → symptoms → risks, each panel with one
    plain sentence and its sources; every hypothesis branch reported on and off."""
    ind = get_indication(indication)
    arm = Arm(regimen=regimen)
    last = max(arm.dose_times())
    horizon = last + 24.0 * 14
    t = course_grid(arm.dose_times(), horizon)
    typical = run_pk(regimen, covariates={"weight": weight_kg}, times=t)
    inp = cascade_inputs(typical)
    casc = run_cascade(inp)
    days = t / 24.0
    panels = []
    cited: list[str] = []  # every source text shown, for the reference list
    # 1. PK
    fig, ax = plt.subplots(figsize=(8, 3))
    for a in typical.concentrations:
        if a in ("ketamine", "esketamine", "norketamine", "noresketamine", "hnk"):
            ax.plot(days, typical.concentration(a, "ng/mL")[0], label=a)
    parent = "esketamine" if "esketamine" in typical.concentrations else "ketamine"
    ax.plot(days, effect_site(t, typical.concentration(parent, "ng/mL")[0]), ls="--",
            label=f"{parent}, effect site (t½ke0 {T_HALF_KE0_MIN} min)")
    ax.set_ylabel("concentration (ng/mL)")
    ax.set_xlabel(DAYS)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    pk_keys = cited_keys([p.source for p in typical.model.model.parameters.values()],
                         strict=False)
    src = f"{typical.model.title}: " + "; ".join(pk_keys) + "; effect site: olofsen2022 [V]"
    cited.append(src)
    panels.append(_panel("1. Plasma and effect-site concentrations",
                         f"For a {weight_kg:g}-kg patient the {typical.model.name} model "
                         "predicts these plasma levels of ketamine and its metabolites; the "
                         "brain (effect site) follows plasma with a lag of minutes.",
                         src, _png(fig)))
    # 2. occupancy
    tx = target_exposure(typical)
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{float(v[0]) * 100:.1f} %</td></tr>"
                   for k, v in sorted(tx.peak.items(), key=lambda kv: -float(kv[1][0]))[:8])
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(days, inp.nmda[0] * 100, label="NMDA (effect site)")
    ax.set_ylabel("NMDA receptor occupancy (%)")
    ax.set_xlabel(DAYS)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    shown = [k for k, _ in sorted(tx.peak.items(), key=lambda kv: -float(kv[1][0]))[:8]]
    affinity = cited_keys([a.source for (tg, _c), a in load_target_data().rows.items()
                           if tg in shown], strict=False)
    src = "olofsen2022 [V]; affinities of the targets shown: " + "; ".join(affinity)
    cited.append(src)
    panels.append(_panel("2. Effect site and receptor occupancy",
                         "Ketamine reaches the brain within minutes (t½ke0 8.3 min) and blocks "
                         "NMDA receptors; other targets are occupied far less.",
                         src, _png(fig),
                         f"<table><tr><th>target</th><th>peak occupancy</th></tr>{rows}"
                         "</table>"))
    # 3. glutamate
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(days, casc.glutamate_pct()[0])
    ax.set_ylabel("glutamate cycling (% rise)")
    ax.set_xlabel(DAYS)
    ax.grid(alpha=0.3)
    src = CASCADE["o_zero"].source + "; " + CASCADE["glutamate_surge_ref_pct"].source
    cited.append(src)
    panels.append(_panel("3. Glutamate surge",
                         "Blocking NMDA receptors on inhibitory interneurons releases the "
                         "brakes on pyramidal cells: a short glutamate surge, largest at "
                         "moderate block and smaller again at anaesthetic block (inverted U).",
                         src, _png(fig)))
    # 4. BDNF / mTOR
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(days, casc.bdnf[0], label="BDNF translation")
    ax.plot(days, casc.mtor[0], label="mTORC1")
    ax.set_ylabel("activation (relative units)")
    ax.set_xlabel(DAYS)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    src = CASCADE["t_half_bdnf_h"].source + "; " + CASCADE["t_half_mtor_h"].source
    cited.append(src)
    panels.append(_panel("4. BDNF and the mTORC1 window",
                         "AMPA receptor drive releases and translates BDNF, which switches on "
                         "mTORC1 for about 0.5-2 hours after each dose: the window for making "
                         "synaptic proteins.", src, _png(fig)))
    # 5. synapses
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(days, casc.fast[0], label="fast potentiation (mTOR-independent)")
    ax.plot(days, casc.slow[0], label="new spines (via synaptic proteins)")
    ax.plot(days, casc.drive[0], label="antidepressant drive", lw=2)
    ax.set_ylabel("× one standard infusion's peak")
    ax.set_xlabel(DAYS)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    src = (CASCADE["t_half_protein_h"].source + "; "
           + CASCADE["t_half_potentiation_h"].source)
    cited.append(src)
    panels.append(_panel("5. Synapses",
                         "Fast synaptic potentiation starts the effect within hours; new spines "
                         "from ~12-24 h sustain it for days, and repeated sessions add up.",
                         src, _png(fig)))
    # 6. symptoms, default and each branch
    inst = get_instrument(ind.instrument)
    base = simulate_course(arm, ind, n=n, seed=seed, horizon_h=horizon)
    s = base.scores()
    lo, mid, hi = np.percentile(s, [5, 50, 95], axis=0)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    ax.fill_between(base.times / 24, lo, hi, alpha=0.3, label="5-95 %")
    ax.plot(base.times / 24, mid, label="median")
    ax.set_ylabel(f"{inst.id} score")
    ax.set_xlabel(DAYS)
    ax.xaxis.set_tick_params(labelbottom=True)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    visits = np.arange(0, horizon, 6.0)
    ax2.plot(visits / 24, [ep.responders(base, v).mean() for v in visits],
             label=f"response ({inst.id})")
    ideation = ""
    if base.ideation is not None:
        ax2.plot(visits / 24, [ep.remitters(base, v, IDEATION).mean() for v in visits],
                 label="no suicidal ideation (C-SSRS 0)")
        ideation = (" Suicidal ideation has its own component (it can lift within hours and "
                    "fade sooner than mood), calibrated on the Taiwan RCT (Su et al. 2023).")
    ax2.legend(fontsize=8)
    ax2.set_ylabel("probability")
    ax2.set_xlabel(DAYS)
    ax2.grid(alpha=0.3)
    check = [("24 h after the first dose", 24.0), ("24 h after the last dose", last + 24.0),
             ("7 days after the last dose", last + 168.0)]
    head = "".join(f"<th>response {html.escape(c)}</th>" for c, _ in check)
    trows = []
    variants: list[tuple[str, Branches, bool]] = [("default model", Branches(), False)]
    variants += [(f"{b.title} (on)", Branches(**{b.id: True}), False)
                 for b in BRANCHES.values() if b.id not in ("mtor", "opioid")]
    variants += [("opioid-permissive, with naltrexone", Branches(opioid=True), True),
                 ("mTORC1 blocked (rapamycin)", Branches(mtor=False), False)]
    for name, br, naltrexone in variants:
        c = simulate_course(Arm(regimen=regimen, naltrexone=naltrexone), ind, n=n, seed=seed,
                            horizon_h=horizon, branches=br)
        cells = "".join(f"<td>{ep.responders(c, h).mean() * 100:.0f} %</td>" for _, h in check)
        trows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    ev = "".join(f"<li><b>{html.escape(b.title)}</b>: for — "
                 f"{render_source_html(b.evidence)}; against — "
                 f"{render_source_html(b.counter_evidence)}</li>" for b in BRANCHES.values())
    cited += [t for b in BRANCHES.values() for t in (b.evidence, b.counter_evidence)]
    src = f"{ind.evidence}; calibration: ketasim validate outcomes"
    cited.append(src)
    panels.append(_panel(
        "6. Symptoms and response",
        f"These synaptic changes lower the {inst.name} score; the band shows how {n} virtual "
        "patients differ, and the table shows how each disputed hypothesis would change the "
        f"forecast.{ideation}", src,
        _png(fig), f"<table><tr><th>model</th>{head}</tr>{''.join(trows)}</table>"
        f"<ul>{ev}</ul>"))
    # 7. risks
    lt = summarise_regimen(regimen, weight_kg=weight_kg)
    flags = "".join(f"<li>{html.escape(f.message)} <span class='src'>"
                    f"({render_source_html(f.source)})</span></li>"
                    for f in lt.flags) or "<li>no long-term flags</li>"
    cited += [f.source for f in lt.flags]
    src = TOLERANCE["attenuation_per_session"].source
    cited.append(src)
    diss = ", ".join(f"{x:.2f}" for x in lt.dissociation_relative[:8])
    panels.append(_panel(
        "7. Side effects and long-term risk",
        f"{lt.sessions} sessions, {lt.total_mg:g} mg in all; dissociation is expected to "
        "attenuate over sessions while the antidepressant effect does not. Acute dissociation "
        "and blood-pressure magnitudes are not forecast (no concentration-effect data yet).",
        src, None,
        f"<p>relative dissociation by session (tolerance only, first = 1): {diss}</p>"
        f"<ul>{flags}</ul>"))
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>Why ketamine works: "
           f"{html.escape(regimen)}</title><style>body{{font-family:sans-serif;max-width:60em;"
           "margin:auto}} img{max-width:100%} .src{color:#555;font-size:85%} table{"
           "border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 6px}</style>"
           f"</head><body><h1>{html.escape(regimen)} — {html.escape(ind.name)}</h1>"
           f"<p><b>{html.escape(DISCLAIMER)}</b> Evidence grade for this indication: "
           f"{ind.grade}.</p>{''.join(panels)}{references_html(cited)}</body></html>")
    p = Path(path)
    p.write_text(doc, encoding="utf-8")
    return p


def outcome_table(verdicts: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows for reports: id, indication, kind, published, tolerance, predicted, verdict."""
    return [{"id": v.target.id, "indication": v.target.indication, "kind": v.target.kind,
             "description": v.target.description, "published": v.target.value,
             "low": v.target.low, "high": v.target.high, "unit": v.target.unit,
             "predicted": v.predicted, "pass": v.passed, "verdict": v.verdict, "ok": v.ok,
             "note": v.target.known, "source": v.target.source}
            for v in verdicts]


__all__ = ["explain", "outcome_table", "plot_trial"]
