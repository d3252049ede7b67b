"""A borrower's timeline: every message (with its rule trail), receipt, reply and its reading,
payment, promise and opt-out, in order. What an agent reads before calling (可追溯性).

    events = timeline(engine, settings, "C001")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from cuikuan.domain.money import format_minor
from cuikuan.domain.templates import mask
from cuikuan.errors import NotFound
from cuikuan.settings import Settings
from cuikuan.store.schema import (
    calls,
    customer_phones,
    customers,
    loans,
    number_stops,
    opt_outs,
    outbox,
    payment_touches,
    payments,
    promises,
    replies,
)
from cuikuan.store.times import as_utc

SETTLED = (
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "expired",
    "suppressed",
    "uncertain",
    "cancelled",
)


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str
    summary: str
    detail: dict[str, object]

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "summary": self.summary,
            **self.detail,
        }


def timeline(engine: Engine, settings: Settings, customer: str) -> list[Event]:
    with engine.connect() as conn:
        cid = conn.execute(
            select(customers.c.id).where(customers.c.external_id == customer)
        ).scalar()
        if cid is None:
            raise NotFound(f"no customer {customer!r} in the ledger")
        numbers = list(
            conn.execute(
                select(customer_phones.c.e164).where(customer_phones.c.customer_id == cid)
            ).scalars()
        )
        loan_ext = dict(
            conn.execute(
                select(loans.c.id, loans.c.external_id).where(loans.c.customer_id == cid)
            ).all()
        )
        loan_ccy = dict(
            conn.execute(
                select(loans.c.id, loans.c.currency).where(loans.c.customer_id == cid)
            ).all()
        )
        events: list[Event] = []
        for m in conn.execute(select(outbox).where(outbox.c.customer_id == cid)).all():
            trail = json.loads(m.trail)
            what = f"{m.step} ({m.template}, variant {m.variant})"
            if m.control:
                events.append(
                    Event(
                        as_utc(m.created_at),
                        "held",
                        f"{what} held back as control",
                        {"trail": trail},
                    )
                )
                continue
            events.append(
                Event(
                    as_utc(m.created_at),
                    "planned",
                    f"{what} to {m.recipient}",
                    {"text": m.text, "trail": trail},
                )
            )
            if m.sent_at is not None:
                events.append(
                    Event(
                        as_utc(m.sent_at), "sent", f"{what} via {m.provider} ({m.provider_id})", {}
                    )
                )
            if m.status in SETTLED and m.status != "sent":
                events.append(
                    Event(
                        as_utc(m.updated_at),
                        m.status,
                        f"{what}: {m.status}" + (f" ({m.reason})" if m.reason else ""),
                        {},
                    )
                )
        paid = conn.execute(select(payments).where(payments.c.loan_id.in_(list(loan_ext)))).all()
        before: dict[int, list[str]] = {}
        for t in conn.execute(
            select(payment_touches).where(payment_touches.c.payment_id.in_([p.id for p in paid]))
        ):
            kind = "held back" if t.control else "sent"
            before.setdefault(t.payment_id, []).append(
                f"#{t.outbox_id} ({kind} {t.hours_before:.0f} h before)"
            )
        for p in paid:
            digits = 2 if loan_ccy.get(p.loan_id) != "JPY" else 0
            after = f"; after message {', '.join(before[p.id])}" if p.id in before else ""
            events.append(
                Event(
                    as_utc(p.paid_at),
                    "payment",
                    f"{format_minor(p.amount, digits)} on {loan_ext[p.loan_id]} ({p.external_id}){after}",
                    {"after_messages": sorted(int(x.split()[0][1:]) for x in before.get(p.id, []))},
                )
            )
        for r in conn.execute(select(replies).where(replies.c.sender.in_(numbers))).all():
            events.append(
                Event(
                    as_utc(r.received_at),
                    "reply",
                    f"{r.text!r} read as {r.intent} ({r.confidence:.0%}): {r.action}",
                    {"text": r.text, "intent": r.intent},
                )
            )
        for c in conn.execute(select(calls).where(calls.c.customer_id == cid)).all():
            said = f": {c.note}" if c.note else ""
            events.append(
                Event(as_utc(c.at), "call", f"call to {c.number} by {c.by}: {c.outcome}{said}",
                      {"number": c.number, "outcome": c.outcome, "by": c.by, "note": c.note})
            )  # fmt: skip
        for o in conn.execute(select(opt_outs).where(opt_outs.c.customer_id == cid)).all():
            events.append(
                Event(as_utc(o.created_at), "opt-out", f"{o.channel} opted out ({o.source})", {})
            )
        own_numbers = select(customer_phones.c.e164).where(customer_phones.c.customer_id == cid)
        for n in conn.execute(
            select(number_stops).where(number_stops.c.address.in_(own_numbers.scalar_subquery()))
        ).all():
            kind = "opt-out" if n.reason == "opt_out" else "wrong number"
            events.append(
                Event(
                    as_utc(n.created_at),
                    kind,
                    f"{n.channel} to {mask(n.address)} stopped: {n.reason} ({n.source})",
                    {},
                )
            )
        for p in conn.execute(select(promises).where(promises.c.customer_id == cid)).all():
            amount = f" {format_minor(p.amount, 2)}" if p.amount is not None else ""
            events.append(
                Event(as_utc(p.made_at), "promise", f"promised{amount} by {p.promised_date}", {})
            )
            if p.settled_at is not None:
                events.append(
                    Event(
                        as_utc(p.settled_at),
                        f"promise {p.status}",
                        f"promise of {p.promised_date} {p.status}",
                        {},
                    )
                )
    kinds = {
        "payment": 0,
        "reply": 1,
        "opt-out": 2,
        "promise": 3,
        "planned": 4,
        "held": 4,
        "sent": 5,
    }
    return sorted(events, key=lambda e: (e.at, kinds.get(e.kind, 6)))
