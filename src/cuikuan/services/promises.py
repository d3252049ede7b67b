"""Promises: recorded from replies, settled from payments, and the plan's `promise_pending`.

pending = settle(engine, settings, today, write=True, now=now)   # customer ids whose promise pends
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from cuikuan.domain.promises import Paid, Promise, promise_state
from cuikuan.settings import Settings
from cuikuan.store.schema import loans, payments, promises
from cuikuan.store.settlements import record_settlements
from cuikuan.store.times import as_utc


def settle(
    engine: Engine,
    settings: Settings,
    today: date,
    *,
    write: bool,
    now: datetime,
    kept_only: bool = False,
) -> set[int]:
    """Decide every pending promise on `today`; return the customers whose promise still pends.
    With `write`, kept and broken promises are recorded as such; with `kept_only` (right after a
    payments import) only the kept ones, since breaking one is the plan's decision for its day."""
    zone = ZoneInfo(settings.defaults.timezone)
    grace = settings.plan.promise_grace_days
    with engine.connect() as conn:
        open_ = conn.execute(
            select(
                promises.c.id,
                promises.c.customer_id,
                promises.c.promised_date,
                promises.c.amount,
                promises.c.made_at,
            ).where(promises.c.status == "pending")
        ).all()
        if not open_:
            return set()
        ids = sorted({p.customer_id for p in open_})
        rows = [
            r
            for start in range(0, len(ids), 5_000)
            for r in conn.execute(
                select(loans.c.customer_id, payments.c.paid_at, payments.c.amount)
                .join(loans, loans.c.id == payments.c.loan_id)
                .where(loans.c.customer_id.in_(ids[start : start + 5_000]))
            ).all()
        ]
    paid: dict[int, list[Paid]] = defaultdict(list)
    for cid, at, amount in rows:
        moment = as_utc(at)
        paid[cid].append(Paid(moment, moment.astimezone(zone).date(), amount))
    pending, settled, events = set(), [], []
    for p in open_:
        made = as_utc(p.made_at)
        state = promise_state(
            Promise(made, p.promised_date, p.amount), paid.get(p.customer_id, []), today, grace
        )
        if state == "pending" or (kept_only and state == "broken"):
            pending.add(p.customer_id)
        else:
            settled.append((p.id, state))
            events.append((f"promise.{state}", p.customer_id,
                           {"promise": p.id, "promised_date": p.promised_date.isoformat(),
                            "amount_minor": p.amount, "state": state}))  # fmt: skip
    if write:
        record_settlements(engine, promises, settled, now, events)
    return pending
