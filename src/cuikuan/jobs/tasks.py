"""The day's work as Procrastinate tasks, shared by every worker process on PostgreSQL.

    tick(now)             -> plan_begin(day), plan_part(day, i), plan_finish(day), dispatch(k),
                             webhooks(now), settle(now), as they are due
    plan_begin(day, now)  settle once, record the run and its parts (customer ranges)
    plan_part(day, part)  one range planned by whichever worker takes it; its outcome stored
    plan_finish(day)      the shared numbers decided together, the outbox written at once
    dispatch(shard, now)  the due rows whose id is `shard` modulo [schedule] dispatch_shards,
                          each chunk waiting for its turn on the provider's shared line
    webhooks(now), settle(now)

A plan run and its parts' jobs are written in one transaction, and the last part's outcome with
the finish's job (store/task_queue.defer_in): no run without its jobs, no job without its run.
`tick` is the reconciler: it runs every few seconds (Procrastinate's periodic task, or the
worker's own simulated clock) and defers what is due and not yet queued, each with a queueing
lock, so any number of workers never queue the same work twice. A worker killed mid-task leaves
its job "doing" until its heartbeat is missed; `tick` then retries it. Every task can run again
without harm: a part's outcome replaces the one stored, the outbox takes each row once by its
key, a claim that lapses is released, a row handed over and not recorded becomes uncertain.
"""

from __future__ import annotations

import json
import logging
import time as clock_time
from collections.abc import Callable
from datetime import date, datetime

from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Status
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cuikuan.jobs.context import context
from cuikuan.store.schema import plan_part_results, plan_runs
from cuikuan.store.task_queue import defer_in
from cuikuan.store.times import as_utc

log = logging.getLogger(__name__)
QUEUE = "cuikuan"
STALLED_AFTER = 15.0  # seconds without a worker's heartbeat before its jobs are retried
TASKS: dict[str, Callable[..., None]] = {}  # name -> function; made into tasks per app


def task(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        TASKS[name] = fn
        return fn

    return register


_apps: dict[str, App] = {}


def make_app(database_url: str) -> App:
    """The Procrastinate app on the book's PostgreSQL database (its tables live beside ours),
    one per database a process."""
    if database_url not in _apps:
        conninfo = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        app = App(connector=PsycopgConnector(conninfo=conninfo), import_paths=[])
        for name, fn in TASKS.items():
            app.task(name=f"cuikuan:{name}", queue=QUEUE)(fn)
        _apps[database_url] = app
    return _apps[database_url]


def _app() -> App:
    """The app of this worker process (its book's database)."""
    return make_app(context().settings.database_url)


def _defer(task_name: str, lock: str, **kwargs: str | int) -> bool:
    """Queue a task unless the same work is queued already (its lock)."""
    task = _app().tasks[task_name]
    try:
        task.configure(queueing_lock=lock, queue=QUEUE).defer(**kwargs)
        return True
    except AlreadyEnqueued:
        return False


@task("tick")
def tick(now: str) -> None:
    from cuikuan.services.worker import plan_due

    ctx = context()
    moment = datetime.fromisoformat(now)
    day = plan_due(ctx.engine, ctx.settings, moment)
    with ctx.engine.connect() as conn:
        open_runs = conn.execute(
            select(plan_runs.c.plan_date, plan_runs.c.parts).where(
                plan_runs.c.finished_at.is_(None)
            )
        ).all()
        done: dict[date, int] = dict(
            conn.execute(
                select(plan_part_results.c.plan_date, func.count())
                .group_by(plan_part_results.c.plan_date)
            ).all()
        )  # fmt: skip
        parts_done = {
            (d, p)
            for d, p in conn.execute(
                select(plan_part_results.c.plan_date, plan_part_results.c.part)
            )
        }
    if day is not None and day not in {r.plan_date for r in open_runs}:
        _defer("cuikuan:plan_begin", f"plan_begin:{day}", day=day.isoformat(), now=now)
    for run in open_runs:
        if done.get(run.plan_date, 0) >= run.parts:
            _defer(
                "cuikuan:plan_finish", f"plan_finish:{run.plan_date}", day=run.plan_date.isoformat()
            )
            continue
        for part in range(run.parts):
            if (run.plan_date, part) not in parts_done:
                _defer("cuikuan:plan_part", f"plan_part:{run.plan_date}:{part}",
                       day=run.plan_date.isoformat(), part=part)  # fmt: skip
    shards = ctx.settings.schedule.dispatch_shards
    for shard in range(shards):
        _defer("cuikuan:dispatch", f"dispatch:{shard}", shard=shard, now=now)
    _defer("cuikuan:webhooks", "webhooks", now=now)
    _defer("cuikuan:settle", "settle", now=now)


@task("plan_begin")
def plan_begin(day: str, now: str) -> None:
    from cuikuan.services.planner import begin_plan

    ctx = context()
    as_of, moment = date.fromisoformat(day), datetime.fromisoformat(now)
    scopes = begin_plan(ctx.engine, ctx.settings, as_of, moment,
                        ctx.settings.schedule.plan_part_customers)  # fmt: skip
    with ctx.engine.begin() as conn:  # the run and its parts' jobs together, or neither
        made = conn.execute(
            pg_insert(plan_runs)
            .values(plan_date=as_of, parts=len(scopes), planned_at=moment,
                    scopes=json.dumps([list(s) if s else None for s in scopes]))
            .on_conflict_do_nothing()
        ).rowcount  # fmt: skip
        if made:
            for part in range(len(scopes)):
                defer_in(conn, "cuikuan:plan_part", f"plan_part:{as_of}:{part}", QUEUE,
                         day=day, part=part)  # fmt: skip
    log.info("plan begun day=%s parts=%d", day, len(scopes))


@task("plan_part")
def plan_part(day: str, part: int) -> None:
    from cuikuan.services.planner import plan_part as plan_one

    ctx = context()
    as_of = date.fromisoformat(day)
    with ctx.engine.connect() as conn:
        run = conn.execute(select(plan_runs).where(plan_runs.c.plan_date == as_of)).one()
    scope_list = json.loads(run.scopes)[part]
    scope = tuple(scope_list) if scope_list else None
    outcome = plan_one(ctx.engine, ctx.settings, as_of, as_utc(run.planned_at), scope)
    stored = outcome.to_bytes()
    with ctx.engine.begin() as conn:
        conn.execute(
            pg_insert(plan_part_results)
            .values(plan_date=as_of, part=part, **stored)
            .on_conflict_do_update(index_elements=["plan_date", "part"], set_=stored)
        )
        finished = conn.execute(
            select(func.count()).select_from(plan_part_results)
            .where(plan_part_results.c.plan_date == as_of)
        ).scalar_one()  # fmt: skip
        if finished >= run.parts:  # with the last outcome, in its transaction
            defer_in(conn, "cuikuan:plan_finish", f"plan_finish:{as_of}", QUEUE, day=day)


@task("plan_finish")
def plan_finish(day: str) -> None:
    from cuikuan.services.planner import PlanPart, finish_plan
    from cuikuan.services.worker import mark_planned

    ctx = context()
    as_of = date.fromisoformat(day)
    with ctx.engine.connect() as conn:
        run = conn.execute(select(plan_runs).where(plan_runs.c.plan_date == as_of)).one()
        if run.finished_at is not None:
            return
        stored = conn.execute(
            select(plan_part_results).where(plan_part_results.c.plan_date == as_of)
            .order_by(plan_part_results.c.part)
        ).all()  # fmt: skip
    if len(stored) < run.parts:
        return  # a part is missing: tick queues it, and its end queues this again
    parts = [
        PlanPart.from_bytes({"rows": r.rows, "held": r.held, "stops": r.stops}) for r in stored
    ]
    written = finish_plan(ctx.engine, ctx.settings, as_of, as_utc(run.planned_at), parts)
    with ctx.engine.begin() as conn:
        conn.execute(update(plan_runs).where(plan_runs.c.plan_date == as_of)
                     .values(finished_at=as_utc(run.planned_at)))  # fmt: skip
        conn.execute(delete(plan_part_results).where(plan_part_results.c.plan_date == as_of))
    mark_planned(ctx.engine, as_of, written)
    log.info("plan finished day=%s rows=%d", day, written)


@task("dispatch")
def dispatch(shard: int, now: str) -> None:
    from cuikuan.dispatch.sender import send_due

    ctx = context()
    report = send_due(
        ctx.engine, ctx.settings, ctx.resolve, datetime.fromisoformat(now), 100_000,
        shard=(shard, ctx.settings.schedule.dispatch_shards), pace=_pace,
    )  # fmt: skip
    if report.sent:
        log.info("dispatched shard=%d sent=%d", shard, report.sent)


def _pace(provider: str, parts: int, tps: float) -> None:
    """Wait for this chunk's turn on the provider's line, shared by every worker."""
    from cuikuan.store.rate_slots import reserve

    ctx = context()
    with ctx.engine.begin() as conn:
        wait = reserve(conn, provider, parts, tps)
    if wait > 0:
        clock_time.sleep(wait)


@task("webhooks")
def deliver_webhooks(now: str) -> None:
    from cuikuan.services.webhooks import deliver_due

    ctx = context()
    deliver_due(ctx.engine, datetime.fromisoformat(now), ctx.poster())


@task("settle")
def settle_promises(now: str) -> None:
    from cuikuan.services.worker import settle_kept, warm_portfolio

    ctx = context()
    settle_kept(ctx.engine, ctx.settings, datetime.fromisoformat(now))
    warm_portfolio(ctx.engine, ctx.settings, datetime.fromisoformat(now))
    # The console's default report, at most an hour old (a no-op until then).
    from cuikuan.services import report_store

    report_store.refresh(ctx.engine, ctx.settings, datetime.fromisoformat(now))


async def retry_stalled(app: App) -> int:
    """Jobs of workers that stopped beating (killed): back in the queue."""
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER)
    count = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
            count += 1
        except UniqueViolation:
            # The same work is queued again already (its queueing lock is taken by a newer job,
            # which a tick deferred meanwhile): this one ends, that one does the work.
            await app.job_manager.finish_job(job, Status.FAILED, delete_job=False)
    return count
