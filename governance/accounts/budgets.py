"""Query budgets per API key: requests per second and rows per UTC day, counted in the
database so that every Gunicorn worker and every node counts against one number
(counted per worker, a limit of 20/s with two workers would be 40/s).

Each prediction call of a key with a budget costs one short write transaction:
one upsert over the key's rows in `key_usage` (one per span, "s" for the current
second, "d" for the current UTC day). The upsert adds to a row while its window
is current and restarts it when the window has moved on, and it adds only while
the sum stays within the limit (the `WHERE` of `ON CONFLICT DO UPDATE`), so
concurrent callers never lose a count: PostgreSQL locks the row, SQLite writes
one at a time. When a span refuses, the transaction rolls back and nothing of the
refused call is counted (its rows do not eat the day's budget).

Windows are fixed (a second, a UTC day), not sliding: a client may get up to twice
its rate across the boundary of two seconds. A node whose clock lags adds to the
newer window rather than restarting it, so clock skew between nodes never lowers
the count. Calls refused before their rows are known (bad credentials, a
malformed body) are not counted: they score nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from governance.accounts.actor import Actor
from governance.clock import utcnow
from governance.db import write_transaction
from governance.errors import FieldError, InvalidInput, RateLimited, RowsSpent, TooLarge

SECOND, DAY = "s", "d"
MAX_PRECISION = 15  # a float64 holds 15-17 significant digits: more decimals change nothing
MAX_LIMIT = 2**31 - 1  # the columns are 32-bit integers


class Unset(Enum):
    """A limit the caller did not give: the configured default when a key is created,
    the key's current value when it is limited."""

    UNSET = "unset"


UNSET = Unset.UNSET
Limit = int | None | Literal[Unset.UNSET]


@dataclass(frozen=True)
class Budget:
    """What a key may ask for and how precisely it is answered; None: no limit."""

    rate: int | None = None  # requests per second
    rows_per_day: int | None = None  # rows scored per UTC day
    precision: int | None = None  # decimals of the probabilities it receives

    def with_changes(self, rate: Limit, rows_per_day: Limit, precision: Limit) -> Budget:
        """This budget with the limits that were given (checked) in place of its own."""
        return Budget(
            self.rate if rate is UNSET else check_limit("rate", rate),
            self.rows_per_day
            if rows_per_day is UNSET
            else check_limit("rows_per_day", rows_per_day),
            self.precision if precision is UNSET else check_precision(precision),
        )

    def as_dict(self) -> dict[str, int | None]:
        return {"rate": self.rate, "rows_per_day": self.rows_per_day, "precision": self.precision}


UNLIMITED = Budget()


def check_limit(field: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(
            f"{field} must be a whole number from 1 to {MAX_LIMIT}, or none for no limit",
            [FieldError(field, f"1 to {MAX_LIMIT}, or null")],
        )
    return value


def check_precision(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRECISION:
        raise InvalidInput(
            f"precision must be a number of decimals from 0 to {MAX_PRECISION}, or none",
            [FieldError("precision", f"0 to {MAX_PRECISION}, or null")],
        )
    return value


def parse_limit(field: str, written: str) -> int | None:
    """A limit as typed on the command line, a form or in config: a number (a rate may
    read "50/s"), or "none" ("full" for precision) for no limit."""
    text = written.strip().lower()
    if text in ("none", "unlimited", "full"):
        return None
    if field == "rate":
        text = text.removesuffix("/s")
    value: object = int(text) if text.isascii() and text.isdigit() else written
    return check_precision(value) if field == "precision" else check_limit(field, value)


def rounded(probabilities: list[list[float]], precision: int | None) -> list[list[float]]:
    """Probabilities to `precision` decimals: full-precision scores make extracting a
    model by its answers cheap."""
    if precision is None:
        return probabilities
    return [[round(p, precision) for p in row] for row in probabilities]


# The one statement a call of a key with a budget costs. `excluded` is the row
# offered; a window later than the stored one restarts the count, any other adds to
# it, and only while the sum stays within the limit. Both spans are always counted
# (a span without a limit gets one no count reaches), so the statement has one shape.
_CHARGE = text(
    "INSERT INTO key_usage (key_id, span, span_start, used) "
    "VALUES (:key_id, 's', :second, 1), (:key_id, 'd', :day, :rows) "
    "ON CONFLICT (key_id, span) DO UPDATE SET "
    "used = CASE WHEN excluded.span_start > key_usage.span_start THEN excluded.used "
    "ELSE key_usage.used + excluded.used END, "
    "span_start = CASE WHEN excluded.span_start > key_usage.span_start "
    "THEN excluded.span_start ELSE key_usage.span_start END "
    "WHERE CASE WHEN excluded.span_start > key_usage.span_start THEN excluded.used "
    "ELSE key_usage.used + excluded.used END "
    "<= CASE excluded.span WHEN 's' THEN :rate ELSE :rows_per_day END "
    "RETURNING span"
)
NO_LIMIT = 2**62  # what an unlimited span is held to: no count reaches it


class Budgets:
    """Counts each call of a key with a budget, or refuses it (RateLimited, RowsSpent)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def charge(self, actor: Actor, rows: int) -> None:
        """Count one call of `rows` rows for `actor`'s key, or raise without counting."""
        rate, per_day = actor.rate, actor.rows_per_day
        if rate is None and per_day is None:
            return
        if per_day is not None and rows > per_day:
            raise TooLarge(f"this API key may score at most {per_day} rows a day")
        now = utcnow()
        params = {
            "key_id": int(actor.id),
            "second": math.floor(now.timestamp()),
            "day": _epoch_day(now),
            "rows": rows,
            "rate": NO_LIMIT if rate is None else rate,
            "rows_per_day": NO_LIMIT if per_day is None else per_day,
        }
        with write_transaction(self.sessions) as session:
            charged = set(session.execute(_CHARGE, params).scalars())
            if charged != {SECOND, DAY}:  # raising rolls back the span that did count
                raise _refusal({SECOND, DAY} - charged, now, rate, per_day)


def _refusal(refused: set[str], now: datetime, rate: int | None, per_day: int | None) -> Exception:
    if DAY in refused:
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
        wait = max(1, math.ceil((midnight - now).total_seconds()))
        return RowsSpent(f"this API key has used its {per_day} rows for today (UTC)", wait)
    return RateLimited(f"this API key may make at most {rate} requests per second", 1)


def _epoch_day(moment: datetime) -> int:
    return math.floor(moment.timestamp() / 86400)
