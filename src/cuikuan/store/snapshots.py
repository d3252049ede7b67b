"""Portfolio snapshots kept in the database (services/portfolio.portfolio_now writes and reads).

    save(engine, key, as_of, buckets, dpd, meta, made_at)    # the first writer wins
    load(engine, key)                                          # (buckets, dpd, meta) or None

Frames travel as Arrow IPC, so their types come back exactly as they went.
"""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from cuikuan.store.schema import portfolio_snapshots as snaps

KEEP_DAYS = 3  # older days' snapshots are dropped when a new one is written


def save(
    engine: Engine,
    key: str,
    as_of: date,
    buckets: pl.DataFrame,
    dpd: pl.DataFrame,
    meta: dict[str, Any],
    made_at: datetime,
) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(delete(snaps).where(snaps.c.as_of < as_of - timedelta(days=KEEP_DAYS)))
            conn.execute(
                insert(snaps).values(
                    key=key, as_of=as_of, buckets=_ipc(buckets), dpd=_ipc(dpd),
                    meta=json.dumps(meta), made_at=made_at,
                )
            )  # fmt: skip
    except IntegrityError:
        pass  # another process wrote the same snapshot first: it is the same


def load(engine: Engine, key: str) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(snaps.c.buckets, snaps.c.dpd, snaps.c.meta).where(snaps.c.key == key)
        ).first()
    if row is None:
        return None
    return (
        pl.read_ipc(io.BytesIO(row.buckets)),
        pl.read_ipc(io.BytesIO(row.dpd)),
        json.loads(row.meta),
    )


def _ipc(frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.write_ipc(out)
    return out.getvalue()
