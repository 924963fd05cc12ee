"""What the three prediction doors share: the failure audit and query parsing."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from governance.errors import FieldError, InvalidInput
from server.extension import services
from server.security.access import current_actor


def audit_failures(blueprint: Blueprint, endpoint: str) -> None:
    """Record every refused or failed call through this door (no body is kept).

    Successful predictions are audited by the core before they are answered;
    this catches what never reached it: 401/403 from the guard, 4xx from
    decoding and validation, 5xx.
    """

    def record(response: Response) -> Response:
        if response.status_code >= 400 and request.method == "POST":
            services().predictor.record_failure(
                current_actor(),
                endpoint,
                g.request_id,
                (request.view_args or {}).get("name"),
                response.status_code,
                g.get("problem_type", "error"),
                request.path,
            )
        return response

    blueprint.after_request(record)


def version_query() -> tuple[str | None, int | None]:
    """`?alias=` or `?version=` (not both)."""
    alias = request.args.get("alias")
    raw_version = request.args.get("version")
    if alias and raw_version:
        raise InvalidInput(
            "give alias or version, not both", [FieldError("version", "not together with alias")]
        )
    if raw_version is None:
        return alias, None
    if not raw_version.isdigit():
        raise InvalidInput(
            "version must be a positive integer",
            [FieldError("version", "must be a positive integer")],
        )
    return None, int(raw_version)


def optional_list(body: dict[str, Any], name: str) -> list[Any] | None:
    value = body.get(name)
    if value is not None and not isinstance(value, list):
        raise InvalidInput(f"{name} must be a list", [FieldError(name, "must be a list")])
    return value
