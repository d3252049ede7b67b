"""Which messages preceded each payment, recorded as payments arrive (the report reads them).

    found = record_touches(engine)   # payments not scanned yet; returns touches written

For every payment not yet scanned: each message to the loan's customer that was sent (sent,
delivered or undelivered: it left) or held back as control (it would have left at its
earliest time) within `WINDOW` before the payment, with the hours between. Payments are scanned
once, in id order, from the marker `payment_touches`; a message planned after a payment never
counts for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, insert, select, update

from cuikuan.store.bulk import frame_from_rows
from cuikuan.store.schema import loans, markers, outbox, payment_touches, payments
from cuikuan.store.times import as_utc

WINDOW = timedelta(days=7)
MARKER = "payment_touches"
LEFT = ("sent", "delivered", "undelivered")
CHUNK = 5_000  # ids per IN list, far below SQLite's 32,766 bound variables


def record_touches(engine: Engine) -> int:
    with engine.begin() as conn:
        last = conn.execute(select(markers.c.value).where(markers.c.name == MARKER)).scalar()
        start = int(last or 0)
        new = conn.execute(
            select(payments.c.id, payments.c.paid_at, loans.c.customer_id)
            .join(loans, loans.c.id == payments.c.loan_id)
            .where(payments.c.id > start)
        ).all()
        if not new:
            return 0
        top = max(p.id for p in new)
        pays = frame_from_rows(
            [(p.id, as_utc(p.paid_at), p.customer_id) for p in new],
            {"payment_id": pl.Int64, "paid_at": pl.Datetime("us", "UTC"), "customer_id": pl.Int64},
        )
        lo = pays["paid_at"].min() - WINDOW  # type: ignore[operator]
        hi = pays["paid_at"].max()
        people = sorted(set(pays["customer_id"].to_list()))
        sent: list[Any] = []
        for start in range(0, len(people), CHUNK):
            sent += conn.execute(
                select(
                    outbox.c.id,
                    outbox.c.customer_id,
                    outbox.c.sent_at,
                    outbox.c.earliest_at,
                    outbox.c.status,
                ).where(
                    outbox.c.customer_id.in_(people[start : start + CHUNK]),
                    outbox.c.status.in_((*LEFT, "held")),
                    func.coalesce(outbox.c.sent_at, outbox.c.earliest_at) >= lo,
                    func.coalesce(outbox.c.sent_at, outbox.c.earliest_at) <= hi,
                )
            ).all()
        touches = _touches(pays, sent)
        if touches:
            conn.execute(insert(payment_touches), touches)
        if last is None:
            conn.execute(insert(markers).values(name=MARKER, value=top))
        else:
            conn.execute(update(markers).where(markers.c.name == MARKER).values(value=top))
    return len(touches)


def _touches(pays: pl.DataFrame, sent: Sequence[Any]) -> list[dict[str, Any]]:
    if not sent:
        return []
    messages = frame_from_rows(
        [
            (m.id, m.customer_id, as_utc(m.sent_at or m.earliest_at), int(m.status == "held"))
            for m in sent
        ],
        {"outbox_id": pl.Int64, "customer_id": pl.Int64, "at": pl.Datetime("us", "UTC"),
         "control": pl.Int64},
    )  # fmt: skip
    joined = (
        pays.join(messages, on="customer_id")
        .filter((pl.col("at") <= pl.col("paid_at")) & (pl.col("at") > pl.col("paid_at") - WINDOW))
        .with_columns(
            ((pl.col("paid_at") - pl.col("at")).dt.total_seconds() / 3600).alias("hours_before")
        )
        .select("payment_id", "outbox_id", "hours_before", "control")
    )
    return joined.to_dicts()
