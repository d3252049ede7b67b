"""Replies keep the provider's message id, once: a delivery sent again (a callback retried, a
deliver_sm whose answer was lost) is not a second reply.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replies") as batch:
        batch.add_column(sa.Column("message_id", sa.String(128)))
    op.create_index(
        "ux_replies_source_message_id", "replies", ["source", "message_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ux_replies_source_message_id", table_name="replies")
    with op.batch_alter_table("replies") as batch:
        batch.drop_column("message_id")
