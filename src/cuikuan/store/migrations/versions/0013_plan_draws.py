"""What the report needs to compare like with like: when each message's window opened, and the
plan's suppressions by reason.

`outbox.opens_at`: the opening of the row's contact window on its send day, for every row that
reached the control draw (held rows, planned rows, and rows the caps or the lint stopped after
it, which the plan now writes as `suppressed`). Both arms' pay windows start there.

`plan_tallies`: per plan date, step, variant, template and rule, how many candidates the plan
stopped before the control draw (those rows are not written: on a busy day they are the
larger part). A re-run of a day's plan keeps the larger count of each cell.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("opens_at", sa.DateTime(timezone=True)))
    op.create_table(
        "plan_tallies",
        sa.Column("plan_date", sa.Date, nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("variant", sa.Integer, nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "plan_date", "step", "variant", "template", "status", "rule", name="pk_plan_tallies"
        ),
    )


def downgrade() -> None:
    op.drop_table("plan_tallies")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("opens_at")
