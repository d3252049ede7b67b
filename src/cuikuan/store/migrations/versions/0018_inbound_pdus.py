"""SMPP: every inbound PDU stored before it is acknowledged; parts remember when they were
accepted (receipts match only parts submitted before they came); providers down.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_pdus",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("session", sa.String(64), nullable=False),
        sa.Column("command_id", sa.BigInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_pdus"),
    )
    op.create_index("ix_inbound_pdus_provider_state", "inbound_pdus", ["provider", "state"])
    op.create_table(
        "provider_states",
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True)),
        sa.Column("detail", sa.Text),
        sa.PrimaryKeyConstraint("provider", name="pk_provider_states"),
    )
    with op.batch_alter_table("message_parts") as batch:
        batch.add_column(sa.Column("submitted_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("message_parts") as batch:
        batch.drop_column("submitted_at")
    op.drop_table("provider_states")
    op.drop_index("ix_inbound_pdus_provider_state", "inbound_pdus")
    op.drop_table("inbound_pdus")
