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

from sqlalchemy import Connection, or_, select

from cuikuan.store.schema import calls

STEP = "call"  # what a call is in the caps' history (no step of a strategy has this id)


def key(call_id: int) -> str:
    return f"call:{call_id}"


def recent(
    conn: Connection,
    since: datetime,
    customer_ids: Collection[int] | None = None,
    numbers: Collection[str] | None = None,
) -> list[Any]:
    """(id, customer_id, number, at) of the calls since `since`: all of them, or those of these
    customers or to these numbers."""
    query = select(calls.c.id, calls.c.customer_id, calls.c.number, calls.c.at).where(
        calls.c.at >= since
    )
    if customer_ids is not None or numbers is not None:
        query = query.where(
            or_(
                calls.c.customer_id.in_(list(customer_ids or ())),
                calls.c.number.in_(list(numbers or ())),
            )
        )
    return list(conn.execute(query).all())


def recent_in(conn: Connection, since: datetime, customer_ids: Any, numbers: Any) -> list[Any]:
    """As `recent`, with the customers and numbers given as subqueries (a plan part's range)."""
    query = select(calls.c.id, calls.c.customer_id, calls.c.number, calls.c.at).where(
        calls.c.at >= since, or_(calls.c.customer_id.in_(customer_ids), calls.c.number.in_(numbers))
    )
    return list(conn.execute(query).all())
