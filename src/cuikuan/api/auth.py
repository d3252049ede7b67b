"""Who is calling: the API key in `Authorization: Bearer ck_...`, its scopes, its rate.

    key: ApiKey = Depends(scope("read"))

Missing or unknown key: 401; a scope the key lacks: 403; over its rate: 429 with Retry-After.
The rate is a token bucket per key (a minute's allowance, refilled continuously), which every
`serve` process shares (store/api_buckets.py): on PostgreSQL a row, so several servers behind a
balancer hold the key's rate together; on a SQLite file a file beside it, so the processes of
`serve --workers N` do. Only an in-memory database keeps it in the process.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import Request
from sqlalchemy import Engine

from cuikuan.api.problems import ApiProblem
from cuikuan.services.api_keys import ApiKey, verify
from cuikuan.store import api_buckets


class RateLimiter:
    """Tokens per key, refilled by the app's clock (the one the server reads at its edge)."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, at)
        self.lock = threading.Lock()
        self.shared = engine if engine is not None and engine.dialect.name == "postgresql" else None
        self.folder = _bucket_folder(engine)

    def take(self, key: ApiKey, moment: datetime) -> float:
        """0 when the request may go, else the seconds until it may."""
        now, per_minute = moment.timestamp(), key.rate_per_minute
        if self.shared is not None:
            with self.shared.begin() as conn:
                return api_buckets.take(conn, key.id, per_minute, now)
        with self.lock:
            if self.folder is not None:
                return api_buckets.take_file(self.folder, key.id, per_minute, now)
            tokens, at = self.buckets.get(key.id, (float(per_minute), now))
            tokens, at, wait = api_buckets.refill(tokens, at, now, per_minute)
            self.buckets[key.id] = (tokens, at)
            return wait


def _bucket_folder(engine: Engine | None) -> Path | None:
    """Where a SQLite file's buckets are kept: beside it (None: not a file)."""
    if engine is None or engine.dialect.name != "sqlite":
        return None
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(f"{name}-api-buckets")


def scope(needed: str) -> Callable[[Request], ApiKey]:
    """A dependency: the caller's key, which must hold `needed` (admin holds every scope)."""

    def check(request: Request) -> ApiKey:
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        key = verify(request.app.state.engine, token.strip()) if kind.lower() == "bearer" else None
        if key is None:
            raise ApiProblem(
                "unauthorized", "a valid API key is required", {"WWW-Authenticate": "Bearer"}
            )
        if not key.allows(needed):
            raise ApiProblem("forbidden", f"this route needs the {needed!r} scope", needed=needed)
        wait = request.app.state.limiter.take(key, request.app.state.cuikuan.clock())
        if wait > 0:
            raise ApiProblem(
                "rate-limited",
                f"at most {key.rate_per_minute} requests a minute for this key",
                {"Retry-After": str(math.ceil(wait))},
            )
        request.state.actor = key.actor
        request.state.key = key
        return key

    return check
