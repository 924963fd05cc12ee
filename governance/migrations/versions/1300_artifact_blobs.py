"""Encrypted artifacts in the database, for appliances whose application hosts share
nothing but PostgreSQL (artifact_store = "database"). Files already on disk are
moved in by `cofre init`, not by this migration, which reads no files.

Revision ID: 1300_artifact_blobs
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "1300_artifact_blobs"
down_revision = "0001"
branch_labels = ("artifact_blobs",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artifact_blobs",
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("file_name", name=op.f("pk_artifact_blobs")),
    )


def downgrade() -> None:
    op.drop_table("artifact_blobs")
