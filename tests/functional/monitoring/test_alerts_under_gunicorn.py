"""Alerts end to end under real Gunicorn: traffic with one feature shifted by two standard
deviations through the native door; `cofre monitor` (its own process) stores the report
and fires the default PSI alert on that feature alone; GET /api/v1/alerts shows it with
its evidence; `cofre jobs run alert-delivery` (its own process, as the scheduler runs it)
delivers it, signed, to a receiver on 127.0.0.1 that refuses the first attempt."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from governance.accounts.actor import SYSTEM
from governance.monitoring.profiles import ReferenceData
from governance.registry.service import PublishRequest
from server import create_app
from server.setup import initialise
from tests.conftest import services_of
from tests.functional.monitoring.test_monitoring_under_gunicorn import Appliance, _call, _cofre
from tests.support.gunicorn import served
from tests.support.models import CARD
from tests.support.monitoring import classifier, normal_frame, reference_csv
from tests.support.receiver import Receiver

pytestmark = pytest.mark.functional
SECRET = "gunicorn-webhook-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver([503, 200]) as running:
        yield running


@pytest.fixture
def alerting(tmp_path: Path, database_url: str, receiver: Receiver) -> Iterator[Appliance]:
    settings = {
        "home": str(tmp_path / "home"),
        "key_dir": str(tmp_path / "keys"),
        "database_url": database_url,
        "log_json": False,
        "alert_webhook_url": receiver.url,
        "alert_webhook_secret": SECRET,
        "alert_delivery_backoff_seconds": 0,
    }
    cofre = services_of(create_app(settings))
    initialise(cofre, SYSTEM, "admin", "functional tests password")
    publish = PublishRequest(
        name="risk",
        artifact=classifier(),
        card=CARD,
        aliases=["production"],
        reference=ReferenceData(reference_csv(), "csv"),
    )
    headers = {}
    # This test follows an alert's row; the publish's lifecycle events (the same outbox)
    # are tested in tests/unit/governance/registry/test_retirement.py.
    cofre.registry.lifecycle_webhook = False
    with cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, publish)
        for role in ("predictor", "publisher"):
            secret = cofre.accounts.create_key(session, SYSTEM, role, role).secret
            headers[role] = {"Authorization": f"Bearer {secret}"}
    try:
        with served(settings, tmp_path, workers=3) as url:
            yield Appliance(url, cofre, settings, headers)
    finally:
        cofre.close()


def test_a_shifted_feature_fires_an_alert_that_reaches_the_webhook(
    alerting: Appliance, receiver: Receiver
) -> None:
    frame = normal_frame(500, seed=11, shift={"x1": 2.0})
    for start in range(0, 500, 50):
        body: dict[str, Any] = {"instances": frame.iloc[start : start + 50].to_dict("records")}
        status, answer = _call(
            f"{alerting.url}/api/v1/models/risk/predict", alerting.headers["predictor"], body
        )
        assert status == 200, answer
    assert receiver.received == []  # serving never calls out

    printed = json.loads(_cofre(alerting.settings, "monitor", "risk", "--json"))
    [fired] = printed["alerts"]
    assert fired["state"] == "firing" and "x1" in fired["evidence"]["breaching"]
    assert not {"x0", "x2"} & set(fired["evidence"]["breaching"])

    status, listed = _call(f"{alerting.url}/api/v1/alerts", alerting.headers["publisher"])
    assert status == 200, listed
    [alert] = listed["alerts"]
    assert alert["id"] == fired["alert_id"] and alert["state"] == "firing"
    assert [d["status"] for d in alert["deliveries"]] == ["pending"]
    assert receiver.received == []  # still: only the scheduler's job posts

    for _ in range(2):  # the receiver refuses the first attempt, takes the second
        _cofre(alerting.settings, "jobs", "run", "alert-delivery")
    headers, body_sent = receiver.received[-1]
    assert len(receiver.received) == 2
    expected = "sha256=" + hmac.new(SECRET.encode(), body_sent, hashlib.sha256).hexdigest()
    assert headers["X-Cofre-Signature"] == expected
    sent = json.loads(body_sent)
    assert (sent["model"], sent["version"], sent["state"]) == ("risk", 1, "firing")
    assert sent["alert_id"] == fired["alert_id"] and "x1" in sent["evidence"]["breaching"]
    status, listed = _call(f"{alerting.url}/api/v1/alerts", alerting.headers["publisher"])
    [delivery] = listed["alerts"][0]["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
