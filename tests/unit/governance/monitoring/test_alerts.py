"""Alert rules over rollups: the default fires on PSI above 0.25 in the latest window and
resolves when it stops holding; K consecutive windows; performance floors; missing
shares; error rates; rule edits (defaults copied, removals) audited; key scope; the
outbox rows a transition leaves for the webhook and for plans waiting on an alert."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM, Actor
from governance.audit.records import AuditRecord
from governance.errors import InvalidInput, NotFound, PermissionDenied
from governance.monitoring.alerts import Alerts, Transition
from governance.monitoring.records import OUTPUT, Alert, AlertDelivery
from governance.monitoring.rules import make_rule
from governance.registry.service import PublishRequest
from governance.retraining.records import RetrainingPlan
from server.container import Container
from tests.support import alert_rollups as rollups
from tests.support.models import CARD, iris_classifier

SCOPED = Actor(type="key", id="k", role="publisher", name="scoped", models=("other",))


@pytest.fixture
def iris(cofre: Container) -> Container:
    with cofre.write() as session:
        cofre.registry.publish(
            session, SYSTEM, PublishRequest("iris", iris_classifier(), CARD, aliases=["production"])
        )
    return cofre


def _evaluate(cofre: Container, alerts: Alerts | None = None, version: int = 1) -> list[Transition]:
    with cofre.write() as session:
        return (alerts or cofre.alerts).evaluate(session, "iris", version)


def _write(cofre: Container, index: int, values: dict[str, Any], **kw: Any) -> None:
    with cofre.write() as session:
        rollups.write(session, "iris", 1, index, values, **kw)


def _events(cofre: Container, prefix: str = "alert.") -> list[AuditRecord]:
    with cofre.read() as session:
        records = session.scalars(select(AuditRecord).order_by(AuditRecord.seq)).all()
        return [r for r in records if r.kind.startswith(prefix)]


def test_the_default_fires_on_psi_above_a_quarter_and_resolves(
    iris: Container, caplog: pytest.LogCaptureFixture
) -> None:
    _write(iris, 0, {"petal length (cm)": 0.4, "sepal width (cm)": 0.05, OUTPUT: 0.1})
    with caplog.at_level(logging.WARNING, logger="cofre.alerts"):
        fired = _evaluate(iris)
    assert [(t.state, t.model_version) for t in fired] == [("firing", 1)]
    evidence = fired[0].evidence
    assert evidence["breaching"] == ["petal length (cm)"]
    assert evidence["figures"][0]["value"] == 0.4 and evidence["figures"][0]["rows"] == 500
    assert evidence["windows"] == [
        {"start": "2026-03-01T00:00:00.000000Z", "end": "2026-03-01T01:00:00.000000Z"}
    ]
    assert fired[0].rule["kind"] == "drift" and fired[0].rule["source"] == "config"
    assert any("firing" in r.getMessage() and "iris" in r.getMessage() for r in caplog.records)
    assert _evaluate(iris) == []  # still holding: no second transition

    _write(iris, 1, {"petal length (cm)": 0.1, "sepal width (cm)": 0.05})
    resolved = _evaluate(iris)
    assert [(t.alert_id, t.state) for t in resolved] == [(fired[0].alert_id, "resolved")]
    with iris.read() as session:
        alert = session.get(Alert, fired[0].alert_id)
        assert alert is not None and alert.state == "resolved" and alert.resolved_at
        assert alert.evidence["breaching"] == ["petal length (cm)"]  # kept from firing
        assert alert.resolution and alert.resolution["breaching"] == []
    events = _events(iris)
    assert [e.kind for e in events] == ["alert.firing", "alert.resolved"]
    assert events[0].details["figures"][0]["value"] == "0.4"  # audit details hold no floats
    assert events[0].model_version == 1


def test_drift_on_the_output_counts_as_any_feature(iris: Container) -> None:
    _write(iris, 0, {"petal length (cm)": 0.1, OUTPUT: 0.3})
    assert [t.evidence["breaching"] for t in _evaluate(iris)] == [[OUTPUT]]


def test_k_consecutive_windows_of_the_same_feature(iris: Container) -> None:
    with iris.write() as session:
        iris.alerts.add_rule(session, SYSTEM, "iris", make_rule("drift", "ks", 0.2, windows=3))
        iris.alerts.remove_rule(session, SYSTEM, "iris", "1")  # the copied default
    _write(iris, 0, {"a": 0.3, "b": 0.1}, method="ks")
    _write(iris, 1, {"a": 0.1, "b": 0.3}, method="ks")  # a breaks its run
    _write(iris, 2, {"a": 0.3, "b": 0.3}, method="ks")
    assert _evaluate(iris) == []
    _write(iris, 3, {"a": 0.3, "b": 0.3}, method="ks")
    fired = _evaluate(iris)
    assert [t.evidence["breaching"] for t in fired] == [["b"]]
    assert len(fired[0].evidence["windows"]) == 3
    # The newest window sets the length: a 24 h report, with b below, now rules.
    _write(iris, 0, {"a": 0.0, "b": 0.0}, method="ks", hours=24)
    assert _evaluate(iris) != [] and _evaluate(iris) == []


def test_performance_below_a_floor_and_an_error_metric_above_a_limit(iris: Container) -> None:
    with iris.write() as session:
        iris.alerts.add_rule(session, SYSTEM, "iris", make_rule("performance", "accuracy", 0.8))
        iris.alerts.add_rule(session, SYSTEM, "iris", make_rule("performance", "rmse", 2.0))
    _write(iris, 0, rollups.whole(0.9), metric="performance", method="accuracy")
    _write(iris, 0, rollups.whole(1.0), metric="performance", method="rmse")
    assert _evaluate(iris) == []
    _write(iris, 1, rollups.whole(0.7), metric="performance", method="accuracy")
    _write(iris, 1, rollups.whole(2.5), metric="performance", method="rmse")
    fired = _evaluate(iris)
    assert sorted(t.rule["method"] for t in fired) == ["accuracy", "rmse"]
    # A window without labels says nothing: the alerts stay as they are.
    _write(iris, 2, rollups.whole(None), metric="performance", method="accuracy")
    assert [t for t in _evaluate(iris) if t.rule["method"] == "accuracy"] == []


def test_missing_share_of_a_named_feature_and_error_rate(iris: Container) -> None:
    with iris.write() as session:
        iris.alerts.add_rule(
            session, SYSTEM, "iris", make_rule("missing", None, 0.1, feature="age")
        )
        iris.alerts.add_rule(session, SYSTEM, "iris", make_rule("error_rate", None, 0.05))
    _write(iris, 0, {"age": 0.05, "income": 0.5}, metric="quality", method="missing_share")
    _write(iris, 0, rollups.whole(0.2), metric="traffic", method="error_rate")
    fired = _evaluate(iris)
    assert [t.rule["kind"] for t in fired] == ["error_rate"]  # income is not the named one
    _write(iris, 1, {"age": 0.2}, metric="quality", method="missing_share")
    assert [t.rule["kind"] for t in _evaluate(iris)] == ["missing"]


def test_rules_start_as_the_defaults_and_edits_are_audited(iris: Container) -> None:
    with iris.write() as session:
        assert [r.ref for r in iris.alerts.rules(session, SYSTEM, "iris")] == ["default-1"]
        added = iris.alerts.add_rule(session, SYSTEM, "iris", make_rule("error_rate", None, 0.1))
        rules = iris.alerts.rules(session, SYSTEM, "iris")
    assert [(r.kind, r.id is not None) for r in rules] == [("drift", True), ("error_rate", True)]
    assert rules[0].threshold == 0.25 and rules[0].method == "psi"
    with iris.write() as session:
        iris.alerts.remove_rule(session, SYSTEM, "iris", str(added.id))
        assert [r.kind for r in iris.alerts.rules(session, SYSTEM, "iris")] == ["drift"]
    events = _events(iris, "alert.rule")
    assert [e.kind for e in events] == ["alert.rule_added", "alert.rule_removed"]
    assert events[0].details["defaults_copied"] == 1
    assert events[0].details["threshold"] == "0.1"


def test_removing_a_default_leaves_no_rule_and_resolves_its_alert(iris: Container) -> None:
    _write(iris, 0, {"x": 0.9})
    fired = _evaluate(iris)
    with iris.write() as session:
        iris.alerts.remove_rule(session, SYSTEM, "iris", "default-1")
        assert iris.alerts.rules(session, SYSTEM, "iris") == []
    resolved = _evaluate(iris)
    assert [(t.alert_id, t.state) for t in resolved] == [(fired[0].alert_id, "resolved")]
    assert resolved[0].evidence == {"reason": "the rule was removed"}


def test_wrong_rules_unknown_models_and_scope_are_refused(iris: Container) -> None:
    with pytest.raises(InvalidInput) as wrong:
        make_rule("drift", "psx", float("nan"), windows=0)
    assert {e.field for e in wrong.value.errors} == {"method", "threshold", "windows"}
    with pytest.raises(InvalidInput):
        make_rule("error_rate", None, 0.1, feature="age")
    with pytest.raises(InvalidInput):
        make_rule("fairness", None, 0.1)
    for kind, method, threshold in (
        ("missing", None, 1.5),
        ("error_rate", None, -0.1),
        ("drift", "psi", -1.0),
    ):
        with pytest.raises(InvalidInput) as out_of_range:
            make_rule(kind, method, threshold)
        assert [e.field for e in out_of_range.value.errors] == ["threshold"]
    assert make_rule("performance", "r2", -0.5).threshold == -0.5  # r2 may be negative
    with iris.write() as session:
        with pytest.raises(NotFound):
            iris.alerts.rules(session, SYSTEM, "nope")
        with pytest.raises(PermissionDenied):
            iris.alerts.add_rule(session, SCOPED, "iris", make_rule("error_rate", None, 0.1))
        with pytest.raises(PermissionDenied):
            iris.alerts.remove_rule(session, SCOPED, "iris", "default-1")
        with pytest.raises(NotFound):
            iris.alerts.remove_rule(session, SYSTEM, "iris", "77")
    _write(iris, 0, {"x": 0.9})
    _evaluate(iris)
    with iris.read() as session:
        assert len(iris.alerts.listing(session, SYSTEM)) == 1
        assert iris.alerts.listing(session, SCOPED) == []
        assert len(iris.alerts.listing(session, SYSTEM, state="firing")) == 1
        assert iris.alerts.listing(session, SYSTEM, state="resolved") == []


def test_transitions_leave_outbox_rows_for_the_webhook_and_waiting_plans(
    iris: Container,
) -> None:
    alerts = Alerts(iris.audit, iris.alerts.defaults, webhook=True)
    with iris.write() as session:
        for on_alert in ("drift", "performance", None):
            session.add(_plan(on_alert))
    _write(iris, 0, {"x": 0.9})
    fired = _evaluate(iris, alerts)
    _write(iris, 1, {"x": 0.0})
    _evaluate(iris, alerts)
    with iris.read() as session:
        rows = session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)).all()
        shown = [(r.channel, r.transition, r.plan_id, r.status) for r in rows]
        body = rows[0].payload
    assert shown == [
        ("webhook", "firing", None, "pending"),
        ("retrain", "firing", 1, "pending"),  # only the plan waiting for drift
        ("webhook", "resolved", None, "pending"),
    ]
    assert body["alert_id"] == fired[0].alert_id and body["model"] == "iris"
    assert body["version"] == 1 and body["state"] == "firing"
    assert body["evidence"]["breaching"] == ["x"] and body["rule"]["method"] == "psi"


def _plan(on_alert: str | None) -> RetrainingPlan:
    from governance.clock import utcnow

    return RetrainingPlan(
        model_name="iris",
        source_kind="file",
        source="fresh.csv",
        target="label",
        schedule="0 3 * * 1",
        metric="accuracy",
        min_improvement=0.01,
        holdout=0.25,
        enabled=True,
        on_alert=on_alert,
        created_by="tests",
        created_at=utcnow(),
    )


def test_one_rule_cannot_have_two_firing_alerts_for_one_version(iris: Container) -> None:
    """What stops two racing evaluations (the job and `cofre monitor`) opening it twice."""
    from sqlalchemy.exc import IntegrityError

    _write(iris, 0, {"x": 0.9})
    [fired] = _evaluate(iris)
    with pytest.raises(IntegrityError), iris.write() as session:
        alert = session.get(Alert, fired.alert_id)
        assert alert is not None
        twin = Alert(
            **{c: getattr(alert, c) for c in ("model_name", "model_version", "rule_key", "kind")},
            state="firing",
            firing_slot=1,
            rule=alert.rule,
            evidence={},
            fired_at=alert.fired_at,
        )
        session.add(twin)
        session.flush()
    _write(iris, 1, {"x": 0.0})
    _evaluate(iris)  # resolved: the slot is free again
    _write(iris, 2, {"x": 0.9})
    assert [t.state for t in _evaluate(iris)] == ["firing"]


def test_an_alert_firing_on_a_default_follows_its_copy(iris: Container) -> None:
    _write(iris, 0, {"x": 0.9})
    [fired] = _evaluate(iris)
    with iris.write() as session:
        iris.alerts.add_rule(session, SYSTEM, "iris", make_rule("error_rate", None, 0.5))
    assert _evaluate(iris) == []  # not resolved and fired again under the copied rule
    with iris.read() as session:
        alert = session.get(Alert, fired.alert_id)
        assert alert is not None and alert.state == "firing" and alert.rule_id == 1
    with iris.write() as session:
        iris.alerts.remove_rule(session, SYSTEM, "iris", "1")
    assert [(t.alert_id, t.state) for t in _evaluate(iris)] == [(fired.alert_id, "resolved")]
