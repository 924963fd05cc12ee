"""Reference profiles of model versions, the baseline drift is measured against.

Revision ID: 0520_profiles
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0520_profiles"
down_revision = "0001"
branch_labels = ("profiles",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_profiles")),
        sa.UniqueConstraint(
            "model_name", "model_version", name=op.f("uq_monitoring_profiles_model_name")
        ),
    )


def downgrade() -> None:
    op.drop_table("monitoring_profiles")
