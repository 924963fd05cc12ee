"""A fake clock for the governed state: `governance.clock.utcnow` as imported by the
modules that read it, moved by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

# Modules that take `utcnow` from governance.clock and decide with it what the
# subject-rights tests exercise (key windows, retention, review due dates).
MODULES = (
    "governance.audit.service",
    "governance.subjects.retention",
    "governance.subjects.reviews",
    "governance.subjects.shredding",
    "governance.subjects.erasure",
    "governance.registry.retirement",
)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def install(monkeypatch: pytest.MonkeyPatch, start: datetime | None = None) -> FakeClock:
    clock = FakeClock(start or datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    for module in MODULES:
        monkeypatch.setattr(f"{module}.utcnow", clock)
    return clock
