"""The native prediction door: POST /api/v1/models/{name}/predict."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from server.extension import services
from server.http.doors import caller, deprecation_headers, door, door_call, json_body
from server.inference.codecs import native

blueprint = Blueprint("predict", __name__, url_prefix="/api/v1/models")


@blueprint.post("/<name>/predict")
@door("native")
def predict(name: str) -> ResponseReturnValue:
    """Score rows with the production version, or ?alias= / ?version=; ?explain=true adds
    each feature's contribution to each row's output."""
    explain = request.args.get("explain")
    result = services().predictor.predict(
        caller, door_call("native", name), lambda served: native.decode(json_body(), explain)
    )
    return deprecation_headers(jsonify(native.encode(result)), result)
