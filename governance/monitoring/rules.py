"""Alert rules: their kinds, what figure each reads, and whether it holds over rollups.

A rule reads one figure of the rollup vocabulary (governance/monitoring/records.py)
and holds when that figure is worse than its threshold in each of the latest
`windows` windows of one length (the latest window's). Per-feature kinds (drift,
missing share) hold when one feature breaches in every one of those windows; a
rule may name its feature, else any feature counts (for drift, the output too).
Pure: no database, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from governance.clock import isoformat
from governance.errors import FieldError, InvalidInput
from governance.monitoring.records import WHOLE_MODEL

DRIFT_METHODS = ("psi", "ks", "chi2", "wasserstein")
SCORES = ("accuracy", "precision", "recall", "f1", "roc_auc", "r2")  # higher is better
ERRORS = ("mae", "rmse")  # lower is better
MAX_WINDOWS = 50
EVIDENCE_FEATURES = 20  # figures kept of the worst features, so evidence stays small


@dataclass(frozen=True)
class Figure:
    """Which rollups a kind reads (`metric`, and `method` unless the rule names it)."""

    metric: str
    methods: tuple[str, ...]
    per_feature: bool


KINDS: dict[str, Figure] = {
    "drift": Figure("drift", DRIFT_METHODS, per_feature=True),
    "performance": Figure("performance", SCORES + ERRORS, per_feature=False),
    "missing": Figure("quality", ("missing_share",), per_feature=True),
    "error_rate": Figure("traffic", ("error_rate",), per_feature=False),
}
SHARES = ("missing", "error_rate")  # kinds whose figure is a share of rows
# The kinds whose firing may trigger a retraining plan (`--on-alert`).
TRIGGER_KINDS = ("drift", "performance")


@dataclass(frozen=True)
class Rule:
    kind: str
    method: str
    threshold: float
    windows: int = 1
    feature: str = ""  # "" = any feature (per-feature kinds only)
    id: int | None = None  # None: a default from config
    ref: str = ""  # how a caller names it: the id, or default-N

    @property
    def key(self) -> str:
        """What an alert remembers its rule by (a default by its content)."""
        if self.id is not None:
            return f"rule:{self.id}"
        return f"default:{self.kind}:{self.method}:{self.threshold!r}:{self.windows}:{self.feature}"

    @property
    def above(self) -> bool:
        """True when larger values are worse (fires above the threshold)."""
        return self.method not in SCORES

    def describe(self) -> str:
        where = f" on {self.feature}" if self.feature else ""
        if KINDS[self.kind].per_feature and not self.feature:
            where = " on any feature"
        side = ">" if self.above else "<"
        span = "the latest window" if self.windows == 1 else f"{self.windows} consecutive windows"
        return f"{self.kind}: {self.method} {side} {self.threshold:g}{where} in {span}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref or (str(self.id) if self.id is not None else ""),
            "source": "model" if self.id is not None else "config",
            "kind": self.kind,
            "method": self.method,
            "feature": self.feature or None,
            "threshold": self.threshold,
            "windows": self.windows,
            "description": self.describe(),
        }


def make_rule(
    kind: str,
    method: str | None,
    threshold: float,
    windows: int = 1,
    feature: str | None = None,
) -> Rule:
    """A checked rule, or InvalidInput naming the wrong fields."""
    figure = KINDS.get(kind)
    if figure is None:
        raise InvalidInput("unknown rule kind", [FieldError("kind", "one of " + ", ".join(KINDS))])
    method = method or (figure.methods[0] if len(figure.methods) == 1 else "")
    errors = []
    if method not in figure.methods:
        errors.append(FieldError("method", "one of " + ", ".join(figure.methods)))
    if isinstance(threshold, bool) or not math.isfinite(threshold):
        errors.append(FieldError("threshold", "a finite number"))
    elif kind in SHARES and not 0 <= threshold <= 1:
        errors.append(FieldError("threshold", "a share, between 0 and 1"))
    elif kind == "drift" and threshold < 0:
        errors.append(FieldError("threshold", "zero or more"))
    if not 1 <= windows <= MAX_WINDOWS:
        errors.append(FieldError("windows", f"between 1 and {MAX_WINDOWS}"))
    feature = (feature or "").strip()
    if feature and not figure.per_feature:
        errors.append(FieldError("feature", f"{kind} rules are about the whole model"))
    if len(feature) > 256:
        errors.append(FieldError("feature", "at most 256 characters"))
    if errors:
        raise InvalidInput("the alert rule is invalid", errors)
    return Rule(kind, method, float(threshold), int(windows), feature)


@dataclass(frozen=True)
class Point:
    """One rollup figure as a rule reads it."""

    window_start: datetime
    window_end: datetime
    feature: str
    value: float | None
    rows: int


@dataclass
class Finding:
    """Whether a rule holds (None: no figure to judge by) and the figures behind it."""

    holds: bool | None
    evidence: dict[str, Any] = field(default_factory=dict)


def latest_windows(points: Iterable[Point], count: int) -> list[tuple[datetime, datetime]]:
    """The newest `count` windows as long as the newest one, newest first."""
    windows = sorted({(p.window_start, p.window_end) for p in points}, key=lambda w: w[::-1])
    windows.reverse()
    if not windows:
        return []
    length = windows[0][1] - windows[0][0]
    return [w for w in windows if w[1] - w[0] == length][:count]


def assess(rule: Rule, points: list[Point]) -> Finding:
    """Judge `rule` on the points of its figure (one model version)."""
    windows = latest_windows(points, rule.windows)
    if not windows:
        return Finding(None)
    by_feature: dict[str, dict[tuple[datetime, datetime], Point]] = {}
    for point in points:
        if (point.window_start, point.window_end) in windows and _counts(rule, point.feature):
            by_feature.setdefault(point.feature, {})[(point.window_start, point.window_end)] = point
    judged = {f: [w.get(window) for window in windows] for f, w in by_feature.items()}
    if not any(series[0] is not None and series[0].value is not None for series in judged.values()):
        return Finding(None)
    breaching = sorted(f for f, series in judged.items() if _breaches_all(rule, series))
    shown = breaching or sorted(judged, key=lambda f: _badness(rule, judged[f][0]), reverse=True)
    evidence = {
        "rule": rule.describe(),
        "threshold": rule.threshold,
        "windows": [{"start": isoformat(s), "end": isoformat(e)} for s, e in windows],
        "breaching": breaching[:EVIDENCE_FEATURES],
        "figures": [
            _figure(point)
            for name in shown[:EVIDENCE_FEATURES]
            for point in judged[name]
            if point is not None
        ],
    }
    return Finding(bool(breaching), evidence)


def _counts(rule: Rule, feature: str) -> bool:
    if rule.feature:
        return feature == rule.feature
    return (feature != WHOLE_MODEL) if KINDS[rule.kind].per_feature else feature == WHOLE_MODEL


def _breaches_all(rule: Rule, series: list[Point | None]) -> bool:
    return all(p is not None and _breaches(rule, p.value) for p in series)


def _breaches(rule: Rule, value: float | None) -> bool:
    if value is None or math.isnan(value):
        return False
    return value > rule.threshold if rule.above else value < rule.threshold


def _badness(rule: Rule, point: Point | None) -> float:
    if point is None or point.value is None or math.isnan(point.value):
        return -math.inf
    return point.value if rule.above else -point.value


def _figure(point: Point) -> dict[str, Any]:
    return {
        "feature": point.feature,
        "window_start": isoformat(point.window_start),
        "window_end": isoformat(point.window_end),
        "value": point.value,
        "rows": point.rows,
    }
