"""`cuikuan send` and `cuikuan outbox`: dispatch what is due, and see where every message stands."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import typer
from rich.table import Table

from cuikuan.channels.base import Channel
from cuikuan.channels.registry import make_channel
from cuikuan.cli import common
from cuikuan.dispatch.sender import outbox_counts, send_due
from cuikuan.domain.dates import parse_datetime
from cuikuan.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("send")(send)
    app.command("outbox")(outbox)


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = parse_datetime(text)
    except ValueError as exc:
        raise InputError(f"--now {text!r}: {exc}") from None
    return moment.replace(tzinfo=UTC)


def send(
    ctx: typer.Context,
    now: str | None = typer.Option(
        None, "--now", help="Act as if it were this UTC time (demos, tests); default: the clock."
    ),
    limit: int = typer.Option(
        100_000, "--limit", min=1, help="At most this many messages in this run."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Send the outbox rows whose window is open now through each channel's provider (settings
    [channels]: the sandbox gateway by default, smtp for e-mail): each is
    claimed, re-checked (opted out, flagged or paid since the plan? still in the window? caps
    still hold?), sent and recorded; closed windows expire; receipts that arrived are applied."""
    engine = common.database(ctx)
    settings = common.settings_from(ctx)
    providers: dict[str, Channel] = {}

    def resolve(name: str) -> Channel:
        provider = settings.channels.email if name == "email" else settings.channels.sms
        if provider not in providers:
            providers[provider] = make_channel(provider, engine, settings)
        return providers[provider]

    report = send_due(engine, settings, resolve, _now(now), limit)
    if json_out:
        common.print_json(report.as_dict())
        return
    common.out.print(
        f"sent {report.sent:,}, suppressed {sum(report.suppressed.values()):,}, expired {report.expired:,}, "
        f"uncertain {report.uncertain:,}, failed {report.failed:,}; receipts: {report.delivered:,} delivered, "
        f"{report.undelivered:,} undelivered"
    )
    for reason, count in report.suppressed.most_common():
        common.out.print(f"  suppressed: {reason}: {count:,}", markup=False)


def outbox(
    ctx: typer.Context,
    by_day: bool = typer.Option(False, "--by-day", help="One row per plan date and status."),
    json_out: bool = common.JsonOption,
) -> None:
    """Messages by status (planned, held, sending, sent, delivered, undelivered, failed,
    expired, suppressed, uncertain, cancelled), with --by-day per plan date."""
    counts = outbox_counts(common.database(ctx))
    if not by_day:
        counts = (
            counts.group_by("status")
            .agg(pl.col("count").sum())
            .select(pl.lit("all").alias("plan_date"), "status", "count")
            .sort("status")
        )
    if json_out:
        common.print_json(counts.to_dicts())
        return
    table = Table()
    for name in ("plan_date", "status", "count"):
        table.add_column(name, justify="right" if name == "count" else "left")
    for day, status, count in counts.iter_rows():
        table.add_row(str(day), status, f"{count:,}")
    common.out.print(table)
