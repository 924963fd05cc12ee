"""The MLflow scoring protocol body, as `mlflow models serve` reads it, and its answer.

JSON (`application/json`) holds exactly one of dataframe_split,
dataframe_records, instances or inputs, and optionally `params` (MLflow's own
field for inference parameters), where cofre reads `subject_ids` and `purpose`;
CSV (`text/csv`) is a header row and the rows. Anything else is 415, a bad
envelope 400. The answer is `{"predictions": [...]}` (predict output only), as
MLflow gives for a scikit-learn model.
"""

from __future__ import annotations

from typing import Any

from governance.errors import MalformedInput, UnsupportedMediaType
from server.inference.codecs import frames, strict_json
from server.inference.codecs.native import (
    optional_list,
    refuse_unknown_keys,
    rows_table,
    split_table,
)
from server.inference.predictor import Decoded, PredictionResult
from server.inference.table import Table

ENVELOPES = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS = ("subject_ids", "purpose")


def decode(body: bytes, content_type: str) -> Decoded:
    if content_type == "text/csv":
        return Decoded(table=frames.csv_table(body), want_proba=False)
    if content_type != "application/json":
        raise UnsupportedMediaType("this endpoint reads application/json or text/csv")
    data = strict_json.loads(body)
    if not isinstance(data, dict):
        raise MalformedInput("the body must be a JSON object")
    present = [key for key in ENVELOPES if key in data]
    if len(present) != 1:
        raise MalformedInput(f"give exactly one of {', '.join(ENVELOPES)}")
    refuse_unknown_keys(data, (present[0], "params"), "body")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise MalformedInput("'params' must be an object")
    refuse_unknown_keys(params, PARAMS, "params")
    return Decoded(
        table=_envelope_table(present[0], data[present[0]]),
        subject_ids=optional_list(params, "subject_ids"),
        purpose=params.get("purpose"),
        want_proba=False,
    )


def encode(result: PredictionResult) -> dict[str, Any]:
    return {"predictions": result.predictions}


def _envelope_table(kind: str, value: Any) -> Table:
    if kind == "dataframe_split":
        return split_table(value)
    if kind == "dataframe_records":
        return rows_table(value, kind)
    if isinstance(value, dict):  # columnar tensors: {"feature": [v1, v2, ...]}
        return _columnar_table(value)
    if not isinstance(value, list):
        raise MalformedInput(f"'{kind}' must be a list of rows or an object of columns")
    return Table(value)


def _columnar_table(columns: dict[str, Any]) -> Table:
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise MalformedInput("columnar input needs lists of equal length for every feature")
    names = list(columns)
    rows = [list(values) for values in zip(*columns.values(), strict=True)]
    return Table(rows, names)
