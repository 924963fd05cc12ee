"""Query budgets and output precision per API key: each key's requests per second, rows
per UTC day and decimals of probabilities (NULL: no limit, full precision), and what it
has used of them in its current second and day. Keys created before this revision have
no limits until `cofre keys limit` gives them some.

Revision ID: 1200_budgets
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "1200_budgets"
down_revision = "0001"
branch_labels = ("budgets",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_per_second", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rows_per_day", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("output_precision", sa.Integer(), nullable=True))
    op.create_table(
        "key_usage",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("span", sa.String(length=1), nullable=False),
        sa.Column("span_start", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_key_usage_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("key_id", "span", name=op.f("pk_key_usage")),
    )


def downgrade() -> None:
    op.drop_table("key_usage")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("output_precision")
        batch_op.drop_column("rows_per_day")
        batch_op.drop_column("rate_per_second")
