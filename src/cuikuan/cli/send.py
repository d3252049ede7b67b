"""`cuikuan send` and `cuikuan outbox`: dispatch what is due, and see where every message stands."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime

import typer
from rich.status import Status
from sqlalchemy import Engine

from cuikuan.channels.base import Channel, close_all, pushing
from cuikuan.channels.registry import make_channel
from cuikuan.cli import common
from cuikuan.dispatch.inbound import hear
from cuikuan.dispatch.sender import SendReport, send_due
from cuikuan.errors import InputError, ProviderRefused
from cuikuan.settings import Settings


def register(app: typer.Typer) -> None:
    app.command("send")(send)


def _now(text: str | None) -> datetime:
    return common.moment(text, "--now")


def send(
    ctx: typer.Context,
    now: str | None = typer.Option(
        None,
        "--now",
        "--at",
        help=(
            "Act as if it were this moment (demos, replays): ISO 8601 such as "
            "2026-11-29T10:00+08:00 (no offset: UTC). Default: the clock."
        ),
    ),
    limit: int = typer.Option(
        100_000, "--limit", min=1, help="At most this many messages in this run."
    ),
    wait_receipts: float = typer.Option(
        0.0,
        "--wait-receipts",
        min=0,
        help="Keep the channels open this many seconds for receipts (SMPP pushes them).",
    ),
    every: float | None = typer.Option(
        None,
        "--every",
        min=1,
        help="Keep running: dispatch again every this many seconds, holding the channels open "
        "(SMPP receipts and replies keep arriving) until Ctrl-C or SIGTERM; the round in "
        "progress finishes first.",
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Send the outbox rows whose window is open now through each channel's provider (settings
    [channels]: the sandbox gateway by default; routes and fallbacks as configured): each is
    claimed, re-checked (opted out, flagged or paid since the plan? still in the window? caps
    still hold?), sent and recorded; closed windows expire; receipts that arrived are applied.
    Several `send` processes may run at once on PostgreSQL: none sends a row another took."""
    engine = common.database(ctx)
    settings = common.settings_from(ctx)
    providers: dict[str, Channel] = {}

    def resolve(name: str) -> Channel:
        if name not in providers:
            providers[name] = make_channel(name, engine, settings, common.clock)
        return providers[name]

    if every is not None:
        if now is not None:
            raise InputError("--every runs on the clock; leave out --now")
        _dispatch_loop(engine, settings, resolve, providers, every, limit)
        return
    moment = _now(now)
    try:
        with _Progress(quiet=json_out) as progress:
            report = send_due(engine, settings, resolve, moment, limit, progress)
            _wait_for_receipts(engine, settings, providers, report, moment, wait_receipts)
    finally:
        close_all(providers.values())
    if json_out:
        common.print_json(report.as_dict())
    else:
        common.out.print(
            f"sent {report.sent:,}, suppressed {sum(report.suppressed.values()):,}, expired {report.expired:,}, "
            f"uncertain {report.uncertain:,}, failed {report.failed:,}; receipts: {report.delivered:,} delivered, "
            f"{report.undelivered:,} undelivered"
        )
        for reason, count in report.suppressed.most_common():
            common.out.print(f"  suppressed: {reason}: {count:,}")
        if report.replies or report.unplaced:
            common.out.print(
                f"  replies read: {report.replies:,}; from numbers that could not be placed "
                f"(given to a person): {report.unplaced:,}",
                markup=False,
            )
        if report.no_receipt:
            common.out.print(
                f"  expired for want of a receipt by the end of their validity: {report.no_receipt:,}",
                markup=False,
            )
        for name, why in report.down.items():
            common.err.print(
                f"provider {name} is down ({why}): its messages wait, planned, inside their "
                "windows; `cuikuan outbox providers` shows it",
                markup=False,
            )
    if report.stopped_channels:
        refused = "; ".join(f"{name}: {why}" for name, why in report.stopped_channels.items())
        raise ProviderRefused(
            f"provider refused our credentials, not used for the rest of this run ({refused}); "
            f"{report.waiting:,} message(s) wait, planned, for the next run"
        )


class _Progress:
    """A status line on stderr while a long run sends (terminals only; silent with --json)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.status: Status | None = None

    def __enter__(self) -> _Progress:
        return self

    def __call__(self, report: SendReport) -> None:
        if self.quiet or not common.err.is_terminal:
            return
        line = (
            f"sending: {report.sent:,} sent, {sum(report.suppressed.values()):,} suppressed, "
            f"{report.failed:,} failed"
        )
        if self.status is None:
            self.status = Status(line, console=common.err)
            self.status.start()
        self.status.update(line)

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()


def _dispatch_loop(
    engine: Engine,
    settings: Settings,
    resolve: Callable[[str], Channel],
    providers: dict[str, Channel],
    every: float,
    limit: int,
) -> None:
    """Dispatch rounds on the clock until asked to stop; between rounds, listen."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while not stop.is_set():
            report = send_due(engine, settings, resolve, common.clock(), limit)
            common.err.print(
                f"{common.clock():%H:%M:%S} sent {report.sent:,}, suppressed "
                f"{sum(report.suppressed.values()):,}, expired {report.expired:,}, failed "
                f"{report.failed:,}, uncertain {report.uncertain:,}; receipts {report.settled:,}",
                markup=False,
            )
            deadline = time.monotonic() + every
            while not stop.is_set() and time.monotonic() < deadline:
                # A plain sleep, not Event.wait: timed waits on a lock misbehave under clock
                # shims such as libfaketime, and a signal ends the sleep early anyway.
                time.sleep(0.5)
                for provider in pushing(providers.values()):
                    hear(engine, settings, provider, common.clock())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        close_all(providers.values())
    common.err.print("stopped", markup=False)


def _wait_for_receipts(
    engine: Engine,
    settings: Settings,
    providers: dict[str, Channel],
    report: SendReport,
    now: datetime,
    seconds: float,
) -> None:
    deadline = time.monotonic() + seconds
    listening = pushing(providers.values())
    while listening and time.monotonic() < deadline and report.sent > report.settled:
        time.sleep(0.1)
        for provider in listening:
            report.add_receipts(hear(engine, settings, provider, now).receipts)
