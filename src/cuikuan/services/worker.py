"""The book's day without cron: what `cuikuan worker` does at each tick.

    day = WorkerDay(engine, settings, resolve, post)
    report = day.tick(now)          # plan if due, dispatch, listen, settle, deliver webhooks

One process does all of it (SQLite, or PostgreSQL with one worker); with several workers on
PostgreSQL the same steps run as Procrastinate tasks (services.tasks_pg). The day's plan is made
once, at or after [schedule] plan_at in the book's zone: a marker row says it was made, so a
restarted worker does not plan the day again.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from cuikuan.channels.base import Channel, pushing
from cuikuan.dispatch.inbound import hear
from cuikuan.dispatch.sender import Resolver, SendReport, send_due
from cuikuan.services import report_store, webhooks
from cuikuan.services.promises import settle
from cuikuan.services.tasks import close_moot
from cuikuan.settings import Settings, SettingsWatch
from cuikuan.store.schema import markers

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    planned: date | None = None
    plan_rows: int = 0
    sent: SendReport = field(default_factory=SendReport)
    replies: int = 0
    receipts: Counter[str] = field(default_factory=Counter)
    webhooks: webhooks.DeliveryReport = field(default_factory=webhooks.DeliveryReport)
    tasks_closed: int = 0  # tasks a payment made moot (services.tasks.close_moot)


def plan_marker(day: date) -> str:
    return f"plan:{day.isoformat()}"


def plan_due(engine: Engine, settings: Settings, now: datetime) -> date | None:
    """Today's date in the book's zone when its plan is due and not made yet."""
    local = now.astimezone(ZoneInfo(settings.defaults.timezone))
    if local.time() < settings.schedule.plan_time:
        return None
    with engine.connect() as conn:
        made = conn.execute(
            select(markers.c.value).where(markers.c.name == plan_marker(local.date()))
        ).scalar()
    return None if made else local.date()


def mark_planned(engine: Engine, day: date, rows: int) -> bool:
    """Record that the day's plan is made; False when another worker recorded it first."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(markers).values(name=plan_marker(day), value=rows))
        return True
    except IntegrityError:
        return False


def warm_portfolio(engine: Engine, settings: Settings, now: datetime) -> None:
    """Today's portfolio, computed once per import and kept in the database, so that the
    console's first view after an import reads it instead of positioning the whole book."""
    from cuikuan.services.portfolio import portfolio_now

    portfolio_now(
        engine, now.astimezone(ZoneInfo(settings.defaults.timezone)).date(), settings, now
    )


def settle_kept(engine: Engine, settings: Settings, now: datetime) -> int:
    """A payment may have kept a promise since the last tick (breaking one is the plan's call)
    and made a task about money owed moot; returns how many tasks closed."""
    today = now.astimezone(ZoneInfo(settings.defaults.timezone)).date()
    settle(engine, settings, today, write=True, now=now, kept_only=True)
    return len(close_moot(engine, settings, now))


class WorkerDay:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        resolve: Resolver,
        providers: dict[str, Channel],
        post: webhooks.Post,
        limit: int = 100_000,
        watch: SettingsWatch | None = None,
    ) -> None:
        self.engine, self.settings, self.resolve = engine, settings, resolve
        self.providers, self.post, self.limit = providers, post, limit
        self.watch = watch  # the settings file read again when it changes, at each tick

    def tick(self, now: datetime) -> TickReport:
        report = TickReport()
        if self.watch is not None:  # an approved policy governs the next plan and send
            self.settings = self.watch.current()
        day = plan_due(self.engine, self.settings, now)
        if day is not None:
            from cuikuan.services.planner import make_plan

            result = make_plan(self.engine, self.settings, day, now=now, keep_candidates=False)
            mark_planned(self.engine, day, result.written)
            report.planned, report.plan_rows = day, result.written
            log.info("planned day=%s rows=%d", day, result.written)
        report.sent = send_due(self.engine, self.settings, self.resolve, now, self.limit)
        for channel in pushing(self.providers.values()):
            heard = hear(self.engine, self.settings, channel, now)
            report.replies += len(heard.replies)
            report.receipts.update(heard.receipts)
        report.tasks_closed = settle_kept(self.engine, self.settings, now)
        warm_portfolio(self.engine, self.settings, now)
        if not report.sent.sent:
            # Seconds on a large book: only in a tick that had nothing to send, so that one
            # process doing the whole day never holds its dispatch for it.
            report_store.refresh(self.engine, self.settings, now)
        report.webhooks = webhooks.deliver_due(self.engine, now, self.post)
        return report
