"""Monitoring rollups: one figure per model version, window, feature and method.

Revision ID: 0500_monitoring
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0500_monitoring"
down_revision = "0001"
branch_labels = ("monitoring",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feature", sa.String(length=256), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_rollups")),
        sa.UniqueConstraint(
            "model_name",
            "model_version",
            "window_start",
            "window_end",
            "feature",
            "metric",
            "method",
            name=op.f("uq_monitoring_rollups_model_name"),
        ),
    )
    op.create_index(op.f("ix_monitoring_rollups_model_name"), "monitoring_rollups", ["model_name"])
    op.create_index(
        op.f("ix_monitoring_rollups_window_start"), "monitoring_rollups", ["window_start"]
    )


def downgrade() -> None:
    op.drop_table("monitoring_rollups")
