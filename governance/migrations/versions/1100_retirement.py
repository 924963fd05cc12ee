"""A version's way out of serving: its deprecation (sunset, reason), retirement and the
shredding of its artifact's data key, the history of those steps, and the alert outbox
opened to model lifecycle events (rows without an alert).

Revision ID: 1100_retirement
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "1100_retirement"
down_revision = "0001"
branch_labels = ("retirement",)
# alert_deliveries, whose alert_id becomes optional, is made by the alerts branch.
depends_on = ("0530_alerts",)


def upgrade() -> None:
    op.create_table(
        "model_version_retirements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("deprecated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deprecated_by", sa.String(length=64), nullable=False),
        sa.Column("sunset_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_by", sa.String(length=64), nullable=False),
        sa.Column("shredded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_version_retirements_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version_retirements")),
        sa.UniqueConstraint(
            "model_version_id", name=op.f("uq_model_version_retirements_model_version_id")
        ),
    )
    op.create_table(
        "model_version_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_model_version_events_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version_events")),
    )
    op.create_index(op.f("ix_model_version_events_model_id"), "model_version_events", ["model_id"])
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.alter_column("alert_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM alert_deliveries WHERE alert_id IS NULL")
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.alter_column("alert_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index(op.f("ix_model_version_events_model_id"), table_name="model_version_events")
    op.drop_table("model_version_events")
    op.drop_table("model_version_retirements")
