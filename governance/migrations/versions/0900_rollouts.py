"""Staged rollouts: the rollouts (one running per model), the tallies workers report,
and the promotion requests of four-eyes approval.

Revision ID: 0900_rollouts
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0900_rollouts"
down_revision = "0001"
branch_labels = ("rollouts",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("active_model", sa.String(length=128), nullable=True),
        sa.Column("champion_version", sa.Integer(), nullable=False),
        sa.Column("candidate_version", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("sticky", sa.String(length=16), nullable=False),
        sa.Column("guardrails", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_seq", sa.BigInteger(), nullable=False),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
        sa.UniqueConstraint("active_model", name=op.f("uq_rollouts_active_model")),
    )
    op.create_index(op.f("ix_rollouts_model_name"), "rollouts", ["model_name"])
    op.create_table(
        "rollout_tallies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("compared", sa.Integer(), nullable=False),
        sa.Column("agreed", sa.Integer(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
        sa.Column("latency", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name=op.f("fk_rollout_tallies_rollout_id_rollouts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_tallies")),
    )
    op.create_index(op.f("ix_rollout_tallies_rollout_id"), "rollout_tallies", ["rollout_id"])
    op.create_table(
        "promotion_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=True),
        sa.Column("pending_model", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_by_id", sa.String(length=96), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_by_id", sa.String(length=96), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name=op.f("fk_promotion_requests_rollout_id_rollouts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_requests")),
        sa.UniqueConstraint("pending_model", name=op.f("uq_promotion_requests_pending_model")),
    )
    op.create_index(op.f("ix_promotion_requests_model_name"), "promotion_requests", ["model_name"])


def downgrade() -> None:
    op.drop_index(op.f("ix_promotion_requests_model_name"), table_name="promotion_requests")
    op.drop_table("promotion_requests")
    op.drop_index(op.f("ix_rollout_tallies_rollout_id"), table_name="rollout_tallies")
    op.drop_table("rollout_tallies")
    op.drop_index(op.f("ix_rollouts_model_name"), table_name="rollouts")
    op.drop_table("rollouts")
