"""The outbox of planned messages, and opt-outs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("plan_date", sa.Date, nullable=False),
        sa.Column("customer_id", sa.Integer, nullable=False),
        sa.Column("loan_id", sa.Integer, nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("variant", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("control", sa.Integer, nullable=False),
        sa.Column("earliest_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latest_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("segments", sa.Integer, nullable=False),
        sa.Column("billing_units", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("trail", sa.Text, nullable=False),
        sa.Column("provider", sa.String(32)),
        sa.Column("provider_id", sa.String(128)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_outbox_customer_id_customers"
        ),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name="fk_outbox_loan_id_loans"),
    )
    op.create_index("ix_outbox_customer_id", "outbox", ["customer_id"])
    op.create_index("ix_outbox_status", "outbox", ["status"])
    op.create_index("ix_outbox_recipient_sent_at", "outbox", ["recipient", "sent_at"])
    op.create_table(
        "opt_outs",
        sa.Column("customer_id", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "channel", name="pk_opt_outs"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name="fk_opt_outs_customer_id_customers",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("opt_outs")
    op.drop_table("outbox")
