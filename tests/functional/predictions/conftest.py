"""The appliance the subject-rights and feedback tests share: iris in production, a
predictor and an auditor key, served by real Gunicorn with two workers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from governance.accounts.actor import SYSTEM
from governance.registry.service import PublishRequest
from server import create_app
from server.container import Container
from server.setup import initialise
from tests.conftest import services_of
from tests.support.gunicorn import served
from tests.support.models import CARD, iris_classifier


@dataclass
class Appliance:
    url: str
    cofre: Container
    settings: dict[str, Any]
    predictor: dict[str, str]
    auditor: dict[str, str]


@pytest.fixture
def appliance(tmp_path: Path, database_url: str) -> Iterator[Appliance]:
    settings = {
        "home": str(tmp_path / "home"),
        "key_dir": str(tmp_path / "keys"),
        "database_url": database_url,
        "log_json": False,
    }
    cofre = services_of(create_app(settings))
    initialise(cofre, SYSTEM, "admin", "functional tests password")
    with cofre.write() as session:
        cofre.registry.publish(
            session,
            SYSTEM,
            PublishRequest(
                name="iris", artifact=iris_classifier(), card=CARD, aliases=["production"]
            ),
        )
        predictor = cofre.accounts.create_key(session, SYSTEM, "svc", "predictor").secret
        auditor = cofre.accounts.create_key(session, SYSTEM, "dpo", "auditor").secret
    try:
        with served(settings, tmp_path, workers=2) as url:
            yield Appliance(
                url,
                cofre,
                settings,
                {"Authorization": f"Bearer {predictor}"},
                {"Authorization": f"Bearer {auditor}"},
            )
    finally:
        cofre.close()
