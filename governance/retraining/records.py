"""ORM classes of retraining: the plans publishers register and the runs they produce."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, UTCDateTime


class RetrainingPlan(Base):
    """How and when to retrain one model from a data source, and when to accept the result.

    `profile` describes the data the champion was trained on (per-feature
    missing share, range, mean and spread; the target's distribution; the usual
    label noise). It is given at creation or derived from the first data read.
    """

    __tablename__ = "retraining_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    source_kind: Mapped[str] = mapped_column(String(8))  # file | sql
    source: Mapped[str] = mapped_column(Text)  # a path under the data directory, or a query
    target: Mapped[str] = mapped_column(String(128))
    schedule: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(32))
    min_improvement: Mapped[float] = mapped_column(Float)
    holdout: Mapped[float] = mapped_column(Float, default=0.25)
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Also run when an alert of this kind (drift | performance) fires for the model.
    on_alert: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RetrainingRun(Base):
    """One retraining attempt: what it read, how champion and candidate scored, the verdict."""

    __tablename__ = "retraining_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("retraining_plans.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(Text)
    data_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    champion_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    champion_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    candidate_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    decision: Mapped[str] = mapped_column(String(16))  # registered | rejected | failed
    reason: Mapped[str] = mapped_column(Text, default="")
    candidate_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
