"""A provider's rate held across every dispatcher at once, on PostgreSQL.

    wait = reserve(conn, "smpp", 500, tps=100.0)   # seconds to wait before sending these 500

Each dispatcher reserves the time its next chunk needs before handing it over. The provider's
row says when its line is next free; a reservation takes `count / tps` seconds from there (or
from now, if the line has been idle) in one UPDATE, which locks the row: two processes never get
the same slot, so together they send at the provider's tps. The time is the database's own
clock, the one every worker shares (a rate is about real seconds, whatever day the plan is for).
On SQLite one process dispatches and the channel's own pacing holds the rate: nothing to do.
"""

from __future__ import annotations

from sqlalchemy import Connection, text


def reserve(conn: Connection, provider: str, count: int, tps: float) -> float:
    """Reserve `count` messages' worth of the provider's line; seconds until this turn starts."""
    if count <= 0 or tps <= 0 or conn.dialect.name != "postgresql":
        return 0.0
    span = count / tps
    conn.execute(
        text(
            "INSERT INTO provider_slots (provider, free_at) VALUES (:p, clock_timestamp()) "
            "ON CONFLICT (provider) DO NOTHING"
        ),
        {"p": provider},
    )
    wait = conn.execute(
        text(
            "UPDATE provider_slots SET free_at = GREATEST(free_at, clock_timestamp()) "
            "+ make_interval(secs => :span) WHERE provider = :p "
            "RETURNING EXTRACT(EPOCH FROM (free_at - make_interval(secs => :span) "
            "- clock_timestamp()))"
        ),
        {"p": provider, "span": span},
    ).scalar_one()
    return max(float(wait), 0.0)
