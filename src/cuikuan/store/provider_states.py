"""Whether each provider could be reached, as dispatch last found it.

mark_down(conn, "cmcc", now, next_try, "no SMPP session within the connect timeout")
mark_up(conn, "cmcc", now)
hold(conn, "cmcc", now, "the carrier's maintenance")   # an admin's: nothing is sent through it
release(conn, "cmcc", now)
held(conn)        # {provider: why}
states(conn)      # [{provider, state, since, next_try_at, detail}]

States: up, down (dispatch could not reach it; tried again at next_try_at) and held (an admin
stopped it; only an admin's release ends it, whatever dispatch finds).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from cuikuan.store.schema import provider_states
from cuikuan.store.times import as_utc

HELD = "held"


def mark_down(
    conn: Connection, provider: str, now: datetime, next_try: datetime, detail: str
) -> None:
    p = provider_states.c
    found = conn.execute(select(p.state).where(p.provider == provider)).scalar_one_or_none()
    if found == HELD:  # an admin's hold outlasts what dispatch finds
        return
    if found == "down":  # still down: keep since when
        conn.execute(update(provider_states).where(p.provider == provider)
                     .values(next_try_at=next_try, detail=detail[:500]))  # fmt: skip
        return
    conn.execute(delete(provider_states).where(p.provider == provider))
    conn.execute(insert(provider_states).values(provider=provider, state="down", since=now,
                                                next_try_at=next_try, detail=detail[:500]))  # fmt: skip


def mark_up(conn: Connection, provider: str, now: datetime) -> None:
    p = provider_states.c
    conn.execute(
        update(provider_states)
        .where(p.provider == provider, p.state == "down")
        .values(state="up", since=now, next_try_at=None, detail=None)
    )


def hold(conn: Connection, provider: str, now: datetime, detail: str) -> None:
    p = provider_states.c
    conn.execute(delete(provider_states).where(p.provider == provider))
    conn.execute(insert(provider_states).values(provider=provider, state=HELD, since=now,
                                                next_try_at=None, detail=detail[:500]))  # fmt: skip


def release(conn: Connection, provider: str, now: datetime) -> bool:
    """Ends a hold (the provider is up until dispatch finds otherwise); False if not held."""
    p = provider_states.c
    return bool(
        conn.execute(
            update(provider_states)
            .where(p.provider == provider, p.state == HELD)
            .values(state="up", since=now, next_try_at=None, detail=None)
        ).rowcount
    )


def held(conn: Connection) -> dict[str, str]:
    p = provider_states.c
    rows = conn.execute(select(p.provider, p.detail).where(p.state == HELD)).all()
    return {r.provider: r.detail or "" for r in rows}


def states(conn: Connection) -> list[dict[str, Any]]:
    p = provider_states.c
    rows = conn.execute(select(provider_states).order_by(p.provider)).all()
    return [
        {"provider": r.provider, "state": r.state, "since": as_utc(r.since).isoformat(),
         "next_try_at": as_utc(r.next_try_at).isoformat() if r.next_try_at else None,
         "detail": r.detail}
        for r in rows
    ]  # fmt: skip
