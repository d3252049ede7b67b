"""`cuikuan worker`: the day without cron."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import typer

from cuikuan.cli import common


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    ctx: typer.Context,
    at: str | None = typer.Option(
        None,
        "--at",
        "--now",
        help="Run as if it were this moment (ISO 8601; no offset: UTC). With --once: one tick "
        "then exit (replays, tests); without: the clock starts there and runs on.",
    ),
    once: bool = typer.Option(False, "--once", help="One tick, then exit."),
    speed: float = typer.Option(
        1.0,
        "--speed",
        min=1.0,
        max=100_000.0,
        help="With --at: simulated seconds per real second (a day replayed in minutes).",
    ),
    every: float | None = typer.Option(
        None, "--every", min=0.1, help="Seconds between ticks (default: [schedule] every_seconds)."
    ),
    single: bool = typer.Option(
        False,
        "--single",
        help="PostgreSQL: do the whole day in this process (default: share it with the other "
        "workers through the task queue).",
    ),
    ticking: bool = typer.Option(
        True,
        "--ticking/--no-ticking",
        help="PostgreSQL: queue the day's ticks from this worker's clock (--no-ticking: only "
        "work what others queue).",
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Run the book's day: plan once a day at [schedule] plan_at (the book's local time), send
    whatever is due while contact windows are open, apply receipts and replies, settle kept
    promises and deliver webhooks, every few seconds until Ctrl-C or SIGTERM (the current tick
    finishes first). Providers stay connected between ticks (an SMPP bind is kept)."""
    from cuikuan.channels.base import Channel, close_all
    from cuikuan.channels.registry import make_channel
    from cuikuan.services import webhooks
    from cuikuan.services.worker import WorkerDay
    from cuikuan.settings import SettingsWatch

    engine = common.database(ctx)
    settings = common.settings_from(ctx)
    start = common.moment(at) if at else None
    began = time.monotonic()

    def now() -> datetime:
        if start is None:
            return common.clock()
        if once:
            return start
        return datetime.fromtimestamp(start.timestamp() + (time.monotonic() - began) * speed, UTC)

    pause = every if every is not None else settings.schedule.every_seconds
    if engine.dialect.name == "postgresql" and not single and not once:
        _distributed(ctx, now, pause, ticking)
        return
    providers: dict[str, Channel] = {}

    def resolve(name: str) -> Channel:
        if name not in providers:
            providers[name] = make_channel(name, engine, settings, common.clock)
        return providers[name]

    post, close_post = webhooks.http_poster()
    day = WorkerDay(engine, settings, resolve, providers, post, watch=SettingsWatch(settings))
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while True:
            moment = now()
            report = day.tick(moment)
            line = (
                f"{moment:%Y-%m-%d %H:%M:%S}Z"
                + (
                    f" planned {report.planned} ({report.plan_rows:,} rows);"
                    if report.planned
                    else ""
                )
                + f" sent {report.sent.sent:,}, suppressed {sum(report.sent.suppressed.values()):,},"
                f" expired {report.sent.expired:,}; receipts {report.sent.settled + sum(report.receipts.values()):,};"
                f" replies {report.replies:,}; webhooks {report.webhooks.delivered:,} delivered"
                + (f"; tasks closed as paid {report.tasks_closed:,}" if report.tasks_closed else "")
            )
            if json_out:
                common.print_json({
                    "at": moment.isoformat(), "planned": report.planned, "plan_rows": report.plan_rows,
                    "send": report.sent.as_dict(), "replies": report.replies,
                    "receipts": dict(report.receipts), "tasks_closed": report.tasks_closed,
                    "webhooks": {**report.webhooks.__dict__, "errors": dict(report.webhooks.errors)},
                })  # fmt: skip
            else:
                common.err.print(line, markup=False)
            if once:
                break
            deadline = time.monotonic() + pause
            while not stop.is_set() and time.monotonic() < deadline:
                time.sleep(
                    min(0.2, pause)
                )  # not Event.wait: timed lock waits misbehave under faketime
            if stop.is_set():
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        close_all(providers.values())
        close_post()


def _distributed(
    ctx: typer.Context, clock: Callable[[], datetime], every: float, ticking: bool
) -> None:
    """This process as one of the workers sharing the day on PostgreSQL (Procrastinate)."""
    from cuikuan.jobs.runner import run
    from cuikuan.settings import find_settings_file

    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    common.err.print("worker: sharing the day through the task queue (PostgreSQL)", markup=False)
    try:
        run(find_settings_file(ctx.ensure_object(dict).get("config")), every, clock, stop, ticking)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    common.err.print("worker: stopped", markup=False)
