"""Each API key's token bucket, shared by every `serve` process on PostgreSQL.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_buckets",
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_buckets"),
    )


def downgrade() -> None:
    op.drop_table("api_buckets")
