"""Monitoring windows: [end - length, end), with `end` the next multiple of a step.

Windows end on step boundaries (whole hours by default, counted from the Unix
epoch in UTC), so running the job again within the same step computes the same
window and replaces its rollups, while a window longer than the step slides by
one step at a time: a 24-hour window computed hourly is one point per hour on
the charts. The last window is partial until its end has passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from governance.clock import isoformat
from governance.errors import FieldError, InvalidInput

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LENGTH = re.compile(r"^(\d{1,4})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def since(self) -> str:
        """The start as the audit log's canonical text (inclusive)."""
        return isoformat(self.start)

    @property
    def until(self) -> str:
        """The end as the audit log's canonical text (exclusive)."""
        return isoformat(self.end)

    def buckets(self, step: timedelta) -> list[Window]:
        """The window cut into consecutive windows of `step` (the last one may be short)."""
        cuts, moment = [], self.start
        while moment < self.end:
            cuts.append(Window(moment, min(moment + step, self.end)))
            moment += step
        return cuts


def parse_length(text: str) -> timedelta:
    """`30m`, `24h`, `7d` -> a timedelta."""
    found = _LENGTH.match(text.strip())
    if not found or int(found.group(1)) == 0:
        raise InvalidInput(
            f"{text!r} is not a window length",
            [FieldError("window", "a whole number of m, h or d, e.g. 1h, 24h or 7d")],
        )
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def format_length(length: timedelta) -> str:
    """`30m`, `24h`, `7d`: as the setting is usually written (a day is `24h`)."""
    seconds = int(length.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and not (unit == "d" and seconds <= 86400):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def window_ending(now: datetime, length: timedelta, step: timedelta) -> Window:
    """The window of `length` whose end is the first step boundary after `now`."""
    steps = (now - EPOCH) // step + 1
    end = EPOCH + steps * step
    return Window(end - length, end)
