"""A receipt is stored by the bind that heard it before its time on the dispatcher's clock is
known: `received_at` stays empty until the dispatcher applies it (dispatch.receipts).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("receipts") as batch:
        batch.alter_column("received_at", existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM receipts WHERE received_at IS NULL")
    with op.batch_alter_table("receipts") as batch:
        batch.alter_column("received_at", existing_type=sa.DateTime(timezone=True), nullable=False)
