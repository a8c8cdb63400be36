"""A picture of this patient's forecast: their band beside the population's, with what was
measured."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ketasim.estimation.forecast import DISCLAIMER, Forecast
from ketasim.report.plots import save_figure
from ketasim.scales import get_instrument


def plot_individual_forecast(f: Forecast, path: str | Path) -> Path:
    """The 90 % bands (this patient, the population at this weight and baseline), the
    medians, the measured ratings and the response threshold; time in days from the first
    dose."""
    inst = get_instrument(f.instrument)
    d = np.asarray(f.days)
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.fill_between(d, f.population_p5, f.population_p95, color="tab:gray", alpha=0.25,
                    label="population 90 % band (this weight and baseline)")
    ax.plot(d, f.population_p50, color="tab:gray", ls="--", lw=1, label="population median")
    ax.fill_between(d, f.p5, f.p95, color="tab:blue", alpha=0.3,
                    label="this patient: 90 % band of the rating")
    ax.plot(d, f.p50, color="tab:blue", lw=2, label="this patient: median")
    if f.observed:
        od, ov = zip(*f.observed, strict=True)
        ax.plot(od, ov, "ko", ms=5, label="measured")
    if inst.response_fall is not None:
        lo = inst.total_range[0]
        thr = f.baseline - inst.response_fall * (f.baseline - lo)
        ax.axhline(thr, color="tab:green", ls=":", lw=1,
                   label=f"response threshold ({thr:g})")
    ax.axvline(f.end_day, color="black", ls=":", lw=1, label="end of plan + 24 h")
    ax.set_xlabel("time from the first dose (days)")
    ax.set_ylabel(f"{inst.id.upper()} total ({inst.total_range[0]}-{inst.total_range[1]})")
    ax.set_ylim(inst.total_range[0], inst.total_range[1])
    ax.set_title(f"Individual forecast — P(response) {f.p_response * 100:.0f} % at day "
                 f"{f.end_day:g}" + (f"; plan: {f.plan}" if f.plan else ""), fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    return save_figure(fig, path, footer=DISCLAIMER)


__all__ = ["plot_individual_forecast"]
