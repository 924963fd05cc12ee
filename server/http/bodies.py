"""Reading request bodies strictly: JSON objects, form fields, uploaded files."""

from __future__ import annotations

import io
import json
from typing import IO, Any

from flask import Request, request

from governance.errors import FieldError, InvalidInput, MalformedInput, UnsupportedMediaType


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


def json_object() -> dict[str, Any]:
    """The body as a JSON object, or a clear 400/415."""
    if not request.is_json:
        raise UnsupportedMediaType("send the body as application/json")
    data = request.get_json(silent=True)
    if data is None:
        raise MalformedInput("the body is not valid JSON")
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
