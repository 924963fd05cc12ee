"""Champion against candidate: one metric on the same held-out rows, and the margin rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from governance.errors import FieldError, InvalidInput


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    classification: bool


METRICS = {
    m.name: m
    for m in (
        Metric("roc_auc", True, True),
        Metric("f1", True, True),
        Metric("accuracy", True, True),
        Metric("rmse", False, False),
        Metric("mae", False, False),
        Metric("r2", True, False),
    )
}


def metric_named(name: str, classification: bool) -> Metric:
    metric = METRICS.get(name)
    if metric is None:
        raise InvalidInput(
            "unknown metric", [FieldError("metric", f"one of {', '.join(sorted(METRICS))}")]
        )
    if metric.classification != classification:
        kind = "a classifier" if classification else "a regressor"
        raise InvalidInput(
            f"metric {name} does not fit {kind}",
            [
                FieldError(
                    "metric",
                    f"{name} is for {'classifiers' if metric.classification else 'regressors'}",
                )
            ],
        )
    return metric


def score(metric: Metric, estimator: Any, features: Any, labels: Any) -> float:
    """The metric of a fitted estimator on held-out rows."""
    if metric.name == "roc_auc":
        return _roc_auc(estimator, features, labels)
    predicted = estimator.predict(features)
    if metric.name == "f1":
        classes = list(estimator.classes_)
        if len(classes) == 2:
            return float(skm.f1_score(labels, predicted, pos_label=classes[1]))
        return float(skm.f1_score(labels, predicted, average="macro"))
    if metric.name == "accuracy":
        return float(skm.accuracy_score(labels, predicted))
    if metric.name == "rmse":
        return float(np.sqrt(skm.mean_squared_error(labels, predicted)))
    if metric.name == "mae":
        return float(skm.mean_absolute_error(labels, predicted))
    return float(skm.r2_score(labels, predicted))


def _roc_auc(estimator: Any, features: Any, labels: Any) -> float:
    if not hasattr(estimator, "predict_proba"):
        raise InvalidInput("roc_auc needs an estimator with predict_proba")
    proba = estimator.predict_proba(features)
    classes = list(estimator.classes_)
    if len(classes) == 2:
        return float(skm.roc_auc_score(np.asarray(labels) == classes[1], proba[:, 1]))
    return float(skm.roc_auc_score(labels, proba, multi_class="ovr", labels=classes))


def improvement(metric: Metric, champion: float, candidate: float) -> float:
    """How much better the candidate is (positive: better), whichever way the metric points."""
    return candidate - champion if metric.higher_is_better else champion - candidate


def beats(metric: Metric, champion: float, candidate: float, margin: float) -> bool:
    """The candidate wins only by at least `margin`, and strictly when the margin is zero."""
    gain = improvement(metric, champion, candidate)
    return gain > 0 and gain >= margin
