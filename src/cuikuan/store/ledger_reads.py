"""The ledger as Polars frames, typed the same on SQLite and PostgreSQL (set-at-a-time reads).

On PostgreSQL, large reads go through ADBC: the rows arrive as Arrow columns, not a Python tuple
per row. SQLite stays on the DB-API (see `bulk.arrow_frame` for why). ADBC reads on its own
connection, outside the caller's transaction: only for reads that need no uncommitted writes
of the caller (the plan and the report read committed data).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import Connection

from cuikuan.store.bulk import arrow_frame, fetch_tuples, frame_from_rows, sqlite_json_frame

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

    Schema = Mapping[str, PolarsDataType]


def read_frame(conn: Connection, sql: str, schema: Schema) -> pl.DataFrame:
    """`sql` (no parameters) as a frame typed to `schema`, by the fastest path the database has."""
    fast = arrow_frame(conn, sql, schema)
    if fast is not None:
        return fast
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        return _typed(sqlite_json_frame(conn, sql, schema), schema, sqlite)
    rows = fetch_tuples(conn, sql)
    # SQLite hands back dates and times as the text SQLAlchemy stored; parse them after.
    raw: Schema = {
        name: pl.String
        if sqlite and (dtype == pl.Date or isinstance(dtype, pl.Datetime))
        else dtype
        for name, dtype in schema.items()
    }
    return _typed(frame_from_rows(rows, raw), schema, sqlite)


def _typed(frame: pl.DataFrame, schema: Schema, sqlite: bool) -> pl.DataFrame:
    if sqlite:
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
        frame = frame.with_columns(casts)
    return frame


UTC_US = pl.Datetime("us", "UTC")


def instalments(conn: Connection, open_only: bool = False) -> pl.DataFrame:
    """Instalments; `open_only` leaves out the fully paid ones, which change no position."""
    where = " WHERE amount_paid < amount_due" if open_only else ""
    return read_frame(
        conn,
        "SELECT loan_id, number, due_date, amount_due, amount_paid FROM instalments" + where,
        {
            "loan_id": pl.Int64,
            "number": pl.Int64,
            "due_date": pl.Date,
            "amount_due": pl.Int64,
            "amount_paid": pl.Int64,
        },
    )


def loans(conn: Connection) -> pl.DataFrame:
    return read_frame(
        conn,
        "SELECT id, customer_id, external_id, currency, paid_snapshot_at FROM loans",
        {
            "loan_id": pl.Int64,
            "customer_id": pl.Int64,
            "external_id": pl.String,
            "currency": pl.String,
            "paid_snapshot_at": UTC_US,
        },
    )


def payments(conn: Connection) -> pl.DataFrame:
    return read_frame(
        conn,
        "SELECT loan_id, paid_at, amount FROM payments",
        {"loan_id": pl.Int64, "paid_at": UTC_US, "amount": pl.Int64},
    )
