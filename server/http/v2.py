"""The Open Inference Protocol door (KServe V2 REST), for clients such as tritonclient."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from server.extension import services
from server.http.doors import audit_failures, optional_list
from server.inference import v2_codec
from server.inference.predictor import PredictionRequest
from server.security.access import current_actor, public, requires

blueprint = Blueprint("v2", __name__, url_prefix="/v2")
audit_failures(blueprint, "v2")


@blueprint.get("")
@public
def server_metadata() -> ResponseReturnValue:
    """Server metadata."""
    return jsonify(name="cofre", version=_cofre_version(), extensions=["binary_tensor_data"])


@blueprint.get("/health/live")
@public
def live() -> ResponseReturnValue:
    """Server liveness."""
    return jsonify(live=True)


@blueprint.get("/health/ready")
@public
def ready() -> ResponseReturnValue:
    """Server readiness (the same checks as /readyz)."""
    from server.readiness import readiness

    ok = all(check["ok"] for check in readiness(services()).values())
    return jsonify(ready=ok), 200 if ok else 503


@blueprint.get("/models/<name>")
@blueprint.get("/models/<name>/versions/<int:model_version>")
@requires("predict")
def model_metadata(name: str, model_version: int | None = None) -> ResponseReturnValue:
    """Model metadata: inputs and outputs with names, datatypes and shapes."""
    served = services().predictor.served_version(current_actor(), name, version=model_version)
    return jsonify(v2_codec.metadata(served, versioned=model_version is not None))


@blueprint.get("/models/<name>/ready")
@blueprint.get("/models/<name>/versions/<int:model_version>/ready")
@requires("predict")
def model_ready(name: str, model_version: int | None = None) -> ResponseReturnValue:
    """Model readiness: the version resolves and its estimator loads."""
    predictor = services().predictor
    served = predictor.served_version(current_actor(), name, version=model_version)
    predictor.estimator(served)
    return jsonify(name=name, ready=True)


@blueprint.post("/models/<name>/infer")
@blueprint.post("/models/<name>/versions/<int:model_version>/infer")
@requires("predict")
def infer(name: str, model_version: int | None = None) -> ResponseReturnValue:
    """Inference, JSON or with the binary tensor data extension."""
    predictor = services().predictor
    served = predictor.served_version(current_actor(), name, version=model_version)
    decoded = v2_codec.decode(
        request.get_data(), request.headers.get(v2_codec.HEADER_LENGTH), served.schema.names
    )
    result = predictor.predict(
        current_actor(),
        PredictionRequest(
            model=name,
            table=decoded.table,
            endpoint="v2",
            request_id=g.request_id,
            version=model_version,
            subject_ids=optional_list(decoded.parameters, "subject_ids"),
            purpose=decoded.parameters.get("purpose"),
            path=request.path,
        ),
    )
    body, header_length = v2_codec.encode(result, decoded)
    response = Response(
        body, mimetype="application/json" if header_length is None else "application/octet-stream"
    )
    if header_length is not None:
        response.headers[v2_codec.HEADER_LENGTH] = str(header_length)
    return response


def _cofre_version() -> str:
    try:
        return version("cofre")
    except PackageNotFoundError:
        return "unknown"
