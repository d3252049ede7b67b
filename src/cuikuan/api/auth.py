"""Who is calling: the API key in `Authorization: Bearer ck_...`, its scopes, its rate.

    key: ApiKey = Depends(scope("read"))

Missing or unknown key: 401; a scope the key lacks: 403; over its rate: 429 with Retry-After.
The rate is a token bucket per key (a minute's allowance, refilled continuously). On
PostgreSQL it is a row every `serve` process shares (store/api_buckets.py), so several servers
behind a balancer hold the key's rate together; on SQLite it is kept in the server process.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import datetime

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

    def take(self, key: ApiKey, moment: datetime) -> float:
        """0 when the request may go, else the seconds until it may."""
        if self.shared is not None:
            with self.shared.begin() as conn:
                return api_buckets.take(conn, key.id, key.rate_per_minute, moment.timestamp())
        rate = key.rate_per_minute / 60.0
        with self.lock:
            now = moment.timestamp()
            tokens, at = self.buckets.get(key.id, (float(key.rate_per_minute), now))
            tokens = min(float(key.rate_per_minute), tokens + (now - at) * rate)
            if tokens < 1:
                self.buckets[key.id] = (tokens, now)
                return (1 - tokens) / rate
            self.buckets[key.id] = (tokens - 1, now)
            return 0.0


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
