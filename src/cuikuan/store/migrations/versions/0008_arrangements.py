"""Instalment plans (arrangements).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "arrangements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("loan_id", sa.Integer, nullable=False),
        sa.Column("agreed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agreed_by", sa.Text, nullable=False),
        sa.Column("schedule", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_arrangements"),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name="fk_arrangements_loan_id_loans", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_arrangements_loan_id", "arrangements", ["loan_id"])


def downgrade() -> None:
    op.drop_table("arrangements")
