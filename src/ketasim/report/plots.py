"""Pictures of results (matplotlib, headless): one line per subject or a median and band."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # matplotlib is imported when a picture is drawn (it takes ~0.4 s)
    from matplotlib.figure import Figure

    from ketasim.engine.result import Result

DISCLAIMER = ("ketasim supports decisions and research; it does not replace a clinician. "
              "Model output is a prediction, not a measurement.")


def _pyplot() -> Any:
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_result(result: Result, path: str | Path, *, outputs: Sequence[str] | None = None,
                title: str = "", band: tuple[float, float] = (5.0, 95.0)) -> Path:
    """Plot outputs over time; for several subjects, the median and a percentile band.

    >>> # see ketasim.cli demo for a worked example
    """
    import numpy as np
    names = list(outputs) if outputs is not None else list(result.outputs)
    ids = np.unique(result.id)
    plt = _pyplot()
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.4 * len(names) + 0.6), sharex=True,
                             squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        unit = result.output_units.get(name, "")
        if len(ids) == 1:
            ax.plot(result.time, result[name], lw=1.4)
        else:
            t = np.unique(result.time)
            grid = result[name].reshape(len(ids), -1)
            lo, mid, hi = np.nanpercentile(grid, [band[0], 50, band[1]], axis=0)
            ax.fill_between(t, lo, hi, alpha=0.3,
                            label=f"{band[0]:g}–{band[1]:g}th percentile (n={len(ids)})")
            ax.plot(t, mid, lw=1.4, label="median")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_ylabel(f"{name} ({unit})" if unit else name)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (h)")
    fig.suptitle(title or result.model_name, fontsize=11)
    return save_figure(fig, path)


def save_figure(fig: Figure, path: str | Path, footer: str = DISCLAIMER, *,
                footer_y: float = 0.005,
                rect: tuple[float, float, float, float] = (0, 0.03, 1, 1)) -> Path:
    """Write ``fig`` as a PNG (110 dpi) with the footer (the disclaimer) and close it."""
    fig.text(0.01, footer_y, footer, fontsize=7, color="0.35")
    fig.tight_layout(rect=rect)
    p = Path(path)
    fig.savefig(p, dpi=110)
    _pyplot().close(fig)
    return p


__all__ = ["DISCLAIMER", "plot_result", "save_figure"]
