"""The MLflow scoring protocol door: POST /api/v1/models/{name}/invocations.

Reads what `mlflow models serve` reads, with its content-type rules
(application/json or text/csv, else 415) and its JSON envelope (exactly one of
dataframe_split, dataframe_records, instances, inputs, else 400), and answers
{"predictions": [...]} as it does for a scikit-learn model (predict output only).
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from governance.errors import MalformedInput, UnsupportedMediaType
from server.extension import services
from server.http.doors import audit_failures, version_query
from server.http.predict import split_table
from server.inference.predictor import PredictionRequest
from server.inference.table import Table
from server.security.access import current_actor, requires

blueprint = Blueprint("mlflow", __name__, url_prefix="/api/v1/models")
audit_failures(blueprint, "mlflow")
ENVELOPES = ("dataframe_split", "dataframe_records", "instances", "inputs")


@blueprint.post("/<name>/invocations")
@requires("predict")
def invocations(name: str) -> ResponseReturnValue:
    """MLflow scoring server protocol (JSON or CSV)."""
    alias, version = version_query()
    result = services().predictor.predict(
        current_actor(),
        PredictionRequest(
            model=name,
            table=mlflow_table(),
            endpoint="mlflow",
            request_id=g.request_id,
            alias=alias,
            version=version,
            want_proba=False,
            path=request.path,
        ),
    )
    response = jsonify(predictions=result.predictions)
    response.headers["X-Cofre-Model-Version"] = str(result.version)
    return response


def mlflow_table() -> Table:
    content_type = (request.mimetype or "").lower()
    if content_type == "text/csv":
        return _csv_table(request.get_data())
    if content_type != "application/json":
        raise UnsupportedMediaType("this endpoint reads application/json or text/csv")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise MalformedInput("the body must be a JSON object")
    present = [key for key in ENVELOPES if key in body]
    if len(present) != 1:
        raise MalformedInput(f"give exactly one of {', '.join(ENVELOPES)}")
    return _envelope_table(present[0], body[present[0]])


def _envelope_table(kind: str, value: Any) -> Table:
    if kind == "dataframe_split":
        return split_table(value)
    if kind == "dataframe_records":
        if not isinstance(value, list):
            raise MalformedInput("'dataframe_records' must be a list of objects")
        return Table(value)
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


def _csv_table(data: bytes) -> Table:
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        raise MalformedInput("the body is not readable CSV with a header row") from None
    # NaN from empty cells becomes None so the schema check treats it as missing.
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    return Table(rows, [str(c) for c in frame.columns])
