"""The audit log: every change made through the API (and later the console), who, what, before
and after, in the same transaction as the change. The database refuses to edit it.

    record(conn, "key:core-banking", "optout.add", "number:+8613800138000", None, {...}, now)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from cuikuan.store.schema import audit_log
from cuikuan.store.times import as_utc


def record(
    conn: Connection,
    actor: str,
    action: str,
    target: str,
    before: Any,
    after: Any,
    now: datetime,
) -> None:
    conn.execute(
        insert(audit_log).values(
            at=now, actor=actor, action=action, object=target[:200],
            before=None if before is None else json.dumps(before, ensure_ascii=False, default=str),
            after=None if after is None else json.dumps(after, ensure_ascii=False, default=str),
        )
    )  # fmt: skip


def entries(
    engine: Engine, after_id: int = 0, limit: int = 100, actor: str | None = None
) -> list[dict[str, Any]]:
    query = select(audit_log).where(audit_log.c.id > after_id)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(audit_log.c.id).limit(limit)).all()
    return [
        {**r._mapping, "at": as_utc(r.at), "before": _load(r.before), "after": _load(r.after)}
        for r in rows
    ]


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def search(
    engine: Engine, actor: str | None = None, target: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """The newest entries first; `actor` exact, `target` the start of the object."""
    query = select(audit_log)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if target:
        query = query.where(audit_log.c.object.startswith(target, autoescape=True))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(audit_log.c.id.desc()).limit(limit)).all()
    return [{**r._mapping, "at": as_utc(r.at)} for r in rows]
