"""Monitoring pages: every model's latest drift at a glance, and per model version
its report (features drifting now first), drift per feature and performance over
time as server-side SVG charts. Numbers link an auditor to the audit records
behind them. Everything is read from the rollups, never from the log."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import request
from flask.typing import ResponseReturnValue

from governance.monitoring.figures import DRIFT, PERFORMANCE, PSI
from governance.monitoring.windows import format_length, parse_length
from server.admin import forms
from server.admin.charts import LineChart, line_chart
from server.admin.pages import admin_blueprint, render
from server.extension import services
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_monitoring")
HISTORY = 48  # windows on the charts


@blueprint.get("/monitoring")
@requires("monitoring:read")
def overview() -> ResponseReturnValue:
    cofre, actor = services(), current_actor()
    length = cofre.monitoring_window
    with cofre.read() as session:
        rows = [
            (
                model,
                version.version,
                cofre.monitoring.report(session, model.name, version.version, length),
            )
            for model in cofre.registry.models(session, actor)
            for version in reversed(model.versions)
        ]
    reports = [(m, v, r) for m, v, r in rows if r is not None]
    return render("admin/monitoring/overview.html", reports=reports, length=format_length(length))


@blueprint.get("/models/<path:name>/monitoring")
@requires("monitoring:read")
def model(name: str) -> ResponseReturnValue:
    cofre = services()
    text = request.args.get("window", "")
    length = parse_length(text) if text else cofre.monitoring_window
    wanted = forms.optional_int(request.args, "version")
    with cofre.read() as session:
        found = cofre.registry.resolve(session, name, version=wanted)
        report = cofre.monitoring.report(session, name, found.version, length)
        windows = cofre.monitoring.windows(session, name, found.version, length, HISTORY)
        history = cofre.monitoring.rollups(
            session, name, found.version, windows, (DRIFT, PERFORMANCE)
        )
        context = _context(found.model, found.version, report, history, length)
        return render("admin/monitoring/model.html", **context)


def _context(
    model: Any, version: int, report: dict[str, Any] | None, history: list[Any], length: Any
) -> dict[str, Any]:
    thresholds = services().monitoring.policy.thresholds
    return {
        "model": model,
        "version": version,
        "length": format_length(length),
        "report": report,
        "features": _ordered(report),
        "drift_charts": _drift_charts(history, report, thresholds),
        "performance_charts": _performance_charts(history),
        "audit_link": _audit_link(model.name, version, report),
    }


def _ordered(report: dict[str, Any] | None) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(feature, drift, quality), the features drifting now first, then by PSI."""
    if report is None:
        return []
    drift, quality = report["drift"], report["quality"]
    names = sorted(
        set(drift) | set(quality),
        key=lambda f: (
            not drift.get(f, {}).get("drifting"),
            -(drift.get(f, {}).get("psi") or 0),
            f,
        ),
    )
    return [(f, drift.get(f, {}), quality.get(f, {})) for f in names]


def _series(history: list[Any], metric: str) -> dict[str, list[tuple[str, float | None]]]:
    found: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    for rollup in history:
        if rollup.metric == metric and (metric != DRIFT or rollup.method == PSI):
            key = rollup.feature if metric == DRIFT else rollup.method
            found[key].append((rollup.window_end.strftime("%d %H:%M UTC"), rollup.value))
    return found


def _drift_charts(
    history: list[Any], report: dict[str, Any] | None, thresholds: Any
) -> list[tuple[str, LineChart]]:
    series = _series(history, DRIFT)
    order = [f for f, _, _ in _ordered(report)] + sorted(series)
    rules = (thresholds.psi_moderate, thresholds.psi_major)
    seen: set[str] = set()
    charts = []
    for feature in order:
        if feature in series and feature not in seen:
            seen.add(feature)
            charts.append((feature, line_chart(series[feature], rules)))
    return charts


def _performance_charts(history: list[Any]) -> list[tuple[str, LineChart]]:
    return [
        (metric, line_chart(values))
        for metric, values in sorted(_series(history, PERFORMANCE).items())
    ]


def _audit_link(name: str, version: int, report: dict[str, Any] | None) -> dict[str, Any]:
    """The audit search's filters for the predictions behind the report's window."""
    if report is None:
        return {}
    return {
        "model": name,
        "version": version,
        "kind": "prediction",
        "since": report["window"]["start"],
        "until": report["window"]["end"],
    }
