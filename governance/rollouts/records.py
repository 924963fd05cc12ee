"""ORM classes of rollouts: the rollout itself and the tallies workers report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, UTCDateTime


class Rollout(Base):
    """One staged rollout of `candidate_version` against `champion_version`.

    `active_model` holds the model's name while the rollout runs and is null once
    it ended: its unique constraint is what keeps one running rollout per model
    (nulls never collide, on SQLite as on PostgreSQL).
    """

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    active_model: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    champion_version: Mapped[int] = mapped_column(Integer)
    candidate_version: Mapped[int] = mapped_column(Integer)
    strategy: Mapped[str] = mapped_column(String(16))  # canary | ab | shadow | blue-green
    percent: Mapped[float] = mapped_column(Float)
    sticky: Mapped[str] = mapped_column(String(16))  # subject | request
    # [{"metric": "error_rate", "limit": 0.05}, ...] and the A/B plan (alpha, power, ...)
    guardrails: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # running | promoted | aborted
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    start_seq: Mapped[int] = mapped_column(BigInteger)  # the audit head when it started
    ended_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class RolloutTally(Base):
    """What one worker saw of one variant since its previous report: counts to add up.

    Workers append (never update) one row per variant and second of traffic, so
    reports from many processes and hosts never contend for a row.
    """

    __tablename__ = "rollout_tallies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), index=True)
    variant: Mapped[str] = mapped_column(String(16))  # champion | candidate
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    compared: Mapped[int] = mapped_column(Integer, default=0)  # rows scored by both
    agreed: Mapped[int] = mapped_column(Integer, default=0)
    dropped: Mapped[int] = mapped_column(Integer, default=0)  # shadow work not done
    # latency histogram: {"bucket upper bound in ms": count}
    latency: Mapped[dict[str, int]] = mapped_column(JSON)


class PromotionRequest(Base):
    """A move of `production` waiting for a second person (four-eyes), and its outcome.

    `requested_by_id` / `decided_by_id` are actor identities ("type:id"): the check
    that the approver is not the requester compares these, not display names.
    """

    __tablename__ = "promotion_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    alias: Mapped[str] = mapped_column(String(64))
    rollout_id: Mapped[int | None] = mapped_column(ForeignKey("rollouts.id"), nullable=True)
    # the model's name while the request is pending: one pending request per model
    pending_model: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | rejected
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_by_id: Mapped[str] = mapped_column(String(96))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_by_id: Mapped[str | None] = mapped_column(String(96), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
