"""Audit seals: a keyed MAC (HMAC-SHA256) over each committed batch head, kept on the
batch's newest record and on the head row (governance/audit/macs.py).

Both columns start null: the migration holds no key. `cofre init`, in the run that
applies this revision, seals the head it finds (the adoption MAC), so records written
before MACs existed are vouched for by that MAC and by the checkpoints signed
before it; every append after it carries its own.

Revision ID: 0310_audit_seals
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0310_audit_seals"
down_revision = "0001"
branch_labels = ("audit_seals",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("mac")
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_column("mac")
