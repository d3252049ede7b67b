"""The report over the console's default range, as the worker last computed it.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_snapshots",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=False),
        sa.Column("delivery", sa.LargeBinary(), nullable=False),
        sa.Column("templates", sa.LargeBinary(), nullable=False),
        sa.Column("daily", sa.LargeBinary(), nullable=False),
        sa.Column("meta", sa.Text(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_report_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("report_snapshots")
