"""Drift of one column (an input feature or the output) against its reference
profile: the population stability index on the profile's bins, a two-sample test
with its p-value, and for numbers the Wasserstein distance. Every statistic is
scipy's; only the binning is ours (the profile's deciles).

PSI = sum over bins of (a - e) * ln(a / e), with e the reference share and a the
window's share of a bin: the symmetrised Kullback-Leibler divergence, computed as
scipy.stats.entropy(a, e) + scipy.stats.entropy(e, a). A bin empty on one side
would make it infinite, so shares are floored at EPSILON = 1e-4 (one row in ten
thousand, the floor Evidently uses) and renormalised.

Tests: Kolmogorov-Smirnov (scipy.stats.ks_2samp) of the profile's quantiles (its
reference side counts as that many points, so the p-value is conservative)
against every value of the window for numbers; chi-squared test of homogeneity
(scipy.stats.chi2_contingency) of the reference counts against the window's for
categories, over the profile's listed categories and one "(other)" bin for the
rest (a category the reference never saw lands there).

Default thresholds (`Thresholds`, configurable): PSI below 0.1 is no real change,
0.1 to 0.25 a moderate shift, 0.25 and above a major one (the credit-scoring
convention, Siddiqi, "Credit Risk Scorecards", 2006; Yurdakul, 2018); a test
rejects at p < 0.05. A column is *drifting* when its PSI is major, or moderate
with the test rejecting: on large windows a test alone rejects trivial shifts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from governance.monitoring.figures import (
    CHI2,
    DRIFT,
    DRIFT_PVALUE,
    KS,
    PSI,
    WASSERSTEIN,
    Figure,
)
from governance.monitoring.profiles import OTHER, bin_index

EPSILON = 1e-4


@dataclass(frozen=True)
class Thresholds:
    psi_moderate: float = 0.1
    psi_major: float = 0.25
    p_value: float = 0.05

    def level(self, psi_value: float) -> str:
        if psi_value >= self.psi_major:
            return "major"
        return "moderate" if psi_value >= self.psi_moderate else "none"

    def drifting(self, psi_value: float | None, p_value: float | None) -> bool:
        if psi_value is None:
            return False
        if psi_value >= self.psi_major:
            return True
        return psi_value >= self.psi_moderate and p_value is not None and p_value < self.p_value

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def psi(expected: Any, actual: Any, epsilon: float = EPSILON) -> float:
    """PSI of two distributions over the same bins (shares or counts, either way)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    e = np.maximum(e / e.sum(), epsilon)
    a = np.maximum(a / a.sum(), epsilon)
    return float(stats.entropy(a, e) + stats.entropy(e, a))


def numeric_drift(
    feature: str, reference: Mapping[str, Any], values: np.ndarray, thresholds: Thresholds
) -> list[Figure]:
    """Figures for the window's present (non-missing) values of a numeric column."""
    sample = np.asarray(reference.get("sample") or [], dtype=np.float64)
    if values.size == 0 or sample.size == 0:
        return []
    edges = reference["edges"]
    counts = np.bincount(bin_index(edges, values), minlength=len(edges) + 1)
    psi_value = psi(reference["shares"], counts)
    ks = stats.ks_2samp(sample, values)
    distance = float(stats.wasserstein_distance(sample, values))
    spread = float(reference.get("std") or 0.0)
    rows = int(values.size)
    verdict = _verdict(psi_value, float(ks.pvalue), thresholds)
    bins = {
        "edges": list(edges),
        "reference_shares": list(reference["shares"]),
        "window_shares": [float(c) for c in counts / rows],
        "epsilon": EPSILON,
    }
    return [
        Figure(feature, DRIFT, PSI, psi_value, rows, verdict | {"bins": bins}),
        Figure(feature, DRIFT, KS, float(ks.statistic), rows, verdict | {"test": "ks_2samp"}),
        Figure(feature, DRIFT_PVALUE, KS, float(ks.pvalue), rows, verdict),
        Figure(
            feature,
            DRIFT,
            WASSERSTEIN,
            distance,
            rows,
            {"in_reference_std": distance / spread if spread > 0 else None},
        ),
    ]


def categorical_drift(
    feature: str, reference: Mapping[str, Any], counts: Mapping[str, int], thresholds: Thresholds
) -> list[Figure]:
    """Figures for the window's category counts of a categorical column, over the
    profile's listed categories and one bin for every other category."""
    known: Mapping[str, int] = reference.get("counts") or {}
    rows = int(sum(counts.values()))
    if rows == 0 or not (known or reference.get("other")):
        return []
    names = sorted(known)
    expected = np.array([known[n] for n in names] + [reference.get("other", 0)], dtype=np.float64)
    listed = [counts.get(n, 0) for n in names]
    actual = np.array([*listed, rows - sum(listed)], dtype=np.float64)
    if expected[-1] == 0 and actual[-1] == 0:  # no "other" on either side: no such bin
        expected, actual = expected[:-1], actual[:-1]
    else:
        names = [*names, OTHER]
    psi_value = psi(expected, actual)
    statistic, p_value = _chi2(expected, actual)
    verdict = _verdict(psi_value, p_value, thresholds)
    shares = {
        "categories": names,
        "reference_shares": [float(v) for v in expected / expected.sum()],
        "window_shares": [float(v) for v in actual / rows],
        "epsilon": EPSILON,
    }
    return [
        Figure(feature, DRIFT, PSI, psi_value, rows, verdict | {"bins": shares}),
        Figure(feature, DRIFT, CHI2, statistic, rows, verdict | {"test": "chi2_contingency"}),
        Figure(feature, DRIFT_PVALUE, CHI2, p_value, rows, verdict),
    ]


def _chi2(expected: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """Chi-squared test of homogeneity of two count vectors over the same categories."""
    if len(expected) < 2:  # one category on both sides: nothing can differ
        return 0.0, 1.0
    result = stats.chi2_contingency(np.vstack([expected, actual]))
    return float(result.statistic), float(result.pvalue)


def _verdict(psi_value: float, p_value: float, thresholds: Thresholds) -> dict[str, Any]:
    return {
        "level": thresholds.level(psi_value),
        "drifting": thresholds.drifting(psi_value, p_value),
        "thresholds": thresholds.as_dict(),
    }
