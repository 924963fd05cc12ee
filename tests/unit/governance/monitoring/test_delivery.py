"""The alert outbox worked off against a real receiver on 127.0.0.1: it refuses the first
attempt and takes the second; every attempt is recorded; the body is signed with the
configured secret, which appears in no log line; a row is given up after the configured
attempts; a row waits its backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.monitoring.records import AlertDelivery
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support import alert_rollups as rollups
from tests.support.models import CARD, iris_classifier
from tests.support.receiver import Receiver

SECRET = "webhook-secret-never-logged"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver([500, 200]) as running:
        yield running


@pytest.fixture
def overrides(overrides: dict[str, Any], receiver: Receiver) -> dict[str, Any]:
    return overrides | {
        "alert_webhook_url": receiver.url,
        "alert_webhook_secret": SECRET,
        "alert_delivery_backoff_seconds": 0,
        "alert_delivery_attempts": 3,
    }


def _fire(cofre: Container) -> int:
    # These tests follow one alert's row; the publish's own lifecycle events (the same
    # outbox) are tested in tests/unit/governance/registry/test_retirement.py.
    cofre.registry.lifecycle_webhook = False
    with cofre.write() as session:
        cofre.registry.publish(
            session, SYSTEM, PublishRequest("iris", iris_classifier(), CARD, aliases=["production"])
        )
        rollups.write(session, "iris", 1, 0, {"petal width (cm)": 0.7})
    with cofre.write() as session:
        return cofre.alerts.evaluate(session, "iris", 1)[0].alert_id


def _rows(cofre: Container) -> list[AlertDelivery]:
    with cofre.read() as session:
        return list(session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


def test_refused_then_taken_signed_and_recorded(
    cofre: Container, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    alert_id = _fire(cofre)
    assert receiver.received == []  # evaluating only writes the outbox
    with caplog.at_level(logging.DEBUG):
        first = cofre.alert_deliveries.deliver_webhooks()
        assert (first.delivered, first.retrying) == (0, 1)
        [row] = _rows(cofre)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
        second = cofre.alert_deliveries.deliver_webhooks()
    assert (second.delivered, second.retrying) == (1, 0)
    [row] = _rows(cofre)
    assert (row.status, row.attempts) == ("delivered", 2)
    assert [h["outcome"] for h in row.history] == ["HTTP 500", "ok"]
    assert len(receiver.received) == 2 and receiver.received[0][1] == receiver.received[1][1]
    headers, body = receiver.received[1]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Cofre-Signature"] == expected
    assert headers["X-Cofre-Delivery"] == str(row.id)
    sent = json.loads(body)
    assert sent["alert_id"] == alert_id and sent["state"] == "firing"
    assert (sent["model"], sent["version"]) == ("iris", 1)
    assert sent["evidence"]["figures"][0]["value"] == 0.7
    assert "subject" not in body.decode() and "pseudonym" not in body.decode()
    assert SECRET not in caplog.text
    assert cofre.alert_deliveries.deliver_webhooks().delivered == 0  # nothing twice
    assert SECRET not in json.dumps(cofre.settings.public_view())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_given_up_after_the_configured_attempts(cofre: Container, receiver: Receiver) -> None:
    receiver.statuses[:] = [503]
    _fire(cofre)
    for _ in range(4):
        cofre.alert_deliveries.deliver_webhooks()
    [row] = _rows(cofre)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "HTTP 503")
    assert len(receiver.received) == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_failed_attempt_waits_its_backoff(overrides: dict[str, Any], receiver: Receiver) -> None:
    from server import create_app
    from server.setup import initialise
    from tests.conftest import ADMIN_PASSWORD, services_of

    app = create_app(overrides | {"alert_delivery_backoff_seconds": 60})
    cofre = services_of(app)
    initialise(cofre, SYSTEM, "admin", ADMIN_PASSWORD)
    try:
        _fire(cofre)
        assert cofre.alert_deliveries.deliver_webhooks().retrying == 1
        assert cofre.alert_deliveries.deliver_webhooks().retrying == 0  # not due yet
        [row] = _rows(cofre)
        assert row.attempts == 1
        assert 59 <= (row.next_attempt_at - row.created_at).total_seconds() <= 70
    finally:
        cofre.close()


def test_url_credentials_go_as_basic_auth_and_no_reason_names_them() -> None:
    from governance.monitoring.delivery import DeliveryFailed, Webhook, post_json

    with Receiver([204, 302]) as running:
        url = running.url.replace("http://", "http://alerts:pa%40ss@")
        assert post_json(Webhook(url), b"{}", {"Content-Type": "application/json"}) == 204
        headers, _ = running.received[0]
        assert headers["Authorization"] == "Basic YWxlcnRzOnBhQHNz"  # alerts:pa@ss
        with pytest.raises(DeliveryFailed, match="HTTP 302"):  # redirects are not followed
            post_json(Webhook(running.url), b"{}", {})
    for bad in ("http://alerts:hunter2@127.0.0.1:notaport/h", "http://alerts:hunter2@127.0.0.1:9/"):
        with pytest.raises(DeliveryFailed) as failed:
            post_json(Webhook(bad, timeout_seconds=2), b"{}", {})
        assert "hunter2" not in str(failed.value) and "127.0.0.1" not in str(failed.value)
