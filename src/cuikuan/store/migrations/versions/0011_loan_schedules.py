"""Each loan's open schedule (open amount, first open instalment), kept by the import.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from cuikuan.store import schedules

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("loans") as batch:
        batch.add_column(
            sa.Column("open_amount", sa.BigInteger, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("first_open_due", sa.Date))
        batch.add_column(
            sa.Column("first_open_left", sa.BigInteger, nullable=False, server_default="0")
        )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for sql in schedules.statements(sqlite, None):
        op.execute(sql)


def downgrade() -> None:
    with op.batch_alter_table("loans") as batch:
        batch.drop_column("first_open_left")
        batch.drop_column("first_open_due")
        batch.drop_column("open_amount")
