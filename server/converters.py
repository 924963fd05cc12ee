"""URL converters: route ids are ASCII digits within the database's integer range.

Werkzeug's `int` matches any Unicode digit (`\\d`) of any length, so `٣` was id 3
and a 23-digit id reached the database (500). Here an id that is not 1 to 10 ASCII
digits, or is past 2**31-1, matches no route: a 404, like any unknown id.
"""

from __future__ import annotations

from werkzeug.routing import BaseConverter, IntegerConverter, Map

MAX_ID = 2**31 - 1


class DatabaseId(IntegerConverter):
    """`<int:…>`: ASCII digits, 0 to MAX_ID."""

    regex = r"[0-9]{1,10}"

    def __init__(self, url_map: Map, fixed_digits: int = 0, min: int | None = None) -> None:
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=MAX_ID)


class KeyRef(BaseConverter):
    """`<keyref:…>`: an API key's id (ASCII digits) or its 8-hex-digit prefix, so that
    `/keys/rotate-master` is not also a key to revoke (DELETE on it is a 405)."""

    regex = r"[0-9]{1,10}|[0-9a-f]{8}"


CONVERTERS = {"int": DatabaseId, "keyref": KeyRef}
