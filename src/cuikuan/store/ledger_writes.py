"""Upserts of the ledger by external ids: re-importing the same rows changes nothing.

Every statement updates a row only when a value differs, so updated_at moves only on change.
Columns a file does not carry are left as they are.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from cuikuan.store.bulk import Bulk

CUSTOMER_OPTIONAL = ("email", "locale", "timezone", "tags", "flags")


def prepare(bulk: Bulk) -> None:
    for table in ("_import_customers", "_import_phones"):
        bulk.one(f"DROP TABLE IF EXISTS {table}")
    bulk.one("CREATE TEMP TABLE _import_customers (external_id VARCHAR(64) PRIMARY KEY)")
    bulk.one("CREATE TEMP TABLE _import_phones (external_id VARCHAR(64), e164 VARCHAR(20))")


def finish(bulk: Bulk) -> None:
    for table in ("_import_customers", "_import_phones"):
        bulk.one(f"DROP TABLE IF EXISTS {table}")


def upsert_customers(
    bulk: Bulk, frame: pl.DataFrame, present: set[str], now: datetime
) -> tuple[int, int]:
    """frame: customer_id, name, e164 (list), kind (list) and the optional columns.

    Returns the customers and the phone numbers changed."""
    cols = ["name", *(c for c in CUSTOMER_OPTIONAL if c in present)]
    values = frame.select("customer_id", *cols).with_columns(
        pl.lit(now).alias("created_at"), pl.lit(now).alias("updated_at")
    )
    names = ", ".join(cols)
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
    fillers = [c for c in ("tags", "flags") if c not in cols]
    filler_sql = "".join(f", {c}" for c in fillers)
    filler_vals = "".join(", '[]'" for _ in fillers)
    sql = (
        f"INSERT INTO customers (external_id, {names}{filler_sql}, attributes, created_at, updated_at) "
        f"VALUES ({bulk.placeholders(len(cols) + 1)}{filler_vals}, '{{}}', {bulk.ph}, {bulk.ph}) "
        f"ON CONFLICT (external_id) DO UPDATE SET {sets}, updated_at = excluded.updated_at "
        f"WHERE {bulk.changed('customers', cols)}"
    )
    return bulk.many(sql, bulk.rows(values)), _replace_phones(bulk, frame)


def _replace_phones(bulk: Bulk, frame: pl.DataFrame) -> int:
    phones = (
        frame.select("customer_id", "e164", "kind")
        .explode("e164", "kind")
        .filter(pl.col("e164").is_not_null())
        .with_columns(pl.int_range(pl.len()).over("customer_id").alias("position"))
    )
    bulk.one("DELETE FROM _import_customers")
    bulk.one("DELETE FROM _import_phones")
    bulk.many(
        f"INSERT INTO _import_customers VALUES ({bulk.ph})", frame.select("customer_id").rows()
    )
    bulk.many(
        f"INSERT INTO _import_phones VALUES ({bulk.ph}, {bulk.ph})",
        phones.select("customer_id", "e164").rows(),
    )
    deleted = bulk.conn.exec_driver_sql(
        "DELETE FROM customer_phones WHERE customer_id IN ("
        " SELECT c.id FROM customers c JOIN _import_customers t ON t.external_id = c.external_id)"
        " AND NOT EXISTS (SELECT 1 FROM _import_phones p JOIN customers c2 ON c2.external_id = p.external_id"
        "  WHERE c2.id = customer_phones.customer_id AND p.e164 = customer_phones.e164)"
    ).rowcount
    sql = (
        f"INSERT INTO customer_phones (customer_id, e164, position, kind) "
        f"SELECT c.id, {bulk.ph}, {bulk.ph}, {bulk.ph} FROM customers c WHERE c.external_id = {bulk.ph} "
        f"ON CONFLICT (customer_id, e164) DO UPDATE SET position = excluded.position, kind = excluded.kind "
        f"WHERE {bulk.changed('customer_phones', ('position', 'kind'))}"
    )
    rows = phones.select("e164", "position", "kind", "customer_id").rows()
    return max(deleted, 0) + bulk.many(sql, rows)


def upsert_loans(
    bulk: Bulk, frame: pl.DataFrame, present: set[str], snapshot_at: datetime | None, now: datetime
) -> int:
    """frame: loan_id, customer_id, currency, and product / attributes when the file has them."""
    cols = ["currency", *(c for c in ("product", "attributes") if c in present)]
    values = frame.select("loan_id", *cols).with_columns(
        pl.lit(snapshot_at, dtype=pl.Datetime("us", "UTC")).alias("paid_snapshot_at"),
        pl.lit(now).alias("created_at"),
        pl.lit(now).alias("updated_at"),
        frame.get_column("customer_id"),
    )
    filler = "" if "attributes" in cols else ", attributes"
    filler_val = "" if "attributes" in cols else ", '{}'"
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
    changed = [*cols, "paid_snapshot_at"] if snapshot_at else cols
    snap = ", paid_snapshot_at = excluded.paid_snapshot_at" if snapshot_at else ""
    sql = (
        f"INSERT INTO loans (external_id, {', '.join(cols)}, paid_snapshot_at, created_at, updated_at, customer_id{filler}) "
        f"SELECT {bulk.placeholders(len(cols) + 4)}, c.id{filler_val} FROM customers c WHERE c.external_id = {bulk.ph} "
        f"ON CONFLICT (external_id) DO UPDATE SET {sets}{snap}, updated_at = excluded.updated_at "
        f"WHERE {bulk.changed('loans', changed)}"
    )
    return bulk.many(sql, bulk.rows(values))


def upsert_instalments(bulk: Bulk, frame: pl.DataFrame, with_paid: bool) -> int:
    """frame: loan_id, instalment_no, due_date, amount_due, amount_paid (when the file has it)."""
    paid = pl.col("amount_paid") if with_paid else pl.lit(0, dtype=pl.Int64).alias("amount_paid")
    values = frame.select("instalment_no", "due_date", "amount_due", paid, "loan_id")
    cols = ["due_date", "amount_due", *(["amount_paid"] if with_paid else [])]
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
    sql = (
        "INSERT INTO instalments (number, due_date, amount_due, amount_paid, loan_id) "
        f"SELECT {bulk.placeholders(4)}, l.id FROM loans l WHERE l.external_id = {bulk.ph} "
        f"ON CONFLICT (loan_id, number) DO UPDATE SET {sets} "
        f"WHERE {bulk.changed('instalments', cols)}"
    )
    return bulk.many(sql, bulk.rows(values))


def insert_payments(bulk: Bulk, frame: pl.DataFrame, now: datetime) -> int:
    """frame: payment_id, paid_at, amount, loan_id. Known payment ids are left alone."""
    values = frame.select(
        "payment_id", "paid_at", "amount", pl.lit(now).alias("created_at"), "loan_id"
    )
    sql = (
        "INSERT INTO payments (external_id, paid_at, amount, created_at, loan_id) "
        f"SELECT {bulk.placeholders(4)}, l.id FROM loans l WHERE l.external_id = {bulk.ph} "
        "ON CONFLICT (external_id) DO NOTHING"
    )
    return bulk.many(sql, bulk.rows(values))


def existing_loans(bulk: Bulk, loan_ids: list[str]) -> pl.DataFrame:
    return bulk.fetch_in(
        "SELECT l.external_id, c.external_id, l.currency FROM loans l "
        "JOIN customers c ON c.id = l.customer_id WHERE l.external_id IN ({keys})",
        loan_ids,
        {"loan_id": pl.String, "owner": pl.String, "loan_currency": pl.String},
    )


def existing_payments(bulk: Bulk, payment_ids: list[str]) -> pl.DataFrame:
    return bulk.fetch_in(
        "SELECT p.external_id, l.external_id, p.amount FROM payments p "
        "JOIN loans l ON l.id = p.loan_id WHERE p.external_id IN ({keys})",
        payment_ids,
        {"payment_id": pl.String, "recorded_loan": pl.String, "recorded_amount": pl.Int64},
    )
