"""The outbox by plan day, step and status: Today and the report read a day's or a range's rows.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_plan_date_step_status", "outbox", ["plan_date", "step", "status"])


def downgrade() -> None:
    op.drop_index("ix_outbox_plan_date_step_status", "outbox")
