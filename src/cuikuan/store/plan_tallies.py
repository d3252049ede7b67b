"""The plan's stops before the control draw, counted per day (table `plan_tallies`).

    keep(conn, date(2026, 12, 1), counts)   # counts: step, variant, template, status, rule, count
    read(conn, start, end)                  # the same columns with plan_date

The rows the plan stops before the draw are not written to the outbox (on a busy day they
outnumber the messages); the report's funnel reads their counts here. A re-run of a day's plan
meets its own earlier stops again, so each cell keeps the larger of its counts, not the sum.
"""

from __future__ import annotations

from datetime import date

import polars as pl
from sqlalchemy import Connection, select

from cuikuan.store.bulk import Bulk, frame_from_rows
from cuikuan.store.schema import plan_tallies

COLUMNS = ("step", "variant", "template", "status", "rule", "count")
SCHEMA: dict[str, pl.DataType] = {
    "plan_date": pl.Date(), "step": pl.String(), "variant": pl.Int64(), "template": pl.String(),
    "status": pl.String(), "rule": pl.String(), "count": pl.Int64(),
}  # fmt: skip


def keep(conn: Connection, plan_date: date, counts: pl.DataFrame) -> None:
    if counts.is_empty():
        return
    bulk = Bulk(conn)
    larger = "MAX(plan_tallies.count, excluded.count)" if bulk.sqlite else (
        "GREATEST(plan_tallies.count, excluded.count)"
    )  # fmt: skip
    names = ", ".join(("plan_date", *COLUMNS))
    sql = (
        f"INSERT INTO plan_tallies ({names}) VALUES ({bulk.placeholders(len(COLUMNS) + 1)}) "
        "ON CONFLICT (plan_date, step, variant, template, status, rule) "
        f"DO UPDATE SET count = {larger}"
    )
    day: object = plan_date.isoformat() if bulk.sqlite else plan_date
    rows = [
        (day, *row)
        for row in counts.select(COLUMNS).with_columns(pl.col("rule").fill_null("")).iter_rows()
    ]
    bulk.many(sql, rows)


def read(conn: Connection, start: date, end: date) -> pl.DataFrame:
    t = plan_tallies.c
    rows = conn.execute(
        select(t.plan_date, t.step, t.variant, t.template, t.status, t.rule, t.count).where(
            t.plan_date >= start, t.plan_date <= end
        )
    ).all()
    return frame_from_rows([tuple(r) for r in rows], SCHEMA)
