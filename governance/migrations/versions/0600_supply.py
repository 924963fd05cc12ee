"""Supply chain: trusted signers (sealed rows), the signature each version carries and
where it came from (an MLflow run, another appliance's bundle).

Revision ID: 0600_supply
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0600_supply"
down_revision = "0001"
branch_labels = ("supply",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_signers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seal", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_signers")),
        sa.UniqueConstraint("name", name=op.f("uq_trusted_signers_name")),
    )
    op.create_index(
        op.f("ix_trusted_signers_fingerprint"), "trusted_signers", ["fingerprint"], unique=False
    )
    op.create_table(
        "model_version_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("signer", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_version_signatures_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version_signatures")),
        sa.UniqueConstraint("version_id", name=op.f("uq_model_version_signatures_version_id")),
    )

    op.create_table(
        "model_version_origins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_version_origins_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version_origins")),
        sa.UniqueConstraint("version_id", name=op.f("uq_model_version_origins_version_id")),
    )


def downgrade() -> None:
    op.drop_table("model_version_origins")
    op.drop_table("model_version_signatures")
    op.drop_index(op.f("ix_trusted_signers_fingerprint"), table_name="trusted_signers")
    op.drop_table("trusted_signers")
