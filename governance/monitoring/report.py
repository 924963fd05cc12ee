"""A monitoring report: one version's figures over one window, arranged for reading
(`cofre monitor --json`, the monitoring API and page). Built from stored rollups
or from figures just computed, the same way, so every reader sees one shape:

    {"model", "version", "window": {"start", "end", "length"}, "computed_at",
     "profile": {"source", "rows"} | null,
     "drifting": [features drifting now, the output as "__output__"],
     "drift": {feature: {"psi", "ks" | "chi2", "p_value", "test", "wasserstein",
                         "level", "drifting", "rows"}},
     "quality": {feature: {"missing_share", "out_of_range_share",
                           "unseen_category_share"}},
     "performance": {metric: value, "labelled_rows": n} | {},
     "fairness": {"selection_rate_gap", "tpr_gap", "groups"} | {},
     "traffic": {"requests", "rows", "errors", "error_rate", ..., "erased_rows"},
     "rows": {"seen": rows the figures are about, "erased": rows left out}}
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from governance.clock import isoformat
from governance.monitoring.figures import (
    DRIFT,
    DRIFT_PVALUE,
    FAIRNESS,
    PERFORMANCE,
    PSI,
    QUALITY,
    TRAFFIC,
    WASSERSTEIN,
)
from governance.monitoring.windows import Window, format_length


class FigureLike(Protocol):
    """A Figure or a MonitoringRollup: both carry these."""

    @property
    def feature(self) -> str: ...
    @property
    def metric(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def value(self) -> float | None: ...
    @property
    def rows(self) -> int: ...
    @property
    def details(self) -> dict[str, Any]: ...


def summarise(
    name: str,
    version: int,
    window: Window,
    figures: Iterable[FigureLike],
    computed_at: datetime | None,
    profile: dict[str, Any] | None,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "model": name,
        "version": version,
        "window": {
            "start": isoformat(window.start),
            "end": isoformat(window.end),
            "length": format_length(window.length),
        },
        "computed_at": isoformat(computed_at) if computed_at else None,
        "profile": profile,
        "drift": {},
        "quality": {},
        "performance": {},
        "fairness": {},
        "traffic": {},
    }
    for figure in figures:
        _place(report, figure)
    traffic = report["traffic"]
    erased = int(traffic.get("erased_rows") or 0)
    report["rows"] = {"seen": int(traffic.get("rows") or 0) - erased, "erased": erased}
    drift = report["drift"]
    report["drifting"] = sorted(
        (f for f, d in drift.items() if d.get("drifting")), key=lambda f: -(drift[f]["psi"] or 0)
    )
    return report


def _place(report: dict[str, Any], figure: FigureLike) -> None:
    if figure.metric in (DRIFT, DRIFT_PVALUE):
        entry = report["drift"].setdefault(figure.feature, {})
        if figure.metric == DRIFT_PVALUE:
            entry["p_value"], entry["test"] = figure.value, figure.method
        else:
            entry[figure.method] = figure.value
        if figure.method == PSI:
            entry["level"] = figure.details.get("level")
            entry["drifting"] = bool(figure.details.get("drifting"))
            entry["rows"] = figure.rows
        if figure.method == WASSERSTEIN:
            entry["wasserstein_in_reference_std"] = figure.details.get("in_reference_std")
    elif figure.metric == QUALITY:
        report["quality"].setdefault(figure.feature, {})[figure.method] = figure.value
    elif figure.metric == PERFORMANCE:
        report["performance"][figure.method] = figure.value
        labelled = figure.details.get("labelled_rows", figure.rows)
        report["performance"]["labelled_rows"] = max(
            labelled, report["performance"].get("labelled_rows", 0)
        )
    elif figure.metric == FAIRNESS:
        report["fairness"][figure.method] = figure.value
        report["fairness"]["groups"] = figure.details.get("groups")
    elif figure.metric == TRAFFIC:
        report["traffic"][figure.method] = figure.value
