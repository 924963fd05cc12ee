"""Command-line parameter types for numbers that reach the database: ids, versions,
days, a key's limits. click's `int` accepts every Unicode digit and any size; these take ASCII
digits within the column's range (governance/identifiers.py), else a usage error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from governance.accounts.budgets import UNSET, Limit, check_limit, check_precision, parse_rate
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

    def __init__(self, name: str, parse: Callable[[str], int | None]) -> None:
        self.name = name
        self.parse = parse

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Limit:
        if value is UNSET:
            return UNSET
        try:
            return self.parse(str(value))
        except InvalidInput as exc:
            self.fail(exc.detail, param, ctx)


def _number_or_none(check: Callable[[object], int | None]) -> Callable[[str], int | None]:
    def parse(text: str) -> int | None:
        written = text.strip().lower()
        if written in ("none", "full", "unlimited"):
            return None
        return check(int(written) if written.isascii() and written.isdigit() else text)

    return parse


RATE = BudgetLimit("rate", parse_rate)
ROWS_PER_DAY = BudgetLimit("rows", _number_or_none(lambda v: check_limit("rows_per_day", v)))
PRECISION = BudgetLimit("decimals", _number_or_none(check_precision))
