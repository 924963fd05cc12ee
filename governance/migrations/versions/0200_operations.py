"""Operations: job run history, retraining plans and runs.

Revision ID: 0200_operations
Revises: 0001
Create Date: 2026-11-21 23:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0200_operations"
down_revision = "0001"
branch_labels = ("operations",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=128), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("runner", sa.String(length=128), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_runs_job"), ["job"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_runs_started_at"), ["started_at"], unique=False)
    op.create_table(
        "retraining_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("source_kind", sa.String(length=8), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("schedule", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("min_improvement", sa.Float(), nullable=False),
        sa.Column("holdout", sa.Float(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retraining_plans")),
    )
    with op.batch_alter_table("retraining_plans", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retraining_plans_model_name"), ["model_name"], unique=False
        )
    op.create_table(
        "retraining_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("data_sha256", sa.String(length=64), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("champion_version", sa.Integer(), nullable=True),
        sa.Column("champion_metric", sa.Float(), nullable=True),
        sa.Column("candidate_metric", sa.Float(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("candidate_version", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["retraining_plans.id"],
            name=op.f("fk_retraining_runs_plan_id_retraining_plans"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retraining_runs")),
    )
    with op.batch_alter_table("retraining_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retraining_runs_plan_id"), ["plan_id"], unique=False)


def downgrade() -> None:
    op.drop_table("retraining_runs")
    op.drop_table("retraining_plans")
    op.drop_table("job_runs")
