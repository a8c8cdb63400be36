"""Server-rendered SVG charts (no scripts, so the strict Content-Security-Policy holds).

>>> svg = trend_svg({"days": [0, 1, 2], "p5": [10, 6, 5], "p50": [18, 10, 9],
...                  "p95": [20, 15, 14], "baseline": 18}, [(0.0, 18), (1.5, 9)],
...                 remission_max=4, top=27, label="PHQ-9")
>>> svg.startswith("<svg") and svg.count('<circle class="measured"') == 2
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from html import escape
from typing import Any

W, H = 720, 330  # the trend chart
TL, TR, TT, TB = 46, 150, 46, 50  # its margins: left (values), right (threshold labels), top
# (legend), bottom (dates)
INK, MUTED = "#1b1f24", "#4a5260"
BAND, MEDIAN, MEASURED = "#9ecae1", "#1f5fa8", "#b3141b"


def _interp(days: Sequence[float], values: Sequence[float], d: float) -> float:
    """``values`` at day ``d`` by linear interpolation (held at the ends)."""
    if d <= days[0]:
        return float(values[0])
    for i in range(1, len(days)):
        if d <= days[i]:
            a, b = days[i - 1], days[i]
            w = (d - a) / ((b - a) or 1.0)
            return float(values[i - 1]) + w * (float(values[i]) - float(values[i - 1]))
    return float(values[-1])


def _day_ticks(xmax: float) -> list[float]:
    every = 2.0 if xmax <= 14 else 7.0 if xmax <= 63 else 14.0 if xmax <= 126 else 28.0
    return [k * every for k in range(int(xmax // every) + 1)]


def _value_ticks(top: float) -> list[float]:
    step = 5.0 if top <= 40 else 10.0 if top <= 100 else ticks(0, top)[1]
    out = [k * step for k in range(int(top // step) + 1)]
    return out if out[-1] == top else [*out, top]


def trend_svg(forecast: dict[str, Any], measured: Sequence[tuple[float, float]], *,
              remission_max: float | None, top: float, label: str,
              start: datetime | None = None, tz: tzinfo = UTC) -> str:
    """A score over the days of a plan: the forecast's 5-95 % band shaded and its median as
    a line, the measured scores as large dark-red dots joined by a line (drawn over the
    forecast), the response (50 % of baseline) and remission thresholds as labelled dashed
    lines; the values on the y axis and, given the plan's ``start``, the dates (in ``tz``)
    and days on the x axis; a legend names each mark. Pair it with :func:`trend_rows` as
    its table."""
    days = [float(d) for d in forecast["days"]]
    xmax = max([days[-1], *[m[0] for m in measured]]) or 1.0
    x0, x1, y0, y1 = TL, W - TR, H - TB, TT

    def x(d: float) -> float:
        return x0 + (x1 - x0) * d / xmax

    def y(v: float) -> float:
        return y0 - (y0 - y1) * min(max(v, 0.0), top) / top

    band = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in zip(days, forecast["p95"],
                                                             strict=True))
    band += " " + " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in
                           zip(reversed(days), reversed(forecast["p5"]), strict=True))
    median = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in zip(days, forecast["p50"],
                                                               strict=True))
    title = (f"{label} over time: {len(measured)} measured score"
             f"{'s' if len(measured) != 1 else ''} against the forecast (table below)")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
             'class="trend">']
    for v in _value_ticks(top):
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="#e3e6ea"/><text x="{x0 - 6}" y="{y(v) + 4:.1f}" font-size="12" '
                     f'text-anchor="end" fill="{INK}">{v:g}</text>')
    for d in _day_ticks(xmax):
        parts.append(f'<line x1="{x(d):.1f}" x2="{x(d):.1f}" y1="{y1}" y2="{y0}" '
                     f'stroke="#f0f2f4"/><line x1="{x(d):.1f}" x2="{x(d):.1f}" y1="{y0}" '
                     f'y2="{y0 + 5}" stroke="{MUTED}"/>')
        if start is not None:
            when = (start + timedelta(days=d)).astimezone(tz)
            parts.append(f'<text x="{x(d):.1f}" y="{y0 + 18}" font-size="12" '
                         f'text-anchor="middle" fill="{INK}">{when.day} {when:%b}</text>')
        parts.append(f'<text x="{x(d):.1f}" y="{y0 + (32 if start else 18)}" font-size="11" '
                     f'text-anchor="middle" fill="{MUTED}">day {d:g}</text>')
    parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}" stroke="{MUTED}"/>'
                 f'<line x1="{x0}" x2="{x0}" y1="{y1}" y2="{y0}" stroke="{MUTED}"/>')
    parts.append(f'<text x="12" y="{(y0 + y1) / 2:.0f}" font-size="12" fill="{INK}" '
                 f'text-anchor="middle" transform="rotate(-90 12 {(y0 + y1) / 2:.0f})">'
                 f"{escape(label)} total</text>")
    parts.append(f'<polygon points="{band}" fill="{BAND}" opacity="0.6"/>'
                 f'<polyline points="{median}" fill="none" stroke="{MEDIAN}" '
                 'stroke-width="2.5"/>')
    baseline = float(forecast["baseline"])
    lines = [(baseline * 0.5, f"response: ≤ {baseline * 0.5:g}", "(50 % of baseline)")]
    if remission_max is not None:
        lines.append((float(remission_max), f"remission: ≤ {remission_max:g}", ""))
    label_y = -1e9  # labels are kept apart when the lines are close
    for v, name, sub in sorted(lines, key=lambda line: -line[0]):
        ty = max(y(v) + 4, label_y + 15)
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="{INK}" stroke-width="1.2" stroke-dasharray="6 4"/>'
                     f'<text x="{x1 + 6}" y="{ty:.1f}" font-size="12" fill="{INK}">'
                     f"{escape(name)}</text>")
        label_y = ty
        if sub:
            label_y = ty + 14
            parts.append(f'<text x="{x1 + 6}" y="{label_y:.1f}" font-size="11" '
                         f'fill="{MUTED}">{escape(sub)}</text>')
    pts = sorted(measured)
    if len(pts) > 1:
        parts.append('<polyline points="' + " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in pts)
                     + f'" fill="none" stroke="{MEASURED}" stroke-width="2"/>')
    for d, v in pts:
        on = f"{(start + timedelta(days=d)).astimezone(tz):%Y-%m-%d}, " if start else ""
        parts.append(f'<circle class="measured" cx="{x(d):.1f}" cy="{y(v):.1f}" r="6.5" '
                     f'fill="{MEASURED}" stroke="#ffffff" stroke-width="2">'
                     f"<title>measured {escape(label)} {v:g} ({on}day {d:.0f})</title>"
                     "</circle>")
    lx, ly = x0, 20
    parts.append(f'<g class="legend" font-size="12" fill="{INK}">'
                 f'<rect x="{lx}" y="{ly - 10}" width="18" height="12" fill="{BAND}" '
                 f'opacity="0.8"/><text x="{lx + 24}" y="{ly}">forecast 5–95 %</text>'
                 f'<line x1="{lx + 140}" x2="{lx + 162}" y1="{ly - 4}" y2="{ly - 4}" '
                 f'stroke="{MEDIAN}" stroke-width="2.5"/>'
                 f'<text x="{lx + 168}" y="{ly}">forecast median</text>'
                 f'<circle cx="{lx + 300}" cy="{ly - 4}" r="6" fill="{MEASURED}" '
                 f'stroke="#ffffff" stroke-width="2"/><text x="{lx + 311}" y="{ly}">'
                 "measured</text>"
                 f'<line x1="{lx + 390}" x2="{lx + 414}" y1="{ly - 4}" y2="{ly - 4}" '
                 f'stroke="{INK}" stroke-dasharray="6 4"/>'
                 f'<text x="{lx + 420}" y="{ly}">threshold</text></g></svg>')
    return "".join(parts)


def trend_rows(forecast: dict[str, Any], measured: Sequence[tuple[float, float]], *,
               start: datetime | None = None, tz: tzinfo = UTC) -> list[dict[str, Any]]:
    """The trend chart as a table: one row a week of the forecast and one for each measured
    score (its date, day, the score, the forecast median and 5-95 % band that day, and
    whether the score is within, above or below the band).

    >>> rows = trend_rows({"days": [0, 7, 14], "p5": [10, 6, 5], "p50": [18, 10, 9],
    ...                    "p95": [20, 15, 14]}, [(7.0, 16)])
    >>> [(r["day"], r["measured"], r["p50"], r["status"]) for r in rows]
    [(0, None, 18, ''), (7, 16, 10, 'above'), (14, None, 9, '')]
    """
    days = [float(d) for d in forecast["days"]]
    out: dict[tuple[int, int], dict[str, Any]] = {}

    def row(d: float, value: float | None) -> dict[str, Any]:
        p5, p50, p95 = (_interp(days, forecast[k], d) for k in ("p5", "p50", "p95"))
        status = "" if value is None else ("above" if value > round(p95) else
                                           "below" if value < round(p5) else "within")
        when = (start + timedelta(days=d)) if start is not None else None
        return {"day": round(d), "date": when, "measured": value, "p5": round(p5),
                "p50": round(p50), "p95": round(p95), "status": status}

    for week in range(0, int(days[-1]) + 1, 7):
        out[(week, 1)] = row(float(week), None)
    for d, v in measured:
        out[(round(d), 0)] = row(d, v)
    for key in [k for k in out if k[1] == 1 and (k[0], 0) in out]:
        del out[key]
    return [out[k] for k in sorted(out)]


COLOURS = ("#b3141b", "#1f5fa8", "#1d6a38", "#6a3d9a", "#8a4b00")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2")


def series_svg(series: dict[str, list[tuple[float, float]]], *, top: float, label: str,
               x_label: str) -> str:
    """Measured values as dotted lines, one colour and dash pattern per series (x in the
    caller's unit), with values on both axes and a legend.

    >>> series_svg({"SBP": [(0, 120), (45, 150)]}, top=200, label="BP", x_label="min")[:4]
    '<svg'
    """
    pts = [p for v in series.values() for p in v]
    xmax = max([p[0] for p in pts], default=1.0) or 1.0
    xmin = min([p[0] for p in pts], default=0.0)
    width, height, left, right, upper, lower = 640, 280, 46, 16, 44, 44

    def x(d: float) -> float:
        return left + (width - left - right) * (d - xmin) / ((xmax - xmin) or 1.0)

    def y(v: float) -> float:
        return height - lower - (height - upper - lower) * v / top

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)} '
             '(table below)">']
    step = 50.0 if top > 100 else 10.0
    v = 0.0
    while v <= top + 1e-9:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="#e3e6ea"/><text x="{left - 5}" y="{y(v) + 4:.1f}" '
                     f'font-size="11" text-anchor="end" fill="{INK}">{v:g}</text>')
        v += step
    for d in sorted({xmin, xmax, *[p[0] for p in pts]}):
        parts.append(f'<text x="{x(d):.1f}" y="{height - lower + 15}" font-size="11" '
                     f'text-anchor="middle" fill="{INK}">{d:g}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{height - lower}" '
                 f'y2="{height - lower}" stroke="{MUTED}"/><line x1="{left}" x2="{left}" '
                 f'y1="{upper}" y2="{height - lower}" stroke="{MUTED}"/>')
    for k, (name, vals) in enumerate(series.items()):
        c = COLOURS[k % len(COLOURS)]
        dash = DASHES[k % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        line = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in vals)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{c}" stroke-width="2"'
                     f"{dash_attr}/>")
        for a, b in vals:
            parts.append(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="4" fill="{c}">'
                         f"<title>{escape(name)} {b:g} at {a:g}</title></circle>")
        lx = left + 96 * k
        parts.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{upper - 22}" y2="{upper - 22}" '
                     f'stroke="{c}" stroke-width="3"{dash_attr}/><text x="{lx + 27}" '
                     f'y="{upper - 18}" font-size="12" fill="{INK}">{escape(name)}</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.0f}" y="{height - 8}" font-size="12" '
                 f'text-anchor="middle" fill="{INK}">{escape(x_label)}</text></svg>')
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


POPULATION_BAND, POPULATION_LINE = "#d4d8de", "#4a5260"


def individual_svg(forecast: Mapping[str, Any], *, remission_max: float | None, top: float,
                   label: str, start: datetime | None = None, tz: tzinfo = UTC,
                   today: float | None = None, next_session: float | None = None) -> str:
    """This patient's forecast beside the population's (issue #14 item 5): the population's
    5-95 % band in grey with its median dashed, this patient's band in blue with its median
    as a line, the measured ratings as dark-red dots joined by a line, the response (50 % of
    baseline) and remission thresholds, and vertical marks for today and the suggested next
    session (days from the first dose). ``forecast`` is
    :meth:`ketasim.estimation.forecast.Forecast.to_json`; ``start`` the first dose (dates
    on the x axis, in ``tz``). Pair it with :func:`individual_rows` as its table.

    >>> f = {"days": [0, 1, 2], "p5": [10, 4, 3], "p50": [18, 8, 7], "p95": [20, 12, 11],
    ...      "population": {"p5": [12, 8, 7], "p50": [18, 14, 13], "p95": [22, 20, 19]},
    ...      "observed": [{"day": -1.0, "value": 18}, {"day": 1.5, "value": 8}],
    ...      "baseline": 18}
    >>> svg = individual_svg(f, remission_max=4, top=27, label="PHQ-9")
    >>> svg.count('class="band-individual"'), svg.count('class="band-population"')
    (1, 1)
    """
    days = [float(d) for d in forecast["days"]]
    pop = forecast["population"]
    measured = sorted((float(o["day"]), float(o["value"])) for o in forecast.get("observed", []))
    xmin = min([0.0, *[d for d, _ in measured]])
    xmin = max(xmin, -14.0)
    xmax = max([days[-1], *[d for d, _ in measured]])
    x0, x1, y0, y1 = TL, W - TR, H - TB, TT + 16

    def x(d: float) -> float:
        return x0 + (x1 - x0) * (min(max(d, xmin), xmax) - xmin) / ((xmax - xmin) or 1.0)

    def y(v: float) -> float:
        return y0 - (y0 - y1) * min(max(v, 0.0), top) / top

    def area(lo: Sequence[float], hi: Sequence[float]) -> str:
        up = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in zip(days, hi, strict=True))
        down = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in zip(reversed(days), reversed(lo),
                                                                 strict=True))
        return f"{up} {down}"

    def line(vals: Sequence[float]) -> str:
        return " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in zip(days, vals, strict=True))

    title = (f"{label}: this patient's forecast (blue band) beside the population's (grey "
             f"band), with {len(measured)} measured rating{'s' if len(measured) != 1 else ''}"
             " (table below)")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
             'class="trend individual">']
    for v in _value_ticks(top):
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="#e3e6ea"/><text x="{x0 - 6}" y="{y(v) + 4:.1f}" font-size="12" '
                     f'text-anchor="end" fill="{INK}">{v:g}</text>')
    for d in _day_ticks(xmax - min(xmin, 0.0)):
        if d > xmax:
            continue
        parts.append(f'<line x1="{x(d):.1f}" x2="{x(d):.1f}" y1="{y1}" y2="{y0}" '
                     f'stroke="#f0f2f4"/><line x1="{x(d):.1f}" x2="{x(d):.1f}" y1="{y0}" '
                     f'y2="{y0 + 5}" stroke="{MUTED}"/>')
        if start is not None:
            when = (start + timedelta(days=d)).astimezone(tz)
            parts.append(f'<text x="{x(d):.1f}" y="{y0 + 18}" font-size="12" '
                         f'text-anchor="middle" fill="{INK}">{when.day} {when:%b}</text>')
        parts.append(f'<text x="{x(d):.1f}" y="{y0 + (32 if start else 18)}" font-size="11" '
                     f'text-anchor="middle" fill="{MUTED}">day {d:g}</text>')
    parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}" stroke="{MUTED}"/>'
                 f'<line x1="{x0}" x2="{x0}" y1="{y1}" y2="{y0}" stroke="{MUTED}"/>')
    parts.append(f'<text x="12" y="{(y0 + y1) / 2:.0f}" font-size="12" fill="{INK}" '
                 f'text-anchor="middle" transform="rotate(-90 12 {(y0 + y1) / 2:.0f})">'
                 f"{escape(label)} total</text>")
    mine = area(forecast["p5"], forecast["p95"])
    parts.append(f'<polygon class="band-population" points="{area(pop["p5"], pop["p95"])}" '
                 f'fill="{POPULATION_BAND}" opacity="0.9"/>'
                 f'<polygon class="band-individual" points="{mine}" fill="{BAND}" '
                 'opacity="0.6"/>'
                 f'<polyline class="median-population" points="{line(pop["p50"])}" fill="none" '
                 f'stroke="{POPULATION_LINE}" stroke-width="2" stroke-dasharray="7 4"/>'
                 f'<polyline class="median-individual" points="{line(forecast["p50"])}" '
                 f'fill="none" stroke="{MEDIAN}" stroke-width="2.5"/>')
    baseline = float(forecast["baseline"])
    lines = [(baseline * 0.5, f"response: ≤ {baseline * 0.5:g}", "(50 % of baseline)")]
    if remission_max is not None:
        lines.append((float(remission_max), f"remission: ≤ {remission_max:g}", ""))
    label_y = -1e9
    for v, name, sub in sorted(lines, key=lambda ln: -ln[0]):
        ty = max(y(v) + 4, label_y + 15)
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="{INK}" stroke-width="1.2" stroke-dasharray="6 4"/>'
                     f'<text x="{x1 + 6}" y="{ty:.1f}" font-size="12" fill="{INK}">'
                     f"{escape(name)}</text>")
        label_y = ty
        if sub:
            label_y = ty + 14
            parts.append(f'<text x="{x1 + 6}" y="{label_y:.1f}" font-size="11" '
                         f'fill="{MUTED}">{escape(sub)}</text>')
    for mark, name in ((today, "today"), (next_session, "next session")):
        if mark is not None and xmin <= mark <= xmax:
            ty = y1 + 11 + (13 if name != "today" else 0)
            parts.append(f'<line x1="{x(mark):.1f}" x2="{x(mark):.1f}" y1="{y1}" y2="{y0}" '
                         f'stroke="{INK}" stroke-width="1" stroke-dasharray="2 3"/>'
                         f'<text x="{x(mark) + 3:.1f}" y="{ty}" font-size="11" fill="{INK}">'
                         f"{name}</text>")
    if len(measured) > 1:
        parts.append('<polyline points="' + " ".join(f"{x(d):.1f},{y(v):.1f}"
                                                      for d, v in measured)
                     + f'" fill="none" stroke="{MEASURED}" stroke-width="2"/>')
    for d, v in measured:
        on = f"{(start + timedelta(days=d)).astimezone(tz):%Y-%m-%d}, " if start else ""
        parts.append(f'<circle class="measured" cx="{x(d):.1f}" cy="{y(v):.1f}" r="6.5" '
                     f'fill="{MEASURED}" stroke="#ffffff" stroke-width="2">'
                     f"<title>measured {escape(label)} {v:g} ({on}day {d:.1f})</title>"
                     "</circle>")
    lx, ly = x0, 18
    parts.append(f'<g class="legend" font-size="12" fill="{INK}">'
                 f'<rect x="{lx}" y="{ly - 10}" width="18" height="12" fill="{BAND}" '
                 f'opacity="0.8"/><text x="{lx + 24}" y="{ly}">this patient 5–95 %</text>'
                 f'<line x1="{lx + 160}" x2="{lx + 182}" y1="{ly - 4}" y2="{ly - 4}" '
                 f'stroke="{MEDIAN}" stroke-width="2.5"/>'
                 f'<text x="{lx + 188}" y="{ly}">this patient median</text>'
                 f'<circle cx="{lx + 340}" cy="{ly - 4}" r="6" fill="{MEASURED}" '
                 f'stroke="#ffffff" stroke-width="2"/><text x="{lx + 351}" y="{ly}">'
                 "measured</text>"
                 f'<rect x="{lx}" y="{ly + 8}" width="18" height="12" '
                 f'fill="{POPULATION_BAND}"/><text x="{lx + 24}" y="{ly + 18}">'
                 "population 5–95 %</text>"
                 f'<line x1="{lx + 160}" x2="{lx + 182}" y1="{ly + 14}" y2="{ly + 14}" '
                 f'stroke="{POPULATION_LINE}" stroke-width="2" stroke-dasharray="7 4"/>'
                 f'<text x="{lx + 188}" y="{ly + 18}">population median</text>'
                 f'<line x1="{lx + 340}" x2="{lx + 362}" y1="{ly + 14}" y2="{ly + 14}" '
                 f'stroke="{INK}" stroke-dasharray="6 4"/>'
                 f'<text x="{lx + 368}" y="{ly + 18}">threshold</text></g></svg>')
    return "".join(parts)


def individual_rows(forecast: Mapping[str, Any], *, start: datetime | None = None
                    ) -> list[dict[str, Any]]:
    """:func:`individual_svg` as a table: a row a week and one for each measured rating (its
    date, day from the first dose, the rating, this patient's median and 5-95 % band and the
    population's that day, and whether the rating lies within this patient's band).

    >>> f = {"days": [0, 7, 14], "p5": [10, 4, 3], "p50": [18, 8, 7], "p95": [20, 12, 11],
    ...      "population": {"p5": [12, 8, 7], "p50": [18, 14, 13], "p95": [22, 20, 19]},
    ...      "observed": [{"day": 7.0, "value": 9}]}
    >>> [(r["day"], r["measured"], r["p50"], r["pop_p50"]) for r in individual_rows(f)]
    [(0, None, 18, 18), (7, 9.0, 8, 14), (14, None, 7, 13)]
    """
    days = [float(d) for d in forecast["days"]]
    pop = forecast["population"]
    out: dict[tuple[float, int], dict[str, Any]] = {}

    def row(d: float, value: float | None) -> dict[str, Any]:
        p5, p50, p95 = (_interp(days, forecast[k], d) for k in ("p5", "p50", "p95"))
        q5, q50, q95 = (_interp(days, pop[k], d) for k in ("p5", "p50", "p95"))
        status = "" if value is None else ("above" if value > round(p95) else
                                           "below" if value < round(p5) else "within")
        return {"day": round(d), "date": None if start is None else start + timedelta(days=d),
                "measured": value, "p5": round(p5), "p50": round(p50), "p95": round(p95),
                "pop_p5": round(q5), "pop_p50": round(q50), "pop_p95": round(q95),
                "status": status}

    for week in range(0, int(days[-1]) + 1, 7):
        out[(float(week), 1)] = row(float(week), None)
    for o in forecast.get("observed", []):
        d = float(o["day"])
        out[(d, 0)] = row(d, float(o["value"]))
    for key in [k for k in out if k[1] == 1 and any(
            abs(k[0] - m[0]) < 0.5 for m in out if m[1] == 0)]:
        del out[key]
    return [out[k] for k in sorted(out)]


__all__ = ["band_svg", "individual_rows", "individual_svg", "series_svg", "ticks",
           "trend_rows", "trend_svg"]
