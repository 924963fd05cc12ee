"""ORM classes of scheduled operations: one row per run of a job (backups, drills, retraining)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, UTCDateTime


class JobRun(Base):
    """A job's run: when, by which scheduler, how it ended and why.

    `scheduled_for` is the firing time the scheduler meant (null for a run
    started by hand); together with `job` it shows that a firing ran once even
    when several schedulers were started.
    """

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(128), index=True)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))  # running | ok | failed
    message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    runner: Mapped[str] = mapped_column(String(128), default="")
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
