"""Small, fast estimators for tests, as skops bytes."""

from __future__ import annotations

from functools import cache

import numpy as np
import skops.io as sio
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from governance.registry.service import ModelCard

CARD = ModelCard(
    purpose="testing",
    legal_basis="legitimate interest (test)",
    description="a test model",
    decision_mode="automated",
    owner="tests",
)


@cache
def iris_classifier() -> bytes:
    features, target = load_iris(return_X_y=True, as_frame=True)
    return sio.dumps(LogisticRegression(max_iter=500).fit(features, target))


@cache
def iris_classifier_v2() -> bytes:
    features, target = load_iris(return_X_y=True, as_frame=True)
    return sio.dumps(LogisticRegression(max_iter=500, C=0.1).fit(features, target))


@cache
def cancer_pipeline() -> bytes:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return sio.dumps(model.fit(features, target))


@cache
def unnamed_regressor() -> bytes:
    """Fitted on a bare array: no feature_names_in_, only n_features_in_."""
    features, _ = load_iris(return_X_y=True)
    return sio.dumps(LinearRegression().fit(features[:, :3], features[:, 3]))


@cache
def cancer_forest() -> bytes:
    """RandomForest(100) on breast cancer: the compiled-inference benchmark's forest."""
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    return sio.dumps(RandomForestClassifier(100, random_state=0).fit(features, target))


@cache
def iris_log_pipeline() -> bytes:
    """A trusted pipeline skl2onnx cannot convert (a FunctionTransformer with a function)."""
    features, target = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression(max_iter=500))
    return sio.dumps(model.fit(features, target))
