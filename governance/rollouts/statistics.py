"""The figures of a rollout: per-variant traffic from the workers' tallies, and the
comparison of the variants on ground truth (feedback labels), all from scipy.

Traffic: requests, errors, p50/p99 latency (from a fixed histogram: a quantile is
the upper bound of the bucket it falls in), rows compared with the champion and
the share that agreed, shadow work dropped.

Ground truth: a classifier's primary metric is accuracy (the share of labelled rows
it got right), compared with the two-proportion z-test (scipy's chi-square test of
the 2x2 table without continuity correction, which is the same test: chi2 = z^2);
a regressor's is the mean absolute error, compared with Welch's t-test. Each comes
with its confidence interval (Wilson for a proportion, Student's t for a mean).

A/B decisions are **group-sequential**, not a peek at a fixed test: `looks` interim
analyses are planned at equal shares of the `horizon` (labelled rows per variant);
look k uses the first k/looks of each variant's rows in serving order, at level
alpha/looks (a Bonferroni split of alpha over the looks, so that stopping at the
first significant look keeps the false-positive rate at most alpha). The test
stops at the first significant look, naming the better variant, or at the horizon
with "no significant difference". Looking at the status in between changes
nothing: the decision is a function of the data at the planned looks only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats

from governance.rollouts.records import RolloutTally
from governance.rollouts.routing import CANDIDATE, CHAMPION

BUCKETS_MS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 2000, 5000)
OVERFLOW = "inf"
OVERFLOW_MS = 10_000.0  # what a latency over the last bound counts as in a quantile


def bucket(milliseconds: float) -> str:
    """The histogram bucket (its upper bound, as text) of one latency."""
    for bound in BUCKETS_MS:
        if milliseconds <= bound:
            return str(bound)
    return OVERFLOW


def quantile(histogram: dict[str, int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile; None with no data."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for bound in [*map(str, BUCKETS_MS), OVERFLOW]:
        seen += histogram.get(bound, 0)
        if seen >= rank:
            return OVERFLOW_MS if bound == OVERFLOW else float(bound)
    return OVERFLOW_MS


def traffic(tallies: Iterable[RolloutTally]) -> dict[str, dict[str, Any]]:
    """Each variant's traffic figures, summed over every worker's tallies."""
    sums = {v: _Sum() for v in (CHAMPION, CANDIDATE)}
    for tally in tallies:
        sums.setdefault(tally.variant, _Sum()).add(tally)
    return {variant: total.figures() for variant, total in sums.items()}


@dataclass
class _Sum:
    requests: int = 0
    errors: int = 0
    compared: int = 0
    agreed: int = 0
    dropped: int = 0

    def __post_init__(self) -> None:
        self.latency: dict[str, int] = {}

    def add(self, tally: RolloutTally) -> None:
        self.requests += tally.requests
        self.errors += tally.errors
        self.compared += tally.compared
        self.agreed += tally.agreed
        self.dropped += tally.dropped
        for key, count in (tally.latency or {}).items():
            self.latency[key] = self.latency.get(key, 0) + int(count)

    def figures(self) -> dict[str, Any]:
        agreement = self.agreed / self.compared if self.compared else None
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.errors / self.requests if self.requests else None,
            "p50_ms": quantile(self.latency, 0.50),
            "p99_ms": quantile(self.latency, 0.99),
            "compared": self.compared,
            "agreed": self.agreed,
            "agreement": agreement,
            "disagreement": None if agreement is None else 1 - agreement,
            "shadow_dropped": self.dropped,
        }


# -- ground truth ----------------------------------------------------------------------
@dataclass(frozen=True)
class Samples:
    """Per labelled row of one variant, in serving order: 1/0 for right/wrong
    (classifier) or the absolute error (regressor)."""

    kind: str  # "accuracy" | "mae"
    values: Sequence[float]


def metric(samples: Samples, alpha: float) -> dict[str, Any]:
    """The primary metric of one variant with its (1 - alpha) confidence interval."""
    n = len(samples.values)
    if n == 0:
        return {"metric": samples.kind, "n": 0, "value": None, "ci": None}
    if samples.kind == "accuracy":
        right = int(sum(samples.values))
        ci = stats.binomtest(right, n).proportion_ci(confidence_level=1 - alpha, method="wilson")
        return {"metric": "accuracy", "n": n, "value": right / n, "ci": [ci.low, ci.high]}
    mean = float(sum(samples.values) / n)
    if n < 2:
        return {"metric": "mae", "n": n, "value": mean, "ci": None}
    sem = float(stats.sem(samples.values))
    low, high = (mean, mean) if sem == 0 else stats.t.interval(1 - alpha, n - 1, mean, sem)
    return {"metric": "mae", "n": n, "value": mean, "ci": [float(low), float(high)]}


def test(champion: Samples, candidate: Samples) -> dict[str, Any]:
    """The comparison of the two variants' samples: statistic and two-sided p-value."""
    a, b = champion.values, candidate.values
    if len(a) < 2 or len(b) < 2:
        return {"test": None, "statistic": None, "p_value": None}
    if champion.kind == "accuracy":
        return _two_proportions(int(sum(a)), len(a), int(sum(b)), len(b))
    result = stats.ttest_ind(b, a, equal_var=False)
    p_value = float(result.pvalue)
    return {
        "test": "welch-t",
        "statistic": float(result.statistic),
        "p_value": 1.0 if math.isnan(p_value) else p_value,
    }


def _two_proportions(k1: int, n1: int, k2: int, n2: int) -> dict[str, Any]:
    table = [[k2, n2 - k2], [k1, n1 - k1]]
    try:
        chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    except ValueError:  # a column of zeros (every row right, or wrong, in both): no difference
        return {"test": "two-proportion-z", "statistic": 0.0, "p_value": 1.0}
    sign = 1.0 if k2 / n2 >= k1 / n1 else -1.0
    return {"test": "two-proportion-z", "statistic": sign * math.sqrt(chi2), "p_value": p_value}


def needed(champion: Samples, candidate: Samples, alpha: float, power: float) -> int | None:
    """Labelled rows per variant for the observed difference to be detected at level
    alpha with `power` (normal approximation); None when there is no difference yet."""
    a, b = champion.values, candidate.values
    if len(a) < 2 or len(b) < 2:
        return None
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    if champion.kind == "accuracy":
        spread = mean_a * (1 - mean_a) + mean_b * (1 - mean_b)
    else:
        spread = float(stats.tvar(a)) + float(stats.tvar(b))
    difference = abs(mean_b - mean_a)
    if difference == 0 or spread == 0:
        return None
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return math.ceil(z * z * spread / (difference * difference))


def sequential(
    champion: Samples, candidate: Samples, plan: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(decision or None, the analysis) of the group-sequential A/B test."""
    looks, horizon, alpha = int(plan["looks"]), int(plan["horizon"]), float(plan["alpha"])
    level = alpha / looks
    available = min(len(champion.values), len(candidate.values))
    done = min(looks, available * looks // horizon)
    analysis: dict[str, Any] = {
        "method": "group-sequential, Bonferroni alpha split",
        "looks": looks,
        "horizon": horizon,
        "level_per_look": level,
        "looks_done": done,
    }
    for look in range(1, done + 1):
        n = horizon * look // looks
        a = Samples(champion.kind, champion.values[:n])
        b = Samples(candidate.kind, candidate.values[:n])
        result = test(a, b)
        analysis["last_look"] = {"look": look, "n": n} | result
        if result["p_value"] is not None and result["p_value"] < level:
            return {"look": look, "n": n, "winner": _better(a, b)} | result, analysis
    if done == looks:
        return {"look": looks, "n": horizon, "winner": None, "no_difference": True}, analysis
    return None, analysis


def _better(champion: Samples, candidate: Samples) -> str:
    mean_a = sum(champion.values) / len(champion.values)
    mean_b = sum(candidate.values) / len(candidate.values)
    higher_is_better = champion.kind == "accuracy"
    return CANDIDATE if (mean_b > mean_a) == higher_is_better else CHAMPION
