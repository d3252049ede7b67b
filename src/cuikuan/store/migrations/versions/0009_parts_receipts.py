"""Message parts and receipts (real gateways), transient attempts per outbox row.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "message_parts",
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("outbox_id", sa.Integer, nullable=False),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16)),
        sa.PrimaryKeyConstraint("provider", "provider_id", name="pk_message_parts"),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name="fk_message_parts_outbox_id_outbox",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_message_parts_outbox_id", "message_parts", ["outbox_id"])
    op.create_table(
        "receipts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outbox_id", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_receipts"),
    )
    op.create_index("ix_receipts_outbox_id", "receipts", ["outbox_id"])
    op.create_index("ix_receipts_provider_id", "receipts", ["provider", "provider_id"])


def downgrade() -> None:
    op.drop_table("receipts")
    op.drop_table("message_parts")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("attempts")
