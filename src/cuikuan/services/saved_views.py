"""A console user's saved work-list views: a name and the list's query, per user.

    save(engine, user_id, "promises due", "filter=promises_due&kind=ask_date", now)
    views(engine, user_id)       # [(id, name, query)], by name
    forget(engine, user_id, view_id)

The query is kept as given; the console builds it from the keys it knows, and reads it back
through the same check (an old or edited one cannot add anything the list does not accept).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update

from cuikuan.errors import InputError
from cuikuan.store.schema import saved_views

MAX_VIEWS = 50


@dataclass(frozen=True)
class View:
    id: int
    name: str
    query: str


def save(engine: Engine, user_id: int, name: str, query: str, now: datetime) -> int:
    """Keep `query` under `name` (the same name again replaces it)."""
    name = " ".join(name.split())[:80]
    if not name:
        raise InputError("a saved view needs a name")
    if len(query) > 400:
        raise InputError("that view is too long to keep")
    with engine.begin() as conn:
        same = conn.execute(
            select(saved_views.c.id).where(
                saved_views.c.user_id == user_id, saved_views.c.name == name
            )
        ).scalar_one_or_none()
        if same is not None:
            conn.execute(update(saved_views).where(saved_views.c.id == same).values(query=query))
            return int(same)
        count = len(conn.execute(
            select(saved_views.c.id).where(saved_views.c.user_id == user_id)
        ).all())  # fmt: skip
        if count >= MAX_VIEWS:
            raise InputError(f"at most {MAX_VIEWS} saved views; forget one first")
        return int(
            conn.execute(
                insert(saved_views)
                .values(user_id=user_id, name=name, query=query, created_at=now)
                .returning(saved_views.c.id)
            ).scalar_one()
        )


def views(engine: Engine, user_id: int) -> list[View]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(saved_views.c.id, saved_views.c.name, saved_views.c.query)
            .where(saved_views.c.user_id == user_id)
            .order_by(saved_views.c.name)
        ).all()
    return [View(r.id, r.name, r.query) for r in rows]


def forget(engine: Engine, user_id: int, view_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            delete(saved_views).where(saved_views.c.id == view_id, saved_views.c.user_id == user_id)
        )
