"""Delivery receipts: stored as they come, matched to message parts, rolled up to the message.

    counts = record_receipts(engine, "smpp", channel.receipts(now), now)

A receipt that matches no part yet (its submit not recorded yet, or recorded by another
process) stays unmatched and is tried again on every later call for a day. It never matches a
part the SMSC accepted after the receipt came (more than `CLOCKS_APART` later): SMSC message ids
are unique only until the SMSC restarts its counter, and an old message's receipt must not
settle a new message that was given the same id. Nor is it tried in another spelling (hex for
decimal) while a message handed over before it came is not recorded yet: it may be that
message's. A message is delivered when every part is,
undelivered as soon as one part is, expired when every part has an outcome and one expired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from cuikuan.channels.base import Receipt
from cuikuan.channels.smpp.receipts import canonical_id, id_candidates
from cuikuan.store.among import among
from cuikuan.store.bulk import Bulk
from cuikuan.store.events import emit_many, listeners
from cuikuan.store.schema import message_parts, outbox, receipts
from cuikuan.store.times import as_utc

RETRY_UNMATCHED = timedelta(days=1)
# The receipt's arrival and the part's acceptance are both on dispatchers' clocks, which may be
# different processes' (listen and send): this much apart still counts as "before".
CLOCKS_APART = timedelta(seconds=60)


def record_parts(
    conn: Connection, provider: str, rows: Sequence[tuple[int, Sequence[str]]], now: datetime
) -> None:
    """Remember every part id of the messages just accepted at `now`: [(outbox_id, part_ids)].
    A provider that reuses an id (an SMSC restarted its counter) overwrites the old part."""
    bulk = Bulk(conn)
    at = bulk.at(now)
    bulk.many(
        "INSERT INTO message_parts (provider, provider_id, outbox_id, part, submitted_at, state)"
        f" VALUES ({bulk.placeholders(5)}, NULL)"
        " ON CONFLICT (provider, provider_id) DO UPDATE SET outbox_id = excluded.outbox_id,"
        " part = excluded.part, submitted_at = excluded.submitted_at, state = NULL",
        [(provider, canonical_id(pid), oid, i, at)
         for oid, ids in rows for i, pid in enumerate(ids, start=1)],
    )  # fmt: skip


def record_receipts(
    engine: Engine, provider: str, incoming: Iterable[Receipt], now: datetime
) -> Counter[str]:
    """Store the receipts, match what can be matched; returns messages moved, by new status."""
    with engine.begin() as conn:
        store_receipts(conn, provider, incoming, now)
        return match_waiting(conn, now)


def store_receipts(
    conn: Connection, provider: str, incoming: Iterable[Receipt], now: datetime
) -> None:
    rows = [
        {
            "provider": provider,
            "provider_id": canonical_id(r.provider_id),
            "outcome": r.outcome,
            "detail": r.detail,
            "received_at": now,  # the dispatcher's clock, which a simulation sets
        }
        for r in incoming
    ]
    if rows:
        conn.execute(insert(receipts), rows)


def match_waiting(conn: Connection, now: datetime) -> Counter[str]:
    """Match the receipts of the last day still waiting for their part; roll up the messages.
    The usual case, the id exactly as the part was recorded, is one join in the database; only
    what that leaves is read here and tried in its other spellings."""
    bulk = Bulk(conn)
    # Stored by a bind as they came (StoredJournal.keep): they arrive now, on this clock.
    bulk.one(
        f"UPDATE receipts SET received_at = {bulk.ph}"
        " WHERE outbox_id IS NULL AND received_at IS NULL",
        (bulk.at(now),),
    )
    since = now - RETRY_UNMATCHED
    found = _exact(bulk, since)
    _settle(bulk, found)
    waiting = conn.execute(
        select(receipts.c.id, receipts.c.provider, receipts.c.provider_id,
               receipts.c.outcome, receipts.c.received_at)
        .where(receipts.c.outbox_id.is_(None), receipts.c.received_at >= since)
        .order_by(receipts.c.id)
    ).all()  # fmt: skip
    waiting = _not_in_flight(conn, waiting)
    if waiting:
        more = _other_spellings(conn, waiting)
        _settle(bulk, more)
        found += more
    if not found:
        return Counter()
    return _roll_up(conn, sorted({oid for _, oid, _, _, _ in found}), now)


def _settle(bulk: Bulk, found: Sequence[tuple[Any, ...]]) -> None:
    """Matched (receipt id, outbox id, provider, part id, outcome): the receipt names its
    message, the part takes the receipt's outcome."""
    bulk.many(f"UPDATE receipts SET outbox_id = {bulk.ph} WHERE id = {bulk.ph}",
              [(oid, rid) for rid, oid, _, _, _ in found])  # fmt: skip
    bulk.many(
        f"UPDATE message_parts SET state = {bulk.ph}"
        f" WHERE provider = {bulk.ph} AND provider_id = {bulk.ph}",
        [(state, provider, pid) for _, _, provider, pid, state in found],
    )


def _exact(bulk: Bulk, since: datetime) -> list[tuple[Any, ...]]:
    """(receipt id, outbox id, provider, part id, outcome) of the waiting receipts whose id
    names a part exactly (receipts are stored with canonical ids) that the SMSC accepted
    before the receipt came."""
    if bulk.sqlite:
        before = "julianday(p.submitted_at) <= julianday(r.received_at) + ?"
        params: tuple[Any, ...] = (bulk.at(since), CLOCKS_APART.total_seconds() / 86400)
    else:
        before = "p.submitted_at <= r.received_at + %s"
        params = (bulk.at(since), CLOCKS_APART)
    return bulk.fetch(
        "SELECT r.id, p.outbox_id, r.provider, p.provider_id, r.outcome"
        " FROM receipts r JOIN message_parts p"
        " ON p.provider = r.provider AND p.provider_id = r.provider_id"
        f" WHERE r.outbox_id IS NULL AND r.received_at >= {bulk.ph}"
        f" AND (p.submitted_at IS NULL OR {before}) ORDER BY r.id",
        params,
    )


def _not_in_flight(conn: Connection, waiting: Sequence[Any]) -> list[Any]:
    """The waiting receipts that came before every message now handed over and not yet
    recorded (`sending`, perhaps in another process) was handed over. A later one may be the
    receipt of such a message, whose part is not in the table yet: tried in another spelling
    now, it could settle a different message whose id is that spelling (hex `1a` read as
    decimal 26). It waits for that message's part instead, and is tried again on a later call."""
    if not waiting:
        return []
    oldest = conn.execute(
        select(func.min(outbox.c.updated_at)).where(outbox.c.status == "sending")
    ).scalar_one()
    if oldest is None:
        return list(waiting)
    handed = as_utc(oldest) - CLOCKS_APART
    return [w for w in waiting if as_utc(w.received_at) < handed]


def _other_spellings(conn: Connection, waiting: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Receipts the exact join did not match: their id as given first (a part recorded after
    the join), another spelling (hex for decimal) only when that finds nothing."""
    parts = _parts(conn, {(w.provider, c) for w in waiting for c in id_candidates(w.provider_id)})
    found = []
    for w in waiting:
        exact = canonical_id(w.provider_id)
        keys = [exact, *sorted(id_candidates(w.provider_id) - {exact})]
        came = as_utc(w.received_at) + CLOCKS_APART
        hit = next(
            ((k, parts[(w.provider, k)]) for k in keys
             if (w.provider, k) in parts and _before(parts[(w.provider, k)][2], came)),
            None,
        )  # fmt: skip
        if hit is not None:
            key, (oid, _part, _at) = hit
            found.append((w.id, oid, w.provider, key, w.outcome))
    return found


def _before(submitted: datetime | None, came: datetime) -> bool:
    return submitted is None or as_utc(submitted) <= came


def _parts(
    conn: Connection, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int, datetime | None]]:
    by_provider: dict[str, list[str]] = {}
    for provider, pid in keys:
        by_provider.setdefault(provider, []).append(pid)
    found: dict[tuple[str, str], tuple[int, int, datetime | None]] = {}
    for provider, ids in by_provider.items():
        for p in conn.execute(
            select(
                message_parts.c.provider_id,
                message_parts.c.outbox_id,
                message_parts.c.part,
                message_parts.c.submitted_at,
            ).where(message_parts.c.provider == provider, among(message_parts.c.provider_id, ids))
        ):
            found[(provider, p.provider_id)] = (p.outbox_id, p.part, p.submitted_at)
    return found


def _roll_up(conn: Connection, outbox_ids: list[int], now: datetime) -> Counter[str]:
    bulk = Bulk(conn)
    states: dict[int, list[str | None]] = {}
    # Through the driver: a row object a part was a quarter of applying receipts.
    for oid, state in bulk.fetch(
        f"SELECT outbox_id, state FROM message_parts WHERE {bulk.among_sql('outbox_id')}",
        (bulk.among_value(outbox_ids),),
    ):
        states.setdefault(oid, []).append(state)
    moves: dict[str, list[dict[str, object]]] = {}
    for oid, found in states.items():
        status = message_status(found)
        if status is not None:
            moves.setdefault(status, []).append({"oid": oid})
    counts: Counter[str] = Counter()
    _receipt_events(conn, moves, now)
    at = bulk.at(now)
    for status, ids in moves.items():
        reason = None if status == "delivered" else f"receipt: {status}"
        counts[status] += bulk.many(
            f"UPDATE outbox SET status = {bulk.ph}, reason = {bulk.ph}, updated_at = {bulk.ph}"
            f" WHERE id = {bulk.ph} AND status = 'sent'",
            [(status, reason, at, i["oid"]) for i in ids],
        )
    return counts


def _receipt_events(
    conn: Connection, moves: dict[str, list[dict[str, object]]], now: datetime
) -> None:
    """message.delivered, and message.failed for the undelivered and expired, for webhooks."""
    if not any(listeners(conn, kind) for kind in ("message.delivered", "message.failed")):
        return
    for status, ids in moves.items():
        kind = "message.delivered" if status == "delivered" else "message.failed"
        wanted = [int(str(i["oid"])) for i in ids]
        found = conn.execute(
            select(outbox.c.id, outbox.c.customer_id, outbox.c.step, outbox.c.template,
                   outbox.c.provider)
            .where(among(outbox.c.id, wanted), outbox.c.status == "sent")
        ).all()  # fmt: skip
        emit_many(
            conn, kind,
            [(r.customer_id, {"message": r.id, "step": r.step, "template": r.template,
                              "provider": r.provider, "status": status,
                              "reason": None if status == "delivered" else f"receipt: {status}"})
             for r in found],
            now,
        )  # fmt: skip


def message_status(part_states: Sequence[str | None]) -> str | None:
    if "undelivered" in part_states:
        return "undelivered"
    if not part_states or None in part_states:
        return None
    if all(s == "delivered" for s in part_states):
        return "delivered"
    return "expired"
