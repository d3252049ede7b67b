"""Deferring a Procrastinate job inside our own transaction: the job and the data it is about
are written together or not at all (a plan run and its parts; a part's outcome and the finish).

    with engine.begin() as conn:
        conn.execute(insert(plan_runs)...)
        defer_in(conn, "cuikuan:plan_part", "plan_part:2026-11-30:0", "cuikuan", day=..., part=0)

It calls the function Procrastinate's own `defer` calls (procrastinate_defer_jobs_v1, in its
schema beside ours), in a savepoint: a job already queued under the same queueing lock is not
queued twice, and the transaction goes on.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, :lock, "
    "CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1])"
)


def defer_in(conn: Connection, task_name: str, queueing_lock: str, queue: str,
             **kwargs: str | int) -> bool:  # fmt: skip
    """Queue `task_name` with `kwargs` in `conn`'s transaction; False when a job with the same
    queueing lock is waiting already."""
    try:
        with conn.begin_nested():
            conn.execute(_DEFER, {"queue": queue, "task": task_name, "lock": queueing_lock,
                                  "args": json.dumps(kwargs)})  # fmt: skip
    except IntegrityError as exc:
        if "queueing_lock" in str(exc.orig):
            return False
        raise
    return True
