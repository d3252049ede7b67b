"""One worker process on PostgreSQL: runs the queue's tasks, keeps its SMPP binds' receipts and
replies flowing, and (with a clock) queues the next tick every few seconds.

    run(settings_path, every=30.0, clock=now_function, stop=event)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from procrastinate import App
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import Engine, text

from cuikuan.channels.base import pushing
from cuikuan.jobs import context as job_context
from cuikuan.jobs.tasks import QUEUE, STALLED_AFTER, make_app, retry_stalled

log = logging.getLogger(__name__)
SCHEMA_LOCK = 0x6375696B  # "cuik": one process applies the task engine's schema at a time


def ensure_schema(engine: Engine, app: App) -> None:
    """Procrastinate's tables, made once (under an advisory lock: workers start together)."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK})
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
            conn.exec_driver_sql(app.schema_manager.get_schema().replace("%", "%%"))


def defer_tick(app: App, now: datetime) -> bool:
    """Queue a tick as of `now`, unless one is queued already."""
    task = app.tasks["cuikuan:tick"]
    try:
        task.configure(queueing_lock="tick", queue=QUEUE).defer(now=now.isoformat())
        return True
    except AlreadyEnqueued:
        return False


def run(
    settings_path: Path,
    every: float,
    clock: Callable[[], datetime],
    stop: threading.Event,
    ticking: bool = True,
) -> None:
    """Work the queue until `stop`; with `ticking`, queue a tick as of `clock()` every `every`
    seconds (every worker does; the queueing lock keeps one waiting)."""
    os.environ[job_context.CONFIG_ENV] = str(settings_path)
    ctx = job_context.context()
    ctx.clock = clock
    app = make_app(ctx.settings.database_url)
    ensure_schema(ctx.engine, app)
    try:
        asyncio.run(_serve(app, every, clock if ticking else None, clock, stop))
    finally:
        job_context.close()


async def _serve(
    app: App,
    every: float,
    ticks: Callable[[], datetime] | None,
    clock: Callable[[], datetime],
    stop: threading.Event,
) -> None:
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(
                queues=[QUEUE], concurrency=1, install_signal_handlers=False, wait=True,
                update_heartbeat_interval=5.0, stalled_worker_timeout=STALLED_AFTER,
                fetch_job_polling_interval=0.5, shutdown_graceful_timeout=60.0,
            )
        )  # fmt: skip
        next_tick = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set() and not worker.done():
            await asyncio.to_thread(_listen, clock)
            if ticks is not None and loop.time() >= next_tick:
                next_tick = loop.time() + every
                with contextlib.suppress(AlreadyEnqueued):
                    await (
                        app.tasks["cuikuan:tick"]
                        .configure(queueing_lock="tick", queue=QUEUE)
                        .defer_async(now=clock().isoformat())
                    )
                retried = await retry_stalled(app)
                if retried:
                    log.warning("retried %d job(s) of workers that stopped", retried)
            await asyncio.sleep(0.5)
        worker.cancel()  # a graceful stop: the task in hand finishes first
        with contextlib.suppress(asyncio.CancelledError):
            await worker


def _listen(clock: Callable[[], datetime]) -> None:
    """Receipts and replies this process's binds heard since the last call."""
    from cuikuan.dispatch.inbound import hear

    ctx = job_context.context()
    now = clock()
    for channel in pushing(list(ctx.providers.values())):
        hear(ctx.engine, ctx.settings, channel, now)
