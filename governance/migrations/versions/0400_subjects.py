"""Subject rights: scoped audit data keys, retention and recipients on the model card,
legal holds and decision reviews.

Audit data keys were one per pseudonym (unique), so an erased person could never
be scored again. They become one per subject x model version x UTC day: the
`pseudonym` uniqueness goes, `scope` (unique while the key is live) takes its
place. Keys made before this revision keep `scope` null: they are never reused
(a subject's next row opens a scoped key) and, with no window, retention leaves
them alone; erasure still destroys them (it goes by pseudonym).

Revision ID: 0400_subjects
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0400_subjects"
down_revision = "0001"
branch_labels = ("subjects",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_data_keys", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_data_keys_pseudonym", type_="unique")
        batch_op.add_column(sa.Column("scope", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("model_name", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("model_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("window_end", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("destroyed_by", sa.String(length=16), nullable=True))
        batch_op.create_unique_constraint("uq_audit_data_keys_scope", ["scope"])
        batch_op.create_index("ix_audit_data_keys_pseudonym", ["pseudonym"], unique=False)
        batch_op.create_index(
            "ix_audit_data_keys_retention",
            ["model_name", "model_version", "window_end"],
            unique=False,
        )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("retention_days", sa.Integer(), nullable=False, server_default="365")
        )
        batch_op.add_column(sa.Column("recipients", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "subject_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.String(length=64), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_holds")),
    )
    op.create_index(op.f("ix_subject_holds_pseudonym"), "subject_holds", ["pseudonym"])
    op.create_table(
        "decision_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("prediction_seq", sa.BigInteger(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("opened_by_id", sa.String(length=96), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("opened_seq", sa.BigInteger(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_by_id", sa.String(length=96), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("decided_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("decided_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_reviews")),
    )
    for column in ("request_id", "model_name", "pseudonym", "key_id", "status"):
        op.create_index(op.f(f"ix_decision_reviews_{column}"), "decision_reviews", [column])


def downgrade() -> None:
    op.drop_table("decision_reviews")
    op.drop_table("subject_holds")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("recipients")
        batch_op.drop_column("retention_days")
    with op.batch_alter_table("audit_data_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_data_keys_retention")
        batch_op.drop_index("ix_audit_data_keys_pseudonym")
        batch_op.drop_constraint("uq_audit_data_keys_scope", type_="unique")
        for column in ("destroyed_by", "window_end", "model_version", "model_name", "scope"):
            batch_op.drop_column(column)
        batch_op.create_unique_constraint("uq_audit_data_keys_pseudonym", ["pseudonym"])
