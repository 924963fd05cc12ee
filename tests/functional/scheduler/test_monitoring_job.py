"""The `monitoring` job in a real `cofre scheduler` process: it stores the report
that the API and the gauges then read, with drift on the shifted feature alone."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from governance.accounts.actor import SYSTEM
from governance.clock import isoformat, utcnow
from governance.monitoring.profiles import ReferenceData
from governance.registry.service import PublishRequest
from tests.functional.scheduler.conftest import Appliance
from tests.support.models import CARD
from tests.support.monitoring import classifier, normal_frame, reference_csv
from tests.support.scoring import score

pytestmark = pytest.mark.functional


@pytest.fixture
def appliance_settings() -> dict[str, Any]:
    return {"monitoring_schedule": "*/2 * * * * *", "scheduler_poll_seconds": 0.3}


def test_the_scheduler_runs_the_monitoring_job(appliance: Appliance) -> None:
    with appliance.services() as cofre:
        request = PublishRequest(
            name="risk",
            artifact=classifier(),
            card=CARD,
            aliases=["production"],
            reference=ReferenceData(reference_csv(), "csv"),
        )
        with cofre.write() as session:
            cofre.registry.publish(session, SYSTEM, request)
        rows = normal_frame(300, seed=4, shift={"x0": 2.0}).to_dict("records")
        for start in range(0, 300, 100):
            score(cofre, [None] * 100, name="risk", rows=rows[start : start + 100])
    scheduler = appliance.start("scheduler", log="scheduler.log")
    try:
        report = _wait_for_report(appliance)
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=30)
    assert [f for f in report["drifting"] if f != "__output__"] == ["x0"]
    assert report["traffic"]["requests"] == 3
    with appliance.services() as cofre, cofre.read() as session:
        runs = [r for r in cofre.jobs.recent(session, "monitoring") if r.outcome == "ok"]
    assert runs and "risk v1: x0" in runs[0].message


def _wait_for_report(appliance: Appliance) -> dict[str, Any]:
    """The current window's report (the job stores the window before first)."""
    deadline = time.monotonic() + 90
    now = isoformat(utcnow())
    while time.monotonic() < deadline:
        with appliance.services() as cofre, cofre.read() as session:
            report = cofre.monitoring.report(session, "risk", 1, timedelta(hours=24))
        if report is not None and report["window"]["end"] > now:
            return report
        time.sleep(0.5)
    raise AssertionError((appliance.root / "scheduler.log").read_text()[-3000:])
