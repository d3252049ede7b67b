"""An API key's rate held across every `serve` process at once, on PostgreSQL.

    wait = take(conn, key_id=7, per_minute=600, now=1_780_000_000.0)   # 0.0: go; else seconds

A token bucket a row: a minute's allowance, refilled continuously. One UPDATE refills and
takes a token only if one is there; the row lock it holds makes two processes' requests queue
for it, so together they get the key's rate and no more. The time is the server's clock passed
down (epoch seconds): a clock behind the row's time refills nothing rather than going back.
On SQLite the bucket stays in the server process (api/auth.py): a write a request would queue
behind every import on the one-writer file.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

_REFILLED = (
    "CASE WHEN tokens + GREATEST(:now - at, 0) * :rate > :cap THEN :cap "
    "ELSE tokens + GREATEST(:now - at, 0) * :rate END"
)


def take(conn: Connection, key_id: int, per_minute: int, now: float) -> float:
    """0 when this request may go (its token taken), else the seconds until one is there."""
    cap, rate = float(per_minute), per_minute / 60.0
    values = {"k": key_id, "cap": cap, "rate": rate, "now": now}
    conn.execute(
        text(
            "INSERT INTO api_buckets (key_id, tokens, at) VALUES (:k, :cap, :now) "
            "ON CONFLICT (key_id) DO NOTHING"
        ),
        values,
    )
    taken = conn.execute(
        text(
            f"UPDATE api_buckets SET tokens = {_REFILLED} - 1, at = GREATEST(at, :now) "
            f"WHERE key_id = :k AND {_REFILLED} >= 1 RETURNING tokens"
        ),
        values,
    ).first()
    if taken is not None:
        return 0.0
    left = conn.execute(
        text(f"SELECT {_REFILLED} FROM api_buckets WHERE key_id = :k"), values
    ).scalar_one()
    return (1 - float(left)) / rate
