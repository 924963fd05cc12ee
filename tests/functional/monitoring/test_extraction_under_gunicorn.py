"""Extraction detection end to end under real Gunicorn (two workers): one key sweeps a
feature through the native door while another sends rows like the reference data; the
`extraction` job's work (outside the workers, as the scheduler runs it) raises one
extraction alert, for the sweeping key alone; GET /api/v1/alerts shows its evidence
and the delivery job's work posts it to the webhook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from governance.accounts.actor import SYSTEM
from server import create_app
from server.jobs import extraction_work
from server.setup import initialise
from tests.conftest import services_of
from tests.functional.monitoring.test_monitoring_under_gunicorn import Appliance, _call
from tests.support.extraction import ordinary_rows, publish_risk, sweep_rows
from tests.support.gunicorn import served
from tests.support.receiver import Receiver

pytestmark = pytest.mark.functional


@dataclass
class Watched(Appliance):
    sweeper: str  # the sweeping key's prefix


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver([200]) as running:
        yield running


@pytest.fixture
def watched(tmp_path: Path, database_url: str, receiver: Receiver) -> Iterator[Watched]:
    settings = {
        "home": str(tmp_path / "home"),
        "key_dir": str(tmp_path / "keys"),
        "database_url": database_url,
        "log_json": False,
        "alert_webhook_url": receiver.url,
    }
    cofre = services_of(create_app(settings))
    initialise(cofre, SYSTEM, "admin", "functional tests password")
    publish_risk(cofre)
    headers, prefixes = {}, {}
    with cofre.write() as session:
        for name, role in (("sweeper", "predictor"), ("calm", "predictor"), ("owner", "publisher")):
            created = cofre.accounts.create_key(session, SYSTEM, name, role)
            headers[name] = {"Authorization": f"Bearer {created.secret}"}
            prefixes[name] = created.key.prefix
    try:
        with served(settings, tmp_path, workers=2) as url:
            yield Watched(url, cofre, settings, headers, prefixes["sweeper"])
    finally:
        cofre.close()


def _predict(appliance: Watched, key: str, rows: list[dict[str, float]]) -> None:
    for start in range(0, len(rows), 10):
        body: dict[str, Any] = {"instances": rows[start : start + 10]}
        status, answer = _call(
            f"{appliance.url}/api/v1/models/risk/predict", appliance.headers[key], body
        )
        assert status == 200, answer


def test_a_sweep_through_the_native_door_raises_the_extraction_alert(
    watched: Watched, receiver: Receiver
) -> None:
    _predict(watched, "sweeper", sweep_rows(60))
    _predict(watched, "calm", ordinary_rows(60))

    ran = extraction_work(watched.cofre)  # the job's work, outside the workers
    assert "2 key(s) judged, 1 suspicious; alerts: 1 fired" in ran

    status, listed = _call(f"{watched.url}/api/v1/alerts", watched.headers["owner"])
    assert status == 200, listed
    [alert] = listed["alerts"]
    evidence = alert["evidence"]
    assert alert["kind"] == "extraction" and alert["state"] == "firing"
    assert (alert["model"], alert["version"]) == ("risk", 1)
    assert evidence["key"] == watched.sweeper
    assert evidence["requests"] == 6 and evidence["rows"] == 60
    assert evidence["one_feature_share"] == 1.0 and list(evidence["swept"]) == ["x1"]

    watched.cofre.alert_deliveries.deliver_webhooks()  # the delivery job's work, in-process
    # Publishing sent lifecycle events to the same webhook: the alert's is the one post
    # that is not one.
    [posted] = [p for _, p in map(_parsed, receiver.received) if p.get("type") != "lifecycle"]
    assert posted["rule"]["kind"] == "extraction" and posted["evidence"]["key"] == evidence["key"]


def _parsed(received: tuple[Any, bytes]) -> tuple[Any, dict[str, Any]]:
    headers, sent = received
    return headers, json.loads(sent)
