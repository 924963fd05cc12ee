"""The core during a rollout, called directly: the split, stickiness by pseudonym,
shadow scoring off the answer's path, the candidate's failure falling back to the
champion, and what the answers and their audit records say."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sklearn.datasets import load_iris
from sqlalchemy import select

from governance.accounts.actor import SYSTEM, Actor
from governance.audit.records import AuditRecord
from governance.rollouts.service import RolloutRequest
from server.container import Container
from server.inference.predictor import Call, Decoded, ServedVersion
from server.inference.table import Table
from tests.support.models import iris_classifier_v2
from tests.support.publishing import publish

PREDICTOR = Actor(type="key", id="7", role="predictor", name="key:test")
FEATURES, _ = load_iris(return_X_y=True, as_frame=True)
ROWS = FEATURES.iloc[::15].to_dict(orient="records")


@pytest.fixture
def iris(cofre: Container) -> Container:
    publish(cofre, aliases=["production"])
    publish(cofre, artifact=iris_classifier_v2())
    return cofre


def _start(cofre: Container, strategy: str, **extra: Any) -> int:
    with cofre.write() as session:
        request = RolloutRequest("iris", 2, strategy, **extra)
        return cofre.rollouts.start(session, SYSTEM, request).id


def _predict(cofre: Container, request_id: str, subjects: list[str] | None = None) -> Any:
    def decode(served: ServedVersion) -> Decoded:
        rows = ROWS[:1] if subjects else ROWS
        return Decoded(table=Table(rows), subject_ids=subjects)

    call = Call(endpoint="native", model="iris", request_id=request_id, path="/p")
    return cofre.predictor.predict(lambda: PREDICTOR, call, decode)


def _record(cofre: Container, request_id: str, kind: str = "prediction") -> AuditRecord:
    with cofre.read() as session:
        stmt = select(AuditRecord).where(
            AuditRecord.request_id == request_id, AuditRecord.kind == kind
        )
        return session.scalars(stmt).one()


def test_a_canary_splits_by_request_and_says_so_in_answer_and_record(iris: Container) -> None:
    rollout = _start(iris, "canary", percent=30)
    answers = [_predict(iris, f"r{i}") for i in range(200)]
    by_candidate = [a for a in answers if a.version == 2]
    assert 30 <= len(by_candidate) <= 90  # binomial(200, 0.3): mean 60, sd 6.5
    assert all(a.routed.rollout == rollout for a in answers)
    assert {a.routed.reason for a in answers} == {"request-hash"}
    assert all((a.routed.variant == "candidate") == (a.version == 2) for a in answers)
    record = _record(iris, by_candidate[0].request_id)
    assert record.model_version == 2
    assert record.details is not None
    assert record.details["rollout"] == rollout
    assert record.details["variant"] == "candidate"
    assert record.details["reason"] == "request-hash"


def test_a_subject_always_gets_the_same_variant(iris: Container) -> None:
    _start(iris, "canary", percent=50)
    for person in ("ana", "bruno", "carla", "diego"):
        versions = {_predict(iris, f"{person}-{i}", [person]).version for i in range(8)}
        assert len(versions) == 1
    answer = _predict(iris, "ana-x", ["ana"])
    assert answer.routed.reason == "subject-hash"
    record = _record(iris, "ana-x")
    assert "ana" not in str(record.details)


def test_abort_returns_every_request_to_the_champion_at_once(iris: Container) -> None:
    _start(iris, "canary", percent=99)
    assert _predict(iris, "before").version == 2 or _predict(iris, "before2").version == 2
    with iris.write() as session:
        iris.rollouts.abort(session, SYSTEM, "iris", "test")
    answers = [_predict(iris, f"after{i}") for i in range(20)]
    assert {a.version for a in answers} == {1}
    assert all(a.routed is None for a in answers)


def test_shadow_answers_from_the_champion_and_audits_the_candidate(iris: Container) -> None:
    rollout = _start(iris, "shadow")
    answers = [_predict(iris, f"s{i}") for i in range(5)]
    assert {a.version for a in answers} == {1}
    assert {a.routed.reason for a in answers} == {"shadow"}
    iris.rollout_traffic.drain()
    shadow = _record(iris, "s0", "prediction.shadow")
    assert shadow.model_version == 2
    assert shadow.details is not None
    assert shadow.details["rollout"] == rollout
    assert shadow.details["answered_by"] == 1
    with iris.read() as session:
        rows = iris.audit.decrypt_payload(session, shadow)
        status = iris.rollout_reports.status(session, "iris")
    assert len(rows) == len(ROWS) and "output" in rows[0]
    candidate = status["variants"]["candidate"]
    assert candidate["requests"] == 5
    assert candidate["compared"] == 5 * len(ROWS)
    expected = sum(
        r["output"] == a
        for i in range(5)
        for r, a in zip(
            iris.audit.decrypt_payload(
                iris.sessions(), _record(iris, f"s{i}", "prediction.shadow")
            ),
            answers[i].predictions,
            strict=True,
        )
    )
    assert candidate["agreed"] == expected


def test_a_full_shadow_queue_drops_work_and_never_delays_the_answer(
    iris: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    _start(iris, "shadow")
    traffic = iris.rollout_traffic
    traffic._ensure_thread()  # this process's thread, then a bounded queue of one for it
    monkeypatch.setattr(traffic, "_queue", queue.Queue(1))
    gate = threading.Event()
    traffic.submit(traffic.plan("iris"), gate.wait)  # type: ignore[arg-type]
    for i in range(5):
        assert _predict(iris, f"q{i}").version == 1
    gate.set()
    traffic.drain()
    with iris.read() as session:
        status = iris.rollout_reports.status(session, "iris")
    assert status["variants"]["candidate"]["shadow_dropped"] >= 4


def test_blue_green_switches_once_loaded_and_abort_switches_back(
    iris: Container, client: Any, api_key: Callable[..., dict[str, str]]
) -> None:
    _start(iris, "blue-green")
    first = _predict(iris, "bg0")
    assert (first.version, first.routed.reason) == (1, "warming")  # not loaded here yet
    iris.rollout_traffic.drain()  # the candidate was loaded off the request's path
    ready = client.get("/readyz", headers=api_key("admin")).json
    assert ready["checks"]["rollouts"]["ok"]
    assert "blue-green v2 loaded in this worker" in ready["checks"]["rollouts"]["detail"]
    switched = [_predict(iris, f"bg{i}") for i in range(1, 6)]
    assert {(a.version, a.routed.reason) for a in switched} == {(2, "blue-green")}
    with iris.write() as session:
        iris.rollouts.abort(session, SYSTEM, "iris", "switch back")
    assert _predict(iris, "bg9").version == 1


def test_drift_from_the_monitoring_rollups_trips_its_guardrail(iris: Container) -> None:
    from datetime import timedelta

    from governance.clock import utcnow
    from governance.monitoring.records import MonitoringRollup

    rollout = _start(iris, "canary", percent=50, guardrails=("drift<0.25",), min_requests=1)
    for i in range(10):
        _predict(iris, f"d{i}")
    iris.rollout_traffic.drain()
    with iris.read() as session:
        assert iris.rollouts.active(session, "iris") is not None  # no rollup yet: no drift
    now = utcnow()
    with iris.write() as session:
        session.add(
            MonitoringRollup(
                model_name="iris",
                model_version=2,
                window_start=now - timedelta(hours=1),
                window_end=now + timedelta(minutes=1),
                feature="petal width (cm)",
                metric="drift",
                method="psi",
                value=0.4,
                rows=100,
                computed_at=now,
                details={},
            )
        )
    with iris.write() as session:
        reason = iris.rollout_reports.check(session, SYSTEM, rollout)
    assert reason is not None and "drift" in reason
    assert _predict(iris, "after-drift").version == 1
    _the_guardrails_alert_fires_until_the_next_rollout(iris, rollout)


def _the_guardrails_alert_fires_until_the_next_rollout(iris: Container, rollout: int) -> None:
    alert = _guardrail_alert(iris)
    assert (alert.state, alert.model_version, alert.rule["rollout"]) == ("firing", 2, rollout)
    assert alert.evidence["breaching"] == ["drift"]
    with iris.read() as session:
        kinds = session.scalars(select(AuditRecord.kind).where(AuditRecord.kind.like("alert.%")))
        assert list(kinds) == ["alert.firing"]
    with iris.write() as session:  # monitoring's rules fire their own alert, leave this one
        iris.alerts.evaluate(session, "iris", 2)
    assert _guardrail_alert(iris).state == "firing"
    _start(iris, "shadow")
    resolved = _guardrail_alert(iris)
    assert resolved.state == "resolved" and "new rollout" in (resolved.resolution or {})["reason"]


def _guardrail_alert(iris: Container) -> Any:
    with iris.read() as session:
        alerts = iris.alerts.listing(session, SYSTEM, model_name="iris")
    (alert,) = [a for a in alerts if a.kind == "guardrail"]
    return alert
