"""Recording the outcome of things that settle (promises, instalment plans): status and when."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, Table, update


def record_settlements(
    engine: Engine, table: Table, outcomes: Sequence[tuple[int, str]], now: datetime
) -> None:
    """Set `status` and `settled_at` for each (id, status) of `table`, in one transaction."""
    if not outcomes:
        return
    with engine.begin() as conn:
        for row_id, status in outcomes:
            conn.execute(
                update(table).where(table.c.id == row_id).values(status=status, settled_at=now)
            )
