"""URL converters for the numbers in paths: record ids, versions, sequence numbers.

Werkzeug's `int` converter matches `\\d+`, which is every Unicode digit, and has no
upper bound, so `/keys/%D9%A3` meant key 3 and a 23-digit id reached the database.
These converters take ASCII digits within the column's range and answer 404 to
anything else. `IdConverter` replaces `int` itself, so every `<int:...>` route,
today's and tomorrow's, gets it; `<seq:...>` is for BIGINT audit sequence numbers.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Map, ValidationError

from governance.identifiers import MAX_ID, MAX_SEQ, parse_id


class IdConverter(IntegerConverter):
    """A positive id in ASCII digits, 1..2**31-1 (an INTEGER column)."""

    regex = r"[0-9]{1,19}"
    maximum = MAX_ID

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=self.maximum)

    def to_python(self, value: str) -> int:
        number = parse_id(value, self.maximum)
        if number is None:
            raise ValidationError()
        return number


class SeqConverter(IdConverter):
    """An audit sequence number, 1..2**63-1 (a BIGINT column)."""

    maximum = MAX_SEQ


def register(app: Flask) -> None:
    """Before any route is added: rules bind their converters when they are added."""
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["seq"] = SeqConverter
