"""What a person does to a borrower or a number, each with its audit entry in the same
transaction: the API's writes and the console's buttons call these.

    flags = set_flag(engine, "C001", "dispute", True, "user:li", now)   # the flags after
    stop_number(engine, "+8613800138000", "sms", "user:li", now, source="console")
    lift_number(engine, "+8613800138000", "sms", "user:li", now)
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Engine, delete, select, update

from cuikuan.domain.policy import FLAG_SUPPRESSIONS
from cuikuan.errors import InputError, NotFound
from cuikuan.services import audit
from cuikuan.store import number_stops
from cuikuan.store.schema import customer_phones, customers, opt_outs

# The flags a person may set: those that stop reminders (domain.policy), but the one a reply
# the rules could not read sets and a task's closing lifts.
SETTABLE_FLAGS = sorted(f for f in FLAG_SUPPRESSIONS if f != "reply_unread")


def set_flag(
    engine: Engine, customer: str, flag: str, add: bool, actor: str, now: datetime
) -> list[str]:
    if flag not in SETTABLE_FLAGS:
        raise InputError(f"flag {flag!r}: expected one of {', '.join(SETTABLE_FLAGS)}")
    with engine.begin() as conn:
        row = conn.execute(
            select(customers.c.id, customers.c.flags).where(customers.c.external_id == customer)
        ).first()
        if row is None:
            raise NotFound(f"no customer {customer!r} in the ledger")
        before = json.loads(row.flags or "[]")
        after = sorted({*before, flag}) if add else [f for f in before if f != flag]
        if after != before:
            conn.execute(
                update(customers).where(customers.c.id == row.id)
                .values(flags=json.dumps(after), updated_at=now)
            )  # fmt: skip
            audit.record(conn, actor, "flag.set" if add else "flag.clear",
                         f"customer:{customer}", before, after, now)  # fmt: skip
    return after


def stop_number(
    engine: Engine, e164: str, channel: str, actor: str, now: datetime, source: str
) -> None:
    """Opt a number out (for everyone behind it, now or later); `source`: api, console..."""
    with engine.begin() as conn:
        before = number_stops.stopped(conn, [e164]).get((e164, channel))
        number_stops.stop(conn, e164, channel, "opt_out", source, now)
        audit.record(conn, actor, "optout.add", f"number:{e164}", before, {"channel": channel}, now)


def lift_number(engine: Engine, e164: str, channel: str, actor: str, now: datetime) -> None:
    """Lift a number's opt-out (the borrower asked), and the per-person opt-outs behind it."""
    with engine.begin() as conn:
        lifted = number_stops.lift(conn, e164, channel, "opt_out", now)
        people = select(customer_phones.c.customer_id).where(customer_phones.c.e164 == e164)
        conn.execute(
            delete(opt_outs).where(
                opt_outs.c.customer_id.in_(people), opt_outs.c.channel == channel
            )
        )
        audit.record(conn, actor, "optout.remove", f"number:{e164}",
                     {"channel": channel, "stops": lifted}, None, now)  # fmt: skip
