"""Explanations add up: contributions + base value = the model's output for that row."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from governance.subjects.explanations import Baseline, explain

TOLERANCE = 1e-6


def _rows(frame: pd.DataFrame, picks: list[int]) -> list[dict[str, Any]]:
    return frame.iloc[picks].to_dict("records")


def _check_additive(explanations: list[Any], outputs: list[float]) -> None:
    assert len(explanations) == len(outputs)
    for explained, expected in zip(explanations, outputs, strict=True):
        total = sum(explained.contributions.values()) + explained.base_value
        assert abs(total - expected) < TOLERANCE
        assert abs(explained.output - expected) < TOLERANCE


def test_linear_pipeline_is_exact_in_log_odds_against_the_training_mean() -> None:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features, target)
    picks = [0, 7, 300]
    explained = explain(model, list(features.columns), _rows(features, picks))
    _check_additive(explained, list(model.decision_function(features.iloc[picks])))
    first = explained[0]
    assert first.method.startswith("linear")
    assert first.output_space == "log-odds of class 1" and first.target == 1
    assert first.baseline.startswith("training mean")
    # Coefficients times standardised deviation from the training mean, feature by feature.
    scaler, logistic = model[0], model[-1]
    z = (features.iloc[0].to_numpy() - scaler.mean_) / scaler.scale_
    expected = dict(zip(features.columns, logistic.coef_[0] * z, strict=True))
    assert explained[0].contributions == pytest.approx(expected, abs=1e-12)
    assert first.base_value == pytest.approx(logistic.intercept_[0])


def test_random_forest_uses_treeshap_on_the_decided_class_probability() -> None:
    features, target = load_iris(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=25, random_state=0).fit(features, target)
    picks = [0, 60, 120]
    explained = explain(model, list(features.columns), _rows(features, picks))
    proba = model.predict_proba(features.iloc[picks])
    decided = model.predict(features.iloc[picks])
    _check_additive(
        explained, [proba[i][list(model.classes_).index(d)] for i, d in enumerate(decided)]
    )
    assert all(e.method.startswith("TreeSHAP") for e in explained)
    assert [e.target for e in explained] == list(decided)


def test_random_forest_regressor_and_boosting_add_up_in_their_raw_output() -> None:
    features, target = load_diabetes(return_X_y=True, as_frame=True)
    forest = RandomForestRegressor(n_estimators=10, random_state=0).fit(features, target)
    explained = explain(forest, list(features.columns), _rows(features, [3, 4]))
    _check_additive(explained, list(forest.predict(features.iloc[[3, 4]])))
    cancer, labels = load_breast_cancer(return_X_y=True, as_frame=True)
    boosting = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(cancer, labels)
    explained = explain(boosting, list(cancer.columns), _rows(cancer, [1, 2]))
    _check_additive(explained, list(boosting.decision_function(cancer.iloc[[1, 2]])))
    assert explained[0].output_space == "log-odds of class 1"


def test_a_bare_linear_model_takes_the_given_baseline_and_says_so() -> None:
    features, target = load_diabetes(return_X_y=True)
    names = [f"f{i}" for i in range(features.shape[1])]
    model = LinearRegression().fit(features, target)  # no names, no scaler
    rows = [dict(zip(names, features[5], strict=True))]
    plain = explain(model, names, rows)[0]
    assert plain.baseline.startswith("zero")
    assert plain.base_value == pytest.approx(model.intercept_)
    mean = Baseline(dict(zip(names, features.mean(axis=0), strict=True)), "reference profile")
    given = explain(model, names, rows, mean)[0]
    assert given.baseline == "reference profile"
    _check_additive([plain, given], [model.predict(features[5:6])[0]] * 2)
    assert given.base_value == pytest.approx(model.predict(features.mean(axis=0)[None, :])[0])


def test_other_models_get_exact_shapley_values_against_one_baseline_row() -> None:
    features, target = load_iris(return_X_y=True, as_frame=True)
    model = KNeighborsClassifier().fit(features, target)
    mean = Baseline(features.mean().to_dict(), "reference profile of version 1")
    explained = explain(model, list(features.columns), _rows(features, [0, 70]), mean)
    proba = model.predict_proba(features.iloc[[0, 70]])
    decided = model.predict(features.iloc[[0, 70]])
    _check_additive(explained, [proba[i][d] for i, d in enumerate(decided)])
    assert explained[0].method.startswith("Shapley values (shap ExactExplainer")
    assert explained[0].base_value == pytest.approx(
        model.predict_proba(pd.DataFrame([mean.values]))[0][decided[0]]
    )


def test_categorical_pipelines_are_explained_on_their_input_features() -> None:
    frame = pd.DataFrame(
        {
            "city": ["rio", "sp", "bh", "rio", "sp", "bh"] * 10,
            "income": np.linspace(1, 9, 60),
        }
    )
    target = (frame["income"] > 5).astype(int) ^ (frame["city"] == "sp").astype(int)
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(frame, target)
    rows = _rows(frame, [1, 40])
    explained = explain(model, ["city", "income"], rows)
    proba = model.predict_proba(frame.iloc[[1, 40]])
    decided = model.predict(frame.iloc[[1, 40]])
    _check_additive(explained, [proba[i][d] for i, d in enumerate(decided)])
    assert set(explained[0].contributions) == {"city", "income"}
    assert "own value" in explained[0].baseline


def test_nothing_to_explain_is_an_empty_answer() -> None:
    assert explain(LinearRegression(), ["a"], []) == []
