"""Server-rendered SVG charts: geometry computed here, drawn by a template.

No chart library and no script: the page stays readable without JavaScript and
loads nothing from outside the appliance.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.monitoring.traffic import Series

WIDTH, HEIGHT, PAD = 480, 120, 24


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    error_height: float
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    latency_points: str  # SVG polyline points for the p95 latency
    max_requests: int
    max_latency: int


def series_chart(series: Series, label_format: str) -> Chart:
    """Bars of requests per bucket (errors stacked in red) and a p95 latency line."""
    count = len(series.buckets) or 1
    slot = (WIDTH - 2 * PAD) / count
    top = max((b.requests for b in series.buckets), default=0) or 1
    slowest = int(max((b.p95_ms or 0 for b in series.buckets), default=0)) or 1
    plot = HEIGHT - 2 * PAD
    bars, points = [], []
    for index, bucket in enumerate(series.buckets):
        x = PAD + index * slot
        total_h = plot * bucket.requests / top
        error_h = plot * bucket.errors / top
        title = (
            f"{bucket.start.strftime(label_format)} UTC: {bucket.requests} requests, "
            f"{bucket.errors} errors, p95 {bucket.p95_ms if bucket.p95_ms is not None else '—'} ms"
        )
        bars.append(
            Bar(
                x=round(x + 1, 1),
                width=round(max(slot - 2, 1), 1),
                ok_y=round(HEIGHT - PAD - total_h, 1),
                ok_height=round(total_h - error_h, 1),
                error_height=round(error_h, 1),
                title=title,
            )
        )
        if bucket.p95_ms is not None:
            y = HEIGHT - PAD - plot * bucket.p95_ms / slowest
            points.append(f"{x + slot / 2:.1f},{y:.1f}")
    return Chart(WIDTH, HEIGHT, bars, " ".join(points), top, slowest)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Rule:
    y: float
    label: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    line: str  # SVG polyline points
    points: list[Point]
    rules: list[Rule]  # horizontal threshold lines
    top: float
    first: str  # the first and last points' labels, under the axis
    last: str


def line_chart(
    values: list[tuple[str, float | None]], thresholds: tuple[float, ...] = (), floor: float = 0.0
) -> LineChart:
    """A line through (label, value) in order, with dashed lines at `thresholds`; the
    scale starts at `floor` and reaches past the largest value and threshold."""
    count = max(len(values), 1)
    slot = (WIDTH - 2 * PAD) / count
    known = [v for _, v in values if v is not None]
    top = max([*known, *thresholds, floor + 1e-9]) * 1.1
    plot = HEIGHT - 2 * PAD

    def y_of(value: float) -> float:
        return round(HEIGHT - PAD - plot * (value - floor) / (top - floor), 1)

    points = [
        Point(round(PAD + (i + 0.5) * slot, 1), y_of(v), f"{label}: {v:.4g}")
        for i, (label, v) in enumerate(values)
        if v is not None
    ]
    rules = [Rule(y_of(t), f"{t:g}") for t in thresholds]
    line = " ".join(f"{p.x},{p.y}" for p in points)
    first = values[0][0] if values else ""
    last = values[-1][0] if len(values) > 1 else ""
    return LineChart(WIDTH, HEIGHT, line, points, rules, round(top, 4), first, last)
