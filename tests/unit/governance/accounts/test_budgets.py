"""Query budgets per API key, counted in the database: windows of a second and of a UTC
day (fake clock), Retry-After, refusals that count nothing, no lost counts under
concurrency, a lagging clock, and limits that reach keys cached by a worker."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM, Actor
from governance.accounts.budgets import Budget, parse_limit, rounded
from governance.accounts.records import KeyUsage
from governance.audit.records import AuditRecord
from governance.errors import (
    Conflict,
    InvalidInput,
    OverBudget,
    RateLimited,
    RowsSpent,
    TooLarge,
)
from server.container import Container
from tests.support.clock import FakeClock

NOON = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(NOON)
    monkeypatch.setattr("governance.accounts.budgets.utcnow", fake)
    return fake


def _key(cofre: Container, **limits: Any) -> tuple[str, Actor]:
    """A new predictor key with these limits: its secret and its actor as authenticated."""
    with cofre.write() as session:
        created = cofre.accounts.create_key(session, SYSTEM, "client", "predictor", **limits)
    with cofre.read() as session:
        return created.secret, cofre.accounts.authenticate_key(session, created.secret)


def _charge(cofre: Container, actor: Actor, rows: int = 1) -> OverBudget | None:
    try:
        cofre.predictor.budgets.charge(actor, rows)  # type: ignore[union-attr]
    except OverBudget as refused:
        return refused
    return None


def _used(cofre: Container, actor: Actor) -> dict[str, int]:
    with cofre.read() as session:
        rows = session.scalars(select(KeyUsage).where(KeyUsage.key_id == int(actor.id)))
        return {row.span: row.used for row in rows}


def test_the_rate_holds_within_a_second_and_frees_with_the_next(
    cofre: Container, clock: FakeClock
) -> None:
    _, actor = _key(cofre, rate=3)
    assert [_charge(cofre, actor) for _ in range(3)] == [None, None, None]
    refused = _charge(cofre, actor)
    assert isinstance(refused, RateLimited) and refused.retry_after == 1
    assert "3 requests per second" in refused.detail
    clock.advance(seconds=1)
    assert _charge(cofre, actor) is None
    assert _used(cofre, actor)["s"] == 1  # the new second started over


def test_rows_per_day_refuse_until_utc_midnight_and_a_refusal_counts_nothing(
    cofre: Container, clock: FakeClock
) -> None:
    _, actor = _key(cofre, rows_per_day=10)
    assert _charge(cofre, actor, 6) is None
    refused = _charge(cofre, actor, 5)
    assert isinstance(refused, RowsSpent)
    assert refused.retry_after == 12 * 3600  # 11:59:59.75 to go, rounded up
    assert _charge(cofre, actor, 4) is None  # the refused five were not counted
    assert isinstance(_charge(cofre, actor, 1), RowsSpent)
    clock.now = datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC)
    assert _charge(cofre, actor, 10) is None


def test_a_call_refused_for_its_rate_does_not_eat_the_days_rows(
    cofre: Container, clock: FakeClock
) -> None:
    _, actor = _key(cofre, rate=1, rows_per_day=10)
    assert _charge(cofre, actor, 5) is None
    assert isinstance(_charge(cofre, actor, 5), RateLimited)
    assert _used(cofre, actor) == {"s": 1, "d": 5}
    clock.advance(seconds=1)
    assert _charge(cofre, actor, 5) is None


def test_a_call_larger_than_the_whole_day_is_too_large(cofre: Container, clock: FakeClock) -> None:
    _, actor = _key(cofre, rows_per_day=10)
    with pytest.raises(TooLarge, match="at most 10 rows a day"):
        _charge(cofre, actor, 11)


def test_a_key_without_a_budget_costs_no_statement(cofre: Container, clock: FakeClock) -> None:
    _, actor = _key(cofre)
    for _ in range(5):
        assert _charge(cofre, actor, 100) is None
    assert _used(cofre, actor) == {}


def test_concurrent_calls_lose_no_count_and_exceed_no_limit(
    cofre: Container, clock: FakeClock
) -> None:
    _, actor = _key(cofre, rate=50, rows_per_day=10_000)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: _charge(cofre, actor, 3), range(80)))
    assert sum(o is None for o in outcomes) == 50
    assert all(isinstance(o, RateLimited) for o in outcomes if o is not None)
    assert _used(cofre, actor) == {"s": 50, "d": 150}


def test_a_lagging_clock_adds_to_the_newer_window(cofre: Container, clock: FakeClock) -> None:
    """Nodes whose clocks differ must not restart each other's counts."""
    _, actor = _key(cofre, rate=2)
    assert _charge(cofre, actor) is None
    clock.advance(seconds=-1)  # another node, a second behind
    assert _charge(cofre, actor) is None
    assert isinstance(_charge(cofre, actor), RateLimited)


def test_limits_are_copied_from_the_defaults_and_checked(cofre: Container) -> None:
    cofre.accounts.default_budget = Budget(rate=20, rows_per_day=None, precision=3)
    _, actor = _key(cofre, rows_per_day=500)
    assert (actor.rate, actor.rows_per_day, actor.precision) == (20, 500, 3)
    _, unlimited = _key(cofre, rate=None, precision=None)
    assert (unlimited.rate, unlimited.rows_per_day, unlimited.precision) == (None, None, None)
    for bad in ({"rate": 0}, {"rows_per_day": 2**31}, {"precision": 16}, {"rate": True}):
        with pytest.raises(InvalidInput), cofre.write() as session:
            cofre.accounts.create_key(session, SYSTEM, "bad", "predictor", **bad)


def test_limit_key_is_audited_and_reaches_a_cached_key(cofre: Container, clock: FakeClock) -> None:
    secret, actor = _key(cofre)
    prefix = actor.name.removeprefix("key:")
    with cofre.read() as session:  # read again: now from this worker's cache
        assert cofre.accounts.authenticate_key(session, secret) == actor
    with cofre.write() as session:
        cofre.accounts.limit_key(session, SYSTEM, prefix, rate=1, precision=2)
    with cofre.read() as session:
        limited = cofre.accounts.authenticate_key(session, secret)
        event = session.scalars(select(AuditRecord).where(AuditRecord.kind == "key.limited")).one()
    assert (limited.rate, limited.rows_per_day, limited.precision) == (1, None, 2)
    assert event.details == {
        "key_id": int(actor.id),
        "prefix": prefix,
        "from": {"rate": None, "rows_per_day": None, "precision": None},
        "to": {"rate": 1, "rows_per_day": None, "precision": 2},
    }
    assert _charge(cofre, limited) is None and isinstance(_charge(cofre, limited), RateLimited)
    with cofre.write() as session:  # "none" lifts a limit; the rest stays
        cofre.accounts.limit_key(session, SYSTEM, actor.id, rate=None)
    with cofre.read() as session:
        lifted = cofre.accounts.authenticate_key(session, secret)
    assert (lifted.rate, lifted.precision) == (None, 2)


def test_a_revoked_key_cannot_be_limited(cofre: Container) -> None:
    _, actor = _key(cofre)
    with cofre.write() as session:
        cofre.accounts.revoke_key(session, SYSTEM, actor.id)
    with pytest.raises(Conflict), cofre.write() as session:
        cofre.accounts.limit_key(session, SYSTEM, actor.id, rate=5)


def test_rates_read_as_written_and_probabilities_round() -> None:
    assert parse_limit("rate", "50/s") == parse_limit("rate", " 50 ") == 50
    assert parse_limit("rate", "none") is parse_limit("precision", "full") is None
    assert parse_limit("precision", "0") == 0
    for field, bad in (("rate", "50/m"), ("rate", "0/s"), ("rows_per_day", "fast"), ("rate", "-1")):
        with pytest.raises(InvalidInput):
            parse_limit(field, bad)
    proba = [[0.123456, 0.876544]]
    assert rounded(proba, 3) == [[0.123, 0.877]]
    assert rounded(proba, None) is proba
