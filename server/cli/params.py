"""Command-line parameter types for numbers that reach the database: ids, versions,
days. click's `int` accepts every Unicode digit and any size; these take ASCII
digits within the column's range (governance/identifiers.py), else a usage error."""

from __future__ import annotations

from typing import Any

import click

from governance.identifiers import MAX_ID, parse_id


class PositiveNumber(click.ParamType):
    """1..2**31-1 in ASCII digits: a record id, a version, a number of days."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
            return value
        number = parse_id(str(value))
        if number is None:
            self.fail(f"{value!r} is not a whole number from 1 to {MAX_ID}", param, ctx)
        return number


ID = PositiveNumber()
