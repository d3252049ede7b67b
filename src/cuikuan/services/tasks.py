"""Agent tasks: list, take, note, close. Each carries the borrower's context for the call."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, or_, select, update

from cuikuan.domain.dates import local_day
from cuikuan.domain.followup import moot_once_paid
from cuikuan.errors import InputError, NotFound
from cuikuan.services import audit
from cuikuan.settings import Settings
from cuikuan.store import number_stops
from cuikuan.store.bulk import frame_from_rows
from cuikuan.store.loans_now import loans_at
from cuikuan.store.schema import customers, loans, replies, tasks, users
from cuikuan.store.times import as_utc

STATES = ("open", "taken", "done")


def list_tasks(engine: Engine, state: str | None = None, kind: str | None = None) -> pl.DataFrame:
    query = select(
        tasks.c.id, tasks.c.priority, tasks.c.kind, tasks.c.state, tasks.c.assignee, tasks.c.due_at,
        customers.c.external_id, customers.c.name, tasks.c.summary, tasks.c.notes,
    ).outerjoin(customers, customers.c.id == tasks.c.customer_id)  # fmt: skip
    if state is not None:
        if state not in STATES:
            raise InputError(f"--state {state!r}: expected one of {', '.join(STATES)}")
        query = query.where(tasks.c.state == state)
    if kind is not None:
        query = query.where(tasks.c.kind == kind)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(tasks.c.priority, tasks.c.due_at, tasks.c.id)).all()
    return frame_from_rows(
        [tuple(r) for r in rows],
        {"id": pl.Int64, "priority": pl.Int64, "kind": pl.String, "state": pl.String, "assignee": pl.String,
         "due_at": pl.Datetime("us"), "customer": pl.String, "name": pl.String, "summary": pl.String, "notes": pl.String},
    )  # fmt: skip


def _change(engine: Engine, task_id: int, now: datetime, **values: object) -> None:
    with engine.begin() as conn:
        row = conn.execute(
            select(tasks.c.state, tasks.c.notes).where(tasks.c.id == task_id)
        ).first()
        if row is None:
            raise NotFound(f"no task {task_id}")
        note = values.pop("note", None)
        by = values.pop("by", None)
        if note:
            values["notes"] = json.dumps(
                [*json.loads(row.notes), {"at": now.isoformat(), "by": by, "text": note}],
                ensure_ascii=False,
            )
        conn.execute(update(tasks).where(tasks.c.id == task_id).values(updated_at=now, **values))


def take(engine: Engine, task_id: int, assignee: str, now: datetime) -> None:
    _change(engine, task_id, now, state="taken", assignee=assignee)


def assign(
    engine: Engine, task_ids: Sequence[int], assignee: str, by: str, now: datetime,
    allowed: Collection[str] | None = None,
) -> list[int]:  # fmt: skip
    """Hand open or taken tasks to `assignee` (an enabled agent or supervisor; within `allowed`
    when given: a supervisor's team), all or none, each audited with its before and after.
    Returns the ids changed (a task already theirs is left as it is)."""
    ids = sorted(set(task_ids))
    if not ids or len(ids) > 500:
        raise InputError("choose between 1 and 500 tasks")
    if allowed is not None and assignee not in allowed:
        raise InputError(f"{assignee!r} is not in your team")
    with engine.begin() as conn:
        holder = conn.execute(
            select(users.c.role).where(users.c.name == assignee, users.c.disabled.is_(False))
        ).scalar_one_or_none()
        if holder not in ("agent", "supervisor"):
            raise InputError(f"{assignee!r} is not an enabled agent or supervisor")
        rows = conn.execute(
            select(tasks.c.id, tasks.c.state, tasks.c.assignee).where(tasks.c.id.in_(ids))
        ).all()
        found = {r.id: r for r in rows}
        missing = [i for i in ids if i not in found or found[i].state == "done"]
        if missing:
            raise InputError(f"no open task {missing[0]}")
        outside = [r.id for r in rows if allowed is not None and r.assignee not in (None, *allowed)]
        if outside:
            raise InputError(f"task {outside[0]} is held outside your team")
        changed = [r.id for r in rows if r.assignee != assignee or r.state != "taken"]
        if changed:
            conn.execute(
                update(tasks).where(tasks.c.id.in_(changed))
                .values(state="taken", assignee=assignee, updated_at=now)
            )  # fmt: skip
        for i in changed:
            audit.record(conn, by, "task.assign", f"task:{i}",
                         {"state": found[i].state, "assignee": found[i].assignee},
                         {"state": "taken", "assignee": assignee}, now)  # fmt: skip
    return changed


def done(
    engine: Engine, task_id: int, now: datetime, note: str | None = None, by: str | None = None
) -> None:
    """Close a task. Closing the borrower's last open dispute task is a person resolving the
    dispute: the dispute flag that stopped collection messages is lifted."""
    _change(engine, task_id, now, state="done", note=note, by=by)
    with engine.begin() as conn:
        task = conn.execute(
            select(tasks.c.kind, tasks.c.customer_id, tasks.c.reply_id).where(tasks.c.id == task_id)
        ).one()
        if task.kind == "read_reply" and task.reply_id is not None:
            _release_number(conn, task.reply_id)
        if task.kind != "dispute" or task.customer_id is None:
            return
        still_open = conn.execute(
            select(tasks.c.id).where(
                tasks.c.customer_id == task.customer_id,
                tasks.c.kind == "dispute",
                tasks.c.state != "done",
            )
        ).first()
        if still_open is not None:
            return
        flags = json.loads(
            conn.execute(
                select(customers.c.flags).where(customers.c.id == task.customer_id)
            ).scalar_one()
            or "[]"
        )
        if "dispute" in flags:
            conn.execute(
                update(customers)
                .where(customers.c.id == task.customer_id)
                .values(flags=json.dumps([f for f in flags if f != "dispute"]), updated_at=now)
            )


def _release_number(conn: Connection, reply_id: int) -> None:
    """A person has read the reply: the number it came from is no longer held for it (when no
    other reply from it waits)."""
    sender = conn.execute(select(replies.c.sender).where(replies.c.id == reply_id)).scalar()
    if sender is None:
        return
    waiting = conn.execute(
        select(tasks.c.id)
        .join(replies, replies.c.id == tasks.c.reply_id)
        .where(replies.c.sender == sender, tasks.c.kind == "read_reply", tasks.c.state != "done")
    ).first()
    if waiting is None:
        number_stops.lift(conn, sender, "sms", "unread_reply")


def add_note(engine: Engine, task_id: int, text: str, now: datetime, by: str | None = None) -> None:
    _change(engine, task_id, now, note=text, by=by)


def worklist(
    engine: Engine,
    now: datetime,
    *,
    visible_to: str | None = None,
    team: Collection[str] | None = None,
    mine: str | None = None,
    kinds: Sequence[str] | None = None,
    customers_in: Collection[str] | None = None,
    past_due: bool = False,
    task_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Open and taken tasks as a work list pages them: past their SLA first, then by priority
    and due time. `visible_to`: an agent's name (their own and unassigned tasks only); `team`:
    unassigned ones and those held by these people; `mine`: only this person's; `customers_in`:
    only these borrowers (external ids)."""
    t = tasks.c
    query = (
        select(t.id, t.priority, t.kind, t.state, t.assignee, t.due_at, customers.c.external_id.label("customer"),
               customers.c.name, t.summary, (t.due_at < now).label("late"))
        .outerjoin(customers, customers.c.id == t.customer_id)
    )  # fmt: skip
    # One task by id whatever its state (the row a page just changed); else the open work.
    query = query.where(t.id == task_id) if task_id is not None else query.where(t.state != "done")
    if visible_to is not None:
        query = query.where(or_(t.assignee.is_(None), t.assignee == visible_to))
    if team is not None:
        query = query.where(or_(t.assignee.is_(None), t.assignee.in_(list(team))))
    if mine is not None:
        query = query.where(t.assignee == mine)
    if kinds is not None:
        query = query.where(t.kind.in_(list(kinds)))
    if customers_in is not None:
        query = query.where(customers.c.external_id.in_(list(customers_in)[:10_000]))
    if past_due:
        query = query.where(t.due_at < now)
    query = query.order_by((t.due_at < now).desc(), t.priority, t.due_at, t.id)
    with engine.connect() as conn:
        rows = conn.execute(query.limit(limit).offset(offset)).all()
    return [dict(r._mapping) for r in rows]


MOOT_NOTE = "closed by cuikuan: a payment came after this task was made and nothing is overdue now"


def close_moot(engine: Engine, settings: Settings, now: datetime) -> list[int]:
    """Close the open (untaken) tasks that were only about money owed (followup.moot_once_paid)
    once a payment has come since they were made and none of the borrower's loans is overdue:
    a "paid already" to verify, a plan to agree, a date to ask for. A taken task stays with its
    agent. Each closing is a note on the task and an audit entry by "cuikuan"."""
    kinds = sorted(moot_once_paid())
    with engine.connect() as conn:
        waiting = conn.execute(
            select(tasks.c.id, tasks.c.customer_id, tasks.c.created_at).where(
                tasks.c.state == "open", tasks.c.kind.in_(kinds), tasks.c.customer_id.is_not(None)
            )
        ).all()
        if not waiting:
            return []
        people = sorted({w.customer_id for w in waiting})
        loan_ids = [
            lid
            for start in range(0, len(people), 5_000)
            for lid in conn.execute(
                select(loans.c.id).where(loans.c.customer_id.in_(people[start : start + 5_000]))
            ).scalars()
        ]
        today = local_day(now, settings.defaults.timezone)
        found = loans_at(conn, loan_ids, now, today, settings.ledger.grace_days)
    overdue: dict[int, int] = defaultdict(int)
    last_paid: dict[int, datetime] = {}
    for state in found.values():
        cid = state.customer_id
        overdue[cid] += state.position.overdue_amount
        # When the book learnt of each payment. A newer instalment snapshot is no evidence: a
        # lender re-sends its schedule every day, whether or not anything was paid.
        for at, recorded, _ in state.payments:
            if at <= now:
                learnt = max(at, recorded)
                last_paid[cid] = max(learnt, last_paid.get(cid, learnt))
    moot = [
        w.id
        for w in waiting
        if overdue[w.customer_id] == 0
        and w.customer_id in last_paid
        and last_paid[w.customer_id] > as_utc(w.created_at)
    ]
    for task_id in moot:
        with engine.begin() as conn:
            closed = conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.state == "open")
                .values(state="done", updated_at=now, notes=_noted(conn, task_id, now))
            ).rowcount
            if closed:
                audit.record(conn, "cuikuan", "task.expire", f"task:{task_id}",
                             {"state": "open"}, {"state": "done", "why": MOOT_NOTE}, now)  # fmt: skip
    return moot


def _noted(conn: Connection, task_id: int, now: datetime) -> str:
    notes = json.loads(
        conn.execute(select(tasks.c.notes).where(tasks.c.id == task_id)).scalar_one()
    )
    return json.dumps([*notes, {"at": now.isoformat(), "by": "cuikuan", "text": MOOT_NOTE}],
                      ensure_ascii=False)  # fmt: skip
