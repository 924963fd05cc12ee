"""The Open Inference Protocol door (KServe V2 REST), for clients such as tritonclient."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from server.extension import services
from server.http.doors import body_bytes, caller, deprecation_headers, door, door_call
from server.inference.codecs import v2
from server.inference.predictor import parse_selector
from server.security.access import current_actor, public, requires

blueprint = Blueprint("v2", __name__, url_prefix="/v2")


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

    ok = all(check["ok"] for check in readiness(services()).values() if not check.get("advisory"))
    return jsonify(ready=ok), 200 if ok else 503


@blueprint.get("/models/<name>")
@blueprint.get("/models/<name>/versions/<model_version>")
@requires("predict")
def model_metadata(name: str, model_version: str | None = None) -> ResponseReturnValue:
    """Model metadata: inputs and outputs with names, datatypes and shapes."""
    _, number = parse_selector(None, model_version)
    served = services().predictor.served_version(current_actor(), name, version=number)
    return jsonify(v2.metadata(served, versioned=model_version is not None))


@blueprint.get("/models/<name>/ready")
@blueprint.get("/models/<name>/versions/<model_version>/ready")
@requires("predict")
def model_ready(name: str, model_version: str | None = None) -> ResponseReturnValue:
    """Model readiness: the version resolves and what answers for it loads."""
    predictor = services().predictor
    _, number = parse_selector(None, model_version)
    predictor.runner(predictor.served_version(current_actor(), name, version=number))
    return jsonify(name=name, ready=True)


@blueprint.post("/models/<name>/infer")
@blueprint.post("/models/<name>/versions/<model_version>/infer")
@door("v2")
def infer(name: str, model_version: str | None = None) -> ResponseReturnValue:
    """Inference, JSON or with the binary tensor data extension."""
    header_length = request.headers.get(v2.HEADER_LENGTH)
    result = services().predictor.predict(
        caller,
        door_call("v2", name, version=model_version),
        lambda served: v2.decode(body_bytes(), header_length, served),
    )
    body, binary_from = v2.encode(result)
    response = Response(
        body, mimetype="application/json" if binary_from is None else "application/octet-stream"
    )
    if binary_from is not None:
        response.headers[v2.HEADER_LENGTH] = str(binary_from)
    return deprecation_headers(response, result)


def _cofre_version() -> str:
    try:
        return version("cofre")
    except PackageNotFoundError:
        return "unknown"
