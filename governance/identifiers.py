"""Numbers as they arrive from outside (URLs, query strings, forms, CLI arguments,
job names): ASCII digits only, within the database column's range.

`str.isdigit` and `int()` accept every Unicode digit ('٣' is 3, '²' passes isdigit
and then fails int()), and the database refuses numbers past its column's range
with an error, not a refusal: every door parses numbers here.
"""

from __future__ import annotations

import re

MAX_ID = 2**31 - 1  # INTEGER columns: ids, versions (PostgreSQL's int4)
MAX_SEQ = 2**63 - 1  # BIGINT columns: audit sequence numbers
_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_number(text: str, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """The integer `text` spells in ASCII digits within [minimum, maximum], else None."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def parse_id(text: str, maximum: int = MAX_ID) -> int | None:
    """A record id (1 and up) spelled in ASCII digits, else None."""
    return parse_number(text, 1, maximum)
