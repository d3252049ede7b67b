"""The sandbox gateway's record of what it sent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sandbox_messages",
        sa.Column("provider_id", sa.String(64), nullable=False),
        sa.Column("outbox_id", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receipt_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.Column("receipt_sent", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("provider_id", name="pk_sandbox_messages"),
    )
    op.create_index("ix_sandbox_messages_outbox_id", "sandbox_messages", ["outbox_id"])


def downgrade() -> None:
    op.drop_table("sandbox_messages")
