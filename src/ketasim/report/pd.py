"""Pictures of target exposure: which targets a regimen meaningfully occupies."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ketasim.pd.exposure import MEANINGFUL, TargetExposure
from ketasim.pd.session_forecast import DISCLAIMER as FORECAST_DISCLAIMER
from ketasim.pd.session_forecast import REMS_MINIMUM_H, AcuteObservation, SessionForecast
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


def plot_session_forecast(f: SessionForecast, path: str | Path,
                          observed: Sequence[AcuteObservation] = ()) -> Path:
    """The session forecast: CADSS, SBP/DBP, HR bands (5-95 %, median) and P(MOAA/S ≤ 3) over
    the first 4 h, the forecast readiness time and the REMS 2-h minimum; ``observed``
    readings of this session are drawn on top."""
    t = f.times_h * 60.0
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    panels = (("cadss", "CADSS total (dissociation)", axes[0, 0]),
              ("sbp", "blood pressure (mmHg)", axes[0, 1]),
              ("hr", "heart rate (beats/min)", axes[1, 1]))
    for key, label, ax in panels:
        arr = getattr(f, key)
        ax.fill_between(t, arr[0], arr[2], alpha=0.25, color="tab:blue",
                        label="SBP 90 % band" if key == "sbp" else "90 % band")
        ax.plot(t, arr[1], color="tab:blue", label="median")
        if key == "sbp":
            ax.fill_between(t, f.dbp[0], f.dbp[2], alpha=0.25, color="tab:green",
                            label="DBP 90 % band")
            ax.plot(t, f.dbp[1], color="tab:green")
            ax.axhline(180, color="tab:red", ls=":", lw=1)
            ax.axhline(110, color="tab:red", ls=":", lw=1, label="180/110 mmHg")
        if key == "cadss":
            ax.axhline(4, color="tab:red", ls=":", lw=1, label="CADSS 4")
        ax.set_ylabel(label)
        ax.legend(fontsize=7, loc="upper right")
    ax = axes[1, 0]
    for j, colour in ((4, "tab:orange"), (3, "tab:red"), (0, "black")):
        ax.plot(t, f.p_moaas_le[j] * 100, color=colour, label=f"P(MOAA/S ≤ {j})")
    ax.set_ylabel("sedation (% of replicates)")
    ax.legend(fontsize=7, loc="upper right")
    for o in observed:
        m = o.t_h * 60.0
        if o.cadss is not None:
            axes[0, 0].plot(m, o.cadss, "ko", ms=5)
        if o.sbp is not None:
            axes[0, 1].plot(m, o.sbp, "ko", ms=5)
        if o.dbp is not None:
            axes[0, 1].plot(m, o.dbp, "ks", ms=5)
    ready = f.discharge_ready_h
    for ax in axes.flat:
        ax.axvline(REMS_MINIMUM_H * 60, color="black", ls="--", lw=1)
        if np.isfinite(ready.p50):
            ax.axvspan(ready.p50 * 60, min(ready.p95, 4.0) * 60, color="tab:gray", alpha=0.12)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("minutes after the dose")
    kind = (f"individual ({f.n_history_sessions} earlier sessions)" if f.individual
            else "population")
    fig.suptitle(f"{f.regimen}, session {f.patient.session}: {kind} forecast, {f.n} replicates\n"
                 f"ready to leave (grey) median {ready.p50 * 60:.0f} min, 95th percentile "
                 f"{ready.p95 * 60:.0f} min; dashed: REMS 2-h minimum", fontsize=10)
    return save_figure(fig, path, footer=FORECAST_DISCLAIMER)
