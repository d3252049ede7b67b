"""`cuikuan calls`: the calls agents made, which count against the contact caps."""

from __future__ import annotations

import typer

from cuikuan.cli import common
from cuikuan.services import calls as service

app = typer.Typer(
    rich_markup_mode=None,
    help="Calls to borrowers: log one (it counts against the contact caps like a message).",
    no_args_is_help=True,
)


@app.command("log")
def log(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="The customer's id (客户编号)."),
    number: str = typer.Option(
        "1", "--number", help="The number called: E.164 (+8613800138000) or its position (1 first)."
    ),
    outcome: str = typer.Option(..., "--outcome", help=", ".join(service.OUTCOMES) + "."),
    by: str = typer.Option(..., "--by", help="Who called."),
    note: str = typer.Option("", "--note", help="What was said."),
    at: str | None = common.AtOption,
    json_out: bool = common.JsonOption,
) -> None:
    """Log a call that was made (default: just now). It is a contact: the plan and the sender
    count it against the caps (a day's, a week's, the gap), for the person and the number."""
    now = common.moment(at)
    call = service.log_call(
        common.database(ctx), customer, number, outcome, now,
        by=f"user:{by}", note=note, now=now,
    )  # fmt: skip
    if json_out:
        common.print_json(call.as_dict())
        return
    common.out.print(f"call {call.id} logged: {customer} {call.outcome} at {call.at:%Y-%m-%d %H:%M} UTC",
                     markup=False)  # fmt: skip
