"""A version's lifecycle: what it records of how it was made (hyper-parameters, library
versions, the publisher's note, the changelog against the version it replaced, a generated
reference sample with the estimator's answers on it) and
the scikit-learn versions it was verified under. Versions published before this
revision have no facts row; they show "not recorded".

Revision ID: 1000_lifecycle
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "1000_lifecycle"
down_revision = "0001"
branch_labels = ("lifecycle",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_version_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("libraries", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("compared_with", sa.Integer(), nullable=True),
        sa.Column("changelog", sa.JSON(), nullable=True),
        sa.Column("sample", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_version_facts_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version_facts")),
        sa.UniqueConstraint(
            "model_version_id", name=op.f("uq_model_version_facts_model_version_id")
        ),
    )
    op.create_table(
        "model_version_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("sklearn_version", sa.String(length=32), nullable=False),
        sa.Column("comparison", sa.JSON(), nullable=False),
        sa.Column("verified_by", sa.String(length=64), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_version_verifications_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version_verifications")),
    )
    op.create_index(
        op.f("ix_model_version_verifications_model_version_id"),
        "model_version_verifications",
        ["model_version_id"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_model_version_verifications_model_version_id"),
        table_name="model_version_verifications",
    )
    op.drop_table("model_version_verifications")
    op.drop_table("model_version_facts")
