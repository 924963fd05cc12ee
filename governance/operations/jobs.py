"""The job history: each run of a scheduled (or hand-started) job, as rows in `job_runs`.

A run is opened before the work and closed after it in separate short
transactions, so a job that dies half-way still leaves a `running` row that
says when it started, and the work itself never holds a write lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.clock import utcnow
from governance.errors import NotFound
from governance.operations.records import JobRun

OUTCOMES = ("running", "ok", "failed")
BACKUP_JOB = "backup"
DRILL_JOB = "restore-drill"
CHECKPOINT_JOB = "audit-checkpoint"
RETENTION_JOB = "retention"
MONITORING_JOB = "monitoring"
RETRAIN_PREFIX = "retrain:"
ALERT_DELIVERY_JOB = "alert-delivery"
ALERT_RETRAINING_JOB = "alert-retraining"
STORAGE_JOB = "storage"
EXTRACTION_JOB = "extraction"
MESSAGE_LIMIT = 2000


@dataclass(frozen=True)
class RunEnd:
    """How a run ended, as the job reports it."""

    outcome: str
    message: str
    attempts: int
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunPage:
    """One page of the job history, newest first."""

    runs: list[JobRun]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


class JobHistory:
    """Opens, closes and lists job runs; sessions come from the caller."""

    def open(
        self, session: Session, job: str, runner: str, scheduled_for: datetime | None = None
    ) -> JobRun:
        run = JobRun(
            job=job,
            scheduled_for=scheduled_for,
            started_at=utcnow(),
            outcome="running",
            message="",
            attempts=0,
            runner=runner,
        )
        session.add(run)
        session.flush()
        return run

    def close(self, session: Session, run_id: int, end: RunEnd) -> JobRun:
        run = session.get(JobRun, run_id)
        if run is None:
            raise NotFound(f"no job run {run_id}")
        run.finished_at = utcnow()
        run.outcome = end.outcome if end.outcome in OUTCOMES else "failed"
        run.message = end.message[:MESSAGE_LIMIT]
        run.attempts = end.attempts
        run.details = end.details
        session.flush()
        return run

    def recent(self, session: Session, job: str | None = None, limit: int = 50) -> list[JobRun]:
        """Newest first; `job` may end in `*` to match a prefix (`retrain:*`)."""
        stmt = select(JobRun).order_by(JobRun.id.desc()).limit(max(1, min(limit, 1000)))
        if job and job.endswith("*"):
            stmt = stmt.where(JobRun.job.startswith(job[:-1]))
        elif job:
            stmt = stmt.where(JobRun.job == job)
        return list(session.scalars(stmt))

    def page(self, session: Session, page: int, per_page: int) -> RunPage:
        """Every job's runs, newest first, one page at a time (pages past the end give the last)."""
        total = int(session.scalar(select(func.count()).select_from(JobRun)) or 0)
        page = min(max(1, page), max(1, -(-total // per_page)))
        stmt = select(JobRun).order_by(JobRun.id.desc()).offset((page - 1) * per_page)
        return RunPage(list(session.scalars(stmt.limit(per_page))), total, page, per_page)

    def latest(self, session: Session, job: str) -> JobRun | None:
        """The newest finished run of `job`."""
        stmt = (
            select(JobRun)
            .where(JobRun.job == job, JobRun.outcome != "running")
            .order_by(JobRun.id.desc())
            .limit(1)
        )
        return session.scalars(stmt).first()
