"""Customers by the start of their name, case folded: the console's and the API's name search.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # text_pattern_ops: PostgreSQL serves LIKE 'x%' from it under any collation.
    ops = " text_pattern_ops" if op.get_bind().dialect.name == "postgresql" else ""
    op.execute(f"CREATE INDEX ix_customers_name_prefix ON customers (lower(name){ops})")


def downgrade() -> None:
    op.drop_index("ix_customers_name_prefix", "customers")
