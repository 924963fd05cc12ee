"""Input validation against a feature schema happens before any model code."""

import math

import numpy as np
import pandas as pd
import pytest

from governance.errors import InvalidInput, TooLarge
from server.inference.table import Schema, Table, to_model_input

NAMED = Schema(
    names=("age", "income", "member", "city"),
    dtypes=("int64", "float64", "bool", "string"),
    named=True,
    allow_missing=False,
)
NUMERIC = Schema(
    names=("f0", "f1"), dtypes=("float64", "float64"), named=False, allow_missing=False
)
GOOD = {"age": 40, "income": 1200.5, "member": True, "city": "Lisboa"}


def _errors(table: Table, schema: Schema = NAMED) -> list[tuple[str, str, int | None]]:
    with pytest.raises(InvalidInput) as caught:
        to_model_input(table, schema, max_rows=10)
    return [(e.field, e.message, e.row) for e in caught.value.errors]


def test_good_rows_become_a_typed_frame_for_named_models() -> None:
    frame, rows = to_model_input(Table([GOOD, GOOD | {"age": 41}]), NAMED, max_rows=10)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(NAMED.names)
    assert str(frame["age"].dtype) == "int64" and str(frame["member"].dtype) == "bool"
    assert rows[1]["age"] == 41


def test_unnamed_models_get_an_array_in_schema_order() -> None:
    matrix, _ = to_model_input(Table([[1, 2.5]]), NUMERIC, max_rows=10)
    assert isinstance(matrix, np.ndarray) and matrix.tolist() == [[1.0, 2.5]]


def test_split_columns_may_come_in_any_order() -> None:
    frame, _ = to_model_input(Table([[2.0, 1.0]], columns=["f1", "f0"]), NUMERIC, max_rows=10)
    assert frame.tolist() == [[1.0, 2.0]]


def test_unknown_and_missing_features_are_named_with_their_row() -> None:
    row = {k: v for k, v in GOOD.items() if k != "city"} | {"colour": "red"}
    assert _errors(Table([GOOD, row])) == [
        ("colour", "unknown feature", 1),
        ("city", "missing feature", 1),
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("age", 40.5, "must be an integer"),
        ("age", True, "must be an integer"),
        ("income", "1200", "must be a number"),
        ("income", math.inf, "must be finite"),
        ("member", 1, "must be true or false"),
        ("city", 7, "must be a string"),
        ("income", None, "missing value (null or NaN) not allowed for this model"),
        ("income", math.nan, "missing value (null or NaN) not allowed for this model"),
    ],
)
def test_mistyped_values_are_refused(field: str, value: object, message: str) -> None:
    assert _errors(Table([GOOD | {field: value}])) == [(field, message, 0)]


def test_missing_values_pass_when_the_version_allows_them() -> None:
    schema = Schema(NUMERIC.names, NUMERIC.dtypes, named=False, allow_missing=True)
    matrix, _ = to_model_input(Table([[None, math.nan]]), schema, max_rows=10)
    assert np.isnan(np.asarray(matrix, dtype=float)).all()


def test_row_shape_problems() -> None:
    assert _errors(Table([[1.0]]), NUMERIC)[0][1].startswith("must hold 2 values")
    assert _errors(Table(["text"]), NUMERIC) == [("row", "must be an object of feature: value", 0)]
    assert (
        _errors(Table([[1.0]], columns=["f0", "f1"]), NUMERIC)[0][1] == "must be a list of 2 values"
    )


def test_empty_and_oversized_requests() -> None:
    assert _errors(Table([]))[0][0] == "rows"
    with pytest.raises(TooLarge):
        to_model_input(Table([GOOD] * 11), NAMED, max_rows=10)
