"""Delivery receipts: stored as they come, matched to message parts, rolled up to the message.

    counts = record_receipts(engine, "smpp", channel.receipts(now), now)

A receipt that matches no part yet (its submit not recorded yet, or recorded by another
process) stays unmatched and is tried again on every later call for a day. It never matches a
part the SMSC accepted after the receipt came (more than `CLOCKS_APART` later): SMSC message ids
are unique only until the SMSC restarts its counter, and an old message's receipt must not
settle a new message that was given the same id. A message is delivered when every part is,
undelivered as soon as one part is, expired when every part has an outcome and one expired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update

from cuikuan.channels.base import Receipt
from cuikuan.channels.smpp.receipts import canonical_id, id_candidates
from cuikuan.store.events import emit_many, listeners
from cuikuan.store.schema import message_parts, outbox, receipts
from cuikuan.store.times import as_utc

RETRY_UNMATCHED = timedelta(days=1)
# The receipt's arrival and the part's acceptance are both on dispatchers' clocks, which may be
# different processes' (listen and send): this much apart still counts as "before".
CLOCKS_APART = timedelta(seconds=60)
_CHUNK = 500


def record_parts(
    conn: Connection, provider: str, rows: Sequence[tuple[int, Sequence[str]]], now: datetime
) -> None:
    """Remember every part id of the messages just accepted at `now`: [(outbox_id, part_ids)].
    A provider that reuses an id (an SMSC restarted its counter) overwrites the old part."""
    values = [
        {"provider": provider, "provider_id": canonical_id(pid), "outbox_id": oid, "part": i,
         "submitted_at": now}
        for oid, ids in rows
        for i, pid in enumerate(ids, start=1)
    ]  # fmt: skip
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        conn.execute(
            delete(message_parts).where(
                message_parts.c.provider == provider,
                message_parts.c.provider_id.in_([v["provider_id"] for v in chunk]),
            )
        )
        conn.execute(insert(message_parts), chunk)


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
            "provider_id": r.provider_id,
            "outcome": r.outcome,
            "detail": r.detail,
            "received_at": now,  # the dispatcher's clock, which a simulation sets
        }
        for r in incoming
    ]
    if rows:
        conn.execute(insert(receipts), rows)


def match_waiting(conn: Connection, now: datetime) -> Counter[str]:
    """Match the receipts of the last day still waiting for their part; roll up the messages."""
    waiting = conn.execute(
        select(
            receipts.c.id,
            receipts.c.provider,
            receipts.c.provider_id,
            receipts.c.outcome,
            receipts.c.received_at,
        )
        .where(receipts.c.outbox_id.is_(None), receipts.c.received_at >= now - RETRY_UNMATCHED)
        .order_by(receipts.c.id)
    ).all()
    if not waiting:
        return Counter()
    # Exact spellings first; the other readings (hex for decimal...) only for what is left.
    parts = _parts(conn, {(w.provider, canonical_id(w.provider_id)) for w in waiting})
    missing = [w for w in waiting if (w.provider, canonical_id(w.provider_id)) not in parts]
    if missing:
        parts |= _parts(
            conn, {(w.provider, c) for w in missing for c in id_candidates(w.provider_id)}
        )
    matched, part_states = [], []
    for w in waiting:
        exact = canonical_id(w.provider_id)
        # The id as given first; another spelling (hex for decimal) only when that finds nothing.
        keys = [exact, *sorted(id_candidates(w.provider_id) - {exact})]
        came = as_utc(w.received_at) + CLOCKS_APART
        hit = next(
            ((k, parts[(w.provider, k)]) for k in keys
             if (w.provider, k) in parts and _before(parts[(w.provider, k)][2], came)),
            None,
        )  # fmt: skip
        if hit is None:
            continue
        key, (oid, _part, _at) = hit
        matched.append({"rid": w.id, "oid": oid})
        part_states.append({"prov": w.provider, "pid": key, "st": w.outcome})
    if not matched:
        return Counter()
    conn.execute(
        update(receipts)
        .where(receipts.c.id == bindparam("rid"))
        .values(outbox_id=bindparam("oid")),
        matched,
    )
    conn.execute(
        update(message_parts)
        .where(
            message_parts.c.provider == bindparam("prov"),
            message_parts.c.provider_id == bindparam("pid"),
        )
        .values(state=bindparam("st")),
        part_states,
    )
    return _roll_up(conn, sorted({m["oid"] for m in matched}), now)


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
        ids.sort()
        for start in range(0, len(ids), _CHUNK):
            for p in conn.execute(
                select(
                    message_parts.c.provider_id,
                    message_parts.c.outbox_id,
                    message_parts.c.part,
                    message_parts.c.submitted_at,
                ).where(
                    message_parts.c.provider == provider,
                    message_parts.c.provider_id.in_(ids[start : start + _CHUNK]),
                )
            ):
                found[(provider, p.provider_id)] = (p.outbox_id, p.part, p.submitted_at)
    return found


def _roll_up(conn: Connection, outbox_ids: list[int], now: datetime) -> Counter[str]:
    states: dict[int, list[str | None]] = {}
    for start in range(0, len(outbox_ids), _CHUNK):
        for oid, state in conn.execute(
            select(message_parts.c.outbox_id, message_parts.c.state).where(
                message_parts.c.outbox_id.in_(outbox_ids[start : start + _CHUNK])
            )
        ):
            states.setdefault(oid, []).append(state)
    moves: dict[str, list[dict[str, object]]] = {}
    for oid, found in states.items():
        status = message_status(found)
        if status is not None:
            moves.setdefault(status, []).append({"oid": oid})
    counts: Counter[str] = Counter()
    _receipt_events(conn, moves, now)
    for status, ids in moves.items():
        result = conn.execute(
            update(outbox)
            .where(outbox.c.id == bindparam("oid"), outbox.c.status == "sent")
            .values(
                status=status,
                reason=None if status == "delivered" else f"receipt: {status}",
                updated_at=now,
            ),
            ids,
        )
        counts[status] += max(result.rowcount, 0)
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
        found: list[Any] = []
        for start in range(0, len(wanted), _CHUNK):
            found += conn.execute(
                select(outbox.c.id, outbox.c.customer_id, outbox.c.step, outbox.c.template,
                       outbox.c.provider)
                .where(outbox.c.id.in_(wanted[start : start + _CHUNK]), outbox.c.status == "sent")
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
