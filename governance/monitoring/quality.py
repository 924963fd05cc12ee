"""Data quality of one input column in a window, against its reference profile: the
share of missing values, of numbers outside the reference range, and of categories
the reference never saw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from governance.monitoring.figures import MISSING, OUT_OF_RANGE, QUALITY, UNSEEN, Figure


def numeric_quality(feature: str, reference: Mapping[str, Any], values: np.ndarray) -> list[Figure]:
    """`values`: every row's value as float64, NaN where missing."""
    rows = int(values.size)
    if rows == 0:
        return []
    present = values[~np.isnan(values)]
    figures = [_missing(feature, reference, rows - int(present.size), rows)]
    if "min" in reference and present.size:
        outside = int(np.count_nonzero((present < reference["min"]) | (present > reference["max"])))
        figures.append(
            Figure(
                feature,
                QUALITY,
                OUT_OF_RANGE,
                outside / present.size,
                int(present.size),
                {"min": reference["min"], "max": reference["max"], "outside": outside},
            )
        )
    return figures


def categorical_quality(
    feature: str, reference: Mapping[str, Any], counts: Mapping[str, int], missing: int
) -> list[Figure]:
    present = int(sum(counts.values()))
    rows = present + missing
    if rows == 0:
        return []
    figures = [_missing(feature, reference, missing, rows)]
    if present:
        known = reference.get("counts") or {}
        unseen = {c: n for c, n in counts.items() if c not in known}
        # A profile lists only categories of at least MIN_GROUP rows: a rare one of the
        # reference counts as unseen too, and its share there is said alongside.
        other = reference.get("other", 0)
        details = {
            "unseen_categories": len(unseen),
            "reference_other_share": other / reference["rows"] if reference.get("rows") else 0.0,
        }
        value = sum(unseen.values()) / present
        figures.append(Figure(feature, QUALITY, UNSEEN, value, present, details))
    return figures


def _missing(feature: str, reference: Mapping[str, Any], missing: int, rows: int) -> Figure:
    details = {"missing": missing, "reference_missing_share": reference.get("missing_share")}
    return Figure(feature, QUALITY, MISSING, missing / rows, rows, details)
