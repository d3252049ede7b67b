"""`cuikuan tasks`: the agents' work list, made from replies that need a person."""

from __future__ import annotations

import typer
from rich.table import Table

from cuikuan.cli import common
from cuikuan.services import tasks as service

app = typer.Typer(
    rich_markup_mode=None,
    help="Agent tasks from replies: list, take, note, done.",
    no_args_is_help=True,
)


@app.command("list")
def list_(
    ctx: typer.Context,
    state: str | None = typer.Option("open", "--state", help="open, taken or done (default open)."),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="verify_payment, agree_plan, hardship, dispute, data_fix, complaint, deceased, call_back, ask_date, read_reply, third_party.",
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Tasks by priority (1 first) and due time, with the borrower and the reply behind each."""
    frame = service.list_tasks(common.database(ctx), state, kind)
    if json_out:
        common.print_json(frame.to_dicts())
        return
    table = Table()
    for name in ("id", "prio", "kind", "state", "assignee", "due (UTC)", "customer", "summary"):
        table.add_column(name)
    for r in frame.iter_rows(named=True):
        table.add_row(
            str(r["id"]),
            str(r["priority"]),
            r["kind"],
            r["state"],
            r["assignee"] or "-",
            f"{r['due_at']:%Y-%m-%d %H:%M}",
            r["customer"] or "-",
            r["summary"],
        )
    common.out.print(table)


@app.command("take")
def take(
    ctx: typer.Context,
    task_id: int = typer.Argument(...),
    assignee: str = typer.Option(..., "--as", help="Who takes it."),
    at: str | None = common.AtOption,
) -> None:
    """Take a task: it is yours now."""
    service.take(common.database(ctx), task_id, assignee, common.moment(at))
    common.out.print(f"task {task_id} taken by {assignee}", markup=False)


@app.command("note")
def note(
    ctx: typer.Context,
    task_id: int = typer.Argument(...),
    text: str = typer.Argument(...),
    by: str | None = typer.Option(None, "--by"),
    at: str | None = common.AtOption,
) -> None:
    """Add a note to a task (what the borrower said, what was agreed)."""
    service.add_note(common.database(ctx), task_id, text, common.moment(at), by)
    common.out.print(f"note added to task {task_id}", markup=False)


@app.command("done")
def done(
    ctx: typer.Context,
    task_id: int = typer.Argument(...),
    note_text: str | None = typer.Option(None, "--note"),
    by: str | None = typer.Option(None, "--by"),
    at: str | None = common.AtOption,
) -> None:
    """Close a task, with an optional closing note."""
    service.done(common.database(ctx), task_id, common.moment(at), note_text, by)
    common.out.print(f"task {task_id} done", markup=False)
