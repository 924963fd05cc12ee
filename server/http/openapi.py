"""GET /openapi.json: the whole HTTP API as OpenAPI 3.1.

Paths, methods, parameters and required permissions come from the app's own
URL map and route declarations, so no route can be left out; request and
response bodies of the main operations are described in BODIES below, and a
test fails if BODIES names an operation the app no longer has.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue

from server.security.access import PUBLIC, declared_permission, public

blueprint = Blueprint("openapi", __name__)
_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")

_ROWS = {"type": "array", "items": {"oneOf": [{"type": "object"}, {"type": "array"}]}}
_SPLIT = {
    "type": "object",
    "required": ["columns", "data"],
    "properties": {
        "columns": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "array", "items": {"type": "array"}},
    },
}
SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "request_id": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                        "row": {"type": "integer"},
                    },
                },
            },
        },
    },
    "PredictRequest": {
        "type": "object",
        "properties": {
            "instances": _ROWS,
            "dataframe_split": _SPLIT,
            "subject_ids": {"type": "array", "items": {"type": ["string", "null"]}},
            "purpose": {"type": "string", "maxLength": 256},
        },
    },
    "PredictResponse": {
        "type": "object",
        "required": ["request_id", "name", "version", "sha256", "predictions"],
        "properties": {
            "request_id": {"type": "string"},
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "sha256": {"type": "string"},
            "predictions": {"type": "array"},
            "classes": {"type": "array"},
            "probabilities": {"type": "array", "items": {"type": "array"}},
        },
    },
    "MlflowRequest": {
        "type": "object",
        "properties": {
            "dataframe_split": _SPLIT,
            "dataframe_records": _ROWS,
            "instances": _ROWS,
            "inputs": {"oneOf": [_ROWS, {"type": "object"}]},
        },
    },
    "MlflowResponse": {
        "type": "object",
        "required": ["predictions"],
        "properties": {"predictions": {"type": "array"}},
    },
    "InferRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    },
    "InferResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
        },
    },
    "Tensor": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    },
}
# (method, rule) -> (request schema or content, response schema)
BODIES: dict[tuple[str, str], tuple[dict[str, Any] | None, str | None]] = {
    ("post", "/api/v1/models/<name>/predict"): (
        {"application/json": "PredictRequest"},
        "PredictResponse",
    ),
    ("post", "/api/v1/models/<name>/invocations"): (
        {"application/json": "MlflowRequest", "text/csv": None},
        "MlflowResponse",
    ),
    ("post", "/v2/models/<name>/infer"): (
        {"application/json": "InferRequest"},
        "InferResponse",
    ),
    ("post", "/v2/models/<name>/versions/<model_version>/infer"): (
        {"application/json": "InferRequest"},
        "InferResponse",
    ),
    ("post", "/api/v1/models/<name>/versions"): ({"multipart/form-data": None}, None),
}


@blueprint.get("/openapi.json")
@public
def openapi() -> ResponseReturnValue:
    """This document."""
    return jsonify(build_spec(current_app))


def build_spec(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        path = _CONVERTER.sub(r"{\2}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(app, rule, method.lower())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cofre",
            "version": _version(),
            "description": "Governed serving of scikit-learn models.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "cofre_session"},
            },
        },
    }


def _operation(app: Flask, rule: Any, method: str) -> dict[str, Any]:
    view = app.view_functions[rule.endpoint]
    permission = declared_permission(app, rule.endpoint)
    operation: dict[str, Any] = {
        "operationId": f"{method}:{rule.rule}",
        "summary": ((view.__doc__ or rule.endpoint).strip().splitlines() or [""])[0],
        "parameters": [_parameter(conv, name) for conv, name in _CONVERTER.findall(rule.rule)],
        "responses": _responses(rule.rule, method),
        "x-cofre-permission": permission,
    }
    if permission != PUBLIC:
        operation["security"] = [{"apiKey": []}, {"session": []}]
    request_body = BODIES.get((method, rule.rule), (None, None))[0]
    if request_body:
        operation["requestBody"] = {
            "required": True,
            "content": {
                media: {"schema": {"$ref": f"#/components/schemas/{name}"}} if name else {}
                for media, name in request_body.items()
            },
        }
    return operation


def _parameter(converter: str, name: str) -> dict[str, Any]:
    kind = "integer" if converter == "int" else "string"
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def _responses(rule: str, method: str) -> dict[str, Any]:
    answer = BODIES.get((method, rule), (None, None))[1]
    ok: dict[str, Any] = {"description": "Success"}
    if answer:
        ok["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{answer}"}}}
    problem = {
        "description": "Problem details (RFC 9457)",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    return {"200": ok, "4XX": problem, "5XX": problem}


def _version() -> str:
    try:
        return version("cofre")
    except PackageNotFoundError:
        return "0"
