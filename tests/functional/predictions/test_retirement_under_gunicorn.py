"""Deprecation and retirement under real Gunicorn with two workers: a deprecated
version's answers carry Deprecation and Sunset on the native, MLflow and V2 doors until
its sunset, then every door answers 410 naming the successor (audited); no alias moves
onto it; a retired version answers 410 at once.

The workers read the real clock (the appliance has no knob to move its own time: one
would let an operator date audit records at will), so the sunset is set a few seconds
ahead and the test waits it out; the unit tests move a fake clock across it instead."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.clock import utcnow
from governance.registry.service import PublishRequest
from server import create_app
from server.container import Container
from server.setup import initialise
from tests.conftest import services_of
from tests.support.gunicorn import served
from tests.support.models import CARD, iris_classifier, iris_classifier_v2
from tests.support.scoring import IRIS_ROW

pytestmark = pytest.mark.functional
REFRESH = 0.2  # alias_refresh_seconds: how long a worker may answer from its snapshot
SUNSET_AHEAD = 3.0  # seconds: time enough for the calls before the sunset
CALLS = 6  # per door and phase: with two workers, both answer some
Answer = tuple[int, dict[str, str], Any]


@dataclass
class Appliance:
    url: str
    cofre: Container
    predictor: dict[str, str]
    publisher: dict[str, str]


@pytest.fixture
def appliance(tmp_path: Path, database_url: str) -> Iterator[Appliance]:
    settings = {
        "home": str(tmp_path / "home"),
        "key_dir": str(tmp_path / "keys"),
        "database_url": database_url,
        "alias_refresh_seconds": REFRESH,
        "log_json": False,
    }
    cofre = services_of(create_app(settings))
    initialise(cofre, SYSTEM, "admin", "functional tests password")
    with cofre.write() as session:
        for artifact, aliases in (
            (iris_classifier(), ["production"]),
            (iris_classifier_v2(), []),
            (iris_classifier_v2(), []),
        ):
            request = PublishRequest("iris", artifact, CARD, aliases=aliases, allow_duplicate=True)
            cofre.registry.publish(session, SYSTEM, request)
        predictor = cofre.accounts.create_key(session, SYSTEM, "svc", "predictor").secret
        publisher = cofre.accounts.create_key(session, SYSTEM, "ds", "publisher").secret
    try:
        with served(settings, tmp_path, workers=2) as url:
            yield Appliance(url, cofre, _bearer(predictor), _bearer(publisher))
    finally:
        cofre.close()


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _call(url: str, body: Any, headers: dict[str, str], method: str = "POST") -> Answer:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **headers}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def _doors(appliance: Appliance, version: int) -> list[tuple[str, Answer]]:
    base, key = appliance.url, appliance.predictor
    instances = {"instances": [IRIS_ROW]}
    inputs = {
        "inputs": [
            {"name": name, "datatype": "FP64", "shape": [1], "data": [value]}
            for name, value in IRIS_ROW.items()
        ]
    }
    return [
        ("native", _call(f"{base}/api/v1/models/iris/predict?version={version}", instances, key)),
        (
            "mlflow",
            _call(f"{base}/api/v1/models/iris/invocations?version={version}", instances, key),
        ),
        ("v2", _call(f"{base}/v2/models/iris/versions/{version}/infer", inputs, key)),
    ]


def _gone_records(cofre: Container, version: int) -> int:
    with cofre.read() as session:
        rows = session.scalars(
            select(AuditRecord).where(
                AuditRecord.kind == "prediction",
                AuditRecord.status == 410,
                AuditRecord.model_version == version,
            )
        )
        return len(list(rows))


def test_deprecated_then_gone_and_retired_at_once_across_two_workers(
    appliance: Appliance,
) -> None:
    sunset = utcnow() + timedelta(seconds=SUNSET_AHEAD)
    status, _, body = _call(
        f"{appliance.url}/api/v1/models/iris/versions/2/deprecate",
        {"sunset": sunset.isoformat(), "reason": "v1 is better calibrated"},
        appliance.publisher,
    )
    assert status == 200, body
    time.sleep(REFRESH * 2)  # every worker's snapshot of v2 has expired
    for _ in range(CALLS):
        for door, (status, headers, body) in _doors(appliance, 2):
            assert status == 200, (door, body)
            assert headers["Deprecation"].startswith("@"), door
            assert parsedate_to_datetime(headers["Sunset"]) == sunset.replace(microsecond=0)
        assert utcnow() < sunset, "the calls before the sunset took too long"
    status, _, body = _call(
        f"{appliance.url}/api/v1/models/iris/aliases/production",
        {"version": 2},
        appliance.publisher,
        method="PUT",
    )
    assert status == 409 and "deprecated" in body["detail"]
    time.sleep(max(0.0, (sunset - utcnow()).total_seconds()) + 0.05)
    for _ in range(CALLS):
        for door, (status, _, body) in _doors(appliance, 2):
            assert status == 410, (door, body)
            assert body["successor"] == "iris:1" and "iris:1" in body["detail"], door
    assert _gone_records(appliance.cofre, 2) == 3 * CALLS  # each refusal audited

    status, _, body = _call(
        f"{appliance.url}/api/v1/models/iris/versions/3/retire", None, appliance.publisher
    )
    assert status == 200 and body["retired_at"], body
    time.sleep(REFRESH * 2)
    for _ in range(CALLS):
        for door, (status, _, body) in _doors(appliance, 3):
            assert status == 410 and body["successor"] == "iris:1", (door, body)
    for door, (status, headers, _) in _doors(appliance, 1):
        assert status == 200 and "Deprecation" not in headers, door
