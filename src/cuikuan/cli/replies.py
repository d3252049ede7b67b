"""`cuikuan reply`: record what a borrower answered (or try how a reply would be read)."""

from __future__ import annotations

import typer

from cuikuan.cli import common
from cuikuan.services.replies import receive_reply


def register(app: typer.Typer) -> None:
    app.command("reply")(reply)
    app.command("timeline")(timeline)


def reply(
    ctx: typer.Context,
    sender: str = typer.Argument(..., help="The number the reply came from, e.g. 13800138000."),
    text: str = typer.Argument(..., help="What the borrower wrote or said."),
    at: str | None = common.AtOption,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only print how it is read and what would be done."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Record a reply as if a gateway had delivered it (agents type in what borrowers said on the
    phone or WeChat): its intent (opt-out, paid, promise with date and amount, instalment, hardship,
    dispute, wrong number, complaint, ...), confidence, and the action. Opt-outs and opt-ins take
    effect at once for everyone behind the number; complaints, deaths and wrong numbers stop
    automated messages. --dry-run changes nothing."""
    settings = common.settings_from(ctx)
    moment = common.moment(at)
    result = receive_reply(common.database(ctx), settings, sender, text, moment, dry_run=dry_run)
    if json_out:
        common.print_json(result.as_dict())
        return
    r = result.reading
    when = f", date {r.date}" if r.date else ""
    amount = f", amount {r.amount}" if r.amount is not None else ""
    common.out.print(
        f"{result.sender}: {r.intent} ({r.confidence:.0%}{when}{amount})", markup=False
    )
    common.out.print(
        f"action: {'a person reads it first' if r.needs_person else r.action}", markup=False
    )
    for line in result.done:
        common.out.print(f"  {line}", markup=False)
    if not result.customers:
        common.out.print("no customer has this number", markup=False)


def timeline(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="The customer's external id."),
    json_out: bool = common.JsonOption,
) -> None:
    """Everything that happened to a borrower, in order: messages with their rule trail, receipts,
    replies and how they were read, payments, promises, opt-outs."""
    from rich.table import Table

    from cuikuan.services.timeline import timeline as build

    events = build(common.database(ctx), common.settings_from(ctx), customer)
    if json_out:
        common.print_json([e.as_dict() for e in events])
        return
    table = Table(title=f"Timeline of {customer}", title_justify="left")
    for name in ("when (UTC)", "what", "detail"):
        table.add_column(name)
    for e in events:
        table.add_row(f"{e.at:%Y-%m-%d %H:%M}", e.kind, e.summary)
    common.out.print(table)
