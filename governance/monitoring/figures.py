"""A figure: one number about one model version over one window, before it is stored
as a `MonitoringRollup`. The metric and method names are the rollups' vocabulary
(governance/monitoring/records.py), which alerts and dashboards rely on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from governance.monitoring.records import OUTPUT, WHOLE_MODEL

DRIFT, DRIFT_PVALUE = "drift", "drift_pvalue"
PERFORMANCE, QUALITY, FAIRNESS, TRAFFIC = "performance", "quality", "fairness", "traffic"
PSI, KS, CHI2, WASSERSTEIN = "psi", "ks", "chi2", "wasserstein"
MISSING, OUT_OF_RANGE, UNSEEN = "missing_share", "out_of_range_share", "unseen_category_share"
GROUP = "group"  # the feature name of fairness figures: feedback's group attribute

__all__ = ["OUTPUT", "WHOLE_MODEL", "Figure"]


@dataclass(frozen=True)
class Figure:
    feature: str
    metric: str
    method: str
    value: float | None
    rows: int
    details: dict[str, Any] = field(default_factory=dict)
