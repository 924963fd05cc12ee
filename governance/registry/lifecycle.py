"""A version's lifecycle facts: how it was made, what changed against the version it
replaces, and whether it may load under the scikit-learn version running here.

A version records its estimator's hyper-parameters (JSON-safe), the library
versions it was trained with (the skops file's metadata, else a requirements
file) and a free-text note. Its changelog compares those facts with another
version's: parameters changed, features added or removed, training data changed.

A scikit-learn minor release may change what a fitted estimator computes (or
whether it still loads at all), so a version trained under another minor
version than the running one is refused at load until `cofre models verify` has
checked it again under the running one. Patch releases are not a reason. To
compare what it answers then with what it answered at publish, a version keeps
a reference sample: rows generated within the ranges the estimator itself has
fitted (never a person's, unlike its reference data) and its answers on them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn

from governance.errors import FieldError, InvalidInput, Unverified
from governance.registry import compiled
from governance.registry.records import ModelVersion

RUNNING_SKLEARN: str = sklearn.__version__
SKLEARN = "scikit-learn"
SKOPS = "skops"
_MINOR = re.compile(r"^(\d+)\.(\d+)")
_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")
MAX_REQUIREMENTS = 2000
FIELD = "requirements"
# A reference sample holds at most this many rows, and this many feature values.
SAMPLE_ROWS = 100
SAMPLE_CELLS = 20_000
SAMPLED_DTYPES = ("float64", "int64")


@dataclass(frozen=True)
class Made:
    """What a comparison needs of one version (None: not recorded for it)."""

    version: int
    params: dict[str, Any] | None
    features: list[str]
    training_data_sha256: str | None


# -- what a version records -----------------------------------------------------------
def json_safe(value: Any) -> Any:
    """A hyper-parameter as JSON: numbers, text, lists and mappings as they are; numpy
    values as Python's; estimators, functions and other objects by their type's name
    (never their repr, which may hold a memory address that differs at every load)."""
    if isinstance(value, np.generic):  # before float: numpy's float64 is one
        return json_safe(value.item())
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    kind = value if isinstance(value, type) or callable(value) else type(value)
    name = getattr(kind, "__qualname__", None) or getattr(kind, "__name__", type(kind).__name__)
    module = getattr(kind, "__module__", None) or type(kind).__module__
    return f"{module}.{name}"


def params_of(estimator: Any) -> dict[str, Any]:
    """The estimator's hyper-parameters, nested ones included (`step__param`)."""
    get_params = getattr(estimator, "get_params", None)
    if not callable(get_params):
        return {}
    safe = json_safe(get_params(deep=True))
    return safe if isinstance(safe, dict) else {}


def parse_requirements(text: str) -> dict[str, str]:
    """Library versions from a requirements file (`pip freeze`): `NAME==VERSION` lines;
    comments, blank lines and pip options (`-e`, `--hash`...) are skipped, and any
    other line is refused: a range says nothing of the version a model was trained
    with."""
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines()[:MAX_REQUIREMENTS], start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        match = _PINNED.match(line)
        if match is None:
            raise InvalidInput(
                f"requirements line {number} is not NAME==VERSION: {line[:80]!r}",
                [FieldError(FIELD, "pinned NAME==VERSION lines, as `pip freeze` writes them")],
            )
        found[distribution_name(match[1])] = match[2]
    return found


def distribution_name(name: str) -> str:
    """PEP 503 normal form: `Scikit_Learn` and `scikit-learn` are one library."""
    return re.sub(r"[-_.]+", "-", name).lower()


def libraries(
    sklearn_version: str | None, skops_version: str | None, requirements: dict[str, str]
) -> dict[str, str]:
    """The requirements given, with what the skops file itself says winning: it was
    written by the very libraries that trained the estimator."""
    found = dict(requirements)
    if sklearn_version:
        found[SKLEARN] = sklearn_version
    if skops_version:
        found[SKOPS] = skops_version
    return dict(sorted(found.items()))


# -- what changed ---------------------------------------------------------------------
def made(version: ModelVersion) -> Made:
    """The facts of a stored version a changelog compares."""
    facts = version.facts
    origin = getattr(version, "origin", None)
    details = origin.details if origin is not None else {}
    return Made(
        version=version.version,
        params=facts.params if facts is not None else None,
        features=[f["name"] for f in version.features],
        training_data_sha256=details.get("training_data_sha256"),
    )


def changelog(before: Made, after: Made) -> dict[str, Any]:
    """What changed from `before` to `after`; `params_changed` is None when either
    version predates recorded parameters (nothing to compare with)."""
    return {
        "from_version": before.version,
        "to_version": after.version,
        "params_changed": _params_changed(before.params, after.params),
        "features_added": [n for n in after.features if n not in before.features],
        "features_removed": [n for n in before.features if n not in after.features],
        "training_data_changed": _data_changed(before, after),
        "training_data_sha256": {
            "from": before.training_data_sha256,
            "to": after.training_data_sha256,
        },
    }


def _params_changed(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> list[dict[str, Any]] | None:
    if before is None or after is None:
        return None
    names = sorted(set(before) | set(after))
    return [
        {"name": n, "from": before.get(n), "to": after.get(n)}
        for n in names
        if n not in before or n not in after or before[n] != after[n]
    ]


def _data_changed(before: Made, after: Made) -> bool | None:
    """None when either version's training data is unknown: not a change, not the same."""
    if before.training_data_sha256 is None or after.training_data_sha256 is None:
        return None
    return before.training_data_sha256 != after.training_data_sha256


def replaced(versions: list[ModelVersion], production: int | None) -> ModelVersion | None:
    """The version a new one would replace: production's target, else the latest."""
    chosen = next((v for v in versions if v.version == production), None)
    return chosen or (max(versions, key=lambda v: v.version) if versions else None)


# -- the reference sample ----------------------------------------------------------------
def reference_sample(
    estimator: Any, features: Sequence[dict[str, str]], allow_missing: bool, has_proba: bool
) -> dict[str, Any] | None:
    """Generated rows and the estimator's answers on them: {"rows", "outputs", "proba"}.
    None for a schema with text or boolean features (no range to draw from) or an
    estimator that does not answer the rows."""
    if not features or any(f["dtype"] not in SAMPLED_DTYPES for f in features):
        return None
    width = len(features)
    count = max(compiled.MIN_ROWS, min(SAMPLE_ROWS, SAMPLE_CELLS // width))
    rows = compiled.generated_sample(estimator, width, allow_missing)[:count]
    try:
        outputs, proba = _answers(estimator, rows, [f["name"] for f in features], has_proba)
        return {
            "rows": _cells(rows),
            "outputs": json_safe(outputs),
            "proba": None if proba is None else _cells(proba),
        }
    except Exception:  # whatever the estimator raises: it keeps no sample, it still publishes
        return None


def compare_sample(
    estimator: Any, sample: dict[str, Any], features: Sequence[dict[str, str]], classifier: bool
) -> tuple[dict[str, Any], list[str]]:
    """The estimator's answers now against those in its reference sample: the figures
    and the problems (labels must be identical, probabilities and regression outputs
    within the compiled-inference proof's tolerances)."""
    rows = np.array(sample["rows"], dtype=np.float64)  # None cells: NaN again
    names = [f["name"] for f in features]
    outputs, proba = _answers(estimator, rows, names, sample["proba"] is not None)
    figures: dict[str, Any] = {"against": "sample", "rows": len(rows), "sample": "generated"}
    problems: list[str] = []
    if classifier:
        expected = np.array(sample["outputs"], dtype=object)
        now = np.array(json_safe(outputs), dtype=object)
        mismatches = (
            len(rows)
            if now.shape != expected.shape
            else int(compiled.rows_differ(now, expected).sum())
        )
        figures["label_mismatches"] = mismatches
        if mismatches:
            problems.append(f"{mismatches} of {len(rows)} labels differ from those at publish")
    else:
        gap = compiled.relative_gap(np.asarray(outputs, np.float64), _numbers(sample["outputs"]))
        figures["max_relative_diff"] = gap
        if not gap <= compiled.REGRESSION_TOLERANCE:
            problems.append(f"outputs differ by {gap:.3g} relative from those at publish")
    if proba is not None:
        expected_proba = np.array(sample["proba"], dtype=np.float64)
        gap = (
            float(np.max(np.abs(proba - expected_proba)))
            if proba.shape == expected_proba.shape
            else math.inf
        )
        figures["max_proba_diff"] = gap
        if not gap <= compiled.PROBA_TOLERANCE:
            problems.append(f"probabilities differ by up to {gap:.3g} from those at publish")
    return figures, problems


def _answers(
    estimator: Any, rows: np.ndarray, names: list[str], with_proba: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    frame = compiled.as_fitted(estimator, rows, names)
    outputs = np.asarray(estimator.predict(frame))
    proba = np.asarray(estimator.predict_proba(frame), np.float64) if with_proba else None
    return outputs, proba


def _cells(values: np.ndarray) -> list[Any]:
    """A float array as JSON lists, missing values as null (JSON has no NaN)."""
    return [[None if math.isnan(v) else v for v in row] for row in values.tolist()]


def _numbers(values: list[Any]) -> np.ndarray:
    """Stored outputs as floats: null and "nan" (how json_safe keeps NaN) as NaN."""
    array = np.array(values, dtype=object)
    if not array.size:
        return array.astype(np.float64)
    number = np.vectorize(lambda v: math.nan if v is None else float(v), otypes=[np.float64])
    return np.asarray(number(array), dtype=np.float64)


# -- may it load here ---------------------------------------------------------------------
def minor(version: str | None) -> tuple[int, int] | None:
    """(major, minor) of a version text; None when it says none."""
    match = _MINOR.match(version or "")
    return (int(match[1]), int(match[2])) if match else None


def verified_here(version: ModelVersion, running: str = RUNNING_SKLEARN) -> bool:
    """Whether a verification under the running minor version is recorded."""
    here = minor(running)
    return any(minor(v.sklearn_version) == here for v in version.verifications)


def load_refusal(version: ModelVersion, running: str = RUNNING_SKLEARN) -> str | None:
    """Why `version` may not load under scikit-learn `running`, in one line; None
    when it may (same minor version, verified under it, or trained under a version
    not recorded)."""
    trained = minor(version.sklearn_version)
    if trained is None or trained == minor(running) or verified_here(version, running):
        return None
    ref = f"{version.model.name}:{version.version}"
    return (
        f"model {version.model.name!r} version {version.version} was trained with "
        f"scikit-learn {version.sklearn_version} and this appliance runs {running}; "
        f"check it with `cofre models verify {ref}` before it serves"
    )


def refuse_unverified(version: ModelVersion, running: str = RUNNING_SKLEARN) -> None:
    reason = load_refusal(version, running)
    if reason is not None:
        raise Unverified(reason)
