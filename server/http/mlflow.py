"""The MLflow scoring protocol door: POST /api/v1/models/{name}/invocations.

Reads what `mlflow models serve` reads (server/inference/codecs/mlflow.py) and
answers {"predictions": [...]}, naming the version that answered (and, during a
rollout, the variant and why) in headers.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from server.extension import services
from server.http.doors import body_bytes, caller, deprecation_headers, door, door_call
from server.inference.codecs import mlflow

blueprint = Blueprint("mlflow", __name__, url_prefix="/api/v1/models")


@blueprint.post("/<name>/invocations")
@door("mlflow")
def invocations(name: str) -> ResponseReturnValue:
    """MLflow scoring server protocol (JSON or CSV)."""
    content_type = (request.mimetype or "").lower()
    result = services().predictor.predict(
        caller,
        door_call("mlflow", name),
        lambda served: mlflow.decode(body_bytes(), content_type),
    )
    response = jsonify(mlflow.encode(result))
    response.headers["X-Cofre-Model-Version"] = str(result.version)
    if result.routed is not None:  # the body is MLflow's own: the rollout goes in headers
        response.headers["X-Cofre-Rollout"] = str(result.routed.rollout)
        response.headers["X-Cofre-Rollout-Variant"] = result.routed.variant
        response.headers["X-Cofre-Rollout-Reason"] = result.routed.reason
    return deprecation_headers(response, result)
