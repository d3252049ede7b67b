"""Number stops: opt-outs and wrong numbers kept against the number (or address) and channel.

stop(conn, "+8613800138000", "sms", "opt_out", "reply", at)
lift(conn, "+8613800138000", "sms", "opt_out")            # an opt-in
stopped(conn, ["+8613800138000"])                          # {(address, channel): reason}
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from cuikuan.store.among import among
from cuikuan.store.events import emit
from cuikuan.store.schema import number_stops

# The first is reported when several hold: a wrong number, an opt-out, a reply no one has read.
REASONS = ("wrong_number", "opt_out", "unread_reply")
CHUNK = 5_000


def stop(
    conn: Connection, address: str, channel: str, reason: str, source: str, at: datetime
) -> bool:
    """Record a stop; False when it was there already."""
    exists = conn.execute(
        select(number_stops.c.address).where(
            number_stops.c.address == address,
            number_stops.c.channel == channel,
            number_stops.c.reason == reason,
        )
    ).first()
    if exists is not None:
        return False
    conn.execute(
        insert(number_stops).values(
            address=address, channel=channel, reason=reason, source=source, created_at=at
        )
    )
    if reason == "opt_out":
        emit(conn, "optout.changed", None,
             {"number": address, "channel": channel, "opted_out": True, "source": source}, at)  # fmt: skip
    return True


def lift(
    conn: Connection, address: str, channel: str, reason: str, at: datetime | None = None
) -> int:
    """Remove a stop; `at` (when it was lifted) reports an opt-out lifted to the webhooks."""
    lifted: int = conn.execute(
        delete(number_stops).where(
            number_stops.c.address == address,
            number_stops.c.channel == channel,
            number_stops.c.reason == reason,
        )
    ).rowcount
    if lifted and reason == "opt_out" and at is not None:
        emit(conn, "optout.changed", None,
             {"number": address, "channel": channel, "opted_out": False}, at)  # fmt: skip
    return lifted


def stopped(conn: Connection, addresses: Iterable[str] | None = None) -> dict[tuple[str, str], str]:
    """(address, channel) -> the reason it is stopped, for `addresses` (all when None)."""
    query = select(number_stops.c.address, number_stops.c.channel, number_stops.c.reason)
    rows: list[tuple[str, str, str]] = []
    if addresses is None:
        rows = [tuple(r) for r in conn.execute(query)]
    else:
        wanted = sorted(set(addresses))
        for start in range(0, len(wanted), CHUNK):
            part = wanted[start : start + CHUNK]
            rows += [
                tuple(r) for r in conn.execute(query.where(among(number_stops.c.address, part)))
            ]
    out: dict[tuple[str, str], str] = {}
    for address, channel, reason in sorted(
        rows, key=lambda r: REASONS.index(r[2]) if r[2] in REASONS else 9
    ):
        out.setdefault((address, channel), reason)
    return out
