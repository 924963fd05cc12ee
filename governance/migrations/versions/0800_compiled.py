"""Compiled inference: one row per model version saying which runtime answers for it,
with the encrypted ONNX model's file, data key and hash, and the figures of the proof
that it answers as the estimator does. Versions published before this revision have
no row and stay on scikit-learn until `cofre models compile` is run for them.

Revision ID: 0800_compiled
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0800_compiled"
down_revision = "0001"
branch_labels = ("compiled",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_compilations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("requested", sa.String(length=16), nullable=False),
        sa.Column("runtime", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("artifact_file", sa.String(length=255), nullable=True),
        sa.Column("kek_id", sa.String(length=64), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("proof", sa.JSON(), nullable=True),
        sa.Column("compiled_by", sa.String(length=64), nullable=False),
        sa.Column("compiled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_compilations_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_compilations")),
        sa.UniqueConstraint(
            "model_version_id", name=op.f("uq_model_compilations_model_version_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("model_compilations")
