"""The outbox's status index also orders by `earliest_at`: dispatch's rounds take the due rows
in that order without sorting every planned row of the day each time.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_status_earliest_at", "outbox", ["status", "earliest_at"])
    op.drop_index("ix_outbox_status", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_status", "outbox", ["status"])
    op.drop_index("ix_outbox_status_earliest_at", table_name="outbox")
