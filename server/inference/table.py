"""Validating input rows against a version's feature schema, before any model code.

Every door hands over a `Table`: rows as dicts keyed by feature name, or as
lists in schema order. Validation collects every problem (up to a bound) with
its row and field, so a client fixes its payload in one round trip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from governance.errors import FieldError, InvalidInput, TooLarge

MAX_REPORTED_ERRORS = 20
FLOAT_MAX = float(np.finfo(np.float64).max)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Table:
    """Rows as a client sent them: `columns` names list rows, or None for dict rows."""

    rows: list[Any]
    columns: list[str] | None = None


@dataclass(frozen=True)
class Schema:
    """What a version accepts (from its registry record)."""

    names: tuple[str, ...]
    dtypes: tuple[str, ...]
    named: bool
    allow_missing: bool


def to_model_input(table: Table, schema: Schema, max_rows: int) -> tuple[Any, list[dict[str, Any]]]:
    """(estimator input, rows as {feature: value} for the audit) or InvalidInput/TooLarge."""
    if not table.rows:
        raise InvalidInput("no rows to predict", [FieldError("rows", "at least one row is needed")])
    if len(table.rows) > max_rows:
        raise TooLarge(f"{len(table.rows)} rows in one request; the limit is {max_rows}")
    fast = _float_block(table, schema)
    if fast is not None:
        block, records = fast
        return _framed(block, schema), records
    errors: list[FieldError] = []
    records = [
        _row_as_dict(row, index, table.columns, schema, errors)
        for index, row in enumerate(table.rows)
    ]
    if not errors:
        for index, record in enumerate(records):
            _check_values(record, index, schema, errors)
    if errors:
        raise InvalidInput(
            "the input does not match the model's features", errors[:MAX_REPORTED_ERRORS]
        )
    return _matrix(records, schema), records


# -- the fast path: all-float schemas with well-formed, finite numbers -------------------
_NUMBERS = frozenset({float, int})  # exact types: bool is an int subclass and is refused


def _float_block(table: Table, schema: Schema) -> tuple[np.ndarray, list[dict[str, Any]]] | None:
    """The float matrix and audit rows when every value is a finite number in place.

    Checks the whole request with a few C-level passes instead of one Python call
    per value. Anything irregular (a missing or unknown feature, a wrong type,
    NaN, a value out of range) answers None, and the full validation that follows
    finds and names every problem.
    """
    if set(schema.dtypes) != {"float64"}:
        return None
    ordered = _in_schema_order(table, schema.names)
    if ordered is None:
        return None
    values, records = ordered
    # The set of the values' types, built in C (map, chain, set): no Python frame per value.
    if not set(map(type, chain.from_iterable(values))) <= _NUMBERS:
        return None
    try:
        block = np.array(values, dtype=np.float64)
    except (OverflowError, ValueError):
        return None
    if block.shape != (len(values), len(schema.names)) or not np.isfinite(block).all():
        return None
    return block, records


def _in_schema_order(
    table: Table, names: tuple[str, ...]
) -> tuple[list[Sequence[Any]], list[dict[str, Any]]] | None:
    """(values in schema order, rows as dicts), or None when a row does not fit."""
    rows, width = table.rows, len(names)
    if table.columns is None and all(type(row) is dict and len(row) == width for row in rows):
        try:
            return _pick(rows, names), rows
        except KeyError:
            return None
    columns = names if table.columns is None else tuple(table.columns)
    if len(columns) != width or set(columns) != set(names):
        return None
    if not all(type(row) is list and len(row) == width for row in rows):
        return None
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    if columns == names:
        return rows, records
    return _pick(records, names), records


def _pick(rows: list[dict[str, Any]], names: tuple[str, ...]) -> list[Sequence[Any]]:
    """Each row's values in `names` order (itemgetter: the loop over names runs in C)."""
    if len(names) == 1:
        return [(row[names[0]],) for row in rows]
    return list(map(itemgetter(*names), rows))


def _framed(block: np.ndarray, schema: Schema) -> Any:
    return pd.DataFrame(block, columns=list(schema.names), copy=False) if schema.named else block


# -- the full validation: every problem named, with its row ------------------------------
def _row_as_dict(
    row: Any, index: int, columns: list[str] | None, schema: Schema, errors: list[FieldError]
) -> dict[str, Any]:
    if columns is not None:
        if not isinstance(row, list) or len(row) != len(columns):
            errors.append(FieldError("row", f"must be a list of {len(columns)} values", index))
            return {}
        row = dict(zip(columns, row, strict=True))
    elif isinstance(row, list):  # positional, in schema order
        if len(row) != len(schema.names):
            errors.append(
                FieldError(
                    "row",
                    f"must hold {len(schema.names)} values in the model's feature order",
                    index,
                )
            )
            return {}
        row = dict(zip(schema.names, row, strict=True))
    if not isinstance(row, dict):
        errors.append(FieldError("row", "must be an object of feature: value", index))
        return {}
    _check_names(row, index, schema, errors)
    return row


def _check_names(row: dict[str, Any], index: int, schema: Schema, errors: list[FieldError]) -> None:
    known = set(schema.names)
    for name in row:
        if name not in known:
            errors.append(FieldError(str(name)[:64], "unknown feature", index))
    for name in schema.names:
        if name not in row:
            errors.append(FieldError(name, "missing feature", index))


def _check_values(
    record: dict[str, Any], index: int, schema: Schema, errors: list[FieldError]
) -> None:
    for name, dtype in zip(schema.names, schema.dtypes, strict=True):
        problem = _value_problem(record[name], dtype, schema.allow_missing)
        if problem:
            errors.append(FieldError(name, problem, index))


def _value_problem(value: Any, dtype: str, allow_missing: bool) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None if allow_missing else "missing value (null or NaN) not allowed for this model"
    if dtype == "float64":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if isinstance(value, int) and not -FLOAT_MAX <= value <= FLOAT_MAX:
            return "out of the range of a 64-bit float"
        return "must be finite" if isinstance(value, float) and math.isinf(value) else None
    if dtype == "int64":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        return None if INT64_MIN <= value <= INT64_MAX else "out of the range of a 64-bit integer"
    if dtype == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    return None if isinstance(value, str) else "must be a string"


def _matrix(records: list[dict[str, Any]], schema: Schema) -> Any:
    """The estimator's input: one typed block when every feature is a float (the
    common case, and much faster than converting column by column), else typed
    columns; a DataFrame for estimators fitted on one, since they check names."""
    names = list(schema.names)
    if set(schema.dtypes) == {"float64"}:
        # None becomes NaN here; validation already refused it unless allowed.
        return _framed(np.array([[r[n] for n in names] for r in records], np.float64), schema)
    columns = {
        n: np.array([r[n] for r in records], dtype=_numpy_dtype(d, schema.allow_missing))
        for n, d in zip(names, schema.dtypes, strict=True)
    }
    if schema.named:
        return pd.DataFrame(columns, columns=names)
    return np.column_stack([columns[n] for n in names]).astype(object)


def _numpy_dtype(dtype: str, allow_missing: bool) -> Any:
    if dtype == "float64":
        return np.float64
    if dtype == "int64":
        return np.float64 if allow_missing else np.int64
    if dtype == "bool":
        return object if allow_missing else np.bool_
    return object
