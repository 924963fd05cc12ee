"""Domain errors and HTTP errors to RFC 9457 problem details: the one table.

Bodies hold a type, a title, the status, a safe detail, field-level `errors`
where there are some, and the request id; never a stack trace, the rejected
input or a secret. Unexpected exceptions are logged with their trace and
answered with a generic 500 that names only the request id.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, has_request_context, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from governance import errors as domain

log = logging.getLogger("cofre.errors")
PROBLEM_TYPE = "urn:cofre:problem:"

# domain error -> (status, slug, title)
PROBLEMS: dict[type[domain.CofreError], tuple[int, str, str]] = {
    domain.MalformedInput: (400, "malformed-input", "Malformed request"),
    domain.Unauthenticated: (401, "unauthenticated", "Authentication required"),
    domain.PermissionDenied: (403, "forbidden", "Not allowed"),
    domain.NotFound: (404, "not-found", "Not found"),
    domain.Conflict: (409, "conflict", "Conflict with the current state"),
    domain.TooLarge: (413, "too-large", "Request too large"),
    domain.UnsupportedMediaType: (415, "unsupported-media-type", "Unsupported media type"),
    domain.InvalidInput: (422, "invalid-input", "Invalid input"),
    domain.UntrustedArtifact: (422, "untrusted-artifact", "Model file refused"),
    domain.IntegrityError: (500, "integrity-failure", "Stored data failed its integrity check"),
    domain.KeyUnavailable: (503, "key-unavailable", "A required key is unavailable"),
    domain.AuditUnavailable: (
        503,
        "audit-unavailable",
        "The audit log cannot record; nothing is served",
    ),
    domain.NotInitialised: (503, "not-initialised", "The appliance is not initialised"),
}


def problem_for(exc: domain.CofreError) -> tuple[int, dict[str, Any]]:
    """Status and body for a domain error (most specific class wins)."""
    for cls in type(exc).__mro__:
        if cls in PROBLEMS:
            status, slug, title = PROBLEMS[cls]
            break
    else:
        status, slug, title = 500, "internal", "Internal error"
    body = problem_body(status, slug, title, exc.detail)
    if isinstance(exc, domain.InvalidInput) and exc.errors:
        body["errors"] = [e.as_dict() for e in exc.errors]
    if isinstance(exc, domain.UntrustedArtifact) and exc.untrusted_types:
        body["untrusted_types"] = exc.untrusted_types
    return status, body


def problem_body(status: int, slug: str, title: str, detail: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if g:
        g.problem_type = slug
        if g.get("request_id"):
            body["request_id"] = g.request_id
    return _protocol_fields(body)


# Clients of the other protocols read their own error fields: tritonclient reads
# `error`, MLflow clients `error_code` and `message`. Both get them in addition.
MLFLOW_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
    422: "INVALID_PARAMETER_VALUE",
    503: "TEMPORARILY_UNAVAILABLE",
}


def _protocol_fields(body: dict[str, Any]) -> dict[str, Any]:
    blueprint = request.blueprint if has_request_context() else None
    if blueprint == "v2":
        body["error"] = body["detail"]
    elif blueprint == "mlflow":
        body["error_code"] = MLFLOW_ERROR_CODES.get(body["status"], "INTERNAL_ERROR")
        body["message"] = body["detail"]
    return body


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register(app: Flask) -> None:
    app.register_error_handler(domain.CofreError, _on_domain_error)
    app.register_error_handler(HTTPException, _on_http_error)
    app.register_error_handler(OperationalError, _on_database_unavailable)
    app.register_error_handler(InterfaceError, _on_database_unavailable)
    app.register_error_handler(Exception, _on_unexpected)


def _on_domain_error(exc: domain.CofreError) -> Response:
    status, body = problem_for(exc)
    if status >= 500:
        log.error("request failed: %s: %s", type(exc).__name__, exc.detail)
    headers = {"WWW-Authenticate": 'Bearer realm="cofre"'} if status == 401 else None
    return problem_response(status, body, headers)


def _on_http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    detail = {
        404: "no such endpoint",
        405: "this endpoint does not accept that method",
        413: "the request body is over the configured limit",
    }.get(status, exc.description or exc.name)
    slug = "too-large" if status == 413 else exc.name.lower().replace(" ", "-")
    response = problem_response(status, problem_body(status, slug, exc.name, detail))
    if status == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def _on_database_unavailable(exc: Exception) -> Response:
    """The database is down, locked or unreachable: a passing condition, so 503."""
    log.error("database unavailable: %s", type(exc).__name__)
    return problem_response(
        503,
        problem_body(
            503,
            "database-unavailable",
            "The database is unavailable",
            "the appliance cannot reach its database; nothing was served; retry later",
        ),
        {"Retry-After": "5"},
    )


def _on_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return problem_response(
        500,
        problem_body(
            500,
            "internal",
            "Internal error",
            "an unexpected error occurred; quote the request id to the operator",
        ),
    )
