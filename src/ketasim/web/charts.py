"""Server-rendered SVG charts (no scripts, so the strict Content-Security-Policy holds).

>>> svg = trend_svg({"days": [0, 1, 2], "p5": [10, 6, 5], "p50": [18, 10, 9],
...                  "p95": [20, 15, 14], "baseline": 18}, [(0.0, 18), (1.5, 9)],
...                 remission_max=4, top=27, label="PHQ-9")
>>> svg.startswith("<svg") and svg.count("<circle") == 2
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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


def ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi].

    >>> ticks(0, 92)
    [0.0, 25.0, 50.0, 75.0, 100.0]
    """
    span = (hi - lo) or 1.0
    raw = span / max(n - 1, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    out = []
    v = first
    while v < hi + step - 1e-9:
        out.append(round(v, 6))
        v += step
    return out


BW, BH = 460, 230  # a band panel
BL, BR, BT, BB = 44, 12, 40, 34  # its margins: left (y values), right, top (legend), bottom


def band_svg(*, label: str, unit: str, band: Mapping[str, Sequence[float]] | None,
             points: Sequence[tuple[float, float, bool]], x_range: tuple[float, float],
             y_range: tuple[float, float], marks: Sequence[tuple[float, str]] = (),
             levels: Sequence[tuple[float, str]] = (), x_label: str = "minutes after the dose"
             ) -> str:
    """One reading against its forecast: the 5-95 % band shaded, its median as a line, the
    readings as dark dots joined by a thin line, readings outside the band as larger red
    rings (class ``outside-band-point``); ``marks`` are vertical lines (e.g. the 2-hour
    minimum), ``levels`` horizontal ones (thresholds). ``band`` has ``x``, ``p5``, ``p50``,
    ``p95``; ``points`` are (x, value, outside). Axes carry their values; a legend names
    each mark.

    >>> svg = band_svg(label="SBP", unit="mmHg", band={"x": [0, 30, 60], "p5": [110, 115, 112],
    ...                "p50": [130, 138, 133], "p95": [150, 160, 154]},
    ...                points=[(-5, 128, False), (30, 172, True)], x_range=(-5, 60),
    ...                y_range=(100, 180))
    >>> svg.count("</circle>"), svg.count('class="outside-band-point"')  # readings
    (2, 1)
    """
    x0, x1 = x_range
    y0, y1 = y_range

    def x(v: float) -> float:
        return BL + (BW - BL - BR) * (v - x0) / ((x1 - x0) or 1.0)

    def y(v: float) -> float:
        return BH - BB - (BH - BT - BB) * (v - y0) / ((y1 - y0) or 1.0)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{BW}" height="{BH}" '
             f'viewBox="0 0 {BW} {BH}" role="img" aria-label="{escape(label)}: readings '
             f'against the forecast band (table below)">',
             f'<text x="4" y="13" font-size="12" font-weight="bold">{escape(label)}'
             f'<tspan font-weight="normal" font-size="10"> ({escape(unit)})</tspan></text>']
    for v in ticks(y0, y1, 6 if y1 - y0 <= 5 else 5):
        if y0 - 1e-9 <= v <= y1 + 1e-9:
            parts.append(f'<line x1="{BL}" x2="{BW - BR}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                         f'stroke="#eee"/><text x="{BL - 4}" y="{y(v) + 3:.1f}" font-size="9" '
                         f'text-anchor="end">{v:g}</text>')
    span = x1 - x0
    every = 15.0 if span <= 150 else 30.0 if span <= 300 else 60.0  # minutes
    for v in (k * every for k in range(math.ceil(x0 / every), math.floor(x1 / every) + 1)):
        if x0 - 1e-9 <= v <= x1 + 1e-9:
            parts.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{BT}" y2="{BH - BB}" '
                         f'stroke="#f3f3f3"/><text x="{x(v):.1f}" y="{BH - BB + 12}" '
                         f'font-size="9" text-anchor="middle">{v:g}</text>')
    parts.append(f'<line x1="{BL}" x2="{BW - BR}" y1="{BH - BB}" y2="{BH - BB}" '
                 f'stroke="#999"/><line x1="{BL}" x2="{BL}" y1="{BT}" y2="{BH - BB}" '
                 'stroke="#999"/>')
    if band is not None:
        keep = [i for i, v in enumerate(band["x"]) if x0 <= v <= x1]
        xs = [band["x"][i] for i in keep]

        def clip(v: float) -> float:
            return min(max(v, y0), y1)

        upper = " ".join(f"{x(a):.1f},{y(clip(band['p95'][i])):.1f}" for a, i in zip(
            xs, keep, strict=True))
        lower = " ".join(f"{x(a):.1f},{y(clip(band['p5'][i])):.1f}" for a, i in zip(
            reversed(xs), reversed(keep), strict=True))
        median = " ".join(f"{x(a):.1f},{y(clip(band['p50'][i])):.1f}" for a, i in zip(
            xs, keep, strict=True))
        parts.append(f'<polygon points="{upper} {lower}" fill="#9ecae1" opacity="0.55"/>'
                     f'<polyline points="{median}" fill="none" stroke="#3182bd" '
                     'stroke-width="1.5"/>')
    for v, name in levels:
        if y0 <= v <= y1:
            parts.append(f'<line x1="{BL}" x2="{BW - BR}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                         f'stroke="#b00" stroke-dasharray="2 3"/><text x="{BW - BR - 2}" '
                         f'y="{y(v) - 3:.1f}" font-size="9" text-anchor="end" fill="#b00">'
                         f"{escape(name)}</text>")
    for v, name in marks:
        if x0 <= v <= x1:
            parts.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{BT}" y2="{BH - BB}" '
                         f'stroke="#555" stroke-dasharray="4 3"/><text x="{x(v) + 3:.1f}" '
                         f'y="{BT + 9}" font-size="9">{escape(name)}</text>')
    if len(points) > 1:
        line = " ".join(f"{x(a):.1f},{y(min(max(b, y0), y1)):.1f}" for a, b, _ in points)
        parts.append(f'<polyline points="{line}" fill="none" stroke="#333" '
                     'stroke-width="0.8"/>')
    for a, b, out in points:
        cy = y(min(max(b, y0), y1))
        title = f"<title>{escape(label)} {b:g} at {a:g} min" + \
            (" — outside the forecast band" if out else "") + "</title>"
        if out:
            parts.append(f'<circle class="outside-band-point" cx="{x(a):.1f}" cy="{cy:.1f}" '
                         f'r="6" fill="#d62728" stroke="#000" stroke-width="2">{title}'
                         "</circle>")
        else:
            parts.append(f'<circle cx="{x(a):.1f}" cy="{cy:.1f}" r="3.5" fill="#222">'
                         f"{title}</circle>")
    ly = 28
    legend = []
    if band is not None:
        legend += [f'<rect x="{BL}" y="{ly - 8}" width="14" height="9" fill="#9ecae1"/>'
                   f'<text x="{BL + 18}" y="{ly}" font-size="9">forecast 5-95 %</text>',
                   f'<line x1="{BL + 100}" x2="{BL + 114}" y1="{ly - 3}" y2="{ly - 3}" '
                   f'stroke="#3182bd" stroke-width="1.5"/><text x="{BL + 118}" y="{ly}" '
                   'font-size="9">median</text>']
    legend += [f'<circle cx="{BL + 172}" cy="{ly - 3}" r="3.5" fill="#222"/>'
               f'<text x="{BL + 180}" y="{ly}" font-size="9">reading</text>']
    if band is not None:
        legend += [f'<circle cx="{BL + 232}" cy="{ly - 3}" r="5" fill="#d62728" '
                   f'stroke="#000" stroke-width="2"/><text x="{BL + 241}" y="{ly}" '
                   'font-size="9">outside the band</text>']
    parts += legend
    parts.append(f'<text x="{(BL + BW - BR) / 2:.0f}" y="{BH - 6}" font-size="10" '
                 f'text-anchor="middle">{escape(x_label)}</text></svg>')
    return "".join(parts)


__all__ = ["band_svg", "series_svg", "ticks", "trend_svg"]
