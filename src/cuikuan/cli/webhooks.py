"""`cuikuan webhooks`: tell a lender's systems what happens, signed and retried."""

from __future__ import annotations

import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.services import webhooks as service
from cuikuan.store.events import TYPES

app = typer.Typer(
    rich_markup_mode=None,
    help="Webhooks: subscribe URLs to events, see deliveries, replay dead ones, deliver now.",
    no_args_is_help=True,
)


@app.command("add")
def add(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="Where to POST the events (http:// or https://)."),
    events: str = typer.Option(
        "*", "--events", help=f"* or a comma-separated list: {', '.join(TYPES)}."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Subscribe a URL. The signing secret is printed once: the receiver checks each delivery's
    Cuikuan-Signature header (t=<unix seconds>,v1=HMAC-SHA256(secret, "<t>.<raw body>"))."""
    sub = service.subscribe(common.database(ctx), url, service.parse_events(events), common.clock())
    if json_out:
        common.print_json(
            {"id": sub.id, "url": sub.url, "events": list(sub.events), "secret": sub.secret}
        )
        return
    common.out.print(sub.secret)
    common.err.print(
        f"subscription {sub.id}: {url} ({', '.join(sub.events)}); the secret is not shown again",
        markup=False,
    )


@app.command("list")
def list_(ctx: typer.Context, json_out: bool = common.JsonOption) -> None:
    """Subscriptions, active and removed (never their secrets)."""
    subs = service.subscriptions(common.database(ctx))
    if json_out:
        common.print_json(subs)
        return
    table = Table()
    for column in ("id", "url", "events", "active", "created (UTC)"):
        table.add_column(column)
    for s in subs:
        table.add_row(str(s["id"]), s["url"], ",".join(s["events"]), "yes" if s["active"] else "no",
                      f"{s['created_at']:%Y-%m-%d %H:%M}")  # fmt: skip
    common.out.print(table)


@app.command("remove")
def remove(ctx: typer.Context, subscription: int = typer.Argument(..., help="Its id.")) -> None:
    """Stop a subscription; what it had not delivered yet is dropped (dead, with the reason)."""
    service.unsubscribe(common.database(ctx), subscription)
    common.out.print(f"removed subscription {subscription}")


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="pending, delivered or dead."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    json_out: bool = common.JsonOption,
) -> None:
    """Deliveries with their attempts and last error: `--status dead` is the dead-letter list."""
    if status is not None and status not in ("pending", "delivered", "dead"):
        from cuikuan.errors import InputError

        raise InputError(f"--status {status!r}: expected pending, delivered or dead")
    found = service.deliveries(common.database(ctx), status, limit)
    if json_out:
        common.print_json(found)
        return
    table = Table()
    for column in ("id", "sub", "event", "status", "attempts", "next attempt (UTC)", "last error"):
        table.add_column(column)
    for d in found:
        table.add_row(str(d["id"]), str(d["subscription_id"]), d["type"], d["status"], str(d["attempts"]),
                      f"{d['next_attempt_at']:%Y-%m-%d %H:%M:%S}", common.literal(d["last_error"] or ""))  # fmt: skip
    common.out.print(table)


@app.command("replay")
def replay(
    ctx: typer.Context,
    ids: list[int] = typer.Argument(None, help="Dead deliveries to send again (default: all)."),
) -> None:
    """Send dead deliveries again, with a fresh day of retries."""
    moved = service.replay(common.database(ctx), ids or None, common.clock())
    common.out.print(f"{moved:,} deliveries pending again")


@app.command("deliver")
def deliver(ctx: typer.Context, json_out: bool = common.JsonOption) -> None:
    """Deliver what is due now, once (`cuikuan worker` does this all day)."""
    post, close = service.http_poster()
    try:
        report = service.deliver_due(common.database(ctx), common.clock(), post, limit=10_000)
    finally:
        close()
    if json_out:
        common.print_json({**report.__dict__, "errors": dict(report.errors)})
        return
    common.out.print(f"delivered {report.delivered:,}, retrying {report.retried:,}, dead {report.dead:,}, "
                     f"waiting behind an earlier event {report.waiting_in_order:,}")  # fmt: skip
