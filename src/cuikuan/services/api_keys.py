"""Keys for the HTTP API: made once (the secret shown once), kept as a hash, checked per request.

    made = create_key(engine, "core-banking", {"read", "ingest"}, now)   # made.token: ck_...
    key = verify(engine, "ck_ab12cd34_...")                             # ApiKey or None

A token is `ck_<prefix>_<secret>`: the prefix finds the row, the secret's SHA-256 is compared in
constant time. Scopes: read (every GET), ingest (ledger batches and files), operate (replies,
opt-outs, flags, tasks, messages, templates), admin (everything, and keys).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from cuikuan.errors import InputError
from cuikuan.services import audit
from cuikuan.store.schema import api_keys

SCOPES = ("read", "ingest", "operate", "admin")
DEFAULT_RATE = 600  # requests a minute per key


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    scopes: frozenset[str]
    rate_per_minute: int

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    @property
    def actor(self) -> str:
        return f"key:{self.name}"


@dataclass(frozen=True)
class MadeKey:
    key: ApiKey
    token: str  # shown once, never stored


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise InputError(
            f"--scopes {text!r}: expected a comma-separated list of {', '.join(SCOPES)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    return scopes


def create_key(
    engine: Engine,
    name: str,
    scopes: frozenset[str],
    now: datetime,
    rate: int = DEFAULT_RATE,
    by: str = "cli",
) -> MadeKey:
    if not name.strip() or len(name) > 64 or not name.isprintable():
        raise InputError("a key's name must be 1 to 64 printable characters")
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise InputError(f"scopes: one or more of {', '.join(SCOPES)}")
    if rate < 1:
        raise InputError("--rate must be at least 1 request a minute")
    prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
    try:
        with engine.begin() as conn:
            kid = conn.execute(
                insert(api_keys)
                .values(
                    name=name, prefix=prefix, secret_sha256=_digest(secret),
                    scopes=",".join(sorted(scopes)), rate_per_minute=rate, created_at=now,
                )
                .returning(api_keys.c.id)
            ).scalar_one()  # fmt: skip
            audit.record(conn, by, "key.create", f"key:{name}", None,
                         {"scopes": sorted(scopes), "rate_per_minute": rate, "prefix": prefix}, now)  # fmt: skip
    except IntegrityError:
        raise InputError(f"a key named {name!r} exists already") from None
    return MadeKey(ApiKey(kid, name, scopes, rate), f"ck_{prefix}_{secret}")


def verify(engine: Engine, token: str) -> ApiKey | None:
    """The key this token belongs to, or None (unknown, revoked or wrong secret)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "ck" or len(token) > 200:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(api_keys).where(api_keys.c.prefix == parts[1], api_keys.c.revoked_at.is_(None))
        ).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, _digest(parts[2])):
        return None
    return ApiKey(row.id, row.name, frozenset(row.scopes.split(",")), row.rate_per_minute)


def list_keys(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.name)).all()
    return [
        {"name": r.name, "prefix": f"ck_{r.prefix}_…", "scopes": r.scopes,
         "rate_per_minute": r.rate_per_minute, "created_at": r.created_at,
         "revoked_at": r.revoked_at}
        for r in rows
    ]  # fmt: skip


def revoke(engine: Engine, name: str, now: datetime, by: str = "cli") -> bool:
    with engine.begin() as conn:
        done = bool(
            conn.execute(
                update(api_keys)
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
        )
        if done:
            audit.record(conn, by, "key.revoke", f"key:{name}", None, None, now)
    return done


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
