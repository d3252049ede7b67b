"""Reading what the send-time re-check needs, for the claimed rows only, and applying it.

    keep, later, stop = recheck(engine, settings, rows, now)

The rules are domain.send_rules (the plan's own rules and caps); this module reads the facts of
the claimed rows' people, numbers and loans (never the whole book) and says which rows go now,
which wait for their window to open (re-timed) and which stop, and why.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, or_, select

from cuikuan.domain import policy, send_rules
from cuikuan.domain.decide import Caps, cap_reason_at
from cuikuan.domain.followup import OPT_OUT_CONFIRMATION
from cuikuan.services.arrangements import settle_arrangements
from cuikuan.services.strategy_file import load_strategy
from cuikuan.settings import Settings
from cuikuan.store import calls as call_history
from cuikuan.store import number_stops
from cuikuan.store.among import among
from cuikuan.store.bulk import Bulk
from cuikuan.store.loans_now import loans_at
from cuikuan.store.schema import (
    opt_outs,
    outbox,
    pauses,
    promises,
)
from cuikuan.store.times import as_utc

COUNTED = ("claimed", "sending", "sent", "delivered", "undelivered", "uncertain")


class _Person(NamedTuple):
    flags: str | None
    timezone: str | None
    email: str | None


@dataclass
class Verdicts:
    keep: list[dict[str, Any]]
    later: list[tuple[int, datetime, datetime, str]]  # (id, new earliest_at, latest_at, why)
    stop: list[tuple[int, str]]  # (id, reason)


def recheck(
    engine: Engine, settings: Settings, rows: list[dict[str, Any]], now: datetime
) -> Verdicts:
    contact = settings.contact_policy()
    zone = ZoneInfo(settings.defaults.timezone)
    today = now.astimezone(zone).date()
    steps = {
        s.id: send_rules.StepFacts(
            s.targets_overdue, s.days_to_due if isinstance(s.days_to_due, int) else None
        )
        for s in load_strategy(settings).steps
    }
    ids = sorted({r["customer_id"] for r in rows})
    loan_ids = sorted({r["loan_id"] for r in rows})
    with engine.connect() as conn:
        # The round's thousands of people and numbers through the driver, not as row objects.
        bulk = Bulk(conn)
        whose, their = bulk.among_sql("customer_id"), bulk.among_value(ids)
        people = {
            cid: _Person(flags, zone, email)
            for cid, flags, zone, email in bulk.fetch(
                f"SELECT id, flags, timezone, email FROM customers WHERE {bulk.among_sql('id')}",
                (their,),
            )
        }
        opted: dict[int, list[str]] = defaultdict(list)
        for cid, channel in conn.execute(
            select(opt_outs.c.customer_id, opt_outs.c.channel).where(
                among(opt_outs.c.customer_id, ids)
            )
        ):
            opted[cid].append(channel)
        paused = dict(
            conn.execute(
                select(pauses.c.customer_id, pauses.c.reason).where(
                    among(pauses.c.customer_id, ids), pauses.c.until >= today
                )
            ).all()
        )
        grace = timedelta(days=settings.plan.promise_grace_days)
        promised = {
            cid
            for cid, until in conn.execute(
                select(promises.c.customer_id, promises.c.promised_date).where(
                    among(promises.c.customer_id, ids), promises.c.status == "pending"
                )
            )
            if until + grace >= today
        }
        phones: dict[int, list[str]] = defaultdict(list)
        for cid, e164 in bulk.fetch(
            f"SELECT customer_id, e164 FROM customer_phones WHERE {whose}"
            " ORDER BY customer_id, position",
            (their,),
        ):
            phones[cid].append(e164)
        stops = number_stops.stopped(conn, {r["recipient"] for r in rows})
        caps = _caps(conn, rows, ids, now)
        asked = _dues_asked(rows, steps)
        loans_now = _loans_now(conn, loan_ids, rows, now, today, settings, asked)
    on_plan = settle_arrangements(engine, settings, today, write=False, now=now)
    verdicts = Verdicts([], [], [])
    zone_cache = policy.ZoneCache(settings.defaults.timezone, contact.declared_zone_only)
    for row in rows:
        person = people[row["customer_id"]]
        facts = send_rules.RowFacts(
            channel=row["channel"],
            step=row["step"],
            recipient=row["recipient"],
            plan_date=row["plan_date"],
            created_at=as_utc(row["created_at"]),
            flags=_flags(person.flags),
            opted_out_channels=opted.get(row["customer_id"], []),
            number_stop=stops.get((row["recipient"], row["channel"])),
            on_record=_on_record(row, person, phones),
            paused=paused.get(row["customer_id"]),
            promise_pending=row["customer_id"] in promised,
            zones=zone_cache.zones(person.timezone, phones.get(row["customer_id"], [])),
            step_facts=steps.get(row["step"]),
            loan=_with_plan(loans_now.get(row["loan_id"]), row, on_plan),
        )
        reason = send_rules.suppressed_reason(facts)
        if reason is None and row["step"] != OPT_OUT_CONFIRMATION:
            when, window = send_rules.window_decision(now, facts.zones, contact)
            if when == "later" and window is not None:
                why = "re-timed: the window in the borrower's zones opens later"
                verdicts.later.append((row["id"], window[0], window[1], why))
                continue
            if when == "closed":
                reason = "outside the contact window at send time"
        if reason is None and row["step"] != OPT_OUT_CONFIRMATION:
            cap = cap_reason_at(
                caps, row["customer_id"], row["recipient"], now, contact, facts.zones[0]
            )
            reason = f"{cap} (at send time)" if cap else None
        if reason:
            verdicts.stop.append((row["id"], reason))
            continue
        caps.add(
            row["customer_id"],
            row["recipient"],
            row["step"],
            row["plan_date"],
            row["idempotency_key"],
            now,
        )
        verdicts.keep.append(row)
    return verdicts


def _flags(text: str | None) -> list[str]:
    # Most people have none: no JSON reader a row for them.
    if not text or text == "[]":
        return []
    found: list[str] = json.loads(text)
    return found


def _on_record(row: dict[str, Any], person: _Person, phones: dict[int, list[str]]) -> bool:
    if row["step"] == OPT_OUT_CONFIRMATION:
        return True  # it answers the number that wrote, whoever's it is
    if row["channel"] == "sms":
        return row["recipient"] in phones.get(row["customer_id"], [])
    return bool(person.email) and row["recipient"] == person.email


def _caps(conn: Connection, rows: list[dict[str, Any]], ids: list[int], now: datetime) -> Caps:
    """Messages handed over (or being) to these people and numbers lately, each once by key."""
    recipients = sorted({r["recipient"] for r in rows})
    claimed = sorted({r["id"] for r in rows})
    since = now - timedelta(days=8)
    history = conn.execute(
        select(
            outbox.c.id, outbox.c.customer_id, outbox.c.recipient, outbox.c.step,
            outbox.c.plan_date, outbox.c.idempotency_key, outbox.c.sent_at, outbox.c.updated_at,
        ).where(
            # `status || ''`: not by the status index, which would read every message of the
            # last days; by these people's and numbers' own indexes instead.
            outbox.c.status.concat("").in_(COUNTED),
            or_(among(outbox.c.customer_id, ids), among(outbox.c.recipient, recipients)),
            or_(
                outbox.c.sent_at >= since,
                and_(outbox.c.sent_at.is_(None), outbox.c.updated_at >= since),
            ),
            # Not the rows being re-checked (claimed, so counted): a round's thousands of rows
            # read back as history only to be skipped were a tenth of the re-check.
            ~among(outbox.c.id, claimed),
        )
    ).all()  # fmt: skip
    caps = Caps(defaultdict(dict), defaultdict(dict), defaultdict(list), set())
    for h in history:
        moment = as_utc(h.sent_at or h.updated_at)
        caps.add(h.customer_id, h.recipient, h.step, h.plan_date, h.idempotency_key, moment)
    for c in call_history.recent(conn, since, ids, recipients):
        at = as_utc(c.at)
        if at <= now:
            caps.add(
                c.customer_id, c.number, call_history.STEP, at.date(), call_history.key(c.id), at
            )
    return caps


def _dues_asked(rows: list[dict[str, Any]], steps: dict[str, send_rules.StepFacts]) -> list[date]:
    """The due dates the rows' pre-due steps ask about (send_rules looks for them by date)."""
    asked = set()
    for r in rows:
        step = steps.get(r["step"])
        if step is not None and step.days_to_due is not None and not step.targets_overdue:
            asked.add(r["plan_date"] + timedelta(days=step.days_to_due))
    return sorted(asked)


def _loans_now(
    conn: Connection,
    loan_ids: list[int],
    rows: list[dict[str, Any]],
    now: datetime,
    today: date,
    settings: Settings,
    asked: list[date],
) -> dict[int, send_rules.LoanNow]:
    """The rows' loans as they stand at `now` (store.loans_now), and whether a payment came
    that the plan could not know of."""
    planned_at: dict[int, datetime] = {}
    for r in rows:
        at = as_utc(r["created_at"])
        planned_at[r["loan_id"]] = min(planned_at.get(r["loan_id"], at), at)
    found = loans_at(conn, loan_ids, now, today, settings.ledger.grace_days, asked)
    out: dict[int, send_rules.LoanNow] = {}
    for lid, state in found.items():
        since, snapshot = planned_at[lid], state.snapshot_at
        # A payment the plan could not know of: made after it, or made before and recorded after.
        paid_since = (snapshot is not None and since < snapshot <= now) or any(
            at <= now and (at > since or since < created <= now)
            for at, created, _ in state.payments
        )
        out[lid] = send_rules.LoanNow(state.instalments, state.position, paid_since)
    return out


def _with_plan(
    loan: send_rules.LoanNow | None,
    row: dict[str, Any],
    on_plan: dict[int, tuple[date, int]],
) -> send_rules.LoanNow | None:
    if loan is None:
        return None
    current = on_plan.get(row["loan_id"])
    trail = row.get("trail") or ""
    was_on_plan = "on a current instalment plan" in trail
    if current is not None:
        return send_rules.LoanNow(
            loan.instalments, loan.position, loan.paid_since_plan and not was_on_plan, current[0]
        )
    if was_on_plan:
        return send_rules.LoanNow(
            loan.instalments, loan.position, loan.paid_since_plan, None, plan_ended=True
        )
    return loan
