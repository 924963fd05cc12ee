"""Command-line parameter types for numbers that reach the database: ids, versions,
days, a key's limits. click's `int` accepts every Unicode digit and any size; these take ASCII
digits within the column's range (governance/identifiers.py), else a usage error."""

from __future__ import annotations

from typing import Any

import click

from governance.accounts.budgets import UNSET, Limit, parse_limit
from governance.errors import InvalidInput
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


class BudgetLimit(click.ParamType):
    """A key's limit: a number (a rate may read "50/s"), or "none" to lift it. Not
    given, it stays UNSET (the configured default, or the key's current value)."""

    def __init__(self, field: str, name: str) -> None:
        self.field = field
        self.name = name

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Limit:
        if value is UNSET:
            return UNSET
        try:
            return parse_limit(self.field, str(value))
        except InvalidInput as exc:
            self.fail(exc.detail, param, ctx)


RATE = BudgetLimit("rate", "rate")
ROWS_PER_DAY = BudgetLimit("rows_per_day", "rows")
PRECISION = BudgetLimit("precision", "decimals")
