"""Snapshots kept in the database: the portfolio (services/portfolio.portfolio_now) and the
report over the console's default range (services/report_store).

    save(engine, key, as_of, buckets, dpd, meta, made_at)    # the first writer wins
    load(engine, key)                                          # (buckets, dpd, meta) or None
    save_report(engine, key, frames, meta, made_at)           # replaces the one under key
    load_report(engine, key)                                   # (frames, meta, made_at) or None

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
from cuikuan.store.schema import report_snapshots as reports
from cuikuan.store.times import as_utc

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


REPORT_FRAMES = ("steps", "delivery", "templates", "daily")


def save_report(
    engine: Engine,
    key: str,
    frames: dict[str, pl.DataFrame],
    meta: dict[str, Any],
    made_at: datetime,
) -> None:
    with engine.begin() as conn:
        # Ranges people asked for once are not kept beyond a day.
        conn.execute(delete(reports).where(reports.c.made_at < made_at - timedelta(days=1)))
        conn.execute(delete(reports).where(reports.c.key == key))
        conn.execute(
            insert(reports).values(
                key=key, meta=json.dumps(meta, ensure_ascii=False, default=str), made_at=made_at,
                **{name: _ipc(frames[name]) for name in REPORT_FRAMES},
            )
        )  # fmt: skip


def load_report(
    engine: Engine, key: str
) -> tuple[dict[str, pl.DataFrame], dict[str, Any], datetime] | None:
    with engine.connect() as conn:
        row = conn.execute(select(reports).where(reports.c.key == key)).first()
    if row is None:
        return None
    frames = {name: pl.read_ipc(io.BytesIO(getattr(row, name))) for name in REPORT_FRAMES}
    return frames, json.loads(row.meta), as_utc(row.made_at)


def _ipc(frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.write_ipc(out)
    return out.getvalue()
