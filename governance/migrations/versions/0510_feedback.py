"""Ground-truth feedback: one sealed label per prediction row and correction.

Revision ID: 0510_feedback
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0510_feedback"
down_revision = "0001"
branch_labels = ("feedback",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("prediction_seq", sa.BigInteger(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_seq", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("supersedes", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_labels")),
    )
    op.create_index("ix_feedback_labels_row", "feedback_labels", ["request_id", "row"])
    op.create_index(
        "ix_feedback_labels_version_served",
        "feedback_labels",
        ["model_name", "model_version", "served_at"],
    )
    op.create_index(op.f("ix_feedback_labels_pseudonym"), "feedback_labels", ["pseudonym"])
    op.create_index(op.f("ix_feedback_labels_key_id"), "feedback_labels", ["key_id"])


def downgrade() -> None:
    op.drop_table("feedback_labels")
