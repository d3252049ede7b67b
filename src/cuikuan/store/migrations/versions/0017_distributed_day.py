"""Several workers on PostgreSQL: a provider's shared line, and a day's plan made in parts.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_slots",
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("free_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", name="pk_provider_slots"),
    )
    op.create_table(
        "plan_runs",
        sa.Column("plan_date", sa.Date, nullable=False),
        sa.Column("parts", sa.Integer, nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("plan_date", name="pk_plan_runs"),
    )
    op.create_table(
        "plan_part_results",
        sa.Column("plan_date", sa.Date, nullable=False),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("rows", sa.LargeBinary, nullable=False),
        sa.Column("held", sa.LargeBinary, nullable=False),
        sa.Column("stops", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("plan_date", "part", name="pk_plan_part_results"),
        sa.ForeignKeyConstraint(
            ["plan_date"], ["plan_runs.plan_date"], ondelete="CASCADE",
            name="fk_plan_part_results_plan_date_plan_runs",
        ),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("plan_part_results")
    op.drop_table("plan_runs")
    op.drop_table("provider_slots")
