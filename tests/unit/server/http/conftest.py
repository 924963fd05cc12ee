"""Published test models and a predictor key for the prediction-door tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from governance.accounts.actor import SYSTEM
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support.models import CARD, cancer_pipeline, iris_classifier, iris_classifier_v2


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """A short lock timeout, so the fail-closed test does not wait long."""
    return overrides | {"db_lock_timeout_ms": 1000}


@pytest.fixture
def models(cofre: Container) -> Container:
    """iris (v1 production, v2 staging) and breast-cancer (production)."""
    with cofre.write() as session:
        for name, artifact, aliases in (
            ("iris", iris_classifier(), ["production"]),
            ("iris", iris_classifier_v2(), ["staging"]),
            ("breast-cancer", cancer_pipeline(), ["production"]),
        ):
            cofre.registry.publish(
                session,
                SYSTEM,
                PublishRequest(name=name, artifact=artifact, card=CARD, aliases=aliases),
            )
    return cofre


@pytest.fixture
def predictor(models: Container, api_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return api_key("predictor")
