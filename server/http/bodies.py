"""Reading request bodies strictly: JSON objects, form fields, uploaded files.

Every JSON body of the app is read by `server.inference.codecs.strict_json`
(duplicate keys, nesting depth and giant integers refused), through the app's
JSON provider for `request.get_json()` and directly by `json_object()`. Bodies
are bounded by `max_content_length` whether or not they declare a length: a
chunked body over the limit is a 413, never silently cut at the limit.
"""

from __future__ import annotations

import io
import json
from functools import cached_property
from typing import IO, Any, NoReturn

from flask import Request, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge

from governance.errors import FieldError, InvalidInput, MalformedInput, UnsupportedMediaType
from governance.identifiers import MAX_ID, parse_id
from governance.monitoring.profiles import ReferenceData, reference_format
from server.inference.codecs import strict_json


class InMemoryUploadRequest(Request):
    """Keeps uploaded files in memory: Werkzeug spools uploads over 500 KB to a temp
    file, and a model artifact must never touch the disk in plaintext. The size is
    bounded by MAX_CONTENT_LENGTH (max_artifact_bytes on the publish route)."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()

    @cached_property
    def stream(self) -> IO[bytes]:
        """Werkzeug caps a body without Content-Length (chunked) at the limit but
        does not say that more followed: read one byte past the limit to know."""
        limit = self.max_content_length
        if self.content_length is not None or limit is None:
            return super().stream
        if "wsgi.input_terminated" not in self.environ:
            return io.BytesIO()  # no length, no terminating server: nothing to read safely
        data = self.environ["wsgi.input"].read(limit + 1)
        if len(data) > limit:
            raise RequestEntityTooLarge()
        return io.BytesIO(data)

    def on_json_loading_failed(self, e: ValueError | None) -> NoReturn:
        raise MalformedInput(str(e) if e else "the body is not valid JSON")


class StrictJSONProvider(DefaultJSONProvider):
    """`request.get_json()` through the strict reader; its refusals are ValueErrors
    (as Flask expects), carrying the reason."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return strict_json.loads(s)
        except MalformedInput as exc:
            raise ValueError(exc.detail) from None


def json_object() -> dict[str, Any]:
    """The body as a JSON object, or a clear 400/415."""
    if not request.is_json:
        raise UnsupportedMediaType("send the body as application/json")
    data = strict_json.loads(request.get_data())
    if not isinstance(data, dict):
        raise MalformedInput("the body must be a JSON object")
    return data


def required_int(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer", [FieldError(name, "must be an integer")])
    return value


def form_json_list(name: str) -> list[Any] | None:
    """An optional form field holding a JSON list."""
    raw = request.form.get(name)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} is not valid JSON", [FieldError(name, "not valid JSON")]
        ) from None
    if not isinstance(value, list):
        raise InvalidInput(f"{name} must be a JSON list", [FieldError(name, "must be a JSON list")])
    return value


def form_bool(name: str) -> bool:
    return request.form.get(name, "").lower() in ("1", "true", "yes", "on")


def uploaded_reference() -> ReferenceData | None:
    """The optional `reference_data` file (CSV or Parquet) and `reference_target`."""
    upload = request.files.get("reference_data")
    if upload is None or not upload.filename:
        return None
    target = request.form.get("reference_target", "").strip() or None
    return ReferenceData(upload.read(), reference_format(upload.filename), target)


def query_number(name: str, default: int) -> int:
    """A query parameter holding a count (a limit) or `default` when absent."""
    found = query_id(name)
    return default if found is None else found


def query_id(name: str) -> int | None:
    """An optional query parameter holding an id or a count: ASCII digits within the
    database's integer range (1 and up), else 422; None when absent."""
    text = request.args.get(name, "")
    if not text:
        return None
    number = parse_id(text)
    if number is None:
        raise InvalidInput(
            f"{name} must be a number", [FieldError(name, f"ASCII digits, 1 to {MAX_ID}")]
        )
    return number
