"""Server-rendered SVG charts (no scripts, so the strict Content-Security-Policy holds).

>>> svg = trend_svg({"days": [0, 1, 2], "p5": [10, 6, 5], "p50": [18, 10, 9],
...                  "p95": [20, 15, 14], "baseline": 18}, [(0.0, 18), (1.5, 9)],
...                 remission_max=4, top=27, label="PHQ-9")
>>> svg.startswith("<svg") and svg.count("<circle") == 2
True
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

W, H, PAD = 640, 260, 40


def trend_svg(forecast: dict[str, Any], measured: Sequence[tuple[float, float]], *,
              remission_max: float | None, top: float, label: str) -> str:
    """Forecast band (5-95 %) and median, measured scores as dots, response (50 % of
    baseline) and remission thresholds as dashed lines; x in days."""
    days = [float(d) for d in forecast["days"]]
    xmax = max([days[-1], *[m[0] for m in measured]]) or 1.0

    def x(d: float) -> float:
        return PAD + (W - 2 * PAD) * d / xmax

    def y(v: float) -> float:
        return H - PAD - (H - 2 * PAD) * v / top

    band = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in zip(days, forecast["p95"],
                                                             strict=True))
    band += " " + " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in
                           zip(reversed(days), reversed(forecast["p5"]), strict=True))
    median = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in zip(days, forecast["p50"],
                                                               strict=True))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'role="img" aria-label="{escape(label)} over time against the forecast">',
             f'<polygon points="{band}" fill="#9ecae1" opacity="0.5"/>',
             f'<polyline points="{median}" fill="none" stroke="#3182bd" stroke-width="2"/>']
    lines = [(forecast["baseline"] * 0.5, "response (50 % of baseline)")]
    if remission_max is not None:
        lines.append((remission_max, "remission"))
    for v, name in lines:
        parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="#888" stroke-dasharray="4 3"/><text x="{W - PAD}" '
                     f'y="{y(v) - 3:.1f}" font-size="10" text-anchor="end">{escape(name)}'
                     "</text>")
    for d, v in measured:
        parts.append(f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="4" fill="#d62728">'
                     f"<title>day {d:.1f}: {v:g}</title></circle>")
    parts.append(f'<text x="{PAD}" y="{PAD - 10}" font-size="11">{escape(label)} (0-{top:g})'
                 " — band: forecast 5-95 %, line: median, dots: measured</text>")
    parts.append(f'<text x="{W / 2}" y="{H - 8}" font-size="11" text-anchor="middle">days '
                 "since the plan started</text></svg>")
    return "".join(parts)


COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")


def series_svg(series: dict[str, list[tuple[float, float]]], *, top: float, label: str,
               x_label: str) -> str:
    """Measured values as dotted lines, one colour per series (x in the caller's unit).

    >>> series_svg({"SBP": [(0, 120), (45, 150)]}, top=200, label="BP", x_label="min")[:4]
    '<svg'
    """
    pts = [p for v in series.values() for p in v]
    xmax = max([p[0] for p in pts], default=1.0) or 1.0
    xmin = min([p[0] for p in pts], default=0.0)

    def x(d: float) -> float:
        return PAD + (W - 2 * PAD) * (d - xmin) / ((xmax - xmin) or 1.0)

    def y(v: float) -> float:
        return H - PAD - (H - 2 * PAD) * v / top

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" '
             f'aria-label="{escape(label)}">']
    step = 50.0 if top > 100 else 10.0
    v = 0.0
    while v <= top + 1e-9:
        parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="#eee"/><text x="{PAD - 4}" y="{y(v) + 3:.1f}" font-size="9" '
                     f'text-anchor="end">{v:g}</text>')
        v += step
    for d in sorted({xmin, xmax, *[p[0] for p in pts]}):
        parts.append(f'<text x="{x(d):.1f}" y="{H - PAD + 12}" font-size="9" '
                     f'text-anchor="middle">{d:g}</text>')
    for k, (name, vals) in enumerate(series.items()):
        c = COLOURS[k % len(COLOURS)]
        line = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in vals)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{c}" stroke-width="1.5"/>')
        for a, b in vals:
            parts.append(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="3" fill="{c}">'
                         f"<title>{escape(name)} {b:g} at {a:g}</title></circle>")
        parts.append(f'<text x="{PAD + 70 * k}" y="{PAD - 10}" font-size="11" fill="{c}">'
                     f"{escape(name)}</text>")
    parts.append(f'<text x="{W / 2}" y="{H - 8}" font-size="11" text-anchor="middle">'
                 f"{escape(x_label)}</text></svg>")
    return "".join(parts)


__all__ = ["series_svg", "trend_svg"]
