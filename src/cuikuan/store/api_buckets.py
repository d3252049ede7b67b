"""An API key's rate held across every `serve` process at once, on PostgreSQL.

    wait = take(conn, key_id=7, per_minute=600, now=1_780_000_000.0)   # 0.0: go; else seconds

A token bucket a row: a minute's allowance, refilled continuously. One UPDATE refills and
takes a token only if one is there; the row lock it holds makes two processes' requests queue
for it, so together they get the key's rate and no more. The time is the server's clock passed
down (epoch seconds): a clock behind the row's time refills nothing rather than going back.
On SQLite it is not a row (a write every request would queue behind every import on the
one-writer file) but a small file beside the database, locked with flock while it is read and
written (`take_file`): every `serve --workers N` process on the machine shares it, and a SQLite
book is never served from more than one machine.
"""

from __future__ import annotations

import fcntl
import os
import struct
from pathlib import Path

from sqlalchemy import Connection, text

_BUCKET = struct.Struct("<dd")  # tokens, at (epoch seconds)

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


def refill(tokens: float, at: float, now: float, per_minute: int) -> tuple[float, float, float]:
    """The bucket (tokens, at) seen at `now`, a token taken if one is there: (tokens, at, wait),
    wait 0 when it was taken, else the seconds until one is there. A clock behind `at` refills
    nothing. (The same arithmetic as `take`'s SQL.)"""
    cap, rate = float(per_minute), per_minute / 60.0
    tokens = min(cap, tokens + max(now - at, 0.0) * rate)
    at = max(at, now)
    if tokens < 1:
        return tokens, at, (1 - tokens) / rate
    return tokens - 1, at, 0.0


def take_file(folder: Path, key_id: int, per_minute: int, now: float) -> float:
    """`take` for a bucket kept in `folder`/`key_id` (made 0700 on first use)."""
    try:
        fd = os.open(folder / str(key_id), os.O_CREAT | os.O_RDWR, 0o600)
    except FileNotFoundError:  # the first request of all: the folder is made once
        folder.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(folder / str(key_id), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held = os.pread(fd, _BUCKET.size, 0)
        tokens, at = _BUCKET.unpack(held) if len(held) == _BUCKET.size else (per_minute, now)
        tokens, at, wait = refill(tokens, at, now, per_minute)
        os.pwrite(fd, _BUCKET.pack(tokens, at), 0)
        return wait
    finally:
        os.close(fd)  # and the lock with it
