"""`cuikuan outbox`: where every message stands; `outbox resolve`: settle uncertain ones by hand."""

from __future__ import annotations

import polars as pl
import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.dispatch.sender import outbox_counts
from cuikuan.errors import InputError
from cuikuan.services import users
from cuikuan.services.outbox import OUTCOMES, messages_in, provider_health, resolve_uncertain
from cuikuan.services.providers import hold as hold_provider
from cuikuan.services.providers import release as release_provider

# Every status an outbox row can be in (store/schema.py, docs/dispatch.md).
STATUSES = ("planned", "held", "claimed", "sending", "sent", "delivered", "undelivered", "failed",
            "expired", "suppressed", "uncertain", "cancelled")  # fmt: skip

app = typer.Typer(
    rich_markup_mode=None,
    invoke_without_command=True,
    no_args_is_help=False,
    help="Messages by status; `outbox resolve` settles the uncertain ones; `outbox providers` "
    "shows which providers are down or held and what their binds left unread; `outbox hold` "
    "and `outbox release` stop and restart sending through one provider.",
)


@app.callback()
def outbox(
    ctx: typer.Context,
    by_day: bool = typer.Option(False, "--by-day", help="One row per plan date and status."),
    status: str | None = typer.Option(
        None, "--status", help="List the messages in this status (e.g. uncertain, failed)."
    ),
    limit: int = typer.Option(200, "--limit", min=1, help="At most this many with --status."),
    json_out: bool = common.JsonOption,
) -> None:
    """Messages by status (planned, held, claimed, sending, sent, delivered, undelivered,
    failed, expired, suppressed, uncertain, cancelled), with --by-day per plan date; with
    --status, the messages themselves (id, customer, number, step, reason)."""
    if ctx.invoked_subcommand is not None:
        return
    if status is not None and status not in STATUSES:
        raise InputError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    engine = common.database(ctx)
    if status is not None:
        rows = messages_in(engine, status, limit)
        if json_out:
            common.print_json(rows)
            return
        table = Table()
        columns = ("id", "customer", "recipient", "step", "plan_date", "reason", "updated_at")
        for name in columns:
            table.add_column(name)
        for r in rows:
            table.add_row(*(str(r[c] or "") for c in columns))
        common.out.print(table)
        common.out.print(f"{len(rows):,} {status} message(s) shown", markup=False)
        return
    counts = outbox_counts(engine)
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
    for day, state, count in counts.iter_rows():
        table.add_row(str(day), state, f"{count:,}")
    common.out.print(table)


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    ids: list[int] = typer.Argument(..., help="Outbox ids (see `outbox --status uncertain`)."),
    outcome: str = typer.Option(
        ...,
        "--as",
        help="sent (the carrier has it), not_sent (mark failed, never retried) or resend "
        "(plan it again; it goes out if its window is still open).",
    ),
    by: str = typer.Option(..., "--by", help="Who checked with the carrier (kept in the reason)."),
    at: str | None = common.AtOption,
) -> None:
    """Settle uncertain messages, after checking with the carrier: cuikuan never resends an
    uncertain message on its own, because the borrower may already have it."""
    if outcome not in OUTCOMES:
        raise InputError(f"--as must be one of {', '.join(OUTCOMES)} (got {outcome!r})")
    done = resolve_uncertain(common.database(ctx), ids, outcome, by, common.moment(at))
    common.out.print(f"resolved {done} message(s) as {outcome}", markup=False)


@app.command("providers")
def providers(ctx: typer.Context, json_out: bool = common.JsonOption) -> None:
    """Each provider as dispatch last found it: up, or down since when, why, and its next try
    (its messages wait planned inside their windows meanwhile); what its binds heard that is
    not read yet or could not be read; receipts that match no message."""
    rows = provider_health(common.database(ctx))
    if json_out:
        common.print_json(rows)
        return
    table = Table()
    columns = ("provider", "state", "since", "next_try_at", "inbound_waiting",
               "inbound_unreadable", "receipts_unmatched", "detail")  # fmt: skip
    for name in columns:
        table.add_column(name)
    for r in rows:
        table.add_row(*(str(r[c]) if r[c] is not None else "" for c in columns))
    common.out.print(table)
    if not rows:
        common.out.print("no provider has been used yet", markup=False)


@app.command("hold")
def hold(
    ctx: typer.Context,
    provider: str = typer.Argument(..., help="A provider name (see `outbox providers`)."),
    reason: str = typer.Option(..., "--reason", help="Why (shown to everyone sending today)."),
    by: str = typer.Option(..., "--by", help="A console user with the admin role."),
    at: str | None = common.AtOption,
) -> None:
    """Send nothing through PROVIDER until it is released: its messages go to the route's
    fallback, or wait planned inside their windows. Receipts and replies are still heard."""
    engine = common.database(ctx)
    actor = users.require_role(engine, by, "admin")
    hold_provider(engine, common.settings_from(ctx), provider, reason, common.moment(at), actor)
    common.err.print(f"{provider} held: nothing is sent through it until `outbox release`",
                     markup=False)  # fmt: skip


@app.command("release")
def release(
    ctx: typer.Context,
    provider: str = typer.Argument(..., help="A held provider."),
    by: str = typer.Option(..., "--by", help="A console user with the admin role."),
    at: str | None = common.AtOption,
) -> None:
    """Send through PROVIDER again, from the next dispatch round."""
    engine = common.database(ctx)
    actor = users.require_role(engine, by, "admin")
    release_provider(engine, provider, common.moment(at), actor)
    common.err.print(f"{provider} released", markup=False)
