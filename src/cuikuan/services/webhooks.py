"""Webhooks out: subscriptions, signed deliveries, retries for a day, a dead-letter list.

    sub = subscribe(engine, "https://lender.example/hooks", ["reply.received"], now)
    report = deliver_due(engine, now, post)     # post(url, headers, body) -> HTTP status

Each delivery is a POST of {"id", "type", "occurred_at", "customer", "data"} signed with the
subscription's secret: header `Cuikuan-Signature: t=<unix seconds>,v1=<hex>` where v1 is
HMAC-SHA256(secret, "<t>.<body>"). A receiver recomputes it over the raw body and refuses a
timestamp far from its clock (replays). At least once: a delivery is retried until a 2xx, with
growing delays (30 s, 1 min, 2 min, ... at most an hour apart) for a day, then it is dead until a
person replays it. In order per customer: a customer's later event waits while an earlier one to
the same subscription is pending.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, and_, func, insert, select, update

from cuikuan.errors import InputError, NotFound
from cuikuan.store.events import TYPES
from cuikuan.store.schema import (
    customers,
    webhook_deliveries,
    webhook_events,
    webhook_subscriptions,
)
from cuikuan.store.times import as_utc

Post = Callable[[str, dict[str, str], bytes], int]  # url, headers, body -> status (raises on I/O)
RETRY_FOR = timedelta(days=1)
FIRST_DELAY = timedelta(seconds=30)
LONGEST_DELAY = timedelta(hours=1)


@dataclass(frozen=True)
class Subscription:
    id: int
    url: str
    events: tuple[str, ...]
    secret: str


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    waiting_in_order: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def parse_events(text: str) -> tuple[str, ...]:
    if text.strip() == "*":
        return ("*",)
    wanted = tuple(dict.fromkeys(e.strip() for e in text.split(",") if e.strip()))
    unknown = [e for e in wanted if e not in TYPES]
    if unknown or not wanted:
        raise InputError(
            f"events {text!r}: expected * or a comma-separated list of {', '.join(TYPES)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    return wanted


def subscribe(engine: Engine, url: str, events: Iterable[str], now: datetime) -> Subscription:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        raise InputError(f"{url!r}: expected an http:// or https:// URL")
    wanted = tuple(events)
    secret = "whsec_" + secrets.token_hex(24)
    with engine.begin() as conn:
        sid = conn.execute(
            insert(webhook_subscriptions)
            .values(url=url, events=",".join(wanted), secret=secret, active=True, created_at=now)
            .returning(webhook_subscriptions.c.id)
        ).scalar_one()
    return Subscription(sid, url, wanted, secret)


def subscriptions(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(webhook_subscriptions).order_by(webhook_subscriptions.c.id)
        ).all()
    return [{"id": r.id, "url": r.url, "events": r.events.split(","), "active": r.active,
             "created_at": as_utc(r.created_at)} for r in rows]  # fmt: skip


def unsubscribe(engine: Engine, sid: int) -> None:
    """Stop a subscription; its undelivered deliveries are dropped with it."""
    with engine.begin() as conn:
        if not conn.execute(
            update(webhook_subscriptions)
            .where(webhook_subscriptions.c.id == sid, webhook_subscriptions.c.active.is_(True))
            .values(active=False)
        ).rowcount:
            raise NotFound(f"no active webhook subscription {sid}")
        conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.subscription_id == sid,
                   webhook_deliveries.c.status == "pending")
            .values(status="dead", last_error="the subscription was removed")
        )  # fmt: skip


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: datetime, tolerance: int = 300) -> bool:
    """What a receiver does (and the tests): the signature over the raw body, and a fresh stamp."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        stamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    expected = sign(secret, stamp, body).split("v1=", 1)[1]
    fresh = abs(now.timestamp() - stamp) <= tolerance
    return fresh and hmac.compare_digest(expected, fields.get("v1", ""))


def deliver_due(engine: Engine, now: datetime, post: Post, limit: int = 200) -> DeliveryReport:
    """Every due delivery that is first in its customer's line, posted once; again while that
    let later ones move up (at most `limit` posts)."""
    report = DeliveryReport()
    posted = 0
    while posted < limit:
        ready = _due(engine, now, limit - posted, report)
        if not ready:
            break
        posted += len(ready)
        before = report.delivered
        _post_all(engine, ready, now, post, report)
        if report.delivered == before:
            break  # nothing moved: what waits behind a failure keeps waiting
    return report


def _post_all(
    engine: Engine, ready: list[Any], now: datetime, post: Post, report: DeliveryReport
) -> None:
    for row in ready:
        body = json.dumps(
            {"id": row.event_id, "type": row.type, "occurred_at": as_utc(row.occurred_at).isoformat(),
             "customer": row.external_id, "data": json.loads(row.payload)},
            ensure_ascii=False, separators=(",", ":"),
        ).encode()  # fmt: skip
        headers = {"Content-Type": "application/json", "Cuikuan-Event": row.type,
                   "Cuikuan-Delivery": str(row.id),
                   "Cuikuan-Signature": sign(row.secret, int(now.timestamp()), body)}  # fmt: skip
        try:
            status = post(row.url, headers, body)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except Exception as exc:  # any failure to reach the receiver is a failed attempt
            error = f"{type(exc).__name__}"
        _record(engine, row, now, error, report)


def _due(engine: Engine, now: datetime, limit: int, report: DeliveryReport) -> list[Any]:
    d, e, s = webhook_deliveries, webhook_events, webhook_subscriptions
    with engine.connect() as conn:
        rows = conn.execute(
            select(d.c.id, d.c.subscription_id, d.c.customer_id, d.c.attempts, d.c.created_at,
                   e.c.id.label("event_id"), e.c.type, e.c.payload, e.c.occurred_at,
                   s.c.url, s.c.secret, customers.c.external_id)
            .join(e, e.c.id == d.c.event_id)
            .join(s, s.c.id == d.c.subscription_id)
            .outerjoin(customers, customers.c.id == d.c.customer_id)
            .where(d.c.status == "pending", d.c.next_attempt_at <= now)
            .order_by(d.c.id)
            .limit(limit)
        ).all()  # fmt: skip
        keyed = {(r.subscription_id, r.customer_id) for r in rows if r.customer_id is not None}
        first: dict[tuple[int, int], int] = {}
        if keyed:
            for sub, cid, lowest in conn.execute(
                select(d.c.subscription_id, d.c.customer_id, func.min(d.c.id))
                .where(d.c.status == "pending",
                       d.c.customer_id.in_(sorted({c for _, c in keyed})))
                .group_by(d.c.subscription_id, d.c.customer_id)
            ):  # fmt: skip
                first[(sub, cid)] = lowest
    ready = []
    for r in rows:
        if r.customer_id is not None and first.get((r.subscription_id, r.customer_id)) != r.id:
            report.waiting_in_order += 1
            continue
        ready.append(r)
    return ready


def _record(
    engine: Engine, row: Any, now: datetime, error: str | None, report: DeliveryReport
) -> None:
    attempts = row.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "last_error": error}
    if error is None:
        values |= {"status": "delivered", "delivered_at": now}
        report.delivered += 1
    else:
        report.errors[error] += 1
        delay = min(FIRST_DELAY * 2 ** (attempts - 1), LONGEST_DELAY)
        if now + delay > as_utc(row.created_at) + RETRY_FOR:
            values["status"] = "dead"
            report.dead += 1
        else:
            values["next_attempt_at"] = now + delay
            report.retried += 1
    with engine.begin() as conn:
        conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == row.id, webhook_deliveries.c.status == "pending")
            .values(**values)
        )


def deliveries(
    engine: Engine, status: str | None = None, limit: int = 100, after: int = 0
) -> list[dict[str, Any]]:
    d, e = webhook_deliveries, webhook_events
    query = (
        select(d.c.id, d.c.subscription_id, e.c.type, d.c.event_id, d.c.status, d.c.attempts,
               d.c.next_attempt_at, d.c.last_error, d.c.created_at, d.c.delivered_at)
        .join(e, e.c.id == d.c.event_id)
        .where(d.c.id > after)
    )  # fmt: skip
    if status:
        query = query.where(d.c.status == status)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(d.c.id).limit(limit)).all()
    return [
        {k: as_utc(v) if isinstance(v, datetime) else v for k, v in r._mapping.items()}
        for r in rows
    ]


def replay(engine: Engine, ids: list[int] | None, now: datetime) -> int:
    """Dead deliveries (these, or all) pending again from now, with a fresh day of retries."""
    d = webhook_deliveries
    condition = and_(d.c.status == "dead", d.c.subscription_id.in_(
        select(webhook_subscriptions.c.id).where(webhook_subscriptions.c.active.is_(True))))  # fmt: skip
    if ids is not None:
        condition = and_(condition, d.c.id.in_(ids))
    with engine.begin() as conn:
        return int(
            conn.execute(
                update(d)
                .where(condition)
                .values(
                    status="pending",
                    next_attempt_at=now,
                    created_at=now,
                    attempts=0,
                )
            ).rowcount
        )


MAX_ANSWER = 64 * 1024


def http_poster(timeout: float = 10.0) -> tuple[Post, Callable[[], None]]:
    """A Post over one httpx client (kept alive between deliveries), and its closer. Redirects
    are not followed (a receiver that moved must be subscribed again) and at most MAX_ANSWER
    bytes of an answer are read."""
    import httpx

    client = httpx.Client(timeout=timeout, follow_redirects=False)

    def post(url: str, headers: dict[str, str], body: bytes) -> int:
        with client.stream("POST", url, headers=headers, content=body) as answer:
            read = 0
            for chunk in answer.iter_bytes():
                read += len(chunk)
                if read >= MAX_ANSWER:
                    break
            return answer.status_code

    return post, client.close
