"""Compiled inference: a version's estimator as ONNX, and the proof that it answers alike.

A fitted estimator is converted with skl2onnx (one float tensor in the version's
feature order, probabilities as a tensor: no ZipMap; a regressor that misses the
tolerance in 32-bit floats is tried again in 64), then run by ONNX Runtime
beside the estimator on the reference rows, or on rows generated from the
feature schema and the ranges the estimator itself has fitted. It is used only
if every label is identical, every probability within PROBA_TOLERANCE
(absolute) and every regression output within REGRESSION_TOLERANCE (relative).
The proof runs `CompiledEstimator.answer`, the very code that serves.

ONNX Runtime and skl2onnx are imported when first needed: a CLI command that
never compiles, or a worker that serves no compiled version, does not pay for
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd

RUNTIMES = ("auto", "sklearn", "onnx")
PROBA_TOLERANCE = 1e-5
REGRESSION_TOLERANCE = 1e-6
SAMPLE_ROWS = 1000
# The comparison holds at most this many values (8 MB of floats): a very wide
# schema is compared on fewer rows, never fewer than MIN_ROWS.
MAX_CELLS = 1_000_000
MIN_ROWS = 10
SEED = 0
INPUT_NAME = "input"
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Relative differences are taken against |sklearn's output|, never against less
# than this: an output of exactly zero would make any difference infinite.
_TINY = float(np.finfo(np.float64).tiny)


@dataclass(frozen=True)
class Proof:
    """What the comparison of the compiled model with its estimator found."""

    rows: int
    sample: str  # "reference" | "generated"
    precision: str  # "float32" | "float64": the model's input and arithmetic
    label_mismatches: int
    max_proba_diff: float | None  # absolute, classifiers with probabilities
    max_relative_diff: float | None  # regressors
    proba_tolerance: float
    regression_tolerance: float
    onnxruntime: str
    skl2onnx: str
    onnx: str
    passed: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Compilation:
    """An attempt: the ONNX bytes and their proof, or the reason there are none."""

    model: bytes | None
    proof: Proof | None
    reason: str

    @property
    def proven(self) -> bool:
        return self.model is not None and self.proof is not None and self.proof.passed


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


class CompiledEstimator:
    """An ONNX Runtime session answering like the estimator it was proven equal to.

    One intra-op thread: the server's parallelism is its Gunicorn workers and
    their threads, one request per thread; ONNX Runtime's default pool (one
    spinning thread per core, per session, in every worker) would fight them
    for the same cores and gains nothing on the few rows of a request.
    Session.run is thread-safe, so a worker's threads share one session.
    """

    def __init__(self, model: bytes, classes: Sequence[Any] | None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        double = self.session.get_inputs()[0].type == "tensor(double)"
        self.precision = "float64" if double else "float32"
        self.classes = np.asarray(list(classes)) if classes is not None else None
        self._index = {c: i for i, c in enumerate(classes)} if classes is not None else {}

    def fits(self, features: np.ndarray) -> bool:
        """Whether these rows survive the cast to 32-bit floats the model computes in."""
        if self.precision == "float64":
            return True
        finite = features[np.isfinite(features)]
        return bool(finite.size == 0 or np.abs(finite).max() <= FLOAT32_MAX)

    def answer(self, features: Any, with_proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(labels or outputs, probabilities) shaped as scikit-learn's predict and
        predict_proba answer them, from one run of the graph."""
        block = np.asarray(features, dtype=self.precision)
        if self.classes is None:
            (outputs, *_) = self.session.run(self.outputs[:1], {INPUT_NAME: block})
            single = outputs.ndim == 2 and outputs.shape[1] == 1  # one target: a flat array
            return (outputs.ravel() if single else outputs).astype(np.float64), None
        wanted = self.outputs[:2] if with_proba else self.outputs[:1]
        found = self.session.run(wanted, {INPUT_NAME: block})
        labels = self.classes.take([self._index[value] for value in found[0].tolist()])
        return labels, (found[1].astype(np.float64) if with_proba else None)


# -- compiling ----------------------------------------------------------------------------
def compile_estimator(
    estimator: Any,
    features: list[dict[str, str]],
    classes: list[Any] | None,
    *,
    has_proba: bool,
    allow_missing: bool = False,
    reference: Any = None,
) -> Compilation:
    """Convert and prove; never raises for an estimator that cannot be compiled."""
    dtypes = sorted({f["dtype"] for f in features} - {"float64"})
    if dtypes:
        return Compilation(
            None, None, f"only all-float feature schemas compile; this one has {', '.join(dtypes)}"
        )
    names = [f["name"] for f in features]
    sample, source = _comparison_rows(estimator, names, allow_missing, reference)
    attempt = _attempt(estimator, names, classes, has_proba, (sample, source), "float32")
    if classes is None and attempt.proof is not None and not attempt.proven:
        # A regressor may miss the relative tolerance by 32-bit arithmetic alone (a
        # linear model's terms cancelling out); in 64 bits it may not.
        retry = _attempt(estimator, names, classes, has_proba, (sample, source), "float64")
        if retry.proven:
            return retry
    return attempt


def _attempt(
    estimator: Any,
    names: list[str],
    classes: list[Any] | None,
    has_proba: bool,
    rows: tuple[np.ndarray, str],
    precision: str,
) -> Compilation:
    try:
        model = convert(estimator, len(names), has_proba and classes is not None, precision)
    except Exception as exc:  # skl2onnx raises many kinds for what it cannot convert
        return Compilation(None, None, f"skl2onnx cannot convert it: {_first_line(exc)}")
    try:
        compiled = CompiledEstimator(model, classes)
        proof = prove(estimator, compiled, rows[0], rows[1], names, has_proba)
    except Exception as exc:  # the runtime refused the graph, or it answered oddly
        return Compilation(None, None, f"ONNX Runtime could not run it: {_first_line(exc)}")
    return Compilation(model, proof, "" if proof.passed else proof.reason)


def convert(estimator: Any, width: int, probabilities: bool, precision: str = "float32") -> bytes:
    """The ONNX graph of `estimator` over one float tensor named INPUT_NAME."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    tensor = DoubleTensorType if precision == "float64" else FloatTensorType
    options = {"zipmap": False} if probabilities else None
    # Named after the class: skl2onnx's default name is a random uuid, and the same
    # estimator should give the same bytes (and sha256) every time.
    graph = convert_sklearn(
        estimator,
        name=type(estimator).__name__,
        initial_types=[(INPUT_NAME, tensor([None, width]))],
        options=options,
    )
    return bytes(graph.SerializeToString())


def graph_outputs(model: bytes) -> list[str]:
    """The names of an ONNX model's outputs, in order."""
    import onnx

    return [output.name for output in onnx.load_model_from_string(model).graph.output]


def prove(
    estimator: Any,
    compiled: CompiledEstimator,
    sample: np.ndarray,
    source: str,
    names: list[str],
    has_proba: bool,
) -> Proof:
    """Compare the compiled model with the estimator row by row on `sample`."""
    frame = as_fitted(estimator, sample, names)
    with_proba = has_proba and compiled.classes is not None
    outputs, proba = compiled.answer(sample, with_proba)
    problems: list[str] = []
    figures = _compare_outputs(outputs, np.asarray(estimator.predict(frame)), compiled, problems)
    if with_proba and proba is not None:
        expected = np.asarray(estimator.predict_proba(frame), dtype=np.float64)
        figures["max_proba_diff"] = _compare_proba(proba, expected, problems)
    return Proof(
        rows=len(sample),
        sample=source,
        precision=compiled.precision,
        proba_tolerance=PROBA_TOLERANCE,
        regression_tolerance=REGRESSION_TOLERANCE,
        passed=not problems,
        reason=("not proven equal: " + "; ".join(problems)) if problems else "",
        onnxruntime=_version("onnxruntime"),
        skl2onnx=_version("skl2onnx"),
        onnx=_version("onnx"),
        **figures,
    )


def _compare_outputs(
    outputs: np.ndarray, expected: np.ndarray, compiled: CompiledEstimator, problems: list[str]
) -> dict[str, Any]:
    """Labels must be identical; regression outputs within the relative tolerance."""
    figures: dict[str, Any] = {"label_mismatches": 0, "max_proba_diff": None}
    figures["max_relative_diff"] = None
    if outputs.shape != expected.shape:
        problems.append(f"outputs of shape {outputs.shape}, the estimator's {expected.shape}")
        figures["label_mismatches"] = len(outputs)
    elif compiled.classes is not None:
        mismatches = figures["label_mismatches"] = int(np.sum(rows_differ(outputs, expected)))
        if mismatches:
            problems.append(f"{mismatches} of {len(outputs)} labels differ")
    else:
        relative = figures["max_relative_diff"] = relative_gap(outputs, expected)
        if not relative <= REGRESSION_TOLERANCE:
            problems.append(
                f"outputs differ by {relative:.3g} relative (tolerance {REGRESSION_TOLERANCE:g})"
            )
    return figures


def _compare_proba(proba: np.ndarray, expected: np.ndarray, problems: list[str]) -> float | None:
    if proba.shape != expected.shape:
        problems.append(f"probabilities of shape {proba.shape}, expected {expected.shape}")
        return None
    gap = float(np.max(np.abs(proba - expected))) if proba.size else 0.0
    if not gap <= PROBA_TOLERANCE:
        problems.append(f"probabilities differ by up to {gap:.3g} (tolerance {PROBA_TOLERANCE:g})")
    return gap


def rows_differ(labels: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per row, whether its label (or any of its labels, multi-output) differs."""
    differs = labels != expected
    return differs.reshape(len(labels), -1).any(axis=1) if differs.ndim > 1 else differs


def relative_gap(outputs: np.ndarray, expected: np.ndarray) -> float:
    """The largest relative difference; infinite when missing values differ."""
    expected = expected.astype(np.float64)
    if not np.array_equal(np.isnan(outputs), np.isnan(expected)):
        return float("inf")
    known = ~np.isnan(expected)
    if not known.any():
        return 0.0
    gap = np.abs(outputs[known] - expected[known]) / np.maximum(np.abs(expected[known]), _TINY)
    return float(gap.max())


def as_fitted(estimator: Any, rows: np.ndarray, names: list[str]) -> Any:
    """Rows as the estimator was fitted on them: a DataFrame of named columns, else
    the bare array."""
    named = getattr(estimator, "feature_names_in_", None) is not None
    return pd.DataFrame(rows, columns=names) if named else rows


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


# -- the rows compared --------------------------------------------------------------------
def _comparison_rows(
    estimator: Any, names: list[str], allow_missing: bool, reference: Any
) -> tuple[np.ndarray, str]:
    limit = max(MIN_ROWS, MAX_CELLS // max(len(names), 1))
    if reference is not None:
        rows = reference[names] if isinstance(reference, pd.DataFrame) else reference
        return np.asarray(rows[:limit], np.float64), "reference"
    return generated_sample(estimator, len(names), allow_missing), "generated"


def generated_sample(estimator: Any, width: int, allow_missing: bool = False) -> np.ndarray:
    """SAMPLE_ROWS rows drawn uniformly within each feature's fitted range (a scaler's
    statistics, a tree's thresholds), else [-3, 3]; NaN cells when missing
    values are allowed. Deterministic (seeded)."""
    low, high = fitted_ranges(estimator, width)
    generator = np.random.default_rng(SEED)
    count = min(SAMPLE_ROWS, max(MIN_ROWS, MAX_CELLS // max(width, 1)))
    rows = generator.uniform(low, high, size=(count, width))
    if allow_missing:
        rows[generator.random(rows.shape) < 0.05] = np.nan
    return rows


def fitted_ranges(estimator: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, the interval the estimator has seen its data in, as far as it says."""
    low, high = np.full(width, -3.0), np.full(width, 3.0)
    first = estimator.steps[0][1] if hasattr(estimator, "steps") else estimator
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    for source in (_tree_ranges(final, width), _scaler_ranges(first, width)):
        if source is not None:
            known = np.isfinite(source[0]) & np.isfinite(source[1]) & (source[1] > source[0])
            low[known], high[known] = source[0][known], source[1][known]
    return low, high


def _scaler_ranges(step: Any, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    if hasattr(step, "data_min_") and hasattr(step, "data_max_"):  # MinMaxScaler
        low, high = np.asarray(step.data_min_, float), np.asarray(step.data_max_, float)
    elif hasattr(step, "mean_") and getattr(step, "scale_", None) is not None:  # StandardScaler
        centre, spread = np.asarray(step.mean_, float), np.asarray(step.scale_, float)
        low, high = centre - 3 * spread, centre + 3 * spread
    elif hasattr(step, "center_") and getattr(step, "scale_", None) is not None:  # RobustScaler
        centre, spread = np.asarray(step.center_, float), np.asarray(step.scale_, float)
        low, high = centre - 2 * spread, centre + 2 * spread
    else:
        return None
    return (low, high) if low.shape == (width,) else None


def _tree_ranges(final: Any, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    trees = [final] if hasattr(final, "tree_") else list(getattr(final, "estimators_", []))
    trees = [t for t in np.ravel(np.asarray(trees, dtype=object)) if hasattr(t, "tree_")]
    if not trees:
        return None
    low, high = np.full(width, np.inf), np.full(width, -np.inf)
    for tree in trees:
        used = tree.tree_.feature >= 0
        np.minimum.at(low, tree.tree_.feature[used], tree.tree_.threshold[used])
        np.maximum.at(high, tree.tree_.feature[used], tree.tree_.threshold[used])
    margin = np.where(np.isfinite(high - low), (high - low) * 0.1 + 1e-3, 0.0)
    return low - margin, high + margin
