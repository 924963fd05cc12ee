"""Retention with a fake clock, on SQLite and PostgreSQL: exactly the expired, unheld
rows are shredded, per version's period; the run is recorded; the chain verifies."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.registry.service import ModelCard
from governance.subjects.caller import Caller
from server.container import Container
from tests.support.clock import FakeClock, install
from tests.support.models import CARD, iris_classifier_v2
from tests.support.publishing import publish
from tests.support.scoring import IRIS_ROW, rows_of, score

CALLER = Caller(SYSTEM, "cli")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return install(monkeypatch)


@pytest.fixture
def short_lived(iris: Container) -> Container:
    """iris version 2 keeps personal data 30 days; version 1 the default (365)."""
    card = ModelCard(**{**CARD.__dict__, "retention_days": 30})
    publish(iris, "iris", iris_classifier_v2(), card=card)
    return iris


def _run(cofre: Container, dry_run: bool = False) -> int:
    with cofre.read() if dry_run else cofre.write() as session:
        if dry_run:
            return cofre.retention.plan(session).due
        return cofre.retention.run(session, SYSTEM).shredded


def test_retention_shreds_exactly_the_expired_unheld_rows(
    short_lived: Container, clock: FakeClock
) -> None:
    cofre = short_lived
    old = score(cofre, ["ana", "bruno", None], version=2)
    held = score(cofre, ["carla"], version=2)
    long_kept = score(cofre, ["ana"], version=1)
    cofre.subjects.hold(CALLER, "carla", "case 1")
    clock.advance(days=20)
    recent = score(cofre, ["ana"], version=2)
    clock.advance(days=10, hours=6)  # 30.25 days old: past 30, but not their whole day
    assert _run(cofre, dry_run=True) == 0
    clock.advance(hours=6, minutes=10)  # the whole day they were written in is past 30 days
    assert _run(cofre, dry_run=True) == 3  # ana, bruno, the anonymous row; carla is held
    assert rows_of(cofre, old)[0]["input"] == IRIS_ROW  # a dry run changes nothing
    assert _run(cofre) == 3
    assert rows_of(cofre, old) == [{"erased": True}] * 3
    assert rows_of(cofre, held)[0]["input"] == IRIS_ROW
    assert rows_of(cofre, recent)[0]["input"] == IRIS_ROW
    assert rows_of(cofre, long_kept)[0]["input"] == IRIS_ROW
    with cofre.read() as session:
        assert cofre.audit.verify(session).ok
        record = session.scalars(
            select(AuditRecord).where(AuditRecord.kind == "retention.shredded")
        ).one()
    assert record.details is not None and record.details["shredded"] == 3
    assert record.details["versions"][0]["version"] == 2
    assert record.details["versions"][0]["retention_days"] == 30
    assert _run(cofre) == 0  # nothing left to do
    clock.advance(days=400)
    cofre.subjects.release(CALLER, "carla")
    assert _run(cofre) == 3  # the keys of carla, the recent row and version 1's row (365 days)


def test_rows_under_an_open_review_are_kept(short_lived: Container, clock: FakeClock) -> None:
    contested = score(short_lived, ["ana"], version=2)
    short_lived.reviews.open(CALLER, contested, 0, "the person contests it")
    clock.advance(days=40)
    assert _run(short_lived) == 0
    assert rows_of(short_lived, contested)[0]["input"] == IRIS_ROW


def test_the_retention_job_runs_through_the_catalogue(
    short_lived: Container, clock: FakeClock
) -> None:
    from server.jobs import job_work

    score(short_lived, ["ana"], version=2)
    clock.advance(days=40)
    message = job_work(short_lived, "retention")(short_lived)
    assert message == "shredded 1 data keys past their retention period"
