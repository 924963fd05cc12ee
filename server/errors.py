"""Domain errors and HTTP errors to RFC 9457 problem details: the one table.

Bodies hold a type, a title, the status, a safe detail, field-level `errors`
where there are some, and the request id; never a stack trace, the rejected
input or a secret. Unexpected exceptions are logged with their trace and
answered with a generic 500 that names only the request id.

Every refused or failed request is also an audit event ("request.refused",
with the status the client got and a short reason, never the body). The
prediction doors are the exception that proves the rule: their refusals are
recorded by the prediction core itself, as "prediction" records, so they are
not recorded again here. `classify` is the same table for the core.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, has_request_context, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from governance import errors as domain
from governance.accounts.actor import Actor
from governance.audit.service import AuditEvent
from server import request_ids

log = logging.getLogger("cofre.errors")
PROBLEM_TYPE = "urn:cofre:problem:"
# How long a client is told to wait out an outage of the database or the audit log.
OUTAGE_RETRY_SECONDS = "5"

# domain error -> (status, slug, title)
PROBLEMS: dict[type[domain.CofreError], tuple[int, str, str]] = {
    domain.MalformedInput: (400, "malformed-input", "Malformed request"),
    domain.Unauthenticated: (401, "unauthenticated", "Authentication required"),
    domain.PermissionDenied: (403, "forbidden", "Not allowed"),
    domain.NotFound: (404, "not-found", "Not found"),
    domain.Conflict: (409, "conflict", "Conflict with the current state"),
    domain.Gone: (410, "gone", "This model version answers no more"),
    domain.TooLarge: (413, "too-large", "Request too large"),
    domain.RateLimited: (429, "rate-limited", "Too many requests for this API key"),
    domain.RowsSpent: (429, "rows-budget-spent", "This API key's rows for today are used up"),
    domain.UnsupportedMediaType: (415, "unsupported-media-type", "Unsupported media type"),
    domain.InvalidInput: (422, "invalid-input", "Invalid input"),
    domain.UntrustedArtifact: (422, "untrusted-artifact", "Model file refused"),
    domain.IntegrityError: (500, "integrity-failure", "Stored data failed its integrity check"),
    domain.Unverified: (
        409,
        "unverified-version",
        "Version not verified under the running scikit-learn",
    ),
    domain.KeyUnavailable: (503, "key-unavailable", "A required key is unavailable"),
    domain.AuditUnavailable: (
        503,
        "audit-unavailable",
        "The audit log cannot record; nothing is served",
    ),
    domain.NotInitialised: (503, "not-initialised", "The appliance is not initialised"),
}


def _problem_of(exc: domain.CofreError) -> tuple[int, str, str]:
    for cls in type(exc).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls]
    return 500, "internal", "Internal error"


def classify(exc: BaseException) -> tuple[int, str]:
    """(status, short reason) a client gets for `exc`: what its audit record says."""
    if isinstance(exc, domain.CofreError):
        status, slug, _ = _problem_of(exc)
        return status, slug
    if isinstance(exc, OperationalError | InterfaceError):
        return 503, "database-unavailable"
    if isinstance(exc, HTTPException):
        return exc.code or 500, _http_slug(exc)
    return 500, "internal"


def problem_for(exc: domain.CofreError) -> tuple[int, dict[str, Any]]:
    """Status and body for a domain error (most specific class wins)."""
    status, slug, title = _problem_of(exc)
    body = problem_body(status, slug, title, exc.detail)
    if isinstance(exc, domain.InvalidInput | domain.MalformedInput) and exc.errors:
        body["errors"] = [e.as_dict() for e in exc.errors]
    if isinstance(exc, domain.Gone):
        body["successor"] = exc.successor
    if isinstance(exc, domain.OverBudget):
        body["retry_after"] = exc.retry_after
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
    if g and g.get("request_id"):
        body["request_id"] = g.request_id
    return _protocol_fields(body)


# Clients of the other protocols read their own error fields: tritonclient reads
# `error`, MLflow clients `error_code` and `message`. Both get them in addition.
MLFLOW_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    410: "RESOURCE_DOES_NOT_EXIST",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
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
    record_refusal(exc)
    return problem_response(status, body, _headers_for(exc, status))


def _headers_for(exc: domain.CofreError, status: int) -> dict[str, str] | None:
    if status == 401:
        return {"WWW-Authenticate": 'Bearer realm="cofre"'}
    if isinstance(exc, domain.OverBudget):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, domain.AuditUnavailable):  # a passing condition, as the database's
        return {"Retry-After": OUTAGE_RETRY_SECONDS}
    return None


def _http_slug(exc: HTTPException) -> str:
    return "too-large" if exc.code == 413 else (exc.name or "error").lower().replace(" ", "-")


def _on_http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    detail = {
        404: "no such endpoint",
        405: "this endpoint does not accept that method",
        413: "the request body is over the configured limit",
    }.get(status, exc.description or exc.name)
    record_refusal(exc)
    response = problem_response(status, problem_body(status, _http_slug(exc), exc.name, detail))
    if status == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def _on_database_unavailable(exc: Exception) -> Response:
    """The database is down, locked or unreachable: a passing condition, so 503."""
    log.error("database unavailable: %s", type(exc).__name__)
    record_refusal(exc)
    return problem_response(
        503,
        problem_body(
            503,
            "database-unavailable",
            "The database is unavailable",
            "the appliance cannot reach its database; nothing was served; retry later",
        ),
        {"Retry-After": OUTAGE_RETRY_SECONDS},
    )


def _on_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    record_refusal(exc)
    return problem_response(
        500,
        problem_body(
            500,
            "internal",
            "Internal error",
            "an unexpected error occurred; quote the request id to the operator",
        ),
    )


# -- the audit of refused requests ------------------------------------------------------
REFUSED = "request.refused"
_PATH_LIMIT = 256


def record_refusal(exc: BaseException, status: int | None = None) -> None:
    """Append a "request.refused" record for this request's error (a route of the
    app only: unknown URLs are routing noise, and prediction doors are audited by
    the core). `status` overrides what `classify` says when the edge answers
    otherwise (the admin pages redirect an anonymous visitor to the login form).
    Never raises: the client is being answered with an error already."""
    from server.extension import services
    from server.security.access import current_actor, is_door

    if not has_request_context() or request.endpoint is None or is_door(request.endpoint):
        return
    answered, reason = classify(exc)
    answered = status or answered
    try:
        services().audit_writer.append(_refusal_event(current_actor(), answered, reason))
    except domain.CofreError as failure:
        log.error("could not audit a refused request %s: %s", g.get("request_id"), failure.detail)


def _refusal_event(actor: Actor, status: int, reason: str) -> AuditEvent:
    model = (request.view_args or {}).get("name")
    outcome = (
        "denied"
        if status in (401, 403) or reason == "unauthenticated"
        else ("error" if status >= 500 else "rejected")
    )
    return AuditEvent(
        kind=REFUSED,
        actor=actor,
        outcome=outcome,
        status=status,
        endpoint=_endpoint_family(),
        request_id=g.get("request_id"),
        model_name=model if isinstance(model, str) else None,
        details=_refusal_details(reason),
    )


def _refusal_details(reason: str) -> dict[str, str]:
    details = {"reason": reason, "method": request.method, "path": request.path[:_PATH_LIMIT]}
    theirs = request_ids.client_request_id()
    return details | ({request_ids.DETAIL: theirs} if theirs else {})


def _endpoint_family() -> str:
    """ "admin" for the pages, "api" for the JSON API, else the blueprint's name."""
    blueprint = request.blueprint or "app"
    if blueprint.startswith("admin"):
        return "admin"
    return "api" if blueprint.startswith("api") else blueprint
