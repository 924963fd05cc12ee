"""Explaining one decision: each feature's contribution to one row's model output.

`explain(estimator, feature_names, rows, baseline=None)` answers one
RowExplanation per row, with the method named, the output explained and its
space, the base value and the contributions, which add up to that output
(contributions + base value = output, to float precision):

* **linear** models, bare or at the end of a pipeline whose earlier steps keep
  one column per input feature (scalers, imputers): exact. In the model's link
  space (the decision function: log-odds for a logistic regression), feature
  i contributes w_i * (z_i - z̄_i), where z is the row as the final step sees
  it (standardised, for a pipeline with a StandardScaler) and z̄ the baseline
  seen the same way; the base value is w·z̄ + b.
* **tree ensembles** (decision trees, random forests, extra trees, gradient
  boosting): TreeSHAP from the `shap` package, path-dependent (exact Shapley
  values of the trees' own expectation, no background data needed), in the
  trees' raw output space (probability for forests, log-odds for boosting).
* **anything else**: Shapley values of the model's output (probability of the
  decided class, else the decision function, else the prediction) against one
  baseline row: computed exactly (shap's ExactExplainer) up to 12 features,
  else by antithetic permutation sampling (shap's PermutationExplainer), whose
  values add up exactly too. Deterministic (fixed seed).

The baseline is the training mean when the estimator carries it (a
StandardScaler first in the pipeline), else the `baseline` given (a reference
profile's means), else zero; each explanation says which. `shap` is imported
only when a tree or agnostic explanation is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from governance.errors import InvalidInput

EXACT_MAX_FEATURES = 12
SEED = 0
_TREE_MODULES = (
    "sklearn.tree",
    "sklearn.ensemble._forest",
    "sklearn.ensemble._gb",
    "sklearn.ensemble._hist_gradient_boosting",
)


@dataclass(frozen=True)
class Baseline:
    """Feature values to explain against, and where they come from."""

    values: Mapping[str, float]
    source: str


@dataclass(frozen=True)
class RowExplanation:
    method: str
    output: float
    output_space: str
    target: Any
    base_value: float
    contributions: dict[str, float]
    baseline: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "output": self.output,
            "output_space": self.output_space,
            "target": self.target,
            "base_value": self.base_value,
            "contributions": self.contributions,
            "baseline": self.baseline,
        }


def explain(
    estimator: Any,
    feature_names: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    baseline: Baseline | None = None,
) -> list[RowExplanation]:
    """One explanation per row (rows as {feature: value}, as the audit records them)."""
    names = list(feature_names)
    if not rows:
        return []
    frame = pd.DataFrame([[row[n] for n in names] for row in rows], columns=names).infer_objects()
    head, final = _split(estimator)
    inner = _inner_features(head, frame, names)
    if inner is not None and _is_linear(final):
        return _linear(estimator, head, final, frame, inner, names, baseline)
    if inner is not None and _is_tree(final):
        explained = _tree(estimator, final, frame, inner, names)
        if explained is not None:
            return explained
    return _agnostic(estimator, frame, names, baseline)


# -- shared ---------------------------------------------------------------------------
def _split(estimator: Any) -> tuple[Any | None, Any]:
    """(every step but the last, or None; the last step)."""
    if hasattr(estimator, "steps") and len(estimator.steps) > 1:
        return estimator[:-1], estimator[-1]
    if hasattr(estimator, "steps"):
        return None, estimator[-1]
    return None, estimator


def _model_input(estimator: Any, frame: pd.DataFrame) -> Any:
    """The frame as the estimator was fitted: named columns, or a bare array."""
    if hasattr(estimator, "feature_names_in_"):
        return frame
    return frame.to_numpy()


def _inner_features(head: Any | None, frame: pd.DataFrame, names: list[str]) -> np.ndarray | None:
    """The rows as the final step sees them, when the earlier steps keep one column per
    input feature in order (so a contribution belongs to one input feature); else None."""
    if head is None:
        return np.asarray(frame.to_numpy(), dtype=np.float64) if _numeric(frame) else None
    try:
        out_names = list(head.get_feature_names_out())
    except (AttributeError, ValueError, TypeError):
        return None
    if out_names != names:
        return None
    inner = head.transform(_model_input(head, frame))
    return np.asarray(inner.toarray() if hasattr(inner, "toarray") else inner, dtype=np.float64)


def _numeric(frame: pd.DataFrame) -> bool:
    return all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes)


def _training_mean(head: Any | None, final: Any, names: list[str]) -> np.ndarray | None:
    first = head[0] if head is not None else None
    mean = getattr(first, "mean_", None)
    if mean is not None and getattr(first, "with_mean", False) and len(mean) == len(names):
        return np.asarray(mean, dtype=np.float64)
    return None


def _baseline_row(
    head: Any | None, final: Any, names: list[str], given: Baseline | None
) -> tuple[np.ndarray | None, str]:
    """The baseline in input space (None: zero where the final step sees the row)."""
    mean = _training_mean(head, final, names)
    if mean is not None:
        return mean, "training mean (the pipeline's StandardScaler)"
    if given is not None:
        missing = [n for n in names if n not in given.values]
        if missing:
            raise InvalidInput(f"the baseline has no value for {missing[0]!r}")
        return np.array([float(given.values[n]) for n in names]), given.source
    return None, "zero (no training mean or reference profile known for this version)"


def _target_index(final: Any, estimator: Any, model_input: Any) -> tuple[list[int], list[Any]]:
    """Per row: the index of the decided class in classes_, and its label."""
    labels = [_plain(label) for label in estimator.predict(model_input)]
    classes = [_plain(label) for label in final.classes_]
    return [classes.index(label) for label in labels], list(labels)


# -- linear -------------------------------------------------------------------------------
def _is_linear(final: Any) -> bool:
    coef = getattr(final, "coef_", None)
    return (
        coef is not None
        and hasattr(final, "intercept_")
        and np.ndim(coef) in (1, 2)
        and type(final).__module__.startswith(("sklearn.linear_model", "sklearn.svm"))
        and (hasattr(final, "decision_function") or not hasattr(final, "classes_"))
    )


def _linear(
    estimator: Any,
    head: Any | None,
    final: Any,
    frame: pd.DataFrame,
    inner: np.ndarray,
    names: list[str],
    given: Baseline | None,
) -> list[RowExplanation]:
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=np.float64))
    base_row, source = _baseline_row(head, final, names, given)
    z_bar = np.zeros(len(names)) if base_row is None else _inner_of(head, base_row, names)
    targets, labels, spaces = _linear_targets(estimator, final, frame, coef)
    out = []
    for index, z in enumerate(inner):
        k = targets[index]
        contributions = coef[k] * (z - z_bar)
        base = float(coef[k] @ z_bar + intercept[k if len(intercept) > 1 else 0])
        out.append(
            RowExplanation(
                method="linear (exact: coefficient x deviation from the baseline)",
                output=float(contributions.sum() + base),
                output_space=spaces[index],
                target=labels[index],
                base_value=base,
                contributions=dict(zip(names, map(float, contributions), strict=True)),
                baseline=source,
            )
        )
    return out


def _inner_of(head: Any | None, row: np.ndarray, names: list[str]) -> np.ndarray:
    if head is None:
        return row
    frame = pd.DataFrame([row], columns=names)
    return np.asarray(head.transform(_model_input(head, frame)), dtype=np.float64)[0]


def _linear_targets(
    estimator: Any, final: Any, frame: pd.DataFrame, coef: np.ndarray
) -> tuple[list[int], list[Any], list[str]]:
    rows = len(frame)
    if not hasattr(final, "classes_"):
        return [0] * rows, [None] * rows, ["predicted value"] * rows
    classes = [_plain(label) for label in final.classes_]
    logistic = type(final).__name__ == "LogisticRegression"
    if coef.shape[0] == 1:  # binary: one decision function, for the second class
        space = f"{'log-odds' if logistic else 'decision function'} of class {classes[1]!r}"
        return [0] * rows, [classes[1]] * rows, [space] * rows
    indices, labels = _target_index(final, estimator, _model_input(estimator, frame))
    word = "logit (softmax input)" if logistic else "decision function"
    return indices, labels, [f"{word} of class {label!r}" for label in labels]


# -- trees --------------------------------------------------------------------------------
def _is_tree(final: Any) -> bool:
    module = type(final).__module__
    return any(module == m or module.startswith(m + ".") for m in _TREE_MODULES)


def _tree(
    estimator: Any, final: Any, frame: pd.DataFrame, inner: np.ndarray, names: list[str]
) -> list[RowExplanation] | None:
    import shap  # heavy (numba): only when a tree is explained

    try:
        explainer = shap.TreeExplainer(final)
        values = np.asarray(explainer.shap_values(inner))
    except Exception:  # shap refuses some ensembles (multiclass boosting): go agnostic
        return None
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    model_input = _model_input(estimator, frame)
    if values.ndim == 3:  # one output per class: explain the decided class's probability
        indices, labels = _target_index(final, estimator, model_input)
        spaces = [f"probability of class {label!r}" for label in labels]
        picked = [values[i, :, k] for i, k in enumerate(indices)]
        bases = [float(expected[k]) for k in indices]
    else:
        labels, spaces = _single_output(final, len(frame))
        picked = list(values)
        bases = [float(expected[0])] * len(frame)
    return [
        RowExplanation(
            method="TreeSHAP (shap, path-dependent)",
            output=float(np.sum(phi) + bases[i]),
            output_space=spaces[i],
            target=labels[i],
            base_value=bases[i],
            contributions=dict(zip(names, map(float, phi), strict=True)),
            baseline="the trees' own expectation (training cover)",
        )
        for i, phi in enumerate(picked)
    ]


def _single_output(final: Any, rows: int) -> tuple[list[Any], list[str]]:
    if hasattr(final, "classes_"):
        label = _plain(final.classes_[-1])
        return [label] * rows, [f"log-odds of class {label!r}"] * rows
    return [None] * rows, ["predicted value"] * rows


# -- model-agnostic ---------------------------------------------------------------------
def _agnostic(
    estimator: Any, frame: pd.DataFrame, names: list[str], given: Baseline | None
) -> list[RowExplanation]:
    head, final = _split(estimator)
    outputs, columns, labels, spaces = _agnostic_outputs(estimator, frame, names)
    out = []
    for index in range(len(frame)):
        row = frame.iloc[[index]]
        background, source = _agnostic_background(head, final, names, given, row)
        method, phi, base = _shapley(outputs, columns[index], row, background, names)
        out.append(
            RowExplanation(
                method=method,
                output=float(phi.sum() + base),
                output_space=spaces[index],
                target=labels[index],
                base_value=base,
                contributions=dict(zip(names, map(float, phi), strict=True)),
                baseline=source,
            )
        )
    return out


def _shapley(
    outputs: Outputs, column: int, row: pd.DataFrame, background: list[Any], names: list[str]
) -> tuple[str, np.ndarray, float]:
    """Shapley values of one output column for one row against one background row.

    shap's maskers take numbers only, so each non-numeric feature travels as the
    index of its value among (the row's, the background's) and is decoded before
    the model sees it."""
    import shap  # heavy (numba): only when needed

    values = list(row.iloc[0])
    choices = [
        None if _is_number(v) and _is_number(b) else [v, b]
        for v, b in zip(values, background, strict=True)
    ]

    def encode(values: list[Any], pick: int) -> list[Any]:
        return [v if c is None else pick for v, c in zip(values, choices, strict=True)]

    x = np.array([encode(values, 0)], dtype=np.float64)
    masker = shap.maskers.Independent(
        np.array([encode(background, 1)], dtype=np.float64), max_samples=1
    )

    def function(encoded: np.ndarray) -> np.ndarray:
        decoded = [
            [v if c is None else c[round(v)] for v, c in zip(line, choices, strict=True)]
            for line in np.asarray(encoded)
        ]
        return outputs(np.array(decoded, dtype=object))[:, column]

    if len(names) <= EXACT_MAX_FEATURES:
        result = shap.explainers.Exact(function, masker)(x, silent=True)
        method = "Shapley values (shap ExactExplainer, one baseline row)"
    else:
        explainer = shap.explainers.Permutation(function, masker, seed=SEED)
        result = explainer(x, max_evals=max(500, 2 * len(names) + 1), silent=True)
        method = "Shapley values (shap PermutationExplainer, one baseline row)"
    phi = np.asarray(result.values[0], dtype=np.float64)
    return method, phi, float(np.atleast_1d(result.base_values)[0])


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (labels go into JSON and into sentences)."""
    return value.item() if isinstance(value, np.generic) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)


Outputs = Callable[[np.ndarray], np.ndarray]


def _agnostic_outputs(
    estimator: Any, frame: pd.DataFrame, names: list[str]
) -> tuple[Outputs, list[int], list[Any], list[str]]:
    """f(rows) -> every output column; per row the column to explain, the decided label
    and the output space."""
    rows = len(frame)

    def as_input(values: np.ndarray) -> Any:
        return _model_input(estimator, pd.DataFrame(values, columns=names).infer_objects())

    def outputs_of(method: Callable[[Any], Any]) -> Outputs:
        return lambda values: np.asarray(method(as_input(values)), dtype=np.float64).reshape(
            len(values), -1
        )

    classes = [_plain(label) for label in getattr(estimator, "classes_", [])]
    if classes and hasattr(estimator, "predict_proba"):
        labels = [_plain(v) for v in estimator.predict(_model_input(estimator, frame))]
        columns = [classes.index(label) for label in labels]
        spaces = [f"probability of class {label!r}" for label in labels]
        return outputs_of(estimator.predict_proba), columns, labels, spaces
    if classes and hasattr(estimator, "decision_function"):
        space = f"decision function of class {classes[-1]!r}"
        return (
            outputs_of(estimator.decision_function),
            [0] * rows,
            [classes[-1]] * rows,
            [space] * rows,
        )
    return outputs_of(estimator.predict), [0] * rows, [None] * rows, ["predicted value"] * rows


def _one_column(outputs: Outputs, column: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda values: outputs(np.asarray(values))[:, column]


def _agnostic_background(
    head: Any | None, final: Any, names: list[str], given: Baseline | None, row: pd.DataFrame
) -> tuple[list[Any], str]:
    base, source = _baseline_row(head, final, names, given)
    if base is not None:
        return [float(v) for v in base], source
    values = list(row.iloc[0])
    if all(_is_number(v) for v in values):
        return [0.0] * len(values), source
    text = "zero for numeric features, the row's own value for the others (no reference profile)"
    return [0.0 if _is_number(v) else v for v in values], text
