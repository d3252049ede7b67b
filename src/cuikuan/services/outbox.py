"""The outbox for operators: messages in a state, and resolving the uncertain ones by hand.

    rows = messages_in(engine, "uncertain")
    resolve_uncertain(engine, [12, 13], "not_sent", by="li", now=now)
    health = provider_health(engine)   # per provider: up or down, what its binds left unread

An uncertain message was handed to a gateway but its fate was never recorded (the dispatcher
died, or the session dropped before the answer). Only a person who checked with the carrier
decides: `sent` (it went; it counts for the caps), `not_sent` (failed, never retried), or
`resend` (planned again; it goes out if its window is still open).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update

from cuikuan.errors import InputError, NotFound
from cuikuan.store import inbound_pdus, provider_states
from cuikuan.store.schema import customers, outbox, receipts, template_pauses

OUTCOMES = {"sent": "sent", "not_sent": "failed", "resend": "planned"}


def messages_in(engine: Engine, status: str, limit: int = 200) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                outbox.c.id,
                customers.c.external_id.label("customer"),
                outbox.c.recipient,
                outbox.c.step,
                outbox.c.plan_date,
                outbox.c.status,
                outbox.c.reason,
                outbox.c.provider_id,
                outbox.c.updated_at,
            )
            .join(customers, customers.c.id == outbox.c.customer_id)
            .where(outbox.c.status == status)
            .order_by(outbox.c.id)
            .limit(limit)
        ).all()
    return [dict(r._mapping) for r in rows]


def resolve_uncertain(engine: Engine, ids: list[int], outcome: str, by: str, now: datetime) -> int:
    if outcome not in OUTCOMES:
        raise InputError(f"outcome must be one of {', '.join(OUTCOMES)} (got {outcome!r})")
    with engine.begin() as conn:
        found = dict(
            conn.execute(select(outbox.c.id, outbox.c.status).where(outbox.c.id.in_(ids))).all()
        )
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"no outbox message {', '.join(map(str, missing))}")
        wrong = [f"{i} is {found[i]}" for i in ids if found[i] != "uncertain"]
        if wrong:
            raise InputError(f"only uncertain messages can be resolved: {'; '.join(wrong)}")
        values: dict[str, Any] = {
            "status": OUTCOMES[outcome],
            "reason": f"resolved by {by}: {outcome.replace('_', ' ')}",
            "updated_at": now,
        }
        if outcome == "sent":
            values["sent_at"] = now
        return conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids), outbox.c.status == "uncertain")
            .values(**values)
        ).rowcount


def provider_health(engine: Engine) -> list[dict[str, Any]]:
    """Per provider: up or down (since when, the next try, why) as dispatch last found it;
    what its binds heard that is not read yet, or could not be read; receipts of the last
    day that match no message (an id the provider reused, a message recorded nowhere)."""
    with engine.connect() as conn:
        states = {s["provider"]: s for s in provider_states.states(conn)}
        journal = inbound_pdus.counts(conn)
        unmatched: dict[str, int] = dict(
            conn.execute(
                select(receipts.c.provider, func.count())
                .where(receipts.c.outbox_id.is_(None))
                .group_by(receipts.c.provider)
            ).all()
        )
    names = sorted(set(states) | {p for p, _ in journal} | set(unmatched))
    return [
        {
            "provider": name,
            "state": states.get(name, {}).get("state", "up"),
            "since": states.get(name, {}).get("since"),
            "next_try_at": states.get(name, {}).get("next_try_at"),
            "detail": states.get(name, {}).get("detail"),
            "inbound_waiting": journal.get((name, "new"), 0),
            "inbound_unreadable": journal.get((name, "unreadable"), 0),
            "receipts_unmatched": int(unmatched.get(name, 0)),
        }
        for name in names
    ]


def day_by_step(engine: Engine, day: date) -> list[dict[str, Any]]:
    """The day's plan: messages per step and status (to send, held back, suppressed, sent...)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.step, outbox.c.status, func.count())
            .where(outbox.c.plan_date == day)
            .group_by(outbox.c.step, outbox.c.status)
            .order_by(outbox.c.step, outbox.c.status)
        ).all()
    return [{"step": r[0], "status": r[1], "count": int(r[2])} for r in rows]


def uncertain_count(engine: Engine) -> int:
    """Messages of any day whose fate a person must settle (`outbox resolve`)."""
    with engine.connect() as conn:
        found = conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.status == "uncertain")
        ).scalar_one()
    return int(found)


def paused_templates(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(template_pauses).order_by(template_pauses.c.template)).all()
    return [{"template": r.template, "reason": r.reason, "since": r.since} for r in rows]
