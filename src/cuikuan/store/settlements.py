"""Recording the outcome of things that settle (promises, instalment plans): status and when."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, update

from cuikuan.store.events import emit_many


def record_settlements(
    engine: Engine,
    table: Table,
    outcomes: Sequence[tuple[int, str]],
    now: datetime,
    events: Sequence[tuple[str, int | None, dict[str, Any]]] = (),
) -> None:
    """Set `status` and `settled_at` for each (id, status) of `table`, in one transaction, with
    the webhook events (type, customer id, payload) that report them."""
    if not outcomes:
        return
    with engine.begin() as conn:
        for row_id, status in outcomes:
            conn.execute(
                update(table).where(table.c.id == row_id).values(status=status, settled_at=now)
            )
        for kind in dict.fromkeys(k for k, _, _ in events):
            emit_many(conn, kind, [(c, p) for k, c, p in events if k == kind], now)
