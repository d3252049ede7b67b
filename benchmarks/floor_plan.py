"""The floor for `cuikuan plan`: a competent engineer's direct implementation of the same day's
decisions on the same tables, without the product around it.

    python benchmarks/floor_plan.py cuikuan.db 2026-11-30

One SQL query reads what the plan reads (each open loan's kept schedule columns, the overdue
sum of the late loans only, the customer, the first mobile number not opted out); one Polars
query makes the busy strategy's decisions (benchmarks/data/busy_strategy.toml, written out by
hand: days past due and to due, the stop rule, first step that matches wins, control groups and
variants by a stable hash, the day's contact window) and renders each message with a format
string; the rows go into the outbox in one transaction (Arrow through ADBC's SQLite driver and
one INSERT ... SELECT) and are committed. Printed: seconds and rows.

What it leaves out, and the plan does not: caps against earlier messages and among people who
share a number, repeat rules, first against repeat delinquency (all count as first), holidays,
zones per number, promises, pauses, flags and number stops beyond opt-outs, instalment plans,
the lint of each text, template files and Jinja, the trail, and the counts for the summary.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, date, datetime, timedelta

import adbc_driver_sqlite.dbapi as adbc
import polars as pl

READ = """
SELECT l.id AS loan_id, l.customer_id, l.external_id AS loan, l.open_amount AS outstanding,
       l.first_open_due AS first_due, l.first_open_left AS first_left,
       c.external_id AS customer, c.name,
       (SELECT p.e164 FROM customer_phones p
         WHERE p.customer_id = l.customer_id AND p.kind = 'mobile'
           AND p.e164 NOT IN (SELECT address FROM number_stops WHERE channel = 'sms')
         ORDER BY p.position LIMIT 1) AS phone,
       CASE WHEN l.first_open_due < :day THEN
         (SELECT sum(i.amount_due - i.amount_paid) FROM instalments i
           WHERE i.loan_id = l.id AND i.due_date < :day AND i.amount_paid < i.amount_due)
       END AS overdue
FROM loans l JOIN customers c ON c.id = l.customer_id
WHERE l.open_amount > 0
  AND l.customer_id NOT IN (SELECT customer_id FROM opt_outs WHERE channel = 'sms')
"""
TEXTS = {
    "pre_due_3d": "【示例金融】{name}您好，您尾号{tail}的借款将于{due}到期，应还{amount}元，请按时还款。",
    "due_today": "【示例金融】{name}您好，您尾号{tail}的借款今日到期，应还{amount}元，请今日还款。",
    "overdue_gentle": "【示例金融】{name}您好，您尾号{tail}的借款已逾期{dpd}天，待还{amount}元。如有困难可致电协商。",
    "overdue_firm": "【示例金融】{name}，您尾号{tail}的借款已逾期{dpd}天，待还{amount}元，请尽快处理。",
    "overdue_late": "【示例金融】{name}，您尾号{tail}的借款已逾期{dpd}天，欠款{amount}元，请立即还款。",
}


def decide(loans: pl.DataFrame, day: date) -> pl.DataFrame:
    dpd = (
        pl.when(pl.col("first_due") < day)
        .then((pl.lit(day) - pl.col("first_due")).dt.total_days())
        .otherwise(0)
    )
    to_due = (pl.col("first_due") - pl.lit(day)).dt.total_days()
    step = (
        pl.when((pl.col("dpd") == 0) & to_due.is_between(1, 7))
        .then(pl.lit("pre_due"))
        .when((pl.col("dpd") == 0) & (to_due == 0))
        .then(pl.lit("due_today"))
        .when(pl.col("dpd").is_between(1, 30))
        .then(pl.lit("m1_first"))
        .when(pl.col("dpd").is_between(31, 60) & ((pl.col("dpd") - 31) % 2 == 0))
        .then(pl.lit("m2"))
        .when(pl.col("dpd").is_between(61, 180) & ((pl.col("dpd") - 61) % 3 == 0))
        .then(pl.lit("m3_plus"))
    )
    share = pl.when(pl.col("step").is_in(["pre_due", "due_today"])).then(5).otherwise(10)
    bucket = (pl.concat_str("customer", "step").hash(7) % 100).cast(pl.Int64)
    variant = (
        pl.when(
            (pl.col("step") == "m1_first")
            & ((pl.concat_str("customer", pl.lit("v")).hash(9) % 100) >= 70)
        )
        .then(1)
        .otherwise(0)
    )
    template = (
        pl.when(pl.col("step") == "pre_due")
        .then(pl.lit("pre_due_3d"))
        .when(pl.col("step") == "due_today")
        .then(pl.lit("due_today"))
        .when(pl.col("step") == "m1_first")
        .then(
            pl.when(pl.col("variant") == 1)
            .then(pl.lit("overdue_firm"))
            .otherwise(pl.lit("overdue_gentle"))
        )
        .otherwise(pl.lit("overdue_late"))
    )
    opens = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=0)  # 08:00 in UTC+8
    closes = opens + timedelta(hours=12)
    chosen = (
        loans.with_columns(dpd.alias("dpd"))
        .filter(
            (pl.col("dpd") <= 180) & (pl.col("outstanding") >= 100) & pl.col("phone").is_not_null()
        )
        .with_columns(step.alias("step"))
        .filter(pl.col("step").is_not_null())
        # One message a person: the most overdue loan.
        .sort("dpd", "outstanding", descending=True)
        .unique("customer_id", keep="first")
        .with_columns((bucket < share).alias("control"), variant.alias("variant"))
        .with_columns(template.alias("template"))
    )
    amount = pl.when(pl.col("dpd") > 0).then(pl.col("overdue")).otherwise(pl.col("first_left"))
    money = pl.format("{}.{}", amount // 100, (amount % 100).cast(pl.String).str.zfill(2))
    text: pl.Expr = pl.lit(None, dtype=pl.String)
    for name, pattern in TEXTS.items():
        parts = (
            pattern.replace("{name}", "\0name\0")
            .replace("{tail}", "\0tail\0")
            .replace("{due}", "\0due\0")
            .replace("{amount}", "\0amount\0")
            .replace("{dpd}", "\0dpd\0")
            .split("\0")
        )
        pieces = {
            "name": pl.col("name"),
            "tail": pl.col("loan").str.slice(-4),
            "due": pl.col("first_due").dt.strftime("%m月%d日"),
            "amount": money,
            "dpd": pl.col("dpd").cast(pl.String),
        }
        text = (
            pl.when(pl.col("template") == name)
            .then(pl.concat_str([pieces.get(p, pl.lit(p)) for p in parts if p]))
            .otherwise(text)
        )
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return chosen.select(
        pl.concat_str("customer", pl.lit("|"), "step", pl.lit(f"|{day}")).alias("idempotency_key"),
        pl.lit(day.isoformat()).alias("plan_date"), "customer_id", "loan_id", "step", "template",
        "variant", pl.lit("sms").alias("channel"), pl.col("phone").alias("recipient"),
        text.alias("text"), pl.col("control").cast(pl.Int64),
        pl.lit(opens.strftime("%Y-%m-%d %H:%M:%S.%f")).alias("earliest_at"),
        pl.lit(closes.strftime("%Y-%m-%d %H:%M:%S.%f")).alias("latest_at"),
        pl.lit(1).alias("segments"), pl.lit(1).alias("billing_units"),
        pl.when(pl.col("control")).then(pl.lit("held")).otherwise(pl.lit("planned")).alias("status"),
        pl.lit("[]").alias("trail"), pl.lit(now).alias("created_at"), pl.lit(now).alias("updated_at"),
    )  # fmt: skip


def main() -> None:
    path, day = sys.argv[1], date.fromisoformat(sys.argv[2])
    start = time.perf_counter()
    with adbc.connect(f"file:{path}?mode=rw", autocommit=True) as conn, conn.cursor() as cursor:
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(1 << 30)})
        cursor.execute(READ.replace(":day", f"'{day.isoformat()}'"))
        got = pl.from_arrow(cursor.fetch_arrow())
        loans = got.struct.unnest() if isinstance(got, pl.Series) else got
        loans = loans.with_columns(pl.col("first_due").str.to_date())
        rows = decide(loans, day)
        names = ", ".join(rows.columns)
        cursor.execute("BEGIN IMMEDIATE")
        cursor.adbc_ingest("_floor", rows, mode="create_append", temporary=True)
        cursor.execute(
            f"INSERT INTO outbox ({names}) SELECT {names} FROM temp._floor WHERE true "
            "ON CONFLICT (idempotency_key) DO NOTHING"
        )
        cursor.execute("COMMIT")
    print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows.height}))


if __name__ == "__main__":
    main()
