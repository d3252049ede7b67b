"""Dispatch due outbox rows through a channel, re-checking each just before it leaves.

    report = send_due(engine, settings, channel, now)

For every planned row whose window is open at `now`: claim it (planned -> sending, one row at a
time, so two senders never take the same row), then re-check what may have changed since the
plan: opted out since? flagged since? paid since? caps still hold (messages sent meanwhile to the
person or their number)? A row that fails a re-check becomes `suppressed` with the reason; a row
whose window closed unsent becomes `expired`; a row left `sending` beyond the lease (a sender
died between handing it over and recording it) becomes `uncertain` and is never resent.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Engine, and_, or_, select, update

from cuikuan.channels.base import Channel, OutgoingMessage, SendResult, Transient
from cuikuan.domain import policy
from cuikuan.domain.followup import OPT_OUT_CONFIRMATION
from cuikuan.services.portfolio import loan_positions
from cuikuan.services.strategy_file import load_strategy
from cuikuan.settings import Settings
from cuikuan.store.schema import customer_phones, customers, opt_outs, outbox, pauses
from cuikuan.store.times import as_utc

LEASE = timedelta(minutes=10)
COUNTED = ("sending", "sent", "delivered", "undelivered", "uncertain")


@dataclass
class SendReport:
    sent: int = 0
    expired: int = 0
    uncertain: int = 0
    failed: int = 0
    delivered: int = 0
    undelivered: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            **{k: v for k, v in self.__dict__.items() if k != "suppressed"},
            "suppressed": dict(self.suppressed),
        }


Resolver = Callable[[str], Channel]


def resolver(channel: Channel | Resolver) -> Resolver:
    """One channel for everything (tests, the sandbox), or a function from the outbox row's
    channel ("sms", "email") to the provider that sends it."""
    if hasattr(channel, "send"):
        single: Channel = channel  # type: ignore[assignment]
        return lambda _name: single
    return channel


def send_due(
    engine: Engine,
    settings: Settings,
    channel: Channel | Resolver,
    now: datetime,
    limit: int = 100_000,
) -> SendReport:
    report = SendReport()
    report.uncertain = _settle_stuck(engine, now)
    report.expired = _expire(engine, now)
    claimed = _claim(engine, now, limit)
    if claimed:
        keep = _recheck(engine, settings, claimed, now, report)
        _send(engine, channel, keep, now, report)
    _apply_receipts(engine, channel, now, report)
    return report


def _settle_stuck(engine: Engine, now: datetime) -> int:
    with engine.begin() as conn:
        return conn.execute(
            update(outbox)
            .where(outbox.c.status == "sending", outbox.c.updated_at < now - LEASE)
            .values(
                status="uncertain",
                reason="handed to the channel but not recorded: resolve by hand, never resent",
                updated_at=now,
            )
        ).rowcount


def _expire(engine: Engine, now: datetime) -> int:
    with engine.begin() as conn:
        return conn.execute(
            update(outbox)
            .where(outbox.c.status == "planned", outbox.c.latest_at < now)
            .values(
                status="expired",
                reason="the contact window closed before it was sent",
                updated_at=now,
            )
        ).rowcount


def _claim(engine: Engine, now: datetime, limit: int) -> list[dict[str, Any]]:
    with engine.begin() as conn:
        due = conn.execute(
            select(outbox)
            .where(
                outbox.c.status == "planned", outbox.c.earliest_at <= now, outbox.c.latest_at >= now
            )
            .order_by(outbox.c.earliest_at, outbox.c.id)
            .limit(limit)
        ).all()
        claimed = []
        for row in due:
            taken = conn.execute(
                update(outbox)
                .where(outbox.c.id == row.id, outbox.c.status == "planned")
                .values(status="sending", updated_at=now)
            ).rowcount
            if taken == 1:
                claimed.append(dict(row._mapping))
    return claimed


def _recheck(
    engine: Engine,
    settings: Settings,
    rows: list[dict[str, Any]],
    now: datetime,
    report: SendReport,
) -> list[dict[str, Any]]:
    contact = settings.policy.contact_policy()
    steps = {s.id: s for s in load_strategy(settings).steps}
    ids = sorted({r["customer_id"] for r in rows})
    with engine.connect() as conn:
        people = {
            r.id: r
            for r in conn.execute(
                select(customers.c.id, customers.c.flags, customers.c.timezone).where(
                    customers.c.id.in_(ids)
                )
            )
        }
        opted = {
            (r.customer_id, r.channel)
            for r in conn.execute(
                select(opt_outs.c.customer_id, opt_outs.c.channel).where(
                    opt_outs.c.customer_id.in_(ids)
                )
            )
        }
        paused = dict(
            conn.execute(
                select(pauses.c.customer_id, pauses.c.reason).where(
                    pauses.c.customer_id.in_(ids), pauses.c.until >= _local_day(now, settings)
                )
            ).all()
        )
        phones: dict[int, list[str]] = {}
        for cid, e164 in conn.execute(
            select(customer_phones.c.customer_id, customer_phones.c.e164).where(
                customer_phones.c.customer_id.in_(ids)
            )
        ):
            phones.setdefault(cid, []).append(e164)
        recipients = sorted({r["recipient"] for r in rows})
        since = now - timedelta(days=8)
        history = conn.execute(
            select(
                outbox.c.id,
                outbox.c.customer_id,
                outbox.c.recipient,
                outbox.c.sent_at,
                outbox.c.updated_at,
                outbox.c.status,
            ).where(
                outbox.c.status.in_(COUNTED),
                or_(outbox.c.customer_id.in_(ids), outbox.c.recipient.in_(recipients)),
                or_(
                    outbox.c.sent_at >= since,
                    and_(outbox.c.sent_at.is_(None), outbox.c.updated_at >= since),
                ),
            )
        ).all()
    positions = {
        r["loan_id"]: r
        for r in loan_positions(engine, _local_day(now, settings), settings).iter_rows(named=True)
    }
    keep, stop = [], []
    claimed_ids = {r["id"] for r in rows}
    sent_by: dict[object, list[datetime]] = {}
    for h in history:
        if h.id in claimed_ids and h.status == "sending":
            continue
        moment = as_utc(h.sent_at or h.updated_at)
        sent_by.setdefault(("c", h.customer_id), []).append(moment)
        sent_by.setdefault(("n", h.recipient), []).append(moment)
    for row in sorted(rows, key=lambda r: r["earliest_at"]):
        person = people[row["customer_id"]]
        reason = _why_stop(row, person, opted, positions, steps)
        if reason is None and row["customer_id"] in paused:
            reason = f"paused since planning ({paused[row['customer_id']]})"
        zones = policy.candidate_zones(
            person.timezone, phones.get(row["customer_id"], []), settings.defaults.timezone
        )
        if reason is None and not policy.inside_window(now, zones, contact):
            reason = "outside the contact window at send time"
        if reason is None and row["step"] != OPT_OUT_CONFIRMATION:
            earlier = sorted(
                sent_by.get(("c", row["customer_id"]), [])
                + sent_by.get(("n", row["recipient"]), [])
            )
            cap = policy.cap_reason(earlier, now, contact, zones[0])
            reason = f"{cap} (at send time)" if cap else None
        if reason:
            stop.append((row["id"], reason))
            report.suppressed[reason.split(":")[0] if reason.startswith("cap") else reason] += 1
            continue
        sent_by.setdefault(("c", row["customer_id"]), []).append(now)
        sent_by.setdefault(("n", row["recipient"]), []).append(now)
        keep.append(row)
    if stop:
        with engine.begin() as conn:
            for oid, reason in stop:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == oid)
                    .values(status="suppressed", reason=reason, updated_at=now)
                )
    return keep


def _why_stop(
    row: dict[str, Any],
    person: Any,
    opted: set[tuple[int, str]],
    positions: dict[int, dict[str, Any]],
    steps: dict[str, Any],
) -> str | None:
    if row["step"] == OPT_OUT_CONFIRMATION:
        # The one message allowed after an opt-out; only a flag (deceased, complaint...) stops it.
        flagged = policy.suppression_reasons(
            json.loads(person.flags or "[]"), [], row["channel"], False
        )
        return f"suppressed since planning: {flagged[0]}" if flagged else None
    if (row["customer_id"], row["channel"]) in opted:
        return "opted out since planning"
    reasons = policy.suppression_reasons(
        json.loads(person.flags or "[]"), [], row["channel"], False
    )
    if reasons:
        return f"suppressed since planning: {reasons[0]}"
    pos = positions.get(row["loan_id"])
    if pos is None or pos["paid_off"]:
        return "paid in full since planning"
    step = steps.get(row["step"])
    if step is not None and step.targets_overdue and pos["overdue_amount"] == 0:
        return "paid since planning"
    if step is not None and step.days_to_due is not None and isinstance(step.days_to_due, int):
        due = row["plan_date"] + timedelta(days=step.days_to_due)
        if pos["next_due_date"] is None or pos["next_due_date"] > due:
            return "paid since planning"
    return None


def _send(
    engine: Engine,
    channel: Channel | Resolver,
    rows: list[dict[str, Any]],
    now: datetime,
    report: SendReport,
) -> None:
    """Hand each row to the provider of its channel, one batch per channel, and record results."""
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_channel.setdefault(r["channel"], []).append(r)
    resolve = resolver(channel)
    for name, group in by_channel.items():
        provider = resolve(name)
        batch = [OutgoingMessage(r["id"], r["channel"], r["recipient"], r["text"]) for r in group]
        _record(engine, provider.name, provider.send(batch, now), now, report)


def _record(
    engine: Engine, provider: str, results: list[SendResult], now: datetime, report: SendReport
) -> None:
    with engine.begin() as conn:
        for result in results:
            if result.error is None:
                values: dict[str, object] = {
                    "status": "sent",
                    "provider": provider,
                    "provider_id": result.provider_id,
                    "sent_at": now,
                }
                report.sent += 1
            elif isinstance(result.error, Transient):
                values = {"status": "planned", "reason": f"retry: {result.error}"}
            else:
                values = {
                    "status": "failed",
                    "reason": f"{type(result.error).__name__}: {result.error}",
                }
                report.failed += 1
            conn.execute(
                update(outbox)
                .where(outbox.c.id == result.outbox_id)
                .values(updated_at=now, **values)
            )


def collect_receipts(engine: Engine, channel: Channel | Resolver, now: datetime) -> SendReport:
    """Apply the receipts that have arrived, sending nothing."""
    report = SendReport()
    _apply_receipts(engine, channel, now, report)
    return report


def _apply_receipts(
    engine: Engine, channel: Channel | Resolver, now: datetime, report: SendReport
) -> None:
    resolve = resolver(channel)
    providers = {id(p): p for p in (resolve("sms"), resolve("email"))}
    receipts = [r for p in providers.values() for r in p.receipts(now)]
    if not receipts:
        return
    with engine.begin() as conn:
        for receipt in receipts:
            status = "delivered" if receipt.delivered else "undelivered"
            conn.execute(
                update(outbox)
                .where(outbox.c.provider_id == receipt.provider_id, outbox.c.status == "sent")
                .values(
                    status=status,
                    reason=None if receipt.delivered else f"receipt: {receipt.detail}",
                    updated_at=now,
                )
            )
            if receipt.delivered:
                report.delivered += 1
            else:
                report.undelivered += 1


def _local_day(now: datetime, settings: Settings) -> date:
    from zoneinfo import ZoneInfo

    return now.astimezone(ZoneInfo(settings.defaults.timezone)).date()


def outbox_counts(engine: Engine) -> pl.DataFrame:
    from sqlalchemy import func

    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.plan_date, outbox.c.status, func.count()).group_by(
                outbox.c.plan_date, outbox.c.status
            )
        ).all()
    return pl.DataFrame(
        [tuple(r) for r in rows],
        schema={"plan_date": pl.Date, "status": pl.String, "count": pl.Int64},
        orient="row",
    ).sort("plan_date", "status")
