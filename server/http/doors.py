"""What the prediction doors share: the call it makes, the caller it names and
the body it reads (the `door` mark itself lives with the access guard).

A door view is a thin translator: it builds a `Call`, hands the core a decoder
for its body, and encodes the result. Authentication, decoding, validation,
scoring and the audit record of success or refusal all happen inside the core,
so a door cannot answer anything unaudited. The access guard and the session
loader therefore step aside for door views, and the error handlers do not
audit their errors a second time.
"""

from __future__ import annotations

from email.utils import format_datetime

from flask import Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from governance.accounts.actor import Actor
from governance.errors import TooLarge, UnsupportedMediaType
from server.inference.predictor import Call, PredictionResult
from server.request_ids import client_request_id
from server.security.access import authenticate, door

__all__ = ["body_bytes", "caller", "deprecation_headers", "door", "door_call", "json_body"]


def door_call(endpoint: str, name: str, version: str | None = None) -> Call:
    """The call this request makes; `?alias=` and `?version=` are the core's to check."""
    return Call(
        endpoint=endpoint,
        model=name,
        request_id=g.request_id,
        path=request.path,
        alias=request.args.get("alias"),
        version=version if version is not None else request.args.get("version"),
        client_request_id=client_request_id(),
    )


def caller() -> Actor:
    """Who is calling (their API key), for the core to authorise: called by the
    core, so a refused credential is audited like every other refusal."""
    g.actor = authenticate()
    actor: Actor = g.actor
    return actor


def body_bytes() -> bytes:
    """The request body, whole, or TooLarge (chunked bodies included). Kept for the
    request: during a rollout the core may decode it for a second version."""
    try:
        return request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise TooLarge("the request body is over the configured limit") from None


def json_body() -> bytes:
    if not request.is_json:
        raise UnsupportedMediaType("send the body as application/json")
    return body_bytes()


def deprecation_headers(response: Response, result: PredictionResult) -> Response:
    """A deprecated version's answer says so on every door: `Deprecation` (RFC 9745, a
    structured-field date, `@` and Unix seconds) and `Sunset` (RFC 8594, an HTTP-date)."""
    ending = result.ending
    if ending is not None and ending.deprecated_at is not None:
        response.headers["Deprecation"] = f"@{int(ending.deprecated_at.timestamp())}"
        if ending.sunset_at is not None:
            response.headers["Sunset"] = format_datetime(ending.sunset_at, usegmt=True)
    return response
