"""The end of a version's life on SQLite and PostgreSQL: deprecation until a sunset
(fake clock), retirement, no alias onto either, the shredding of a retired artifact's
key after the card's retention, the history, the callers, and the lifecycle webhook."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.clock import utcnow
from governance.errors import Conflict, Gone, InvalidInput
from governance.monitoring.delivery import SIGNATURE_HEADER, Webhook, signature
from governance.monitoring.records import AlertDelivery
from governance.operations.rotation import rotate_master_key
from governance.registry.records import ModelVersion
from governance.rollouts.records import PromotionRequest
from governance.rollouts.service import RolloutRequest
from server.container import Container
from tests.support import clock
from tests.support.artifacts import names as artifact_names
from tests.support.models import iris_classifier_v2
from tests.support.publishing import publish
from tests.support.scoring import score


@pytest.fixture
def iris(cofre: Container) -> Container:
    """iris v1 (production) and v2 (no alias)."""
    publish(cofre, aliases=["production"])
    publish(cofre, artifact=iris_classifier_v2())
    return cofre


def _deprecate(cofre: Container, version: int, days: float = 30, reason: str = "replaced") -> None:
    with cofre.write() as session:
        cofre.retirements.deprecate(
            session, SYSTEM, "iris", version, utcnow() + timedelta(days=days), reason
        )


def _retire(cofre: Container, version: int) -> None:
    with cofre.write() as session:
        cofre.retirements.retire(session, SYSTEM, "iris", version)


def _kinds(cofre: Container) -> list[str]:
    with cofre.read() as session:
        return list(session.scalars(select(AuditRecord.kind).order_by(AuditRecord.seq)))


def test_a_deprecation_needs_a_future_sunset_and_a_reason(iris: Container) -> None:
    with iris.write() as session, pytest.raises(InvalidInput) as refused:
        iris.retirements.deprecate(session, SYSTEM, "iris", 2, utcnow() - timedelta(1), " ")
    assert {e.field for e in refused.value.errors} == {"sunset", "reason"}
    _deprecate(iris, 2)
    with pytest.raises(Conflict, match="deprecated already"):
        _deprecate(iris, 2)
    assert "model.deprecated" in _kinds(iris)


def test_a_deprecated_version_serves_until_its_sunset_then_is_gone(
    iris: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = clock.install(monkeypatch, utcnow())
    _deprecate(iris, 1, days=2)
    iris.predictor._served.clear()  # what the alias TTL does
    score(iris, ["a"], version=1)  # still answers before the sunset
    fake.advance(days=3)
    with pytest.raises(Gone, match="passed its sunset") as gone:
        score(iris, ["a"], version=1)
    assert gone.value.successor == "iris:2"  # production points at v1 itself: the latest
    with iris.read() as session:
        refused = session.scalars(
            select(AuditRecord).where(AuditRecord.status == 410)
        ).one()  # audited like every refusal
    assert (refused.kind, refused.outcome, refused.model_version) == ("prediction", "rejected", 1)


def test_no_alias_moves_onto_a_deprecated_or_retired_version(iris: Container) -> None:
    _deprecate(iris, 2)
    with iris.write() as session, pytest.raises(Conflict, match="deprecated; alias 'staging'"):
        iris.registry.set_alias(session, SYSTEM, "iris", 2, "staging")
    publish(iris, artifact=iris_classifier_v2(), allow_duplicate=True)  # v3
    with iris.write() as session:
        iris.registry.set_alias(session, SYSTEM, "iris", 3, "production")
    _retire(iris, 1)
    with iris.write() as session, pytest.raises(Conflict, match="retired; alias 'production'"):
        iris.registry.rollback(session, SYSTEM, "iris", "production")  # back onto v1


def test_retirement_is_at_once_final_and_not_for_an_aliased_version(iris: Container) -> None:
    with iris.write() as session, pytest.raises(Conflict, match="target of production"):
        iris.retirements.retire(session, SYSTEM, "iris", 1)
    _retire(iris, 2)
    with pytest.raises(Gone, match="was retired") as gone:
        score(iris, ["a"], version=2)
    assert gone.value.successor == "iris:1"  # production's target
    with pytest.raises(Conflict, match="retired already"):
        _retire(iris, 2)
    with pytest.raises(Conflict, match="retired; it cannot be deprecated"):
        _deprecate(iris, 2)


def test_the_retention_job_shreds_a_retired_artifact_after_the_cards_period(
    iris: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = clock.install(monkeypatch, utcnow())
    _retire(iris, 2)
    with iris.read() as session:
        record = iris.registry.resolve(session, "iris", version=2)
        artifact, days = record.artifact_file, record.retention_days
    with iris.write() as session:  # not yet: kept, encrypted, for the audit
        assert iris.retention.run(session, SYSTEM).artifacts == []
    assert artifact in artifact_names(iris)
    fake.advance(days=days + 1)
    with iris.write() as session:
        assert iris.retention.run(session, SYSTEM).artifacts == ["iris:2"]
    assert artifact not in artifact_names(iris)
    with iris.read() as session:
        record = session.scalars(select(ModelVersion).where(ModelVersion.version == 2)).one()
        assert record.wrapped_key == b"" and record.retirement is not None
        assert record.retirement.shredded_at == fake.now
        steps = [(s.version, s.action) for s in iris.retirements.history(session, "iris")]
    assert steps[-2:] == [(2, "retired"), (2, "shredded")]
    assert ("model.shredded" in _kinds(iris)) and ("model.retired" in _kinds(iris))
    with iris.write() as session:  # once
        assert iris.retention.run(session, SYSTEM).artifacts == []


def test_the_history_keeps_every_step(iris: Container) -> None:
    with iris.write() as session:
        iris.registry.set_alias(session, SYSTEM, "iris", 2, "production")
        iris.registry.rollback(session, SYSTEM, "iris", "production")
    _deprecate(iris, 2)
    _retire(iris, 2)
    with iris.read() as session:
        steps = [(s.version, s.action) for s in iris.retirements.history(session, "iris")]
    assert steps == [
        (1, "published"),
        (1, "alias set"),
        (2, "published"),
        (2, "alias set"),
        (1, "alias rollback"),
        (2, "deprecated"),
        (2, "retired"),
    ]


def test_the_callers_of_a_deprecated_version_are_listed_by_key(
    iris: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = clock.install(monkeypatch, utcnow())
    with iris.write() as session:
        made = iris.accounts.create_key(session, SYSTEM, "billing", "predictor", None, False)
        key = iris.accounts.authenticate_key(session, made.secret)
    score(iris, ["a"], version=2, actor=key)  # before the deprecation: not counted
    fake.advance(seconds=1)
    _deprecate(iris, 2)
    for _ in range(3):
        score(iris, ["a"], version=2, actor=key)
    score(iris, ["a"], version=2)
    with iris.read() as session:
        callers = iris.retirements.callers(session, "iris", 2)
    assert [(c.name, c.prefix, c.requests) for c in callers] == [
        ("billing", key.name.removeprefix("key:"), 3),
        ("system", None, 1),
    ]
    assert callers[0].last_seen


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return overrides | {"alert_webhook_url": "http://127.0.0.1:9/hook", "alert_webhook_secret": "s"}


def test_lifecycle_events_go_through_the_alert_outbox_signed(iris: Container) -> None:
    with iris.write() as session:
        iris.registry.set_alias(session, SYSTEM, "iris", 2, "production")
        iris.registry.rollback(session, SYSTEM, "iris", "production")
    _deprecate(iris, 2)
    _retire(iris, 2)
    sent: list[tuple[dict[str, Any], dict[str, str], bytes]] = []

    def post(hook: Webhook, body: bytes, headers: dict[str, str]) -> int:
        sent.append((json.loads(body), headers, body))
        return 200

    iris.alert_deliveries.post = post
    report = iris.alert_deliveries.deliver_webhooks()
    events = [(p["event"], p["version"]) for p, _, _ in sent]
    assert events == [
        ("published", 1),
        ("promoted", 1),
        ("published", 2),
        ("promoted", 2),
        ("rolled_back", 1),
        ("deprecated", 2),
        ("retired", 2),
    ]
    assert report.delivered == 7 and all(p["type"] == "lifecycle" for p, _, _ in sent)
    payload, headers, body = sent[-2]
    assert payload["successor"] == 1 and payload["reason"] == "replaced"
    assert headers[SIGNATURE_HEADER] == signature(b"s", body)
    with iris.read() as session:
        rows = session.scalars(select(AlertDelivery)).all()
    assert {r.alert_id for r in rows} == {None}


def test_no_rollout_or_promotion_request_for_a_version_on_its_way_out(iris: Container) -> None:
    _deprecate(iris, 2)
    with iris.write() as session, pytest.raises(Conflict, match="deprecated; alias 'production'"):
        iris.rollouts.start(session, SYSTEM, RolloutRequest("iris", 2, "canary"))
    iris.promotions.required = 1  # four-eyes: the move would wait for a second person
    with iris.write() as session, pytest.raises(Conflict, match="deprecated; alias 'production'"):
        iris.promotions.set_alias(session, SYSTEM, "iris", 2, "production")
    with iris.read() as session:
        assert iris.rollouts.active(session, "iris") is None
        assert session.scalars(select(PromotionRequest)).all() == []


def test_a_shredded_version_is_skipped_by_key_rotation_and_the_restore_drill(
    iris: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = clock.install(monkeypatch, utcnow())
    _retire(iris, 2)
    fake.advance(days=366)
    with iris.write() as session:
        assert iris.retention.run(session, SYSTEM).artifacts == ["iris:2"]
    with iris.write() as session:
        rotated = rotate_master_key(session, iris.keyring, iris.audit, SYSTEM)
    assert rotated.rewrapped >= 1  # v1 (and the audit keys), not v2
    iris.backups.run(SYSTEM)
    assert iris.backups.drill(SYSTEM).models_loaded == 1  # proven: v1 loads, v2 is skipped
