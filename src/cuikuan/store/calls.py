"""Calls as contact history: the rows the caps count, in the shape of the outbox's.

A logged call is one more contact for its customer and for the number called, whatever its
outcome (an unanswered call is still a call: US Regulation F counts attempts). The plan's history
(services/planner._history) and the send-time re-check (dispatch/recheck._caps) both read them
here, so a call counts the same at plan time and at send time.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, or_, select

from cuikuan.store.among import among
from cuikuan.store.schema import calls

STEP = "call"  # what a call is in the caps' history (no step of a strategy has this id)


def key(call_id: int) -> str:
    return f"call:{call_id}"


def recent(
    conn: Connection,
    since: datetime,
    customer_ids: Collection[int] | Select[Any] | None = None,
    numbers: Collection[str] | Select[Any] | None = None,
) -> list[Any]:
    """(id, customer_id, number, at) of the calls since `since`: all of them, or those of these
    customers or to these numbers (lists, or subqueries for a plan part's range)."""
    query = select(calls.c.id, calls.c.customer_id, calls.c.number, calls.c.at).where(
        calls.c.at >= since
    )
    if customer_ids is not None or numbers is not None:
        query = query.where(
            or_(
                _within(calls.c.customer_id, customer_ids),
                _within(calls.c.number, numbers),
            )
        )
    return list(conn.execute(query).all())


def _within(column: Any, values: Collection[Any] | Select[Any] | None) -> Any:
    return column.in_(values) if isinstance(values, Select) else among(column, values or ())
