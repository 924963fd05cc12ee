"""The extraction detector's settings: defaults, the policy the container builds from
them, and one-line refusals of values that cannot work."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from server import create_app
from server.config import ConfigError, load_settings
from server.container import Container
from tests.conftest import services_of


def _settings(tmp_path: Path, **given: Any) -> Any:
    return load_settings({"home": str(tmp_path / "h"), **given}, environ={})


def test_the_defaults_alert_only_and_the_container_builds_the_policy(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings.extraction_throttle_rate == "" and settings.extraction_window == "1h"
    environment = {"COFRE_HOME": str(tmp_path / "h"), "COFRE_EXTRACTION_THROTTLE_RATE": "2/s"}
    assert load_settings(environ=environment).extraction_throttle_rate == "2/s"
    app = create_app({"home": str(tmp_path / "h"), "extraction_window": "30m"})
    detector = services_of(app).extraction
    assert detector.policy.window == timedelta(minutes=30) and detector.policy.min_rows == 50


def test_the_throttle_lowers_the_keys_own_rate_audited(cofre: Container) -> None:
    services = cofre
    with services.write() as session:
        made = services.accounts.create_key(session, SYSTEM, "sweeper", "predictor")
    with services.write() as session:
        services.extraction.throttle(session, made.key.prefix, "2/s")
    with services.read() as session:
        key = services.accounts.key(session, made.key.prefix)
        assert key.rate_per_second == 2
        limited = session.scalars(select(AuditRecord).where(AuditRecord.kind == "key.limited"))
        assert [(r.details or {})["prefix"] for r in limited] == [made.key.prefix]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("extraction_window", "an hour", "extraction_window"),
        ("extraction_min_rows", 1, "at least 2"),
        ("extraction_sweep_share", 1.5, "from 0 to 1"),
        ("extraction_distance", -1, r"zero \(off\) or more"),
        ("extraction_throttle_rate", "fast", "such as 1/s"),
    ],
)
def test_values_that_cannot_work_are_refused(
    tmp_path: Path, name: str, value: Any, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        _settings(tmp_path, **{name: value})
