"""One quantity of one room over the report period, drawn as reportlab vector graphics.

What the chart shows, bottom to top: the profile's limits as a green band (dashed lines at each limit),
grey where there is no data, red where an excursion ran, the hourly min–max as light blue shading, the hourly
mean as a line. The line breaks at every missing hour: a gap is drawn as a gap, never bridged.

A year is 8,760 hours; a chart is about 430 points wide. Hours are grouped into steps of a whole number of
hours so there is at most one step per point of width (min of the mins, max of the maxes, count-weighted mean of
the means), and the chart says so. A month (720 hours) is drawn hour by hour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.graphics.shapes import Drawing, Line, Polygon, PolyLine, Rect, String
from reportlab.lib import colors

HOUR = 3600.0
# (ts seconds, mean, min, max, count): the rows of api.history at agg=1h
Row = tuple[float, float | None, float | None, float | None, int]

BAND = colors.Color(0.85, 0.95, 0.85)
LIMIT = colors.Color(0.2, 0.55, 0.2)
NO_DATA = colors.Color(0.88, 0.88, 0.88)
EXCURSION = colors.Color(1.0, 0.82, 0.82)
EXCURSION_MARK = colors.Color(0.8, 0.1, 0.1)
RANGE = colors.Color(0.55, 0.7, 0.95)
MEAN = colors.Color(0.05, 0.2, 0.6)
AXIS = colors.Color(0.3, 0.3, 0.3)


def _rect(x: float, y: float, width: float, height: float, fill: colors.Color,
          stroke: colors.Color | None = None, stroke_width: float = 0.5) -> Rect:
    """A filled rectangle (attributes set after construction: typeshed's stub types Rect's **kw wrongly)."""
    rect = Rect(x, y, width, height)
    rect.fillColor = fill
    rect.strokeColor = stroke
    rect.strokeWidth = stroke_width
    return rect


def merge_sensors(parts: Sequence[Sequence[Row]]) -> list[Row]:
    """Hourly rows of a room's sensors as one row per hour: count-weighted mean, lowest min, highest max."""
    if len(parts) == 1:  # the usual room: one sensor per quantity, its rows already one per hour in order
        return [row for row in parts[0] if row[1] is not None and row[2] is not None and row[3] is not None
                and row[4]]
    hours: dict[float, list[float]] = {}  # ts -> [weighted sum, count, min, max]
    for rows in parts:
        for ts, mean, low, high, count in rows:
            if mean is None or low is None or high is None or not count:
                continue
            seen = hours.get(ts)
            if seen is None:
                hours[ts] = [mean * count, float(count), low, high]
            else:
                seen[0] += mean * count
                seen[1] += count
                seen[2] = min(seen[2], low)
                seen[3] = max(seen[3], high)
    return [(ts, s[0] / s[1], s[2], s[3], int(s[1])) for ts, s in sorted(hours.items())]


@dataclass(frozen=True, slots=True)
class Steps:
    """The rows grouped for drawing: `hours` per step; per step (mean, min, max) or None where no data."""

    start: float
    hours: int
    values: list[tuple[float, float, float] | None]


def bucket(rows: Sequence[Row], start: float, end: float, max_steps: int) -> Steps:
    total_hours = max(1, math.ceil((end - start) / HOUR))
    hours = max(1, math.ceil(total_hours / max_steps))
    n = math.ceil(total_hours / hours)
    sums = [0.0] * n
    counts = [0.0] * n
    lows = [math.inf] * n
    highs = [-math.inf] * n
    width = hours * HOUR
    for ts, mean, low, high, count in rows:
        if mean is None or low is None or high is None:
            continue
        index = int((ts - start) // width)
        if not 0 <= index < n:
            continue
        weight = float(count) if count else 1.0
        sums[index] += mean * weight
        counts[index] += weight
        lows[index] = min(lows[index], low)
        highs[index] = max(highs[index], high)
    values: list[tuple[float, float, float] | None] = [
        (sums[i] / counts[i], lows[i], highs[i]) if counts[i] else None for i in range(n)]
    return Steps(start, hours, values)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + 1e-9:
        ticks.append(round(value, 6))
        value += step
    return ticks


def time_ticks(start: float, end: float, zone: ZoneInfo) -> list[tuple[float, str]]:
    """Local midnights (short spans), month starts (long spans); at most about eight labels."""
    days = (end - start) / 86400
    first = datetime.fromtimestamp(start, zone)
    ticks: list[tuple[float, str]] = []
    if days > 62:
        every = max(1, math.ceil(days / 30.5 / 8))
        month = datetime(first.year, first.month, 1, tzinfo=zone)
        while month.timestamp() < end:
            if month.timestamp() >= start and (month.month - 1) % every == 0:
                ticks.append((month.timestamp(), month.strftime("%Y-%m")))
            year, mon = (month.year + 1, 1) if month.month == 12 else (month.year, month.month + 1)
            month = datetime(year, mon, 1, tzinfo=zone)
        return ticks
    if days <= 2:
        every_hours = 6 if days > 1 else 3
        moment = first.replace(minute=0, second=0, microsecond=0)
        while moment.timestamp() < end:
            if moment.timestamp() >= start and moment.hour % every_hours == 0:
                ticks.append((moment.timestamp(), moment.strftime("%m-%d %H:%M")))
            moment = (moment.replace(tzinfo=None) + timedelta(hours=1)).replace(tzinfo=zone)
        return ticks
    every = max(1, math.ceil(days / 8))
    day = datetime(first.year, first.month, first.day, tzinfo=zone)
    index = 0
    while day.timestamp() < end:
        if day.timestamp() >= start:
            if index % every == 0:
                ticks.append((day.timestamp(), day.strftime("%m-%d")))
            index += 1
        day = datetime.combine(day.date() + timedelta(days=1), datetime.min.time(), zone)
    return ticks


def _spans(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Horizontal spans at least a point wide, those that touch or overlap merged: a year of many short
    excursions is a few hundred rectangles, not tens of thousands drawn over each other."""
    merged: list[tuple[float, float]] = []
    for x0, x1 in sorted((a, max(b, a + 1.0)) for a, b in spans):
        if merged and x0 <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], x1))
        else:
            merged.append((x0, x1))
    return merged


def _runs(values: Sequence[tuple[float, float, float] | None]) -> list[tuple[int, int]]:
    """(first, last) indexes of each run of steps with data."""
    runs: list[tuple[int, int]] = []
    begin: int | None = None
    for i, value in enumerate(values):
        if value is not None and begin is None:
            begin = i
        elif value is None and begin is not None:
            runs.append((begin, i - 1))
            begin = None
    if begin is not None:
        runs.append((begin, len(values) - 1))
    return runs


def quantity_chart(rows: Sequence[Row], *, start: float, end: float, low: float | None, high: float | None,
                   excursions: Sequence[Mapping[str, Any]], timezone: str, unit: str, font: str,
                   gaps: Sequence[Sequence[float]] = (), width: float = 510.0,
                   height: float = 150.0) -> tuple[Drawing, int]:
    """The chart and the hours per drawn step (1: hour by hour). `gaps`: the report's (start, end) gaps, drawn
    grey at least a point wide, so a gap shorter than a drawn step still shows."""
    zone = ZoneInfo(timezone)
    left, right, bottom, top = 36.0, 6.0, 18.0, 6.0
    plot_w, plot_h = width - left - right, height - bottom - top
    steps = bucket(rows, start, end, int(plot_w))
    drawing = Drawing(width, height)
    present = [v for v in steps.values if v is not None]
    bounds = [v[1] for v in present] + [v[2] for v in present] + [x for x in (low, high) if x is not None]
    y_low, y_high = (min(bounds), max(bounds)) if bounds else (0.0, 1.0)
    pad = max((y_high - y_low) * 0.08, 0.5)
    y_low, y_high = y_low - pad, y_high + pad
    step_w = plot_w / len(steps.values)

    def x_of(ts: float) -> float:
        return left + (ts - start) / (end - start) * plot_w

    def y_of(value: float) -> float:
        return bottom + (value - y_low) / (y_high - y_low) * plot_h

    def clamp_x(x: float) -> float:
        return min(max(x, left), left + plot_w)

    drawing.add(_rect(left, bottom, plot_w, plot_h, colors.white, AXIS))
    if low is not None or high is not None:
        band_low = y_of(low) if low is not None else bottom
        band_high = y_of(high) if high is not None else bottom + plot_h
        drawing.add(_rect(left, band_low, plot_w, band_high - band_low, BAND))
    runs = _runs(steps.values)
    gap_from = 0
    for first, last in [*runs, (len(steps.values), len(steps.values))]:
        if first > gap_from:  # steps gap_from .. first-1 have no data
            drawing.add(_rect(left + gap_from * step_w, bottom, (first - gap_from) * step_w, plot_h, NO_DATA))
        gap_from = last + 1
    for x0, x1 in _spans([(clamp_x(x_of(float(a))), clamp_x(x_of(float(b)))) for a, b in gaps]):
        drawing.add(_rect(x0, bottom, x1 - x0, plot_h, NO_DATA))
    for x0, x1 in _spans([(clamp_x(x_of(float(e["start"]))), clamp_x(x_of(float(e["end"])))) for e in excursions]):
        drawing.add(_rect(x0, bottom, x1 - x0, plot_h, EXCURSION))
        drawing.add(_rect(x0, bottom + plot_h - 3, x1 - x0, 3, EXCURSION_MARK))
    for value in nice_ticks(y_low, y_high):
        y = y_of(value)
        drawing.add(Line(left, y, left + plot_w, y, strokeColor=colors.Color(0.9, 0.9, 0.9), strokeWidth=0.3))
        drawing.add(Line(left - 2, y, left, y, strokeColor=AXIS, strokeWidth=0.5))
        drawing.add(String(left - 3, y - 2.5, f"{value:g}", fontName=font, fontSize=6.5, textAnchor="end",
                           fillColor=AXIS))
    drawing.add(String(2, bottom + plot_h + 1 - 8, unit, fontName=font, fontSize=6.5, fillColor=AXIS))
    for ts, text in time_ticks(start, end, zone):
        x = x_of(ts)
        drawing.add(Line(x, bottom, x, bottom - 2, strokeColor=AXIS, strokeWidth=0.5))
        drawing.add(String(x, bottom - 9, text, fontName=font, fontSize=6.5, textAnchor="middle", fillColor=AXIS))
    for first, last in runs:
        xs = [left + (i + 0.5) * step_w for i in range(first, last + 1)]
        chunk = [v for v in steps.values[first:last + 1] if v is not None]
        if len(chunk) == 1:  # a lone step: a short bar and a dot-sized line
            x = xs[0]
            drawing.add(Line(x, y_of(chunk[0][1]), x, y_of(chunk[0][2]), strokeColor=RANGE, strokeWidth=1.5))
            drawing.add(Line(x - 1, y_of(chunk[0][0]), x + 1, y_of(chunk[0][0]), strokeColor=MEAN, strokeWidth=1))
            continue
        upper = [c for x, v in zip(xs, chunk, strict=True) for c in (x, y_of(v[2]))]
        lower = [c for x, v in zip(reversed(xs), reversed(chunk), strict=True) for c in (x, y_of(v[1]))]
        drawing.add(Polygon(upper + lower, fillColor=RANGE, strokeColor=None, fillOpacity=0.6))
        drawing.add(PolyLine([c for x, v in zip(xs, chunk, strict=True) for c in (x, y_of(v[0]))],
                             strokeColor=MEAN, strokeWidth=0.7))
    for limit in (low, high):
        if limit is not None:
            y = y_of(limit)
            drawing.add(Line(left, y, left + plot_w, y, strokeColor=LIMIT, strokeWidth=0.7, strokeDashArray=[3, 2]))
    return drawing, steps.hours
