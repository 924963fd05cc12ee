"""The data-quality gates on their own: schema, drift against the profile, label noise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from governance.retraining import quality
from governance.retraining.evaluation import METRICS, beats
from tests.support import drift

SCHEMA = quality.Schema([{"name": n, "dtype": "float64"} for n in drift.FEATURES], "label", True)


def test_a_clean_sample_passes_against_its_own_population() -> None:
    profile = quality.build_profile(drift.frame(800, seed=1), SCHEMA, (0.05, "m"))
    assert quality.quality_problems(drift.frame(800, seed=2), SCHEMA, profile) == []


def test_drift_and_breakage_are_named() -> None:
    profile = quality.build_profile(drift.frame(800, seed=1), SCHEMA, (0.05, "m"))
    fresh = drift.shift_feature(drift.frame(800, seed=2), "x1", 2.5)
    fresh.loc[:200, "x4"] = np.nan
    fresh["label"] = 1
    problems = " | ".join(quality.quality_problems(fresh, SCHEMA, profile))
    assert "feature 'x1': mean moved" in problems
    assert "feature 'x4': 25.1% missing" in problems
    assert "target: class shares moved" in problems


def test_schema_problems() -> None:
    broken = drift.frame(10, seed=1).drop(columns=["x0"])
    broken["x1"] = "text"
    assert quality.schema_problems(broken, SCHEMA) == [
        "column 'x0' is missing",
        "feature 'x1' should be numeric (float64)",
        "only 10 rows; at least 30 are needed",
    ]


def test_label_noise_gate() -> None:
    assert quality.label_noise_problem((0.06, "m"), {"label_noise": 0.045}) is None
    noisy = quality.label_noise_problem((0.10, "how"), {"label_noise": 0.045}) or ""
    assert "contradict" in noisy and "(how)" in noisy  # says what was measured
    assert quality.label_noise_problem(None, {"label_noise": 0.045}) is None


def test_margin_rule_points_the_right_way() -> None:
    auc, rmse = METRICS["roc_auc"], METRICS["rmse"]
    assert beats(auc, 0.80, 0.83, 0.02) and not beats(auc, 0.80, 0.81, 0.02)
    assert beats(rmse, 10.0, 9.0, 0.5) and not beats(rmse, 10.0, 10.5, 0.0)
    assert not beats(auc, 0.8, 0.8, 0.0)  # a tie never replaces the champion


def test_only_confident_contradictions_count_as_label_noise() -> None:
    labels = pd.Series([0, 1, 1, 0])
    unsure = quality.OutOfFold([0, 1], probabilities=np.array([[0.4, 0.6]] * 4))
    sure = quality.OutOfFold([0, 1], probabilities=np.array([[0.1, 0.9]] * 4))
    assert quality.measure_label_noise(lambda: unsure, labels, True) == (0.0, unsure.method)
    assert quality.measure_label_noise(lambda: sure, labels, True) == (0.5, sure.method)
    hard = quality.OutOfFold([0, 1], predictions=np.array([1, 1, 1, 1]))
    noise = quality.measure_label_noise(lambda: hard, labels, True)
    assert noise is not None and noise[0] == 0.5 and "no probabilities" in noise[1]
    assert quality.measure_label_noise(lambda: sure, labels, False) is None
