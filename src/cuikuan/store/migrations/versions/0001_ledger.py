"""The ledger: customers, phones, loans, instalments, payments, and the import log.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("locale", sa.String(16)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("flags", sa.Text, nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
        sa.UniqueConstraint("external_id", name="uq_customers_external_id"),
    )
    op.create_table(
        "customer_phones",
        sa.Column("customer_id", sa.Integer, nullable=False),
        sa.Column("e164", sa.String(20), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "e164", name="pk_customer_phones"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name="fk_customer_phones_customer_id_customers",
            ondelete="CASCADE",
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_customer_phones_e164", "customer_phones", ["e164"])
    op.create_table(
        "loans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.Integer, nullable=False),
        sa.Column("product", sa.Text),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("paid_snapshot_at", sa.DateTime(timezone=True)),
        sa.Column("attributes", sa.Text, nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_loans"),
        sa.UniqueConstraint("external_id", name="uq_loans_external_id"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_loans_customer_id_customers"
        ),
    )
    op.create_index("ix_loans_customer_id", "loans", ["customer_id"])
    op.create_table(
        "instalments",
        sa.Column("loan_id", sa.Integer, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("amount_due", sa.BigInteger, nullable=False),
        sa.Column("amount_paid", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("loan_id", "number", name="pk_instalments"),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name="fk_instalments_loan_id_loans", ondelete="CASCADE"
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("loan_id", sa.Integer, nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payments"),
        sa.UniqueConstraint("external_id", name="uq_payments_external_id"),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name="fk_payments_loan_id_loans", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_payments_loan_id", "payments", ["loan_id"])
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imports"),
    )


def downgrade() -> None:
    for table in ("imports", "payments", "instalments", "loans", "customer_phones", "customers"):
        op.drop_table(table)
