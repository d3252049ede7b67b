"""Events for webhooks, written in the transaction of the change they report.

    emit(conn, "reply.received", customer_id, {"intent": "opt_out", ...}, at)

An event is stored, with one pending delivery for every active subscription that wants its type,
only when there is such a subscription: a book nobody listens to pays one small query a call.
services.webhooks delivers them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from cuikuan.store.schema import webhook_deliveries, webhook_events, webhook_subscriptions

TYPES = (
    "message.sent", "message.delivered", "message.failed", "reply.received", "optout.changed",
    "promise.made", "promise.kept", "promise.broken", "plan.created", "task.created",
    "payment.matched",
)  # fmt: skip


def listeners(conn: Connection, event_type: str) -> list[int]:
    """Ids of the active subscriptions that want `event_type`."""
    rows = conn.execute(
        select(webhook_subscriptions.c.id, webhook_subscriptions.c.events).where(
            webhook_subscriptions.c.active.is_(True)
        )
    ).all()
    return [r.id for r in rows if r.events == "*" or event_type in r.events.split(",")]


def emit(
    conn: Connection, event_type: str, customer_id: int | None, payload: dict[str, Any],
    at: datetime,
) -> None:  # fmt: skip
    emit_many(conn, event_type, [(customer_id, payload)], at)


def emit_many(
    conn: Connection,
    event_type: str,
    events: Sequence[tuple[int | None, dict[str, Any]]],
    at: datetime,
) -> int:
    """Store the events and their deliveries; returns how many events were stored."""
    if event_type not in TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if not events:
        return 0
    subscribers = listeners(conn, event_type)
    if not subscribers:
        return 0
    ids = list(
        conn.execute(
            insert(webhook_events).returning(webhook_events.c.id, sort_by_parameter_order=True),
            [
                {"type": event_type, "customer_id": cid, "occurred_at": at,
                 "payload": json.dumps(payload, ensure_ascii=False, default=str)}
                for cid, payload in events
            ],
        ).scalars()
    )  # fmt: skip
    conn.execute(
        insert(webhook_deliveries),
        [
            {"subscription_id": sub, "event_id": eid, "customer_id": cid, "status": "pending",
             "attempts": 0, "next_attempt_at": at, "created_at": at}
            for eid, (cid, _) in zip(ids, events, strict=True)
            for sub in subscribers
        ],
    )  # fmt: skip
    return len(ids)
