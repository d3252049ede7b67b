"""Calls an agent made and what came of them. A call is a contact: it counts against the contact
caps like a message, for the person and for the number (store/calls.history feeds the plan's
history and the send-time re-check alike), and lands on the timeline.

    log_call(engine, "C00000042", "+8613800138000", "no_answer", now, by="user:li")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select

from cuikuan.errors import InputError, NotFound
from cuikuan.services import audit
from cuikuan.store.schema import calls, customer_phones, customers

OUTCOMES = ("reached", "no_answer", "voicemail", "busy", "refused", "wrong_number", "promised")
MAX_NOTE = 2000


@dataclass(frozen=True)
class Call:
    id: int
    customer: str
    number: str
    at: datetime
    outcome: str

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "customer": self.customer, "number": self.number,
                "at": self.at.isoformat(), "outcome": self.outcome}  # fmt: skip


def log_call(
    engine: Engine,
    customer: str,
    number: str,
    outcome: str,
    at: datetime,
    *,
    by: str,
    note: str = "",
    now: datetime | None = None,
) -> Call:
    """Record a call to one of the customer's own numbers (by E.164 or its position, 1 first).
    A time in the future is refused: a call is logged once it was made."""
    if outcome not in OUTCOMES:
        raise InputError(f"outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}")
    if len(note) > MAX_NOTE:
        raise InputError(f"note: at most {MAX_NOTE} characters")
    now = now or at
    if at > now:
        raise InputError(f"at {at.isoformat()}: a call is logged after it was made, not before")
    with engine.begin() as conn:
        cid = conn.execute(
            select(customers.c.id).where(customers.c.external_id == customer)
        ).scalar()
        if cid is None:
            raise NotFound(f"no customer {customer!r} in the ledger")
        theirs = list(
            conn.execute(
                select(customer_phones.c.e164)
                .where(customer_phones.c.customer_id == cid)
                .order_by(customer_phones.c.position)
            ).scalars()
        )
        e164 = _pick(number, theirs, customer)
        call_id = conn.execute(
            insert(calls).values(customer_id=cid, number=e164, at=at, outcome=outcome, note=note,
                                 by=by, created_at=now).returning(calls.c.id)
        ).scalar_one()  # fmt: skip
        audit.record(conn, by, "call.log", f"customer:{customer}", None,
                     {"call": call_id, "number": e164, "outcome": outcome, "at": at}, now)  # fmt: skip
    return Call(call_id, customer, e164, at, outcome)


def _pick(number: str, theirs: list[str], customer: str) -> str:
    if number.isdigit() and len(number) <= 2:
        position = int(number)
        if not 1 <= position <= len(theirs):
            raise InputError(f"number {number}: {customer} has {len(theirs)} number(s)")
        return theirs[position - 1]
    if number not in theirs:
        raise InputError(f"number {number!r} is not one of {customer}'s numbers")
    return number
