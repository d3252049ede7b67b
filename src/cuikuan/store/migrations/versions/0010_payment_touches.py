"""Which messages preceded each payment; markers for incremental scans.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_touches",
        sa.Column("payment_id", sa.Integer, nullable=False),
        sa.Column("outbox_id", sa.Integer, nullable=False),
        sa.Column("hours_before", sa.Float, nullable=False),
        sa.Column("control", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("payment_id", "outbox_id", name="pk_payment_touches"),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name="fk_payment_touches_payment_id_payments",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name="fk_payment_touches_outbox_id_outbox",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_payment_touches_outbox_id", "payment_touches", ["outbox_id"])
    op.create_table(
        "markers",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_markers"),
    )


def downgrade() -> None:
    op.drop_table("markers")
    op.drop_table("payment_touches")
