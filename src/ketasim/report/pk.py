"""Pictures and HTML for PK runs and the PK validation report."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ketasim.population.metrics import prediction_interval
from ketasim.population.pkrun import DISCLAIMER, PKRun, run_pk
from ketasim.references import references_html, render_source_html
from ketasim.validation.pk import Outcome


def plot_pk_run(run: PKRun, path: str | Path | None = None) -> plt.Figure:
    """One line per analyte (ng/mL); for populations the median and a 90 % band."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for a in run.concentrations:
        c = run.concentration(a, "ng/mL")
        if run.n_subjects == 1:
            ax.plot(run.times, c[0], lw=1.5, label=a)
        else:
            lo, mid, hi = prediction_interval(c, (5, 50, 95))
            ax.fill_between(run.times, lo, hi, alpha=0.25)
            ax.plot(run.times, mid, lw=1.5, label=f"{a} (median, 5-95 %)")
    ax.set_xlabel("time (h)")
    ax.set_ylabel("concentration (ng/mL)")
    who = "typical patient" if run.n_subjects == 1 else f"{run.n_subjects} virtual patients"
    ax.set_title(f"{run.regimen.to_text()} — {run.model.name}, {who}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, DISCLAIMER, fontsize=7, color="0.35")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _validation_figures(outcomes: Sequence[Outcome]) -> list[tuple[str, str]]:
    """One picture per (model, regimen) with its published points."""
    groups: dict[tuple[str, str, tuple], list[Outcome]] = {}
    for o in outcomes:
        t = o.target
        if t.compute is not None or not t.regimen:
            continue
        key = (t.model, t.regimen, tuple(sorted(t.covariates.items())))
        groups.setdefault(key, []).append(o)
    figs = []
    for (model, regimen, covs), outs in groups.items():
        until = max(o.target.until for o in outs)
        times = np.arange(0.0, until + 1e-9, until / 600)
        run = run_pk(regimen, model=model, covariates=dict(covs), times=times,
                     allow_extrapolation=True)
        fig, ax = plt.subplots(figsize=(7, 3.6))
        analytes = sorted({o.target.analyte for o in outs})
        for a in analytes:
            ax.plot(times, run.concentration(a, "ng/mL")[0], lw=1.3, label=f"{a} (model)")
        for o in outs:
            t = o.target
            if t.metric == "conc_at" and t.at is not None:
                ax.plot(t.at, t.published, "ko", ms=4)
            elif t.metric == "cmax" and t.unit == "ng/mL":
                ax.axhline(t.published, color="0.4", ls=":", lw=1)
        ax.set_title(f"{model}: {regimen} {dict(covs) or ''}", fontsize=9)
        ax.set_xlabel("time (h)")
        ax.set_ylabel("ng/mL")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        figs.append((f"{model}: {regimen}", _png(fig)))
    return figs


def validation_html(outcomes: Sequence[Outcome], path: str | Path) -> Path:
    """Write the PK validation report as one self-contained HTML file, its sources linked
    and listed in full at the end."""
    rows = []
    for o in outcomes:
        t = o.target
        tol = (f"{t.low:g}–{t.high:g}" if t.low is not None and t.high is not None
               else f"±{t.tolerance * 100:g} %")
        cls = {"pass": "pass", "fail": "fail", "inside band": "pass"}.get(o.verdict, "info")
        rows.append(
            f"<tr class='{cls}'><td>{html.escape(t.id)}</td><td>{html.escape(t.model)}</td>"
            f"<td>{html.escape(t.description)}</td><td>{t.kind}</td>"
            f"<td>{t.published:.4g} {html.escape(t.unit)}</td><td>{o.predicted:.4g}</td>"
            f"<td>{o.ratio:.3f}</td><td>{tol}</td><td><b>{html.escape(o.verdict)}</b>"
            f"{'<br><small>' + html.escape(t.note) + '</small>' if t.note else ''}</td>"
            f"<td><small>{render_source_html(t.source)}</small></td></tr>")
    figs = "".join(f"<figure><img src='data:image/png;base64,{b64}' alt='{html.escape(c)}'>"
                   f"<figcaption>{html.escape(c)}: model line, published points (dots) and "
                   "published Cmax (dotted)</figcaption></figure>"
                   for c, b64 in _validation_figures(outcomes))
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.verdict] = counts.get(o.verdict, 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>ketasim PK validation</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px}}
tr.pass td:nth-child(9){{color:#1a7f37}}tr.fail td:nth-child(9){{color:#c00}}
tr.info td:nth-child(9){{color:#8a5a00}}figure{{display:inline-block;margin:8px}}
</style></head><body>
<h1>ketasim — PK validation</h1>
<p>{len(outcomes)} targets: {html.escape(summary)}. Each library model is run for its typical
subject and compared with the numbers its paper reports, and with independent published
observations (references below). Known discrepancies are listed, not hidden.</p>
<p><small>{html.escape(DISCLAIMER)}</small></p>
<table><tr><th>target</th><th>model</th><th>what</th><th>kind</th><th>published</th>
<th>predicted</th><th>ratio</th><th>tolerance</th><th>verdict</th><th>source</th></tr>
{''.join(rows)}</table>
<h2>Profiles</h2>{figs}
{references_html(o.target.source for o in outcomes)}
</body></html>"""
    p = Path(path)
    p.write_text(doc, encoding="utf-8")
    return p


__all__ = ["plot_pk_run", "validation_html"]
