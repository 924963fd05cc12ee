"""The job history: open, close, list newest first, filter by job or prefix."""

from __future__ import annotations

import pytest

from governance.operations.jobs import RunEnd
from server.container import Container


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_open_close_and_filter(cofre: Container) -> None:
    with cofre.write() as session:
        for job in ("backup", "retrain:1", "retrain:2"):
            run = cofre.jobs.open(session, job, "host:1")
            cofre.jobs.close(session, run.id, RunEnd("ok", f"{job} done", 1))
        cofre.jobs.open(session, "backup", "host:1")  # still running
    with cofre.read() as session:
        assert [r.job for r in cofre.jobs.recent(session)] == [
            "backup",
            "retrain:2",
            "retrain:1",
            "backup",
        ]
        assert [r.job for r in cofre.jobs.recent(session, "retrain:*")] == [
            "retrain:2",
            "retrain:1",
        ]
        latest = cofre.jobs.latest(session, "backup")
        assert latest is not None and latest.outcome == "ok" and latest.message == "backup done"
        assert cofre.jobs.latest(session, "restore-drill") is None
