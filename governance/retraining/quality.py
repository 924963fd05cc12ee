"""Data-quality gates: fresh data against the champion's feature schema and training profile.

A profile describes the data the champion learnt from: per feature the share
missing, range, mean and spread; the target's class shares (or mean and
spread); and the usual label noise (see below). Fresh data that drifts too
far from it is refused before any candidate is fitted, so a poisoned or
broken extract cannot produce a model. The thresholds are deliberately coarse:
they catch broken and poisoned data, not ordinary seasonal drift.

Every share is measured on the data as read, before rows with a missing value
are dropped for fitting (else a column 30 % empty would look complete). Data a
classifier cannot be fitted on (one class, a class of one row, too few complete
rows) is a gate refusal too, not a failed fit.

Label noise is the share of labels *confidently contradicted* by out-of-fold
predictions of the champion's recipe refitted on the data: another class got at
least CONFIDENCE of the probability. Plain disagreement would count the
recipe's own mistakes as noise, so clean data would look noisy whenever the
recipe is weak (a linear model on an interaction concept disagrees with half of
the clean labels). A weak recipe is unsure where it is wrong, its
probabilities stay near the class shares, and those rows do not count; a recipe
that fits the concept is sure, and a flipped label away from the boundary
counts. It costs no fit beyond the three folds; a strong neutral model was the
alternative, but it disagrees with clean labels wherever the concept is hard
too, and costs more fits. The price: under a weak recipe the gate also sees
fewer flipped labels (it weakens with the recipe instead of misfiring). A recipe
without predict_proba falls back to plain disagreement, and says so.
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
MAX_LABEL_NOISE_INCREASE = 0.02  # absolute share of confidently contradicted labels
CONFIDENCE = 0.8  # probability another class must get for a label to count as contradicted
MIN_CLASS_ROWS = 2  # per class, to split and cross-validate at all
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


def build_profile(
    frame: pd.DataFrame, schema: Schema, label_noise: tuple[float, str] | None
) -> dict[str, Any]:
    """The profile of `frame` as read (the champion's training data, or the first data)."""
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
        "label_noise": label_noise[0] if label_noise else None,
        "label_noise_method": label_noise[1] if label_noise else None,
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


def fit_problems(usable: pd.DataFrame, schema: Schema) -> list[str]:
    """Why no model can be fitted on the usable rows (complete, labelled), if it cannot."""
    if len(usable) < MIN_ROWS:
        return [f"only {len(usable)} usable rows (complete and labelled); at least {MIN_ROWS}"]
    if not schema.classification:
        return []
    counts = usable[schema.target].astype(str).value_counts()
    if len(counts) < 2:
        return [
            f"target: a single class ({counts.index[0]!r}) in {len(usable)} rows; "
            "a classifier needs at least two"
        ]
    scarce = [f"{name!r} ({n})" for name, n in counts.items() if n < MIN_CLASS_ROWS]
    if scarce:
        return [f"target: classes with fewer than {MIN_CLASS_ROWS} rows: {', '.join(scarce)}"]
    return []


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold predictions of the champion's recipe: class probabilities (columns in
    `classes` order) or, for a recipe without predict_proba, the predicted labels."""

    classes: list[Any]
    probabilities: np.ndarray | None = None
    predictions: np.ndarray | None = None

    @property
    def method(self) -> str:
        if self.probabilities is not None:
            return f"share of labels another class got >= {CONFIDENCE:.0%} of the probability"
        return "share of labels the predictions disagree with (the recipe has no probabilities)"


def measure_label_noise(
    fit_predict_oof: Callable[[], OutOfFold | None], labels: pd.Series, classification: bool
) -> tuple[float, str] | None:
    """(share of labels the out-of-fold predictions contradict, how it was measured);
    None for regressors and when there are too few rows per class to cross-validate."""
    if not classification:
        return None
    oof = fit_predict_oof()
    if oof is None:
        return None
    given = labels.to_numpy()
    if oof.probabilities is None:
        assert oof.predictions is not None
        return float(np.mean(oof.predictions.astype(str) != given.astype(str))), oof.method
    column = np.searchsorted(np.asarray(oof.classes), given)
    others = oof.probabilities.copy()
    others[np.arange(len(given)), column] = 0.0
    return float(np.mean(others.max(axis=1) >= CONFIDENCE)), oof.method


def label_noise_problem(noise: tuple[float, str] | None, profile: dict[str, Any]) -> str | None:
    """Labels contradicted far more often than in the profile: flipped labels."""
    usual = profile.get("label_noise")
    if noise is None or usual is None or noise[0] <= usual + MAX_LABEL_NOISE_INCREASE:
        return None
    return (
        f"labels: {noise[0]:.1%} contradict the out-of-fold predictions of the champion's "
        f"recipe refitted on this data ({noise[1]}), profile {usual:.1%} "
        "(flipped or corrupted labels?)"
    )
