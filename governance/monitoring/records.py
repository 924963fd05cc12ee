"""ORM classes of monitoring: the rollups every report, page, gauge and alert reads,
the ground-truth labels performance is computed from, and the alerts raised on
them (rules, alerts, the delivery outbox).

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
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
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
        latency_p95_ms, stored for the window and for each step, an hour, inside it;
        and erased_rows, rows of the window whose data key was destroyed)
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


class AlertRule(Base):
    """A publisher's rule for one model (config holds the defaults of a model with none).

    `kind` and its figure (governance/monitoring/rules.py): drift (`method` one of
    the drift methods, above `threshold`), performance (`method` a metric, below
    `threshold`), missing (missing share above `threshold`), error_rate (above
    `threshold`). `feature` "" means any feature. The condition must hold in each
    of the latest `windows` windows. A removed rule keeps its row (alerts name it)
    with `removed_at` set; a model with any row, removed or not, no longer follows
    the defaults.
    """

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(32))
    feature: Mapped[str] = mapped_column(String(256), default="")
    threshold: Mapped[float] = mapped_column(Float)
    windows: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Alert(Base):
    """One rule's condition holding for one model version: firing until it stops holding.

    `rule_key` names the rule (a row's id, or a default's description), `rule` is
    the rule as it was when the alert opened, `evidence` the rollup figures (values,
    windows, rows) that made it fire and `resolution` those that resolved it.
    `firing_slot` is 1 while firing and null once resolved: with the unique key below,
    two evaluations racing (the job and `cofre monitor`) cannot open the same alert
    twice (nulls never collide, so resolved alerts pile up freely). Alerts no rule
    judges carry their own `kind`: `guardrail` (a rollout aborted), `disk` (model name
    "", the appliance) and `extraction` (rule key `extraction-key-<key id>`: that API
    key's traffic to the version looks like a sweep; governance/monitoring/extraction.py).
    """

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("model_name", "model_version", "rule_key", "firing_slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    model_version: Mapped[int] = mapped_column(Integer)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id"), nullable=True)
    rule_key: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)  # firing | resolved
    firing_slot: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolution: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class AlertDelivery(Base):
    """The outbox: one row per alert transition (or model lifecycle event) and channel,
    worked off by the scheduler.

    `channel` is `webhook` (POST `payload` to the configured URL, retried with
    backoff) or `retrain` (run retraining plan `plan_id`, once). `history` keeps
    every attempt: when, and what came of it.
    """

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None for a model's lifecycle event (published, promoted, deprecated...), which
    # goes out through the same outbox, retries and signature as alerts.
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True, nullable=True)
    transition: Mapped[str] = mapped_column(String(16))  # firing | resolved | lifecycle event
    channel: Mapped[str] = mapped_column(String(16))  # webhook | retrain
    plan_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


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
