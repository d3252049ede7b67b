"""`cuikuan plans`: instalment plans agreed with borrowers (协商分期)."""

from __future__ import annotations

import typer

from cuikuan.cli import common
from cuikuan.services import arrangements as service

app = typer.Typer(
    rich_markup_mode=None,
    help="Instalment plans agreed with borrowers: create, list.",
    no_args_is_help=True,
)


@app.command("create")
def create(
    ctx: typer.Context,
    loan: str = typer.Argument(..., help="The loan's external id (借据号)."),
    schedule: str = typer.Option(
        ...,
        "--schedule",
        help='Agreed payments, "DATE:AMOUNT,..." e.g. "2026-12-05:500,2026-12-20:500".',
    ),
    by: str = typer.Option(..., "--by", help="The agent who agreed it."),
    at: str | None = common.AtOption,
) -> None:
    """Agree a plan for a loan: amounts and dates that together cover the overdue amount. While it
    is kept, reminders follow the plan (due dates and amounts are the agreed ones) and the loan
    is not escalated; a missed payment breaks it and the original schedule resumes."""
    items = service.parse_schedule(schedule)
    plan_id = service.agree(
        common.database(ctx), common.settings_from(ctx), loan, items, by, common.moment(at)
    )
    common.out.print(f"plan {plan_id} agreed for {loan}", markup=False)


@app.command("list")
def list_(ctx: typer.Context, json_out: bool = common.JsonOption) -> None:
    """Every plan with its loan, status (current, kept, broken) and agreed payments."""
    plans = service.describe(common.database(ctx))
    if json_out:
        common.print_json(plans)
        return
    for p in plans:
        agreed = ", ".join(f"{a['due']}:{a['amount']}" for a in p["schedule"])  # type: ignore[attr-defined]
        common.out.print(
            f"{p['id']} {p['loan']} {p['status']} by {p['agreed_by']}: {agreed}", markup=False
        )
