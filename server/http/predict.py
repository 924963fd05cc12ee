"""The native prediction door: POST /api/v1/models/{name}/predict."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from governance.errors import MalformedInput
from server.extension import services
from server.http.bodies import json_object
from server.http.doors import audit_failures, optional_list, version_query
from server.inference.predictor import PredictionRequest
from server.inference.table import Table
from server.security.access import current_actor, requires

blueprint = Blueprint("predict", __name__, url_prefix="/api/v1/models")
audit_failures(blueprint, "native")


@blueprint.post("/<name>/predict")
@requires("predict")
def predict(name: str) -> ResponseReturnValue:
    """Score rows with the production version, or ?alias= / ?version=."""
    body = json_object()
    alias, version = version_query()
    result = services().predictor.predict(
        current_actor(),
        PredictionRequest(
            model=name,
            table=native_table(body),
            endpoint="native",
            request_id=g.request_id,
            alias=alias,
            version=version,
            subject_ids=optional_list(body, "subject_ids"),
            purpose=body.get("purpose"),
            path=request.path,
        ),
    )
    answer: dict[str, Any] = {
        "request_id": result.request_id,
        "name": result.name,
        "version": result.version,
        "sha256": result.sha256,
        "predictions": result.predictions,
    }
    if result.probabilities is not None:
        answer["classes"] = result.classes
        answer["probabilities"] = result.probabilities
    return jsonify(answer)


def native_table(body: dict[str, Any]) -> Table:
    """`instances` (objects, or lists in feature order) or `dataframe_split`."""
    formats = [key for key in ("instances", "dataframe_split") if key in body]
    if len(formats) != 1:
        raise MalformedInput("give exactly one of 'instances' or 'dataframe_split'")
    if formats[0] == "instances":
        rows = body["instances"]
        if not isinstance(rows, list):
            raise MalformedInput("'instances' must be a list of rows")
        return Table(rows)
    return split_table(body["dataframe_split"])


def split_table(split: Any) -> Table:
    """pandas' `split` orientation: {"columns": [...], "data": [[...], ...]}."""
    if (
        not isinstance(split, dict)
        or not isinstance(split.get("columns"), list)
        or not (isinstance(split.get("data"), list))
    ):
        raise MalformedInput("'dataframe_split' needs 'columns' and 'data' lists")
    columns = split["columns"]
    if not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
        raise MalformedInput("'dataframe_split.columns' must be distinct strings")
    return Table(split["data"], columns)
