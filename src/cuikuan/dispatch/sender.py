"""Dispatch due outbox rows through a channel, re-checking each just before it leaves.

    report = send_due(engine, settings, channel, now)

For every planned row whose window is open at `now`: claim it (planned -> claimed in one
statement; on PostgreSQL with SKIP LOCKED, so several dispatchers never take the same row), then
re-check what may have changed since the
plan: opted out since? flagged since? paid since? caps still hold (messages sent meanwhile to the
person or their number)? A row that fails a re-check becomes `suppressed` with the reason; a row
whose window closed unsent becomes `expired`. Rows go to the channel in chunks: a chunk is
marked `sending` (committed) just before it is handed over and recorded just after, so a
dispatcher killed at any moment leaves at most one chunk `sending`; after the lease those become
`uncertain` and are never resent, while rows still only `claimed` go back to `planned`.
Transient failures are retried with growing delays, up to a limit and only inside the window;
an auth or config failure stops that channel for the run and its rows wait, untouched; a
provider that cannot be reached is down (provider_states): its rows go to the route's fallback
or wait inside their windows, no attempt spent, and so do a provider's rows while an admin holds
it (services/providers). What the providers' binds heard (receipts,
replies) is applied after every round. A message sent to a provider that sends receipts and
still without one an hour after its validity period ended becomes `expired`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, bindparam, func, select, update

from cuikuan.channels.base import (
    AuthError,
    Channel,
    OutgoingMessage,
    Permanent,
    SendResult,
    Transient,
    Uncertain,
    Unreachable,
)
from cuikuan.dispatch.garbage import fewer_collections
from cuikuan.dispatch.inbound import hear
from cuikuan.dispatch.receipts import record_parts
from cuikuan.dispatch.recheck import recheck
from cuikuan.domain import routing
from cuikuan.domain.dates import local_day
from cuikuan.domain.sms import is_gsm7
from cuikuan.settings import Channels, Settings
from cuikuan.store import provider_states
from cuikuan.store.among import among
from cuikuan.store.bulk import Bulk
from cuikuan.store.events import emit_many
from cuikuan.store.schema import outbox
from cuikuan.store.times import as_utc

LEASE = timedelta(minutes=10)
COUNTED = ("claimed", "sending", "sent", "delivered", "undelivered", "uncertain")
ROUND = 5_000

log = logging.getLogger(__name__)


@dataclass
class SendReport:
    sent: int = 0
    expired: int = 0
    uncertain: int = 0
    failed: int = 0
    delivered: int = 0
    undelivered: int = 0
    receipt_expired: int = 0
    retried: int = 0
    released: int = 0
    stopped_channels: dict[str, str] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)  # providers that could not be reached
    waiting: int = 0  # rows a stopped or down provider could not take: planned again for later
    no_receipt: int = 0  # sent, no receipt by the end of the validity period: expired
    replies: int = 0
    unplaced: int = 0  # replies from numbers that could not be placed: tasks for a person
    suppressed: Counter[str] = field(default_factory=Counter)
    up: set[str] = field(default_factory=set)  # providers that took a message in this run

    def add_receipts(self, moved: Counter[str]) -> None:
        """Count messages that receipts moved (record_receipts' answer)."""
        self.delivered += moved["delivered"]
        self.undelivered += moved["undelivered"]
        self.receipt_expired += moved["expired"]

    @property
    def settled(self) -> int:
        return self.delivered + self.undelivered + self.receipt_expired

    def as_dict(self) -> dict[str, object]:
        return {
            **{k: v for k, v in self.__dict__.items() if k not in ("suppressed", "up")},
            "suppressed": dict(self.suppressed),
        }


Resolver = Callable[[str], Channel]
Pace = Callable[[str, int, float], None]  # (provider, message parts, its tps): wait for a turn


class Providers:
    """Provider objects by name. Given one Channel, it sends everything and routing is off
    (tests, the simulated month); given a Resolver (provider name -> Channel, as the CLI does),
    every row is routed by [channels] (default, routes, fallback) and providers are made once."""

    def __init__(self, channel: Channel | Resolver, rules: Channels) -> None:
        self.single: Channel | None = channel if hasattr(channel, "send") else None  # type: ignore[assignment]
        self.make: Resolver | None = None if self.single else channel  # type: ignore[assignment]
        self.rules = rules
        self.route_rules = [r.rule() for r in rules.routes]
        self.made: dict[str, Channel] = {}

    def get(self, name: str) -> Channel:
        if self.single is not None:
            return self.single
        if name not in self.made:
            assert self.make is not None
            self.made[name] = self.make(name)
        return self.made[name]

    def route(self, row: dict[str, Any]) -> tuple[str, ...]:
        if self.single is not None:
            return (self.single.name,)
        defaults = {"sms": self.rules.sms, "email": self.rules.email}
        fallbacks = {"sms": self.rules.sms_fallback, "email": self.rules.email_fallback}
        return routing.providers_for(
            row["channel"], row["recipient"], row["step"], self.route_rules, defaults, fallbacks
        )

    def listening(self) -> list[Channel]:
        """Providers whose receipts to collect: those used in this run, and the SMS default."""
        if self.single is not None:
            return [self.single]
        self.get(self.rules.sms)
        return list(self.made.values())


def send_due(
    engine: Engine,
    settings: Settings,
    channel: Channel | Resolver,
    now: datetime,
    limit: int = 100_000,
    progress: Callable[[SendReport], None] | None = None,
    *,
    shard: tuple[int, int] | None = None,
    pace: Pace | None = None,
) -> SendReport:
    """Dispatch what is due at `now`, at most `limit` rows; `progress` sees the report after
    each round (the CLI shows it on a terminal). With `shard` (k, n) only the rows whose id is k
    modulo n (several workers share the day); `pace(provider, parts, tps)` is called before each
    chunk is handed over and waits for the chunk's turn on the provider's shared line."""
    with fewer_collections():
        return _send_due(engine, settings, channel, now, limit, progress, shard, pace)


def _send_due(
    engine: Engine,
    settings: Settings,
    channel: Channel | Resolver,
    now: datetime,
    limit: int,
    progress: Callable[[SendReport], None] | None,
    shard: tuple[int, int] | None,
    pace: Pace | None,
) -> SendReport:
    report = SendReport()
    providers = Providers(channel, settings.channels)
    with engine.connect() as conn:
        # A held provider takes nothing in this run: its rows go to the fallback, or wait.
        for name, why in provider_states.held(conn).items():
            report.stopped_channels[name] = f"held by an admin: {why}"
    report.uncertain, report.released = _settle_stuck(engine, now)
    report.expired = _expire(engine, now)
    report.no_receipt = _no_receipt(engine, providers, now)
    # First what the binds heard since the last run: a stop that came in is applied before any
    # row is re-checked.
    _apply_receipts(engine, settings, providers, now, report)
    remaining = limit
    # In rounds: every IN list of the re-check stays far below the databases' bound-variable
    # limits (SQLite's 32,766), and a crash leaves fewer rows claimed.
    while remaining > 0:
        claimed = _claim(engine, now, min(ROUND, remaining), shard)
        if not claimed:
            break
        remaining -= len(claimed)
        keep = _recheck(engine, settings, claimed, now, report)
        log.info("round claimed=%d to_send=%d", len(claimed), len(keep))
        _send(engine, providers, keep, now, report, settings.channels, pace)
        # Promptly, not only at the end: what the binds heard is read while the run goes on.
        _apply_receipts(engine, settings, providers, now, report)
        if progress is not None:
            progress(report)
    _apply_receipts(engine, settings, providers, now, report)
    log.info(
        "dispatch done sent=%d suppressed=%d expired=%d uncertain=%d failed=%d retried=%d "
        "waiting=%d stopped=%s",
        report.sent, sum(report.suppressed.values()), report.expired, report.uncertain,
        report.failed, report.retried, report.waiting, ",".join(report.stopped_channels) or "-",
    )  # fmt: skip
    return report


def _settle_stuck(engine: Engine, now: datetime) -> tuple[int, int]:
    """(uncertain, released): rows handed over but never recorded, and rows claimed by a
    dispatcher that died before handing them over (safe to plan again)."""
    with engine.begin() as conn:
        uncertain = conn.execute(
            update(outbox)
            .where(outbox.c.status == "sending", outbox.c.updated_at < now - LEASE)
            .values(
                status="uncertain",
                reason="handed to the channel but not recorded: resolve by hand, never resent",
                updated_at=now,
            )
        ).rowcount
        released = conn.execute(
            update(outbox)
            .where(outbox.c.status == "claimed", outbox.c.updated_at < now - LEASE)
            .values(status="planned", reason="claim lapsed before hand-over", updated_at=now)
        ).rowcount
    return uncertain, released


# Receipts may trail the end of a message's validity period by this much.
RECEIPT_GRACE = timedelta(hours=1)


def _no_receipt(engine: Engine, providers: Providers, now: datetime) -> int:
    """Messages still `sent` to a provider that sends receipts, an hour past the end of their
    validity period (their window): the SMSC has dropped them, so they are expired, not sent
    for ever."""
    names = [p.name for p in providers.listening() if getattr(p, "expects_receipts", False)]
    if not names:
        return 0
    with engine.begin() as conn:
        return conn.execute(
            update(outbox)
            .where(
                outbox.c.status == "sent",
                outbox.c.provider.in_(names),
                outbox.c.latest_at < now - RECEIPT_GRACE,
            )
            .values(
                status="expired",
                reason="no delivery receipt by the end of its validity period",
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


def _claim(
    engine: Engine, now: datetime, limit: int, shard: tuple[int, int] | None = None
) -> list[dict[str, Any]]:
    due = (
        select(outbox.c.id)
        .where(outbox.c.status == "planned", outbox.c.earliest_at <= now, outbox.c.latest_at >= now)
        .order_by(outbox.c.earliest_at, outbox.c.id)
        .limit(limit)
    )
    if shard is not None:
        due = due.where(outbox.c.id % shard[1] == shard[0])
    if engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    with engine.begin() as conn:
        # The ids first, then the update: as a subquery of the UPDATE, PostgreSQL may run a
        # LIMIT ... SKIP LOCKED select more than once and claim more than `limit` rows.
        ids = conn.execute(due).scalars().all()
        if not ids:
            return []
        bulk = Bulk(conn)
        chosen, param = bulk.among("id", ids)
        # Through the driver: Row objects for thousands of claimed rows were a tenth of the run.
        rows = bulk.records(outbox, bulk.fetch(
            f"UPDATE outbox SET status = 'claimed', updated_at = {bulk.ph}"
            f" WHERE {chosen} AND status = 'planned'"
            f" RETURNING {', '.join(c.name for c in outbox.c)}",
            (bulk.at(now), param),
        ))  # fmt: skip
    return sorted(rows, key=lambda r: (r["earliest_at"], r["id"]))


def _recheck(
    engine: Engine,
    settings: Settings,
    rows: list[dict[str, Any]],
    now: datetime,
    report: SendReport,
) -> list[dict[str, Any]]:
    """The plan's rules again on what changed (dispatch.recheck, domain.send_rules): rows that
    fail become `suppressed` with the reason; rows whose window opens later today (the zone
    changed) go back to `planned` at the new opening."""
    verdicts = recheck(engine, settings, rows, now)
    for _, reason in verdicts.stop:
        report.suppressed[reason.split(":")[0] if reason.startswith("cap") else reason] += 1
    with engine.begin() as conn:
        if verdicts.stop:
            bulk = Bulk(conn)
            # Through the driver: a busy round suppresses thousands (paid since the plan).
            bulk.many(
                "UPDATE outbox SET status = 'suppressed',"
                f" reason = {bulk.ph}, updated_at = {bulk.ph} WHERE id = {bulk.ph}",
                [(reason, bulk.at(now), oid) for oid, reason in verdicts.stop],
            )
        if verdicts.later:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == bindparam("oid"))
                .values(
                    status="planned", reason=bindparam("why"), earliest_at=bindparam("lo"),
                    latest_at=bindparam("hi"), updated_at=now,
                ),
                [{"oid": oid, "lo": lo, "hi": hi, "why": why} for oid, lo, hi, why in verdicts.later],
            )  # fmt: skip
    return verdicts.keep


def _send(
    engine: Engine,
    providers: Providers,
    rows: list[dict[str, Any]],
    now: datetime,
    report: SendReport,
    rules: Channels,
    pace: Pace | None = None,
) -> None:
    """Hand rows to the provider their route names, chunk by chunk, recording each chunk; rows
    the first provider could not take (down, stopped, refused) go to the route's fallback."""
    by_route: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        by_route.setdefault(providers.route(r), []).append(r)
    for route, group in by_route.items():
        for start in range(0, len(group), rules.batch):
            chunk = group[start : start + rules.batch]
            if pace is not None and route[0] not in report.stopped_channels:
                # Before the chunk is marked sending: a dispatcher stopped while it waits for
                # its turn leaves the rows claimed (released later), not uncertain.
                parts = sum(max(int(r["segments"] or 1), 1) for r in chunk)
                pace(route[0], parts, providers.get(route[0]).max_tps)
            _mark_sending(engine, [r["id"] for r in chunk], now)
            _hand_over(engine, providers, route, chunk, now, report, rules)


def _hand_over(
    engine: Engine,
    providers: Providers,
    route: tuple[str, ...],
    chunk: list[dict[str, Any]],
    now: datetime,
    report: SendReport,
    rules: Channels,
) -> None:
    pending = chunk
    for position, name in enumerate(route):
        provider = providers.get(name)
        last = position == len(route) - 1
        if provider.name in report.stopped_channels or provider.name in report.down:
            if last:
                reason = _unavailable(report, provider.name)
                _release(engine, [r["id"] for r in pending], reason, now, report)
            continue
        beyond = {r["id"]: why for r in pending if (why := _beyond_limits(r, provider))}
        batch = [
            OutgoingMessage(r["id"], r["channel"], r["recipient"], r["text"], r["template"],
                            as_utc(r["latest_at"]))
            for r in pending
            if r["id"] not in beyond
        ]  # fmt: skip
        results = provider.send(batch, now) if batch else []
        _provider_state(engine, provider.name, results, now, report)
        results += [SendResult(oid, None, Permanent(why)) for oid, why in beyond.items()]
        if not last:
            # Down, stopped or refused: the next provider may take it. Uncertain: never.
            retry = {res.outbox_id for res in results if _may_fall_back(res)}
            refused = [res.error for res in results if isinstance(res.error, AuthError)]
            if refused:
                report.stopped_channels[provider.name] = str(refused[0])
            results = [res for res in results if res.outbox_id not in retry]
            _record(
                engine, provider.name, results, {r["id"]: r for r in pending}, now, report, rules
            )
            pending = [r for r in pending if r["id"] in retry]
            if not pending:
                return
            continue
        _record(engine, provider.name, results, {r["id"]: r for r in pending}, now, report, rules)


def _beyond_limits(row: dict[str, Any], provider: Channel) -> str | None:
    """Why this provider cannot carry the message (its declared limits), or None."""
    if row["channel"] != "sms" or provider.max_parts <= 0:
        return None
    parts = int(row["segments"] or 0)
    if parts > provider.max_parts:
        return f"too long for {provider.name}: {parts} parts, at most {provider.max_parts}"
    if {"GSM-7", "UCS-2"} <= set(provider.encodings):
        return None  # the usual case: no need to look at the text
    encoding = "GSM-7" if is_gsm7(row["text"]) else "UCS-2"
    if encoding not in provider.encodings:
        return f"{provider.name} cannot carry {encoding} text"
    return None


def _unavailable(report: SendReport, name: str) -> str:
    if name in report.stopped_channels:
        return f"channel stopped: {report.stopped_channels[name]}"
    return f"provider down: {report.down[name]}"


def _provider_state(
    engine: Engine, name: str, results: list[SendResult], now: datetime, report: SendReport
) -> None:
    """A provider that could not be reached is down (for this run, and in provider_states
    until its next try); one that took a message is up."""
    unreachable = [r.error for r in results if isinstance(r.error, Unreachable)]
    took = any(r.error is None for r in results)
    if unreachable and not took:
        report.down[name] = str(unreachable[0])
        with engine.begin() as conn:
            provider_states.mark_down(conn, name, now, now + NEXT_RUN, str(unreachable[0]))
    elif took and name not in report.up:
        report.up.add(name)
        with engine.begin() as conn:
            provider_states.mark_up(conn, name, now)


def _may_fall_back(result: SendResult) -> bool:
    return result.error is not None and not isinstance(result.error, Uncertain)


def _mark_sending(engine: Engine, ids: list[int], now: datetime) -> None:
    with engine.begin() as conn:
        bulk = Bulk(conn)
        chosen, param = bulk.among("id", ids)
        bulk.one(
            f"UPDATE outbox SET status = 'sending', updated_at = {bulk.ph}"
            f" WHERE {chosen} AND status = 'claimed'",
            (bulk.at(now), param),
        )


# A row a stopped provider could not take waits this long before it may be claimed again: not
# in this run (which would claim it again and again until --limit ran out), but in the next.
NEXT_RUN = timedelta(minutes=1)


def _release(
    engine: Engine, ids: list[int], reason: str, now: datetime, report: SendReport
) -> None:
    with engine.begin() as conn:
        for start in range(0, len(ids), ROUND):
            report.waiting += conn.execute(
                update(outbox)
                .where(
                    among(outbox.c.id, ids[start : start + ROUND]),
                    outbox.c.status.in_(("claimed", "sending")),
                )
                .values(
                    status="planned", reason=reason, updated_at=now,
                    earliest_at=func.min(outbox.c.latest_at, now + NEXT_RUN)
                    if engine.dialect.name == "sqlite" else func.least(outbox.c.latest_at, now + NEXT_RUN),
                )
            ).rowcount  # fmt: skip


def _record(
    engine: Engine,
    provider: str,
    results: list[SendResult],
    rows: dict[int, dict[str, Any]],
    now: datetime,
    report: SendReport,
    rules: Channels,
) -> None:
    updates: list[dict[str, Any]] = []
    parts: list[tuple[int, tuple[str, ...]]] = []
    for result in results:
        row = rows[result.outbox_id]
        values = _outcome(result, row, provider, now, report, rules)
        updates.append({"oid": result.outbox_id, **values})
        if result.error is None:
            parts.append((result.outbox_id, result.part_ids or (str(result.provider_id),)))
    with engine.begin() as conn:
        bulk = Bulk(conn)
        bound_now = bulk.at(now)  # most moments are `now`: bound once, not once a row

        def bind(value: Any) -> Any:
            return bound_now if value is now else _bindable(bulk, value)

        for keys, group in _by_keys(updates).items():
            bulk.many(
                f"UPDATE outbox SET {', '.join(f'{k} = {bulk.ph}' for k in keys)}"
                f" WHERE id = {bulk.ph}",
                [(*[bind(u[k]) for k in keys], u["oid"]) for u in group],
            )
        record_parts(conn, provider, parts, now)
        _events(conn, updates, rows, provider, now)


def _bindable(bulk: Bulk, value: Any) -> Any:
    return bulk.at(value) if isinstance(value, datetime) else value


def _events(
    conn: Connection,
    updates: list[dict[str, Any]],
    rows: dict[int, dict[str, Any]],
    provider: str,
    now: datetime,
) -> None:
    """message.sent and message.failed for the webhooks, in the recording's transaction."""
    for status, kind in (("sent", "message.sent"), ("failed", "message.failed")):
        emit_many(
            conn, kind,
            [(rows[u["oid"]]["customer_id"], _message_event(rows[u["oid"]], provider, u))
             for u in updates if u.get("status") == status],
            now,
        )  # fmt: skip


def _message_event(row: dict[str, Any], provider: str, update: dict[str, Any]) -> dict[str, Any]:
    return {"message": row["id"], "step": row["step"], "template": row["template"],
            "variant": row["variant"], "channel": row["channel"], "provider": provider,
            "status": update["status"], "reason": update.get("reason")}  # fmt: skip


def _outcome(
    result: SendResult,
    row: dict[str, Any],
    provider: str,
    now: datetime,
    report: SendReport,
    rules: Channels,
) -> dict[str, Any]:
    error = result.error
    if error is None:
        report.sent += 1
        return {
            "status": "sent",
            "provider": provider,
            "provider_id": result.provider_id,
            "sent_at": now,
            "updated_at": now,
            "reason": None,
        }
    if isinstance(error, Uncertain):
        report.uncertain += 1
        return {"status": "uncertain", "reason": f"uncertain: {error}", "updated_at": now}
    if isinstance(error, AuthError):
        if provider not in report.stopped_channels:
            log.error("provider refused our credentials provider=%s: %s", provider, error)
        report.stopped_channels[provider] = str(error)
        report.waiting += 1
        later = min(as_utc(row["latest_at"]), now + NEXT_RUN)
        return {"status": "planned", "reason": f"channel stopped: {error}", "updated_at": now,
                "earliest_at": later}  # fmt: skip
    if isinstance(error, Unreachable):
        # The provider is down, not the message: it waits inside its window, no attempt used.
        report.waiting += 1
        later = min(as_utc(row["latest_at"]), now + NEXT_RUN)
        return {"status": "planned", "reason": f"provider down: {error}", "updated_at": now,
                "earliest_at": later}  # fmt: skip
    attempts = int(row.get("attempts") or 0) + 1
    retry_at = now + timedelta(seconds=rules.retry_seconds * 2 ** (attempts - 1))
    if (
        isinstance(error, Transient)
        and attempts < rules.max_attempts
        and retry_at < as_utc(row["latest_at"])
    ):
        report.retried += 1
        return {
            "status": "planned",
            "reason": f"retry {attempts}: {error}",
            "attempts": attempts,
            "earliest_at": max(as_utc(row["earliest_at"]), retry_at),
            "updated_at": now,
        }
    report.failed += 1
    gave_up = " (gave up retrying)" if isinstance(error, Transient) else ""
    return {
        "status": "failed",
        "reason": f"{type(error).__name__}: {error}{gave_up}",
        "attempts": attempts,
        "updated_at": now,
    }


def _by_keys(updates: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for u in updates:
        groups.setdefault(tuple(sorted(k for k in u if k != "oid")), []).append(u)
    return groups


def collect_receipts(
    engine: Engine, settings: Settings, channel: Channel | Resolver, now: datetime
) -> SendReport:
    """Apply the receipts and replies that have arrived, sending nothing."""
    report = SendReport()
    _apply_receipts(engine, settings, Providers(channel, Channels()), now, report)
    return report


def _apply_receipts(
    engine: Engine, settings: Settings, providers: Providers, now: datetime, report: SendReport
) -> None:
    for provider in providers.listening():
        heard = hear(engine, settings, provider, now)
        report.add_receipts(heard.receipts)
        report.replies += len(heard.replies)
        report.unplaced += heard.unplaced


def _local_day(now: datetime, settings: Settings) -> date:
    return local_day(now, settings.defaults.timezone)


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
