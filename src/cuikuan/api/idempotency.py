"""Idempotency-Key on write routes: a retried request is answered, not done again.

    replay = claim(engine, key_id, ikey, route, body, now)   # a stored answer, or None: go on
    ... do the work ...
    remember(engine, key_id, ikey, status, body)              # the answer a retry will get

The key is claimed by inserting its row before the work starts, so two copies of one request
arriving together cannot both run: the second gets 409 while the first is running. A key whose
first request died (no answer after STALE) may be claimed again. The same key with another body
is 409 for ever: a client bug that must not pass silently.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cuikuan.api.problems import ApiProblem
from cuikuan.store.schema import api_requests
from cuikuan.store.times import as_utc

STALE = timedelta(minutes=15)


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def claim(
    engine: Engine, key_id: int, ikey: str, route: str, body: bytes, now: datetime
) -> tuple[int, Any] | None:
    if not ikey or len(ikey) > 200:
        raise ApiProblem("invalid-request", "Idempotency-Key: 1 to 200 characters")
    sha = digest(body)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(api_requests).values(
                    key_id=key_id, idempotency_key=ikey, route=route, body_sha256=sha,
                    created_at=now,
                )
            )  # fmt: skip
        return None
    except IntegrityError:
        pass
    with engine.begin() as conn:
        row = conn.execute(
            select(api_requests).where(
                api_requests.c.key_id == key_id, api_requests.c.idempotency_key == ikey
            )
        ).first()
        if row is None:  # deleted meanwhile (its first request failed): try once more
            return claim(engine, key_id, ikey, route, body, now)
        if row.body_sha256 != sha or row.route != route:
            raise ApiProblem("conflict", "this Idempotency-Key was used with another request")
        if row.status is not None:
            return row.status, json.loads(row.response)
        if as_utc(row.created_at) > now - STALE:
            raise ApiProblem(
                "conflict", "the first request with this Idempotency-Key is still running"
            )
        conn.execute(
            update(api_requests)
            .where(api_requests.c.key_id == key_id, api_requests.c.idempotency_key == ikey)
            .values(created_at=now)
        )
    return None


def remember(engine: Engine, key_id: int, ikey: str, status: int, body: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(api_requests)
            .where(api_requests.c.key_id == key_id, api_requests.c.idempotency_key == ikey)
            .values(status=status, response=json.dumps(body, ensure_ascii=False, default=str))
        )


def release(engine: Engine, key_id: int, ikey: str) -> None:
    """The request failed for a reason of ours (a crash, the database): a retry may run it."""
    with engine.begin() as conn:
        conn.execute(
            delete(api_requests).where(
                api_requests.c.key_id == key_id, api_requests.c.idempotency_key == ikey
            )
        )
