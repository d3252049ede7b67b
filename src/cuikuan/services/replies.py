"""Replies in: read them, record them, and act on the ones that change who may be contacted.

    result = receive_reply(engine, settings, "+8613800138000", "退订", at=now, dry_run=False)

Acting now: an opt-out or a wrong number stops SMS to the number (for everyone behind it, now or
added later; their other numbers keep their own state); an opt-in lifts the opt-out; a complaint
or a death flags the customers, so automated messages stop; a dispute flags them until a person
closes the dispute task. These safety meanings act wherever they appear in a reply, whatever
else it says; the reply still goes to a person.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cuikuan.domain.followup import READ_REPLY, followup
from cuikuan.domain.phones import normalise_phone
from cuikuan.domain.replies import Reading, Rule, classify, parse_rules
from cuikuan.errors import InputError
from cuikuan.services.confirmations import queue_confirmation
from cuikuan.settings import Settings
from cuikuan.store import number_stops
from cuikuan.store.events import emit, emit_many
from cuikuan.store.schema import (
    customer_phones,
    customers,
    opt_outs,
    pauses,
    promises,
    replies,
    tasks,
)

FLAG_FOR = {"complaint": "complaint", "deceased": "deceased", "dispute": "dispute"}


@dataclass(frozen=True)
class ReplyResult:
    sender: str
    reading: Reading
    customers: list[str]
    done: list[str]
    duplicate: bool = False  # the same delivery came before: nothing was done again

    def as_dict(self) -> dict[str, object]:
        r = self.reading
        return {
            "sender": self.sender, "intent": r.intent, "confidence": r.confidence,
            "date": r.date.isoformat() if r.date else None, "amount": str(r.amount) if r.amount is not None else None,
            "needs_person": r.needs_person, "action": r.action, "customers": self.customers, "done": self.done,
            "duplicate": self.duplicate,
        }  # fmt: skip


def reply_rules() -> list[Rule]:
    text = resources.files("cuikuan.resources").joinpath("replies.toml").read_text("utf-8")
    return parse_rules(tomllib.loads(text))


def receive_reply(
    engine: Engine,
    settings: Settings,
    sender: str,
    text: str,
    at: datetime,
    *,
    dry_run: bool = False,
    source: str = "manual",
    message_id: str | None = None,
) -> ReplyResult:
    """Read a reply and act on it. A delivery seen before is not acted on again (`duplicate`):
    by the provider's `message_id` where it gives one, else (a gateway's inbound message with
    no id, such as SMPP's deliver_sm, sent again when our answer was lost) the same text from
    the same number through the same source within `SAME_DELIVERY`. Replies typed by a person
    (source "manual") are always new."""
    try:
        e164, _ = normalise_phone(sender, settings.defaults.region)
    except ValueError as exc:
        raise InputError(f"{sender!r}: {exc}") from None
    today = at.astimezone(ZoneInfo(settings.defaults.timezone)).date()
    reading = classify(text, today, reply_rules())
    with engine.connect() as conn:
        people = conn.execute(
            select(customers.c.id, customers.c.external_id, customers.c.flags)
            .join(customer_phones, customer_phones.c.customer_id == customers.c.id)
            .where(customer_phones.c.e164 == e164)
        ).all()
    ids = [p.external_id for p in people]
    if dry_run:
        return ReplyResult(e164, reading, ids, [])
    try:
        reply_id = _store(engine, reading, at, e164, source, text, ids, message_id)
    except IntegrityError:  # the same message id, stored by a delivery at the same moment
        reply_id = None
    if reply_id is None:
        return ReplyResult(e164, reading, ids, [], duplicate=True)
    done = _act(engine, reading, people, at, settings, e164)
    done += _follow_up(engine, reading, people, at, reply_id, text, settings)
    result = ReplyResult(e164, reading, ids, done)
    with engine.begin() as conn:
        if done:
            conn.execute(
                update(replies).where(replies.c.id == reply_id).values(action="; ".join(done))
            )
        event = {"reply": reply_id, "text": text, "source": source, **result.as_dict()}
        emit_many(conn, "reply.received", [(p.id, event) for p in people] or [(None, event)], at)
    return result


def receive_unplaced(
    engine: Engine,
    settings: Settings,
    sender: str,
    ton: int | None,
    text: str,
    at: datetime,
    *,
    source: str,
    message_id: str | None = None,
) -> ReplyResult:
    """A reply from a number that cannot be placed with certainty (a national number of no
    known region, a name, a malformed address): stored as it came and given to a person, who
    finds the borrower. Nothing is acted on automatically, an opt-out included: acting on a
    guessed number could stop the wrong person, or miss the right one silently."""
    today = at.astimezone(ZoneInfo(settings.defaults.timezone)).date()
    reading = classify(text, today, reply_rules())
    try:
        reply_id = _store(engine, reading, at, sender, source, text, [], message_id)
    except IntegrityError:
        reply_id = None
    if reply_id is None:
        return ReplyResult(sender, reading, [], [], duplicate=True)
    urgent = bool(reading.safety) or reading.intent == "opt_out"
    summary = (
        f"reply from {sender!r} (type of number {ton if ton is not None else '?'}), which could "
        f"not be placed: find the borrower by hand; {reading.intent} reply {text[:500]!r}"
    )
    with engine.begin() as conn:
        task_id = conn.execute(
            insert(tasks).values(
                customer_id=None, kind=READ_REPLY.task, priority=1 if urgent else READ_REPLY.priority,
                state="open", due_at=at + READ_REPLY.sla, reply_id=reply_id, summary=summary,
                notes="[]", created_at=at, updated_at=at,
            ).returning(tasks.c.id)
        ).scalar_one()  # fmt: skip
        emit(conn, "task.created", None, {"task": task_id, "kind": READ_REPLY.task, "reply": reply_id,
                                          "priority": 1 if urgent else READ_REPLY.priority,
                                          "due_at": (at + READ_REPLY.sla).isoformat()}, at)  # fmt: skip
        done = [f"unplaced sender: task {READ_REPLY.task} for a person"]
        conn.execute(update(replies).where(replies.c.id == reply_id).values(action=done[0]))
        event = {"reply": reply_id, "text": text, "source": source, "sender": sender,
                 "intent": reading.intent, "customers": [], "done": done, "unplaced": True}  # fmt: skip
        emit(conn, "reply.received", None, event, at)
    return ReplyResult(sender, reading, [], done)


def _store(
    engine: Engine,
    reading: Reading,
    at: datetime,
    sender: str,
    source: str,
    text: str,
    ids: list[str],
    message_id: str | None,
) -> int | None:
    """The reply stored, its id; None when this delivery was stored before."""
    with engine.begin() as conn:
        if _seen(conn, source, message_id, sender, text, at):
            return None
        stored: int = conn.execute(
            insert(replies)
            .values(
                received_at=at, sender=sender, channel="sms", source=source, text=text, intent=reading.intent,
                confidence=reading.confidence, promised_date=reading.date,
                promised_amount=str(reading.amount) if reading.amount is not None else None,
                customer_ids=json.dumps(ids), action=reading.action, created_at=at,
                message_id=message_id,
            )
            .returning(replies.c.id)
        ).scalar_one()  # fmt: skip
    return stored


SAME_DELIVERY = timedelta(minutes=10)


def _seen(
    conn: Connection, source: str, message_id: str | None, sender: str, text: str, at: datetime
) -> bool:
    r = replies.c
    if message_id is not None:
        found = select(r.id).where(r.source == source, r.message_id == message_id)
    elif source == "manual":
        return False
    else:
        found = select(r.id).where(
            r.source == source, r.sender == sender, r.text == text,
            r.received_at >= at - SAME_DELIVERY, r.received_at <= at + SAME_DELIVERY,
        )  # fmt: skip
    return conn.execute(found.limit(1)).first() is not None


def _follow_up(
    engine: Engine,
    reading: Reading,
    people: Sequence[Row[Any, Any, Any]],
    at: datetime,
    reply_id: int,
    text: str,
    settings: Settings,
) -> list[str]:
    """The pause and the task the reading calls for (domain.followup): a reply with a safety
    meaning gets that meaning's task (a complaint's is priority 1) even when it says more."""
    plan = followup(
        reading.strictest or reading.intent,
        reading.needs_person and reading.strictest is None,
        reading.intent == "promise_to_pay" and reading.date is None,
    )
    if plan.task is None and reading.needs_person:
        # A stop that says more ("paid last week, stop texting") still goes to a person.
        plan = replace(plan, task=READ_REPLY.task, priority=READ_REPLY.priority, sla=READ_REPLY.sla)
    done: list[str] = []
    today = at.astimezone(ZoneInfo(settings.defaults.timezone)).date()
    targets: list[tuple[int | None, str]] = [(p.id, p.external_id) for p in people] or [
        (None, "unknown number")
    ]
    with engine.begin() as conn:
        for pid, ext in targets:
            if plan.pause_days and pid is not None:
                until = today + timedelta(days=plan.pause_days)
                conn.execute(
                    insert(pauses).values(
                        customer_id=pid, until=until, reason=reading.intent, created_at=at
                    )
                )
                done.append(f"{ext}: reminders paused until {until} ({reading.intent})")
            if plan.task is not None:
                task_id = conn.execute(
                    insert(tasks).values(
                        customer_id=pid, kind=plan.task, priority=plan.priority, state="open", due_at=at + plan.sla,
                        reply_id=reply_id, summary=f"{ext}: {'+'.join(reading.found) or reading.intent} reply {text[:500]!r}",
                        notes="[]", created_at=at, updated_at=at,
                    ).returning(tasks.c.id)
                ).scalar_one()  # fmt: skip
                emit(conn, "task.created", pid, {"task": task_id, "kind": plan.task, "priority": plan.priority,
                                                 "due_at": (at + plan.sla).isoformat(), "reply": reply_id}, at)  # fmt: skip
                done.append(f"{ext}: task {plan.task} (priority {plan.priority})")
    return done


def _act(
    engine: Engine,
    reading: Reading,
    people: Sequence[Row[Any, Any, Any]],
    at: datetime,
    settings: Settings,
    sender: str,
) -> list[str]:
    """Every safety meaning at once, whatever else the reply says and however sure the reading
    is; the other intents only when the reading is sure."""
    acts = list(reading.safety)
    if not reading.needs_person and reading.intent not in acts:
        acts.append(reading.intent)
    if (
        "promise_to_pay" in reading.found
        and reading.date is not None
        and "promise_to_pay" not in acts
    ):
        acts.append("promise_to_pay")  # a clear date is recorded whatever else the reply says
    done: list[str] = []
    if reading.unread:
        acts.append("unread")
    with engine.begin() as conn:
        for act in acts:
            done += _number_act(conn, act, sender, at, people)
            for person in people:
                done += _person_act(conn, act, reading, person, at, len(people))
        if "opt_out" in acts and settings.policy.confirms_opt_out and people:
            why_not = queue_confirmation(conn, settings, people[0].id, sender, at)
            done.append(
                f"{sender}: confirmation queued" if why_not is None else f"{sender}: no confirmation ({why_not})"
            )  # fmt: skip
    return done


def _number_act(
    conn: Connection, act: str, sender: str, at: datetime, people: Sequence[Row[Any, Any, Any]]
) -> list[str]:
    """Stops that belong to the number: whoever is behind it now or later."""
    if act == "opt_out":
        number_stops.stop(conn, sender, "sms", "opt_out", "reply", at)
        return [f"{sender}: SMS opted out (the number, for everyone behind it now or later)"]
    if act == "opt_in":
        number_stops.lift(conn, sender, "sms", "opt_out", at)
        ids = [p.id for p in people]
        if ids:
            conn.execute(
                delete(opt_outs).where(opt_outs.c.customer_id.in_(ids), opt_outs.c.channel == "sms")
            )
        return [f"{sender}: SMS restored"]
    if act == "wrong_number":
        number_stops.stop(conn, sender, "sms", "wrong_number", "reply", at)
        return [f"{sender}: wrong number, nothing more is sent there (other numbers unchanged)"]
    if act == "unread":
        # Words the rules cannot read may hold a stop: nothing more goes to this number until a
        # person has read the reply (closing its task lifts the hold).
        number_stops.stop(conn, sender, "sms", "unread_reply", "reply", at)
        return [f"{sender}: SMS held until a person reads the reply"]
    return []


def _person_act(
    conn: Connection,
    act: str,
    reading: Reading,
    person: Row[Any, Any, Any],
    at: datetime,
    behind: int,
) -> list[str]:
    pid, ext = person.id, person.external_id
    if act == "promise_to_pay" and reading.date is not None and behind == 1:
        amount = int(reading.amount.scaleb(2)) if reading.amount is not None else None
        conn.execute(
            insert(promises).values(
                customer_id=pid, promised_date=reading.date, amount=amount, made_at=at,
                source="reply", status="pending",
            )
        )  # fmt: skip
        emit(conn, "promise.made", pid, {"promised_date": reading.date.isoformat(),
                                        "amount_minor": amount, "source": "reply"}, at)  # fmt: skip
        return [f"{ext}: promise to pay on {reading.date}, reminders pause until then"]
    if act in FLAG_FOR:
        flag = FLAG_FOR[act]
        current = json.loads(
            conn.execute(select(customers.c.flags).where(customers.c.id == pid)).scalar_one()
            or "[]"
        )
        if flag not in current:
            conn.execute(
                update(customers)
                .where(customers.c.id == pid)
                .values(flags=json.dumps([*current, flag]), updated_at=at)
            )
        until = " until a person resolves it" if flag == "dispute" else ""
        return [f"{ext}: flagged {flag}, automated messages stop{until}"]
    return []
