"""Request ids: ours (a fresh UUID, unique in the audit log, the key of feedback,
reviews and explanations) on every answer as X-Request-ID, and the client's own.

A client's X-Request-ID is not taken as ours: two clients, or one client twice,
could send the same, and a reused id would make "the prediction of request R"
ambiguous. A well-formed one (1-64 of A-Z a-z 0-9 . _ : -) is echoed back as
X-Client-Request-ID and kept in the request's audit records (details
`client_request_id`), so callers can correlate; anything else is ignored.
"""

from __future__ import annotations

import re
import uuid

from flask import Response, g, request

HEADER = "X-Request-ID"
CLIENT_HEADER = "X-Client-Request-ID"
DETAIL = "client_request_id"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def assign() -> None:
    """before_request: our id, and the client's when it is well-formed."""
    g.request_id = uuid.uuid4().hex
    theirs = request.headers.get(HEADER, "")
    g.client_request_id = theirs if _WELL_FORMED.fullmatch(theirs) else None


def client_request_id() -> str | None:
    found: str | None = g.get("client_request_id")
    return found


def stamp(response: Response) -> None:
    response.headers[HEADER] = g.get("request_id", "")
    theirs = client_request_id()
    if theirs:
        response.headers[CLIENT_HEADER] = theirs
