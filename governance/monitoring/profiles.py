"""Reference profiles: what a version's inputs and outputs looked like before it was
watched, the baseline of every drift and data-quality figure.

A profile comes from a data file given at publish (CSV or Parquet: the features
and, optionally, the target), or, for a version published without one, from its
first N served rows (`source: served`). Layout (JSON, `format` 1):

    {"format": 1, "source": "reference" | "served", "rows": n,
     "features": {name: column}, "output": column, "target": column | null}

A numeric column (dtype float64 or int64, and a regressor's output):
    {"type": "numeric", "rows", "missing_share", "min", "max", "mean", "std",
     "edges": interior quantile bin edges, "shares": reference share per bin,
     "sample": at most SAMPLE_SIZE evenly spaced quantiles, the reference side of
                the two-sample tests}
A categorical column (bool and string features, a classifier's output):
    {"type": "categorical", "rows", "missing_share", "counts": {category: n},
     "other": rows of categories not listed}

Bins are deciles of the reference values (ties merged), with open outer bins
(-inf, e1) and [ek, +inf), so every later value falls in exactly one bin.

A profile holds aggregates, not rows: reference data and served rows may be
personal, and a profile is neither erased with a subject nor shredded by
retention. So the "sample" is quantiles, each summarising at least MIN_GROUP
rows (interpolated, never a row's value unless values tie), a category is listed
only when at least MIN_GROUP rows have it (the rest count as "other"), and each
column is summarised on its own, so rows cannot be put back together. The range
(min, max) is the one place single values are kept.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.clock import utcnow
from governance.errors import FieldError, InvalidInput
from governance.monitoring.records import ReferenceProfile

FORMAT = 1
NUMERIC_DTYPES = ("float64", "int64")
BINS = 10  # deciles: the usual PSI binning (Siddiqi, Credit Risk Scorecards, 2006)
SAMPLE_SIZE = 1000
MAX_CATEGORIES = 1000
MIN_GROUP = 5  # rows behind every stored quantile and listed category
OTHER = "(other)"  # the bin of categories a profile does not list
DEFAULT_TARGET = "target"
REFERENCE, SERVED = "reference", "served"
FIELD = "reference_data"


@dataclass(frozen=True)
class ReferenceData:
    """A reference data file as uploaded: its bytes, `csv` or `parquet`, and the
    column holding the target (None: a column named `target`, if there is one)."""

    data: bytes
    fmt: str
    target: str | None = None


def reference_format(file_name: str) -> str:
    """`csv` or `parquet`, from a file name's extension."""
    suffix = PurePath(file_name).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InvalidInput("unsupported reference data", [FieldError(FIELD, "a .csv or .parquet file")])


def read_reference(reference: ReferenceData) -> pd.DataFrame:
    try:
        if reference.fmt == "csv":
            return pd.read_csv(io.BytesIO(reference.data))
        return pd.read_parquet(io.BytesIO(reference.data))
    except Exception as exc:  # pandas and pyarrow raise many kinds on bad files
        raise InvalidInput(
            f"the reference data is not readable {reference.fmt} ({type(exc).__name__})",
            [FieldError(FIELD, f"a readable {reference.fmt} file with a header row")],
        ) from None


# -- columns --------------------------------------------------------------------------
def is_numeric(dtype: str) -> bool:
    return dtype in NUMERIC_DTYPES


def numbers(values: Any) -> np.ndarray:
    """Values as float64, with anything missing or not a number as NaN."""
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    return np.asarray(pd.to_numeric(series, errors="coerce"), dtype=np.float64)


def categories(values: Any) -> pd.Series:
    """Values as category text (None where missing): how categories are compared."""
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    return (
        series.astype(object)
        .where(series.notna(), None)
        .map(lambda v: None if v is None else str(v))
    )


def bin_index(edges: Sequence[float] | np.ndarray, values: np.ndarray) -> np.ndarray:
    """The bin of each value: 0 below the first interior edge, len(edges) from the last."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")


def numeric_column(values: Any) -> dict[str, Any]:
    array = numbers(values)
    present = array[~np.isnan(array)]
    column: dict[str, Any] = {
        "type": "numeric",
        "rows": int(array.size),
        "missing_share": float(1 - present.size / array.size) if array.size else 0.0,
    }
    if present.size == 0:
        return column | {"edges": [], "shares": [], "sample": []}
    edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)[1:-1]))
    counts = np.bincount(bin_index(edges, present), minlength=edges.size + 1)
    points = max(2, min(SAMPLE_SIZE, present.size // MIN_GROUP))
    sample = np.quantile(present, np.linspace(0, 1, points))
    return column | {
        "min": float(present.min()),
        "max": float(present.max()),
        "mean": float(present.mean()),
        "std": float(present.std()),
        "edges": [float(e) for e in edges],
        "shares": [float(c) for c in counts / present.size],
        "sample": [float(v) for v in sample],
    }


def categorical_column(values: Any) -> dict[str, Any]:
    texts = categories(values)
    counts = texts.value_counts(dropna=True)
    listed = counts[counts >= MIN_GROUP].iloc[:MAX_CATEGORIES]
    rows = len(texts)
    return {
        "type": "categorical",
        "rows": rows,
        "missing_share": float(texts.isna().sum() / rows) if rows else 0.0,
        "counts": {str(k): int(v) for k, v in listed.items()},
        "other": int(counts.sum() - listed.sum()),
    }


def column_profile(values: Any, numeric: bool) -> dict[str, Any]:
    return numeric_column(values) if numeric else categorical_column(values)


def build_profile(
    features: Sequence[Mapping[str, str]],
    columns: Mapping[str, Any],
    outputs: Any,
    classification: bool,
    source: str,
    target: Any = None,
) -> dict[str, Any]:
    """A profile of feature columns (name -> values), the model's outputs on the
    same rows and, when given, the target."""
    profiled = {
        f["name"]: column_profile(columns[f["name"]], is_numeric(f["dtype"])) for f in features
    }
    return {
        "format": FORMAT,
        "source": source,
        "rows": len(outputs),
        "features": profiled,
        "output": column_profile(outputs, not classification),
        "target": None if target is None else column_profile(target, not classification),
    }


# -- the reference file ---------------------------------------------------------------
def estimator_input(frame: pd.DataFrame, features: Sequence[Mapping[str, str]], named: bool) -> Any:
    """The reference rows as the estimator takes them (as retraining scores holdouts)."""
    names = [f["name"] for f in features]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InvalidInput(
            "the reference data lacks some of the model's features",
            [FieldError(FIELD, f"column {n!r} is missing") for n in missing[:20]],
        )
    chosen = frame[names]
    return chosen if named else chosen.to_numpy()


def target_column(frame: pd.DataFrame, target: str | None) -> pd.Series | None:
    if target is None:
        return frame[DEFAULT_TARGET] if DEFAULT_TARGET in frame.columns else None
    if target not in frame.columns:
        raise InvalidInput(
            "the reference data has no such target column",
            [FieldError("reference_target", "names a column of the file")],
        )
    return frame[target]


def _outputs(estimator: Any, matrix: Any) -> np.ndarray:
    try:
        return np.asarray(estimator.predict(matrix))
    except (ValueError, TypeError):
        raise InvalidInput(
            "the model could not score the reference data",
            [FieldError(FIELD, "values the model accepts, one column per feature")],
        ) from None


class Profiles:
    """Stores and reads reference profiles; sessions come from the caller."""

    def from_reference(
        self,
        session: Session,
        name: str,
        version: int,
        version_facts: tuple[Sequence[Mapping[str, str]], bool, bool],
        estimator: Any,
        reference: ReferenceData,
    ) -> ReferenceProfile:
        """Profile the file's rows and the model's outputs on them.

        `version_facts` is (feature schema, fitted on named columns, classifier)."""
        features, named, classification = version_facts
        frame = read_reference(reference)
        if frame.empty:
            raise InvalidInput("the reference data has no rows", [FieldError(FIELD, "no rows")])
        outputs = _outputs(estimator, estimator_input(frame, features, named))
        columns = {f["name"]: frame[f["name"]] for f in features}
        target = target_column(frame, reference.target)
        profile = build_profile(features, columns, outputs, classification, REFERENCE, target)
        return self._store(session, name, version, profile)

    def keep(
        self, session: Session, name: str, version: int, profile: dict[str, Any]
    ) -> ReferenceProfile:
        """Store a profile made elsewhere: of served rows, or carried by a bundle."""
        return self._store(session, name, version, profile)

    def _store(
        self, session: Session, name: str, version: int, profile: dict[str, Any]
    ) -> ReferenceProfile:
        record = ReferenceProfile(
            model_name=name,
            model_version=version,
            source=profile["source"],
            rows=int(profile["rows"]),
            created_at=utcnow(),
            profile=profile,
        )
        session.add(record)
        session.flush()
        return record

    def get(self, session: Session, name: str, version: int) -> ReferenceProfile | None:
        stmt = select(ReferenceProfile).where(
            ReferenceProfile.model_name == name, ReferenceProfile.model_version == version
        )
        return session.scalars(stmt).first()
