"""The ledger as Polars frames, typed the same on SQLite and PostgreSQL (set-at-a-time reads).

Large reads go through ADBC: the rows arrive as Arrow columns, not a Python tuple per row. On
PostgreSQL in this process; on a SQLite file in the SQLite worker's process (store/sqlite_worker.py
says why), else through the DB-API. ADBC reads on its own connection, outside the caller's
transaction: only for reads that need no uncommitted writes of the caller (the plan and the
report read committed data).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import Connection

from cuikuan.store import sqlite_worker
from cuikuan.store.bulk import arrow_frame, fetch_tuples, frame_from_rows, sqlite_frame, typed

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

    Schema = Mapping[str, PolarsDataType]


def read_frame(conn: Connection, sql: str, schema: Schema, *, small: bool = False) -> pl.DataFrame:
    """`sql` (no parameters) as a frame typed to `schema`, by the fastest path the database has.
    `small`: a few thousand rows, read on `conn` itself (inside its transaction), where a
    second connection or the worker's pipe would cost more than the rows do."""
    fast = None if small else arrow_frame(conn, sql, schema)
    if fast is not None:
        return fast
    if conn.dialect.name == "sqlite":
        helped = None if small else sqlite_worker.read(conn.engine, sql)
        if helped is not None:
            return typed(helped, schema)
        return _parse_times(sqlite_frame(conn, sql, schema), schema)
    return frame_from_rows(fetch_tuples(conn, sql), schema)


def _parse_times(frame: pl.DataFrame, schema: Schema) -> pl.DataFrame:
    """Dates and times from the text SQLAlchemy stores in SQLite."""
    casts = []
    for name, dtype in schema.items():
        if dtype == pl.Date:
            casts.append(pl.col(name).str.to_date("%Y-%m-%d"))
        elif isinstance(dtype, pl.Datetime):
            casts.append(
                pl.col(name)
                .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us")
                .dt.replace_time_zone("UTC")
            )
    return frame.with_columns(casts)


UTC_US = pl.Datetime("us", "UTC")

# A range of customer ids [low, high): the plan reads the book a range at a time.
Scope = tuple[int, int]


def scoped(column: str, scope: Scope | None, *, customer: bool = False) -> str:
    """SQL text: `column` (a loan id, or with `customer` a customer id) is in `scope` ('' for
    the whole book). Loans are found through their customer index, one seek each."""
    if scope is None:
        return ""
    low, high = scope
    if customer:
        return f"{column} >= {low} AND {column} < {high}"
    return f"{column} IN (SELECT id FROM loans WHERE customer_id >= {low} AND customer_id < {high})"


def where(*conditions: str) -> str:
    """SQL text: ' WHERE ' and the non-empty conditions joined by AND ('' if none)."""
    kept = [c for c in conditions if c]
    return " WHERE " + " AND ".join(kept) if kept else ""


def among(conn: Connection, column: str, ids: pl.Series) -> str:
    """SQL text: `column` is one of `ids`, inlined (so `read_frame` can take the SQL as it is)."""
    # Joined by Polars: a Python int and str per id took 0.2 s for a busy day's 267 k people.
    values = ids.cast(pl.Int64).unique().sort().cast(pl.String).str.join(",").item()
    if conn.dialect.name == "sqlite":
        return f"{column} IN (SELECT value FROM json_each('[{values}]'))"
    return f"{column} = ANY('{{{values}}}'::bigint[])"


def instalments(
    conn: Connection,
    open_only: bool = False,
    loan_ids: pl.Series | None = None,
    scope: Scope | None = None,
) -> pl.DataFrame:
    """Instalments; `open_only` leaves out the fully paid ones, which change no position;
    `loan_ids` only those loans'; `scope` only those of the customers in that range."""
    condition = where(
        "amount_paid < amount_due" if open_only else "",
        among(conn, "loan_id", loan_ids) if loan_ids is not None else "",
        scoped("loan_id", scope),
    )
    return read_frame(
        conn,
        "SELECT loan_id, number, due_date, amount_due, amount_paid FROM instalments" + condition,
        {
            "loan_id": pl.Int64,
            "number": pl.Int64,
            "due_date": pl.Date,
            "amount_due": pl.Int64,
            "amount_paid": pl.Int64,
        },
    )


def loans(
    conn: Connection,
    scope: Scope | None = None,
    *,
    lean: bool = False,
    schedule: bool = False,
    open_only: bool = False,
) -> pl.DataFrame:
    """Every loan (of `scope`); `lean`: only loan_id and customer_id (the plan reads the rest
    for the loans it picks: a third of the read's time at a million loans); `schedule`: with its
    open schedule (store/schedules.py), for `open_summary`; `open_only`: only loans with an open
    instalment (a payment can only pay the others further off)."""
    schema: Schema = {"loan_id": pl.Int64, "customer_id": pl.Int64}
    if not lean:
        schema = {**schema, "external_id": pl.String, "currency": pl.String,
                  "paid_snapshot_at": UTC_US}  # fmt: skip
    if schedule:
        schema = {**schema, "open_amount": pl.Int64, "first_open_due": pl.Date,
                  "first_open_left": pl.Int64}  # fmt: skip
    columns = ", ".join(["id", *list(schema)[1:]])
    return read_frame(
        conn,
        f"SELECT {columns} FROM loans"
        + where(
            scoped("customer_id", scope, customer=True),
            "first_open_due IS NOT NULL" if open_only else "",
        ),
        schema,
    )


def loan_schedules(conn: Connection, loan_ids: pl.Series) -> pl.DataFrame:
    """A few loans (a dispatch round's) with their customer, instalment snapshot moment and
    open schedule, read on `conn`: what `open_summary` needs."""
    schema: Schema = {"loan_id": pl.Int64, "customer_id": pl.Int64, "paid_snapshot_at": UTC_US,
                      "open_amount": pl.Int64, "first_open_due": pl.Date,
                      "first_open_left": pl.Int64}  # fmt: skip
    columns = ", ".join(["id", *list(schema)[1:]])
    sql = f"SELECT {columns} FROM loans" + where(among(conn, "id", loan_ids))
    return read_frame(conn, sql, schema, small=True)


def loan_facts(conn: Connection, loan_ids: pl.Series, *, snapshot: bool = True) -> pl.DataFrame:
    """external_id, currency and (with `snapshot`) paid_snapshot_at of these loans."""
    schema: Schema = {"loan_id": pl.Int64, "external_id": pl.String, "currency": pl.String}
    if snapshot:
        schema = {**schema, "paid_snapshot_at": UTC_US}
    columns = ", ".join(["id", *list(schema)[1:]])
    return read_frame(
        conn, f"SELECT {columns} FROM loans" + where(among(conn, "id", loan_ids)), schema
    )


def payments(conn: Connection, scope: Scope | None = None) -> pl.DataFrame:
    return read_frame(
        conn,
        "SELECT loan_id, paid_at, amount FROM payments" + where(scoped("loan_id", scope)),
        {"loan_id": pl.Int64, "paid_at": UTC_US, "amount": pl.Int64},
    )


def open_summary(
    conn: Connection, loans: pl.DataFrame, late_before: date, *, small: bool = False
) -> pl.DataFrame:
    """Per loan with an open instalment: overdue_amount and first_late over those due before
    `late_before`, outstanding over all, and the first one due from then on (next_due_date,
    next_due_amount; by due date, then number). `loans`: with their open schedule
    (`loans(schedule=True)`). This is the position when no payment is to be allocated
    on top of the instalments' paid amounts (`ledger_frame.open_summary_positions` turns it
    into one; tested equal to allocating instalment by instalment). `small`: as `read_frame`'s.

    A loan none of whose open instalments is late is its schedule columns as they are. Only the
    loans with a late one (a sixth of a busy book) have their upcoming instalments summed, by
    the database: the overdue sum is what is left of the rest."""
    open_ = loans.filter(pl.col("first_open_due").is_not_null())
    late = pl.col("first_open_due") < late_before
    upcoming = _upcoming_of_late(
        conn, late_before.isoformat(), open_.filter(late).get_column("loan_id"), small
    )
    return (
        open_.join(upcoming, on="loan_id", how="left")
        .select(
            "loan_id",
            pl.when(late).then(pl.col("open_amount") - pl.col("_upcoming").fill_null(0))
            .otherwise(0).alias("overdue_amount"),
            pl.when(late).then(pl.col("first_open_due")).alias("first_late"),
            pl.when(late).then(pl.col("_next_date")).otherwise(pl.col("first_open_due"))
            .alias("next_due_date"),
            pl.when(late).then(pl.col("_next_amount").fill_null(0))
            .otherwise(pl.col("first_open_left")).alias("next_due_amount"),
            pl.col("open_amount").alias("outstanding"),
        )
    )  # fmt: skip


def _upcoming_of_late(
    conn: Connection, late_before: str, late: pl.Series, small: bool
) -> pl.DataFrame:
    """Per loan of `late` (loans with a late open instalment) with an open one due from
    `late_before` on: the sum of those, and the first of them (by due date, then number)."""
    schema: Schema = {"loan_id": pl.Int64, "_upcoming": pl.Int64, "_next_date": pl.Date,
                      "_next_amount": pl.Int64}  # fmt: skip
    if late.is_empty():
        return pl.DataFrame(schema=schema)
    remaining = "(amount_due - amount_paid)"
    # The ids as a list, not a subquery on loans: that would scan the whole table for them.
    open_ = "FROM instalments" + where("amount_paid < amount_due", among(conn, "loan_id", late))
    if conn.dialect.name == "sqlite":
        # With one min() in a query, SQLite takes the other bare columns from the row holding
        # the minimum, and on a tie from the first such row in scan order, here the primary key's
        # (loan_id, number): so (due date, number) order.
        sql = (
            f"SELECT loan_id, CAST(sum({remaining}) AS BIGINT), min(due_date), {remaining} "
            f"{open_} AND due_date >= '{late_before}' GROUP BY loan_id"
        )
    else:
        sql = (
            f"SELECT DISTINCT ON (loan_id) loan_id, "
            f"CAST(sum({remaining}) OVER (PARTITION BY loan_id) AS BIGINT), due_date, "
            f"{remaining} {open_} AND due_date >= '{late_before}' ORDER BY loan_id, due_date, number"
        )
    return read_frame(
        conn,
        sql,
        {"loan_id": pl.Int64, "_upcoming": pl.Int64, "_next_date": pl.Date,
         "_next_amount": pl.Int64},
        small=small,
    )  # fmt: skip
