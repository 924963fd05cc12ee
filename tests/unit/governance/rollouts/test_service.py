"""Rollout use cases: one running rollout per model, validation, promotion and abort
(audited), and the A/B rule that no promotion comes before the test decided."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.errors import Conflict, InvalidInput, NotFound
from governance.rollouts.service import RolloutRequest
from server.container import Container
from tests.support.models import iris_classifier_v2
from tests.support.publishing import publish


@pytest.fixture
def iris(cofre: Container) -> Container:
    publish(cofre, aliases=["production"])
    publish(cofre, artifact=iris_classifier_v2())
    return cofre


def _kinds(cofre: Container) -> list[str]:
    with cofre.read() as session:
        stmt = select(AuditRecord.kind).where(AuditRecord.kind.like("rollout.%"))
        return list(session.scalars(stmt.order_by(AuditRecord.seq)))


def test_one_running_rollout_per_model(iris: Container) -> None:
    with iris.write() as session:
        started = iris.rollouts.start(session, SYSTEM, RolloutRequest("iris", 2, "canary"))
    assert (started.champion_version, started.candidate_version, started.percent) == (1, 2, 10.0)
    with pytest.raises(Conflict, match="running already"), iris.write() as session:
        iris.rollouts.start(session, SYSTEM, RolloutRequest("iris", 2, "shadow"))
    with iris.write() as session:
        iris.rollouts.abort(session, SYSTEM, "iris", "changed my mind")
    with iris.write() as session:
        again = iris.rollouts.start(session, SYSTEM, RolloutRequest("iris", 2, "shadow"))
    assert again.id != started.id
    assert _kinds(iris) == ["rollout.started", "rollout.aborted", "rollout.started"]


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (RolloutRequest("iris", 1, "canary"), Conflict),  # already production
        (RolloutRequest("iris", 9, "canary"), NotFound),
        (RolloutRequest("nope", 2, "canary"), NotFound),
        (RolloutRequest("iris", 2, "rainbow"), InvalidInput),
        (RolloutRequest("iris", 2, "canary", percent=100), InvalidInput),
        (RolloutRequest("iris", 2, "canary", guardrails=("errors>3",)), InvalidInput),
    ],
)
def test_invalid_rollouts_are_refused(
    iris: Container, request_: RolloutRequest, error: type[Exception]
) -> None:
    with pytest.raises(error), iris.write() as session:
        iris.rollouts.start(session, SYSTEM, request_)


def test_promotion_moves_production_and_ends_the_rollout(iris: Container) -> None:
    with iris.write() as session:
        iris.rollouts.start(session, SYSTEM, RolloutRequest("iris", 2, "blue-green"))
    with iris.write() as session:
        promoted = iris.rollouts.promote(session, SYSTEM, "iris")
    assert promoted.status == "promoted"
    with iris.read() as session:
        assert iris.registry.resolve(session, "iris").version == 2
        assert iris.rollouts.active(session, "iris") is None
    with pytest.raises(Conflict, match="no rollout running"), iris.write() as session:
        iris.rollouts.promote(session, SYSTEM, "iris")


def test_an_ab_rollout_is_not_promoted_before_its_decision(iris: Container) -> None:
    with iris.write() as session:
        iris.rollouts.start(session, SYSTEM, RolloutRequest("iris", 2, "ab"))
    with pytest.raises(Conflict, match="decided"), iris.write() as session:
        iris.rollouts.promote(session, SYSTEM, "iris")
    with iris.write() as session:
        rollout = iris.rollouts.active(session, "iris")
        assert rollout is not None
        iris.rollouts.record_decision(session, rollout.id, {"winner": "candidate"})
    with iris.write() as session:
        assert iris.rollouts.promote(session, SYSTEM, "iris").status == "promoted"


def test_tallies_are_folded_without_changing_the_figures(iris: Container) -> None:
    from governance.clock import utcnow
    from governance.rollouts.records import RolloutTally

    with iris.write() as session:
        rollout = iris.rollouts.start(session, SYSTEM, RolloutRequest("iris", 2, "canary")).id
        iris.rollouts.report(
            session,
            [
                RolloutTally(
                    rollout_id=rollout,
                    variant=("champion", "candidate")[i % 2],
                    reported_at=utcnow(),
                    requests=3,
                    errors=i % 3 == 0,
                    compared=2,
                    agreed=1,
                    dropped=0,
                    latency={"5": 2, "50": 1},
                )
                for i in range(100)
            ],
        )
    with iris.read() as session:
        before = iris.rollout_reports.status(session, "iris")["variants"]
    with iris.write() as session:
        assert iris.rollouts.compact(session, rollout)
    with iris.read() as session:
        assert len(iris.rollouts.tallies(session, rollout)) == 2
        assert iris.rollout_reports.status(session, "iris")["variants"] == before
    assert before["candidate"]["requests"] == 150 and before["candidate"]["p99_ms"] == 50.0


def test_a_key_limited_to_another_model_is_refused_by_the_service(iris: Container) -> None:
    from dataclasses import replace

    from governance.errors import PermissionDenied

    elsewhere = replace(SYSTEM, models=("other",))
    with pytest.raises(PermissionDenied), iris.write() as session:
        iris.rollouts.start(session, elsewhere, RolloutRequest("iris", 2, "canary"))
    with iris.write() as session:
        iris.rollouts.start(session, SYSTEM, RolloutRequest("iris", 2, "canary"))
    for attempt in (
        lambda s: iris.rollouts.abort(s, elsewhere, "iris", "no"),
        lambda s: iris.rollouts.promote(s, elsewhere, "iris"),
        lambda s: iris.promotions.promote_rollout(s, elsewhere, "iris"),
    ):
        with pytest.raises(PermissionDenied), iris.write() as session:
            attempt(session)
