"""Data-quality gates: fresh data against the champion's feature schema and training profile.

A profile describes the data the champion learnt from: per feature the share
missing, range, mean and spread; the target's class shares (or mean and
spread); and the usual label noise (how often out-of-fold predictions of the
champion's own recipe disagree with the labels). Fresh data that drifts too
far from it is refused before any candidate is fitted, so a poisoned or
broken extract cannot produce a model. The thresholds are deliberately coarse:
they catch broken and poisoned data, not ordinary seasonal drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MIN_ROWS = 30
MAX_MISSING_INCREASE = 0.05  # share of rows, absolute
MAX_OUT_OF_RANGE = 0.05  # share of values outside the profile's range (+10% margin)
MAX_MEAN_SHIFT = 1.0  # in the profile's standard deviations
MAX_CLASS_SHIFT = 0.10  # total variation distance between class shares
MAX_LABEL_NOISE_INCREASE = 0.03  # absolute share of contradicted labels
NUMERIC = ("float64", "int64", "bool")


@dataclass(frozen=True)
class Schema:
    """What the champion expects: feature names and dtypes in order, the target column."""

    features: list[dict[str, str]]
    target: str
    classification: bool

    @property
    def names(self) -> list[str]:
        return [f["name"] for f in self.features]


def schema_problems(frame: pd.DataFrame, schema: Schema) -> list[str]:
    """Columns missing or of the wrong kind; too few rows."""
    problems = [
        f"column {n!r} is missing" for n in [*schema.names, schema.target] if n not in frame
    ]
    for feature in schema.features:
        name = feature["name"]
        if name in frame and feature["dtype"] in NUMERIC and not _numeric(frame[name]):
            problems.append(f"feature {name!r} should be numeric ({feature['dtype']})")
    if len(frame) < MIN_ROWS:
        problems.append(f"only {len(frame)} rows; at least {MIN_ROWS} are needed")
    return problems


def _numeric(column: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))


def build_profile(frame: pd.DataFrame, schema: Schema, label_noise: float | None) -> dict[str, Any]:
    """The profile of `frame` (the champion's training data, or the first data read)."""
    features = {}
    for feature in schema.features:
        column = frame[feature["name"]]
        entry: dict[str, Any] = {"missing": float(column.isna().mean())}
        if feature["dtype"] in NUMERIC and _numeric(column):
            values = column.dropna().astype(float)
            entry |= {
                "min": float(values.min()),
                "max": float(values.max()),
                "mean": float(values.mean()),
                "std": float(values.std(ddof=0)),
            }
        features[feature["name"]] = entry
    return {
        "rows": len(frame),
        "features": features,
        "target": _target_profile(frame[schema.target], schema.classification),
        "label_noise": label_noise,
    }


def _target_profile(target: pd.Series, classification: bool) -> dict[str, Any]:
    values = target.dropna()
    if classification:
        shares = values.astype(str).value_counts(normalize=True)
        return {"classes": {str(k): float(v) for k, v in shares.items()}}
    numbers = values.astype(float)
    return {"mean": float(numbers.mean()), "std": float(numbers.std(ddof=0))}


def quality_problems(frame: pd.DataFrame, schema: Schema, profile: dict[str, Any]) -> list[str]:
    """Feature and target drift beyond the coarse thresholds above."""
    problems: list[str] = []
    for name, expected in profile.get("features", {}).items():
        if name in frame:
            problems += _feature_problems(name, frame[name], expected)
    problems += _target_problems(frame[schema.target], schema.classification, profile["target"])
    return problems


def _feature_problems(name: str, column: pd.Series, expected: dict[str, Any]) -> list[str]:
    problems = []
    missing = float(column.isna().mean())
    if missing > expected["missing"] + MAX_MISSING_INCREASE:
        problems.append(
            f"feature {name!r}: {missing:.1%} missing, profile {expected['missing']:.1%}"
        )
    if "mean" not in expected or not _numeric(column):
        return problems
    values = column.dropna().astype(float)
    if values.empty:
        return problems
    margin = 0.1 * (expected["max"] - expected["min"])
    outside = float(
        ((values < expected["min"] - margin) | (values > expected["max"] + margin)).mean()
    )
    if outside > MAX_OUT_OF_RANGE:
        problems.append(f"feature {name!r}: {outside:.1%} of values outside the profile's range")
    spread = expected["std"] or 1.0
    shift = abs(float(values.mean()) - expected["mean"]) / spread
    if shift > MAX_MEAN_SHIFT:
        problems.append(
            f"feature {name!r}: mean moved {shift:.1f} standard deviations from the profile"
        )
    return problems


def _target_problems(
    target: pd.Series, classification: bool, expected: dict[str, Any]
) -> list[str]:
    fresh = _target_profile(target, classification)
    if classification:
        names = set(fresh["classes"]) | set(expected["classes"])
        distance = 0.5 * sum(
            abs(fresh["classes"].get(n, 0.0) - expected["classes"].get(n, 0.0)) for n in names
        )
        if distance > MAX_CLASS_SHIFT:
            return [f"target: class shares moved by {distance:.1%} from the profile"]
        return []
    shift = abs(fresh["mean"] - expected["mean"]) / (expected["std"] or 1.0)
    if shift > MAX_MEAN_SHIFT:
        return [f"target: mean moved {shift:.1f} standard deviations from the profile"]
    return []


def label_noise_problem(noise: float | None, profile: dict[str, Any]) -> str | None:
    """Labels contradicting the champion's recipe far more often than usual: flipped labels."""
    usual = profile.get("label_noise")
    if noise is None or usual is None or noise <= usual + MAX_LABEL_NOISE_INCREASE:
        return None
    return (
        f"labels: {noise:.1%} contradict out-of-fold predictions, profile {usual:.1%} "
        "(flipped or corrupted labels?)"
    )


def measure_label_noise(
    fit_predict_oof: Callable[[], np.ndarray], labels: pd.Series, classification: bool
) -> float | None:
    """Share of labels that out-of-fold predictions contradict (classifiers only)."""
    if not classification:
        return None
    predictions = fit_predict_oof()
    return float(np.mean(predictions.astype(str) != labels.to_numpy().astype(str)))
