"""How right a version was, where ground truth came back: scikit-learn's own metrics
on the labelled rows of a window.

Classifiers: accuracy, precision, recall, F1 (of the second class for a binary
model, as scikit-learn's `pos_label` convention has it; macro averages for more
classes) and ROC AUC from the probabilities the version answered with.
Regressors: MAE, RMSE and R². Labels and predictions are compared as text, so a
label sent as "1" matches the class 1. A metric that is undefined on the rows (ROC
AUC with one class present, R² of a single row) is stored as null with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from governance.monitoring.figures import PERFORMANCE, WHOLE_MODEL, Figure


def classification(
    truth: Sequence[Any],
    predicted: Sequence[Any],
    classes: Sequence[Any],
    proba: Sequence[Sequence[float] | None] | None = None,
) -> list[Figure]:
    rows = len(truth)
    if rows == 0:
        return []
    names = [str(c) for c in classes]
    y_true = np.array([str(v) for v in truth], dtype=object)
    y_pred = np.array([str(v) for v in predicted], dtype=object)
    binary = len(names) == 2
    averaging: dict[str, Any] = (
        {"pos_label": names[1], "average": "binary"} if binary else {"average": "macro"}
    )
    averaging |= {"labels": names, "zero_division": 0} if not binary else {"zero_division": 0}
    details = {"labelled_rows": rows, "classes": names} | (
        {"positive_class": names[1]} if binary else {"average": "macro"}
    )
    figures = [
        Figure(
            WHOLE_MODEL,
            PERFORMANCE,
            "accuracy",
            float(skm.accuracy_score(y_true, y_pred)),
            rows,
            details,
        ),
        Figure(
            WHOLE_MODEL,
            PERFORMANCE,
            "precision",
            float(skm.precision_score(y_true, y_pred, **averaging)),
            rows,
            details,
        ),
        Figure(
            WHOLE_MODEL,
            PERFORMANCE,
            "recall",
            float(skm.recall_score(y_true, y_pred, **averaging)),
            rows,
            details,
        ),
        Figure(
            WHOLE_MODEL,
            PERFORMANCE,
            "f1",
            float(skm.f1_score(y_true, y_pred, **averaging)),
            rows,
            details,
        ),
    ]
    auc = _roc_auc(y_true, names, proba)
    if auc is not None:
        figures.append(auc)
    return figures


def _roc_auc(
    y_true: np.ndarray, names: list[str], proba: Sequence[Sequence[float] | None] | None
) -> Figure | None:
    if proba is None:
        return None
    kept = [i for i, p in enumerate(proba) if p is not None and len(p) == len(names)]
    if not kept:
        return None
    truth = y_true[kept]
    scores = np.array([proba[i] for i in kept], dtype=np.float64)
    details: dict[str, Any] = {"labelled_rows": len(kept)}
    if len(set(truth)) < 2:
        return Figure(
            WHOLE_MODEL,
            PERFORMANCE,
            "roc_auc",
            None,
            len(kept),
            details | {"reason": "only one class among the labelled rows"},
        )
    try:
        if len(names) == 2:
            value = skm.roc_auc_score(truth == names[1], scores[:, 1])
        else:
            value = skm.roc_auc_score(truth, scores, multi_class="ovr", labels=names)
    except ValueError as exc:  # e.g. a class of the model absent from the labels
        return Figure(
            WHOLE_MODEL, PERFORMANCE, "roc_auc", None, len(kept), details | {"reason": str(exc)}
        )
    return Figure(WHOLE_MODEL, PERFORMANCE, "roc_auc", float(value), len(kept), details)


def regression(truth: Sequence[Any], predicted: Sequence[Any]) -> list[Figure]:
    rows = len(truth)
    if rows == 0:
        return []
    y_true = np.asarray(truth, dtype=np.float64)
    y_pred = np.asarray(predicted, dtype=np.float64)
    details = {"labelled_rows": rows}
    r2: float | None = float(skm.r2_score(y_true, y_pred)) if rows >= 2 else None
    return [
        Figure(
            WHOLE_MODEL,
            PERFORMANCE,
            "mae",
            float(skm.mean_absolute_error(y_true, y_pred)),
            rows,
            details,
        ),
        Figure(
            WHOLE_MODEL,
            PERFORMANCE,
            "rmse",
            float(skm.root_mean_squared_error(y_true, y_pred)),
            rows,
            details,
        ),
        Figure(
            WHOLE_MODEL,
            PERFORMANCE,
            "r2",
            r2,
            rows,
            details if r2 is not None else details | {"reason": "needs two rows"},
        ),
    ]
