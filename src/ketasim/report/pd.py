"""Pictures of target exposure: which targets a regimen meaningfully occupies."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ketasim.pd.exposure import MEANINGFUL, TargetExposure
from ketasim.pd.targets import load_target_data
from ketasim.population.pkrun import DISCLAIMER
from ketasim.report.plots import save_figure


def plot_occupancy(tx: TargetExposure, title: str, path: str | Path) -> Path:
    """Peak occupancy per target (median and 5-95 % over subjects) next to its time course;
    disputed targets are hatched and labelled as disputed."""
    data = load_target_data()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1.1, 1]})
    names = []
    for i, t in enumerate(tx.targets):
        info = data.targets[t]
        peak = tx.peak[t] * 100
        mid = float(np.median(peak))
        lo, hi = np.percentile(peak, [5, 95])
        colour = "tab:red" if mid >= MEANINGFUL * 100 else "tab:gray"
        ax1.barh(i, mid, color=colour, hatch="//" if info.disputed else None,
                 edgecolor="black" if info.disputed else colour, alpha=0.8)
        if len(peak) > 1:
            ax1.errorbar(mid, i, xerr=[[mid - lo], [hi - mid]], color="black", capsize=2)
        names.append(info.name + (" — DISPUTED" if info.disputed else ""))
    ax1.axvline(MEANINGFUL * 100, color="black", ls=":", lw=1)
    ax1.set_yticks(range(len(names)), names, fontsize=8)
    ax1.invert_yaxis()
    ax1.set_xlabel("peak occupancy (%)")
    ax1.set_xlim(0, 100)
    ax1.set_title(f"peak occupancy; dotted line {MEANINGFUL * 100:g} %", fontsize=9)
    for t in tx.targets:
        occ = tx.occupancy[t] * 100
        if float(np.median(tx.peak[t])) >= 0.05:
            ax2.plot(tx.times, np.median(occ, axis=0),
                     label=data.targets[t].name + (" (disputed)" if data.targets[t].disputed
                                                   else ""))
    ax2.set_xlabel("time (h)")
    ax2.set_ylabel("occupancy (%, median)")
    ax2.set_title("targets above 5 % over time", fontsize=9)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, "Competitive binding of unbound effect-site concentrations "
                       "(t½ke0 8.3 min). " + DISCLAIMER, footer_y=0.01, rect=(0, 0.04, 1, 0.96))


__all__ = ["plot_occupancy"]
