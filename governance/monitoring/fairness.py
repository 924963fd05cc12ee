"""Fairness across the groups feedback names (`"group": "..."` on a label): per group
the selection rate (share of rows the version gave the positive class) and the
true-positive rate (scikit-learn's recall on the group's rows), and the largest
gap between two groups of each. Binary classifiers only: the positive class is the
second of the version's classes, as for the performance metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from governance.monitoring.figures import FAIRNESS, GROUP, Figure


def fairness(
    truth: Sequence[Any],
    predicted: Sequence[Any],
    groups: Sequence[str | None],
    classes: Sequence[Any],
) -> list[Figure]:
    if len(classes) != 2:
        return []
    positive = str(classes[1])
    rows = [i for i, g in enumerate(groups) if g is not None]
    names = sorted({str(groups[i]) for i in rows})
    if len(names) < 2:
        return []
    y_true = np.array([str(truth[i]) == positive for i in rows])
    y_pred = np.array([str(predicted[i]) == positive for i in rows])
    group = np.array([str(groups[i]) for i in rows], dtype=object)
    per_group: dict[str, dict[str, Any]] = {}
    for name in names:
        mask = group == name
        actual = y_true[mask]
        per_group[name] = {
            "rows": int(mask.sum()),
            "selection_rate": float(y_pred[mask].mean()),
            "tpr": float(skm.recall_score(actual, y_pred[mask], zero_division=0))
            if actual.any()
            else None,
        }
    details = {"groups": per_group, "positive_class": positive}
    return [
        Figure(
            GROUP,
            FAIRNESS,
            "selection_rate_gap",
            _gap(per_group, "selection_rate"),
            len(rows),
            details,
        ),
        Figure(GROUP, FAIRNESS, "tpr_gap", _gap(per_group, "tpr"), len(rows), details),
    ]


def _gap(per_group: dict[str, dict[str, Any]], rate: str) -> float | None:
    values = [g[rate] for g in per_group.values() if g[rate] is not None]
    return float(max(values) - min(values)) if len(values) >= 2 else None
