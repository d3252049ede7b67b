"""The portfolio by bucket per day and ledger version, computed once and read by every server.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portfolio_snapshots",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("buckets", sa.LargeBinary(), nullable=False),
        sa.Column("dpd", sa.LargeBinary(), nullable=False),
        sa.Column("meta", sa.Text(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_portfolio_snapshots"),
    )
    op.create_index("ix_portfolio_snapshots_as_of", "portfolio_snapshots", ["as_of"])


def downgrade() -> None:
    op.drop_index("ix_portfolio_snapshots_as_of", "portfolio_snapshots")
    op.drop_table("portfolio_snapshots")
