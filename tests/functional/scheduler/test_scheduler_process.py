"""Two real `cofre scheduler` processes: only the lock holder runs jobs, each firing once;
when it stops, the other takes over. Jobs run real backups and restore drills."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from governance.accounts.actor import SYSTEM
from governance.registry.service import PublishRequest
from governance.retraining.service import PlanRequest
from tests.functional.scheduler.conftest import Appliance
from tests.support import drift
from tests.support.models import CARD

pytestmark = pytest.mark.functional


@pytest.fixture
def appliance_settings() -> dict[str, Any]:
    return {
        "backup_schedule": "*/2 * * * * *",  # every 2 seconds
        "backup_drill_schedule": "1/3 * * * * *",
        "scheduler_poll_seconds": 0.3,
        "job_retries": 0,
        "backup_keep_daily": 2,
    }


def _runs(appliance: Appliance) -> list[tuple[str, str, str, Any]]:
    engine = appliance.engine()
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT job, outcome, runner, scheduled_for FROM job_runs ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]


def _wait_for(what: Callable[[], bool], seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if what():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


def _set_up(appliance: Appliance) -> None:
    """A champion, a plan that retrains it every 5 seconds, and a first backup (so the
    first drill has something to restore); in this process, which is faster."""
    (appliance.home / "datasets").mkdir()
    drift.frame(400, seed=1).to_csv(appliance.home / "datasets" / "fresh.csv", index=False)
    with appliance.services() as cofre:
        request = PublishRequest("churn", drift.champion("old"), CARD, aliases=["production"])
        with cofre.write() as session:
            cofre.registry.publish(session, SYSTEM, request)
        plan = PlanRequest("churn", "file", "fresh.csv", "label", "*/5 * * * * *", "roc_auc", 0.01)
        cofre.retraining.create_plan(SYSTEM, plan)
        cofre.backups.run(SYSTEM)


def test_two_schedulers_one_acts_each_firing_once(appliance: Appliance) -> None:
    _set_up(appliance)
    first = appliance.start("scheduler", log="first.log")
    second = appliance.start("scheduler", log="second.log")
    pids = {first.pid: first, second.pid: second}

    def enough() -> bool:
        jobs = [r[0] for r in _runs(appliance) if r[1] != "running"]
        return (
            jobs.count("backup") >= 3 and jobs.count("restore-drill") >= 2 and "retrain:1" in jobs
        )

    _wait_for(enough, 60, "three backups, two drills and a retraining")
    runs = [r for r in _runs(appliance) if r[1] != "running"]
    runners = {r[2] for r in runs}
    assert len(runners) == 1, runners  # only the lock holder ran jobs
    active = int(runners.pop().rsplit(":", 1)[1])
    assert active in pids
    for job in ("backup", "restore-drill", "retrain:1"):
        fired = [r[3] for r in runs if r[0] == job]
        assert len(fired) == len(set(fired)), f"{job} ran twice for one firing"
    assert all(r[1] == "ok" for r in runs), runs
    with appliance.services() as cofre, cofre.read() as session:
        # Only finished drills: one may have started since the runs above were read.
        drills = [
            r.message for r in cofre.jobs.recent(session, "restore-drill") if r.outcome != "running"
        ]
        decisions = {r.decision for r in cofre.retraining.runs(session, SYSTEM)}
    assert len(drills) >= 2
    assert all("model versions loaded, audit verified to" in m for m in drills)  # real drills
    assert "registered" in decisions

    # The active scheduler stops; the standby takes over within a few polls.
    pids[active].send_signal(signal.SIGTERM)
    assert pids[active].wait(timeout=30) == 0
    standby = next(pid for pid in pids if pid != active)
    _wait_for(
        lambda: any(r[2].endswith(f":{standby}") for r in _runs(appliance)),
        30,
        "the standby scheduler to take over",
    )
    pids[standby].send_signal(signal.SIGTERM)
    assert pids[standby].wait(timeout=30) == 0
