"""A real `cofre scheduler` process works off the alert outbox: the webhook receiver on
127.0.0.1 refuses the first attempt and takes the retry (signed), and the retraining plan
waiting for drift alerts runs in the scheduler with its gates, without promoting."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from governance.accounts.actor import SYSTEM
from governance.registry.service import PublishRequest
from governance.retraining.service import PlanRequest
from tests.functional.scheduler.conftest import Appliance
from tests.support import alert_rollups as rollups
from tests.support import drift
from tests.support.models import CARD
from tests.support.receiver import Receiver

pytestmark = pytest.mark.functional
SECRET = "functional-webhook-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver([500, 204]) as running:
        yield running


@pytest.fixture
def appliance_settings(receiver: Receiver) -> dict[str, Any]:
    return {
        "alert_webhook_url": receiver.url,
        "alert_webhook_secret": SECRET,
        "alert_delivery_schedule": "* * * * * *",  # every second
        "alert_delivery_backoff_seconds": 1,
        "scheduler_poll_seconds": 0.3,
        "job_retries": 0,
    }


def _wait_for(what: Callable[[], bool], seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if what():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


def test_the_scheduler_delivers_alerts_and_runs_the_waiting_plan(
    appliance: Appliance, receiver: Receiver
) -> None:
    (appliance.home / "datasets").mkdir()
    drift.frame(400, seed=1).to_csv(appliance.home / "datasets" / "fresh.csv", index=False)
    with appliance.services() as cofre:
        request = PublishRequest("churn", drift.champion("old"), CARD, aliases=["production"])
        # This test follows an alert's rows; the publish's lifecycle events (the same
        # outbox) are tested in tests/unit/governance/registry/test_retirement.py.
        cofre.registry.lifecycle_webhook = False
        with cofre.write() as session:
            cofre.registry.publish(session, SYSTEM, request)
        plan = PlanRequest(
            "churn", "file", "fresh.csv", "label", "0 3 1 1 *", "roc_auc", 0.01, on_alert="drift"
        )
        plan_id = cofre.retraining.create_plan(SYSTEM, plan).id
        with cofre.write() as session:  # what the monitoring job stores, then evaluates
            rollups.write(session, "churn", 1, 0, {"x0": 0.8, "x1": 0.02})
        with cofre.write() as session:
            [fired] = cofre.alerts.evaluate(session, "churn", 1)
    assert receiver.received == []  # evaluating never calls out

    scheduler = appliance.start("scheduler", log="scheduler.log")

    def settled() -> bool:
        with appliance.services() as cofre, cofre.read() as session:
            rows = cofre.alerts.deliveries(session, [fired.alert_id])[fired.alert_id]
            return len(rows) == 2 and all(r.status != "pending" for r in rows)

    _wait_for(settled, 90, "the webhook delivery and the retraining run")
    with appliance.services() as cofre, cofre.read() as session:
        webhook, retrain = cofre.alerts.deliveries(session, [fired.alert_id])[fired.alert_id]
        [run] = cofre.retraining.runs(session, SYSTEM)
        production = cofre.registry.resolve(session, "churn", alias="production").version
        jobs = {r.job: r.runner for r in cofre.jobs.recent(session, None, 200)}
    assert (webhook.channel, webhook.status, webhook.attempts) == ("webhook", "delivered", 2)
    assert [h["outcome"] for h in webhook.history] == ["HTTP 500", "ok"]
    assert (retrain.channel, retrain.status, retrain.plan_id) == ("retrain", "delivered", plan_id)
    assert run.plan_id == plan_id and run.details and run.details["trigger"] == "alert 1"
    assert production == 1  # a candidate at most: the run never promotes
    assert jobs["alert-delivery"].endswith(f":{scheduler.pid}")
    assert jobs["alert-retraining"].endswith(f":{scheduler.pid}")

    # The retraining run's candidate publish sends its own lifecycle events: the alert's
    # body is the last one that is not a lifecycle event.
    headers, body = [
        (h, b) for h, b in receiver.received if json.loads(b).get("type") != "lifecycle"
    ][-1]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Cofre-Signature"] == expected
    sent = json.loads(body)
    assert (sent["model"], sent["version"], sent["state"]) == ("churn", 1, "firing")
    assert sent["alert_id"] == fired.alert_id and sent["evidence"]["breaching"] == ["x0"]
    assert SECRET not in (appliance.root / "scheduler.log").read_text()

    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(timeout=30) == 0
