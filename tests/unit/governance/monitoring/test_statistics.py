"""Each statistic against scipy and scikit-learn called directly on known data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from governance.monitoring import drift, fairness, performance, profiles, quality

RNG = np.random.default_rng(42)
REFERENCE = RNG.normal(size=5000)
THRESHOLDS = drift.Thresholds()


def _by_method(figures: list) -> dict:
    return {(f.metric, f.method): f for f in figures}


def test_psi_is_the_textbook_sum_with_floored_shares() -> None:
    expected, actual = [0.25, 0.25, 0.5, 0.0], [0.4, 0.3, 0.3, 0.0]
    e = np.maximum(np.array(expected), drift.EPSILON)
    a = np.maximum(np.array(actual), drift.EPSILON)
    e, a = e / e.sum(), a / a.sum()
    assert drift.psi(expected, actual) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert drift.psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-12)
    assert math.isfinite(drift.psi([1, 0], [0, 1]))


def test_numeric_drift_matches_scipy() -> None:
    column = profiles.numeric_column(REFERENCE)
    window = RNG.normal(loc=2.0, size=3000)
    figures = _by_method(drift.numeric_drift("x", column, window, THRESHOLDS))
    sample = np.array(column["sample"])
    ks = stats.ks_2samp(sample, window)
    assert figures[("drift", "ks")].value == pytest.approx(ks.statistic)
    assert figures[("drift_pvalue", "ks")].value == pytest.approx(ks.pvalue)
    assert figures[("drift", "wasserstein")].value == pytest.approx(
        stats.wasserstein_distance(sample, window)
    )
    counts = np.bincount(
        np.searchsorted(column["edges"], window, side="right"), minlength=len(column["edges"]) + 1
    )
    psi = figures[("drift", "psi")]
    assert psi.value == pytest.approx(drift.psi(column["shares"], counts))
    assert psi.value > 0.25 and psi.details["drifting"] and psi.details["level"] == "major"


def test_an_unchanged_feature_does_not_drift() -> None:
    column = profiles.numeric_column(REFERENCE)
    figures = _by_method(drift.numeric_drift("x", column, RNG.normal(size=3000), THRESHOLDS))
    assert figures[("drift", "psi")].value < 0.1
    assert figures[("drift_pvalue", "ks")].value > 0.05
    assert not figures[("drift", "psi")].details["drifting"]


def test_categorical_drift_matches_chi2_contingency() -> None:
    column = profiles.categorical_column(["a"] * 500 + ["b"] * 300 + ["c"] * 200)
    window = {"a": 100, "b": 300, "d": 50}
    figures = _by_method(drift.categorical_drift("c", column, window, THRESHOLDS))
    table = np.array([[500, 300, 200, 0], [100, 300, 0, 50]])
    expected = stats.chi2_contingency(table)
    assert figures[("drift", "chi2")].value == pytest.approx(expected.statistic)
    assert figures[("drift_pvalue", "chi2")].value == pytest.approx(expected.pvalue)
    assert figures[("drift", "psi")].value == pytest.approx(drift.psi(table[0], table[1]))


def test_quality_shares() -> None:
    column = profiles.numeric_column([0.0, 1.0, 2.0, 3.0])
    figures = _by_method(
        quality.numeric_quality("x", column, np.array([np.nan, -1.0, 0.5, 4.0, 3.0]))
    )
    assert figures[("quality", "missing_share")].value == pytest.approx(0.2)
    assert figures[("quality", "out_of_range_share")].value == pytest.approx(0.5)
    known = profiles.categorical_column(["a"] * 5 + ["b"] * 5)
    found = _by_method(quality.categorical_quality("c", known, {"a": 3, "z": 1}, missing=1))
    assert found[("quality", "unseen_category_share")].value == pytest.approx(0.25)
    assert found[("quality", "missing_share")].value == pytest.approx(0.2)


def test_classification_metrics_match_sklearn() -> None:
    truth = [0, 1, 1, 0, 1, 1, 0, 0]
    predicted = [0, 1, 0, 0, 1, 1, 1, 0]
    proba = [
        [0.9, 0.1],
        [0.2, 0.8],
        [0.6, 0.4],
        [0.7, 0.3],
        [0.1, 0.9],
        [0.3, 0.7],
        [0.4, 0.6],
        [0.8, 0.2],
    ]
    figures = {f.method: f for f in performance.classification(truth, predicted, [0, 1], proba)}
    assert figures["accuracy"].value == pytest.approx(skm.accuracy_score(truth, predicted))
    assert figures["precision"].value == pytest.approx(skm.precision_score(truth, predicted))
    assert figures["recall"].value == pytest.approx(skm.recall_score(truth, predicted))
    assert figures["f1"].value == pytest.approx(skm.f1_score(truth, predicted))
    auc = skm.roc_auc_score(truth, [p[1] for p in proba])
    assert figures["roc_auc"].value == pytest.approx(auc)
    assert figures["accuracy"].rows == 8 and figures["accuracy"].details["labelled_rows"] == 8


def test_multiclass_metrics_are_macro_averages() -> None:
    truth, predicted = ["a", "b", "c", "a"], ["a", "c", "c", "b"]
    figures = {f.method: f for f in performance.classification(truth, predicted, ["a", "b", "c"])}
    expected = skm.f1_score(
        truth, predicted, average="macro", labels=["a", "b", "c"], zero_division=0
    )
    assert figures["f1"].value == pytest.approx(expected)
    assert "roc_auc" not in figures


def test_regression_metrics_match_sklearn() -> None:
    truth, predicted = [1.0, 2.0, 3.0, 4.0], [1.5, 1.5, 3.5, 3.0]
    figures = {f.method: f for f in performance.regression(truth, predicted)}
    assert figures["mae"].value == pytest.approx(skm.mean_absolute_error(truth, predicted))
    assert figures["rmse"].value == pytest.approx(skm.root_mean_squared_error(truth, predicted))
    assert figures["r2"].value == pytest.approx(skm.r2_score(truth, predicted))


def test_fairness_gaps() -> None:
    truth = [1, 1, 0, 0, 1, 1, 0, 0]
    predicted = [1, 1, 1, 0, 1, 0, 0, 0]
    groups = ["a", "a", "a", "a", "b", "b", "b", "b"]
    figures = {f.method: f for f in fairness.fairness(truth, predicted, groups, [0, 1])}
    assert figures["selection_rate_gap"].value == pytest.approx(0.75 - 0.25)
    tpr_a = skm.recall_score(truth[:4], predicted[:4])
    tpr_b = skm.recall_score(truth[4:], predicted[4:])
    assert figures["tpr_gap"].value == pytest.approx(abs(tpr_a - tpr_b))
    assert figures["tpr_gap"].feature == "group"


def test_rare_and_new_categories_share_the_other_bin() -> None:
    column = profiles.categorical_column(["a"] * 50 + ["b"] * 40 + ["r1", "r2"])
    assert column["other"] == 2
    figures = _by_method(drift.categorical_drift("c", column, {"a": 10, "new": 10}, THRESHOLDS))
    psi = figures[("drift", "psi")]
    assert psi.details["bins"]["categories"] == ["a", "b", "(other)"]
    expected = stats.chi2_contingency(np.array([[50, 40, 2], [10, 0, 10]]))
    assert figures[("drift_pvalue", "chi2")].value == pytest.approx(expected.pvalue)
