"""URL converters for the numbers in paths: record ids, versions, sequence numbers.

Werkzeug's `int` converter matches `\\d+`, which is every Unicode digit, and has no
upper bound, so `/keys/%D9%A3` meant key 3 and a 23-digit id reached the database.
These converters take ASCII digits within the column's range and answer 404 to
anything else. `IdConverter` replaces `int` itself, so every `<int:...>` route,
today's and tomorrow's, gets it; `<seq:...>` is for BIGINT audit sequence numbers,
`<keyref:...>` for an API key named by id or prefix.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import BaseConverter, IntegerConverter, Map, ValidationError

from governance.identifiers import MAX_ID, MAX_SEQ, parse_id


def up_to(maximum: int) -> str:
    """A regular expression matching exactly the decimal numbers 1..`maximum` (no
    leading zero). The range is in the pattern, not only in `to_python`, because
    Werkzeug answers 405, not 404, when a path matches one rule's pattern but fails
    its conversion while another method's rule on the same path also matches it."""
    digits = str(maximum)
    shorter = f"[1-9][0-9]{{0,{len(digits) - 2}}}" if len(digits) > 1 else ""
    same_length = []
    for i, digit in enumerate(digits):
        low = "1" if i == 0 else "0"
        if int(digit) > int(low):
            rest = len(digits) - i - 1
            below = f"[{low}-{int(digit) - 1}]"
            same_length.append(digits[:i] + below + (f"[0-9]{{{rest}}}" if rest else ""))
    same_length.append(digits)
    return "|".join(([shorter] if shorter else []) + same_length)


class IdConverter(IntegerConverter):
    """A positive id in ASCII digits, 1..2**31-1 (an INTEGER column)."""

    regex = up_to(MAX_ID)
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

    regex = up_to(MAX_SEQ)
    maximum = MAX_SEQ


class KeyRef(BaseConverter):
    """`<keyref:...>`: an API key's id (ASCII digits) or its 8-hex-digit prefix, so that
    `/keys/rotate-master` is not also a key to revoke (DELETE on it is a 405)."""

    regex = r"[0-9]{1,10}|[0-9a-f]{8}"


def register(app: Flask) -> None:
    """Before any route is added: rules bind their converters when they are added."""
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["seq"] = SeqConverter
    app.url_map.converters["keyref"] = KeyRef
