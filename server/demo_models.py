"""Demo models trained on scikit-learn's bundled data sets (no download needed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import skops.io as sio
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class DemoModel:
    name: str
    description: str
    purpose: str
    train: Callable[[], Any]


def _breast_cancer() -> Any:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return model.fit(features, target)


def _diabetes() -> Any:
    features, target = load_diabetes(return_X_y=True, as_frame=True)
    return make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(features, target)


def _iris() -> Any:
    features, target = load_iris(return_X_y=True, as_frame=True)
    return RandomForestClassifier(n_estimators=50, random_state=0).fit(features, target)


DEMO_MODELS = (
    DemoModel(
        "breast-cancer",
        "Scaler + logistic regression on the Wisconsin breast cancer "
        "data set; returns class probabilities.",
        "Demonstration: flag tumour measurements for clinical review",
        _breast_cancer,
    ),
    DemoModel(
        "diabetes-progression",
        "Scaler + ridge regression in a Pipeline on the diabetes data set.",
        "Demonstration: estimate disease progression",
        _diabetes,
    ),
    DemoModel(
        "iris",
        "Random forest, three classes, on the iris data set.",
        "Demonstration: classify iris flowers",
        _iris,
    ),
)


def demo_artifact(model: DemoModel) -> bytes:
    return sio.dumps(model.train())
