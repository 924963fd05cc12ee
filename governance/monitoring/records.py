"""ORM classes of monitoring: the rollups every report, page, gauge and alert reads,
and the ground-truth labels performance is computed from.

A rollup is one figure about one model version over one time window: a feature's
drift by one method, a performance metric, a data-quality share. Pages and APIs
read rollups, never the audit log, so their cost does not grow with the log.
Rollups hold aggregates only, never a row, so erasing a subject leaves them as
they are until the next computation of that window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, UTCDateTime

# `feature` of a figure about the whole version rather than one input feature
# (performance, the output's drift, the error rate).
WHOLE_MODEL = ""
OUTPUT = "__output__"


class MonitoringRollup(Base):
    """One figure: (model, version, window, feature, metric) -> value over `rows` rows.

    The vocabulary (`metric`: `method`s):
      drift: psi, ks, chi2, wasserstein (the statistic or distance)
      drift_pvalue: ks, chi2 (the test's p-value)
      performance: accuracy, precision, recall, f1, roc_auc, mae, rmse, r2
      quality: missing_share, out_of_range_share, unseen_category_share
      fairness: selection_rate_gap, tpr_gap (feature = the group attribute's name)
      traffic: requests, rows, errors, error_rate (also refused, latency_p50_ms,
        latency_p95_ms; stored for the window and for each step, an hour, inside it)
    `details` keeps what a reader needs to judge it: bins, thresholds, the p-value's
    test, the labelled-row count.
    Computing a window again replaces its rows (unique key below).
    """

    __tablename__ = "monitoring_rollups"
    __table_args__ = (
        UniqueConstraint(
            "model_name",
            "model_version",
            "window_start",
            "window_end",
            "feature",
            "metric",
            "method",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    model_version: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    feature: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    rows: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ReferenceProfile(Base):
    """What a version's inputs and outputs looked like before it was watched.

    `source` is "reference" (a data file given at publish) or "served" (the
    version's first N served rows, when no file was given). `profile` holds, per
    feature, its type, missing share, quantile bins with their shares and range
    (numbers) or category counts (categories), and quantiles for the two-sample
    tests; the same for the model's output (`OUTPUT`). Aggregates only, each of at
    least five rows, so a profile holds no row to erase. See
    governance/monitoring/profiles.py for the layout.
    """

    __tablename__ = "monitoring_profiles"
    __table_args__ = (UniqueConstraint("model_name", "model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)


class FeedbackLabel(Base):
    """One ground-truth label of one prediction row, sealed under that row's data key.

    A label is never changed: a correction is a new row (`supersedes` names the one
    it corrects) and readers take the newest by `recorded_seq`, the seq of its
    "feedback.recorded" audit event (the chain's order, gapless under concurrency).
    `sealed` holds {"ground_truth", "group"} sealed under `key_id`, the key sealing
    the labelled row (governance/subjects/sealing.py), so erasing the subject or the
    row's retention running out makes the label unreadable with the row. `served_at`
    is when the labelled prediction was served, the time readers select by.
    """

    __tablename__ = "feedback_labels"
    __table_args__ = (
        Index("ix_feedback_labels_row", "request_id", "row"),
        Index("ix_feedback_labels_version_served", "model_name", "model_version", "served_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64))
    row: Mapped[int] = mapped_column(Integer)
    prediction_seq: Mapped[int] = mapped_column(BigInteger)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[int] = mapped_column(Integer)
    served_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pseudonym: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_seq: Mapped[int] = mapped_column(BigInteger)
    recorded_by: Mapped[str] = mapped_column(String(64))
    supersedes: Mapped[int | None] = mapped_column(Integer, nullable=True)
